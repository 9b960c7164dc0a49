/**
 * A bad auth Secret against the real API server: the API server stores whatever a Secret
 * holds, so the controller is the one that says so. Two members (MemberHosts on real UDP
 * sockets on 127.0.0.1, recording Effects) and the controller's witness run a VIP; the Secret
 * is then edited with kubectl to carry a 16-byte key made active, and later deleted. The
 * controller writes AuthSecretInvalid (naming the Secret key and the fix) and a Warning
 * Event, keeps voting with the running key, and the VIP stays where it is at the same epoch.
 * Fixing the Secret clears the condition.
 */
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { K8sLeaseLock } from '../../src/adapters/k8s/lease-lock.js';
import { UdpTransport } from '../../src/adapters/udp/udp-transport.js';
import { Controller } from '../../src/controller/controller.js';
import { ControllerMetrics } from '../../src/controller/metrics.js';
import {
  HEARTBEAT_ADDRESS_ANNOTATION,
  MEMBER_KEY_ANNOTATION,
  HEARTBEAT_PORT_ANNOTATION,
  buildClusterConfig,
} from '../../src/runtime/cluster-config.js';
import { MemberHost } from '../../src/runtime/member-host.js';
import {
  createTestNamespace,
  deleteNamespace,
  kubeconfig,
  kubectl,
  mustKubectl,
  sleep,
  until as untilShared,
} from './helpers.js';
import { memberKeyOf, publicKeyOf } from '../fixtures/member-keys.js';

jest.setTimeout(120_000);

const log = pino({ level: process.env.HEARTLINE_TEST_LOG ?? 'silent' });
const clock = new SystemClock();
const until = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000) =>
  untilShared(what, fn, timeoutMs, 100);

type Cond = { type: string; status: string; reason: string; message: string };

describe('a bad auth Secret (real API server)', () => {
  let ns: string;
  const suffix = randomBytes(3).toString('hex');
  const nodeNames = ['a', 'b'].map((n) => `hl-auth-${suffix}-${n}`);
  const key1 = randomBytes(32).toString('base64');
  const transports: UdpTransport[] = [];
  const hosts: MemberHost[] = [];
  const bound = new Map<string, Map<string, number>>(nodeNames.map((n) => [n, new Map()]));
  let controller: Controller | undefined;
  let witnessTransport: UdpTransport | undefined;
  const reader = new K8sApiSource(
    { kubeConfig: loadKubeConfig(kubeconfig()), clock, logger: log },
    { identity: 'test-reader' },
  );

  const clusterStatus = async () =>
    ((await reader.get('HACluster', { namespace: ns, name: 'web' }))?.status ?? {}) as {
      conditions?: Cond[];
      quorum?: { state: string };
      witness?: { address: string; port: number };
    };
  const authCond = async () =>
    (await clusterStatus()).conditions?.find((c) => c.type === 'AuthSecretInvalid');
  const vipStatus = async () =>
    ((await reader.get('VirtualIP', { namespace: ns, name: 'vip1' }))?.status ?? {}) as {
      holder?: string;
      epoch?: number;
    };
  const events = async () =>
    (
      JSON.parse(await mustKubectl(['get', 'events.events.k8s.io', '-n', ns, '-o', 'json'])) as {
        items: Array<{
          reason: string;
          type: string;
          note: string;
          regarding: { kind: string; name: string };
        }>;
      }
    ).items;
  const putSecret = (data: Record<string, string>) =>
    mustKubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'auth', namespace: ns }, data }),
    );

  beforeAll(async () => {
    ns = await createTestNamespace('hl-auth-secret');
    for (let i = 0; i < nodeNames.length; i++)
      transports.push(await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log }));
    const docs = [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'auth', namespace: ns },
        data: { '1': key1 },
      },
      ...nodeNames.map((name, i) => ({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          labels: { 'heartline.dev/test-cluster': suffix },
          annotations: {
            [HEARTBEAT_ADDRESS_ANNOTATION]: '127.0.0.1',
            [MEMBER_KEY_ANNOTATION]: publicKeyOf(name),
            [HEARTBEAT_PORT_ANNOTATION]: String(transports[i]!.address().port),
          },
        },
      })),
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: 'web', namespace: ns },
        spec: {
          nodeSelector: { 'heartline.dev/test-cluster': suffix },
          authSecretRef: { name: 'auth', activeKeyId: '1' },
          quorum: 'witness',
        },
      },
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'VirtualIP',
        metadata: { name: 'vip1', namespace: ns },
        spec: { clusterRef: { name: 'web' }, address: '198.18.0.100/24', preferredNodes: nodeNames },
      },
    ];
    await mustKubectl(['apply', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n'));
  });

  afterAll(async () => {
    for (const h of hosts) await h.stop();
    for (const t of transports) await t.close();
    await controller?.stop();
    await reader.close();
    await kubectl(['delete', 'node', ...nodeNames, '--ignore-not-found', '--wait=false']);
    const left = await kubectl(['get', 'virtualip', '-n', ns, '-o', 'name']);
    for (const n of left.stdout.split('\n').filter(Boolean))
      await kubectl([
        'patch',
        '-n',
        ns,
        n,
        '--type=json',
        '-p',
        '[{"op":"remove","path":"/metadata/finalizers"}]',
      ]);
    await deleteNamespace(ns);
  });

  it('AuthSecretInvalid with the key and the fix, a Warning Event, the witness keeps its key, nothing moves; fixed, it clears', async () => {
    const kubeConfig = loadKubeConfig(kubeconfig());
    witnessTransport = await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log });
    controller = new Controller(
      {
        api: new K8sApiSource({ kubeConfig, clock, logger: log }, { identity: 'ctl' }),
        lease: new K8sLeaseLock(
          { kubeConfig, clock },
          { namespace: ns, name: 'heartline-controller', identity: 'ctl', leaseDurationSeconds: 15 },
        ),
        clock,
        log,
        metrics: new ControllerMetrics(),
        transport: witnessTransport,
      },
      { namespace: ns, witness: { address: '127.0.0.1', port: witnessTransport.address().port } },
    );
    controller.start();
    const witness = await until('status.witness', async () => (await clusterStatus()).witness);
    const cluster = (await reader.get('HACluster', { namespace: ns, name: 'web' }))!;
    const cfg = buildClusterConfig({
      cluster,
      vips: await reader.list('VirtualIP', { namespace: ns }),
      resources: [],
      nodes: (await reader.list('Node')).filter((n) => nodeNames.includes(n.metadata.name)),
      secret: await reader.get('Secret', { namespace: ns, name: 'auth' }),
      witness,
    });
    nodeNames.forEach((name, i) => {
      const mine = bound.get(name)!;
      const host = new MemberHost(
        {
          clock,
          transport: transports[i]!,
          log,
          effects: {
            bind: (cmd) => void mine.set(cmd.vip, cmd.epoch),
            renew: () => undefined,
            unbind: (cmd) => void mine.delete(cmd.vip),
          },
        },
        {
          self: name,
          config: cfg,
          incarnation: Math.floor(Date.now() / 1000),
          signingKey: memberKeyOf(name),
        },
      );
      host.start();
      hosts.push(host);
    });
    const held = await until('VIP held', async () => {
      const s = await vipStatus();
      return s.holder ? s : undefined;
    });
    expect(await authCond()).toMatchObject({ status: 'False', reason: 'SecretValid' });

    // The edit that used to stop every agent: a 16-byte key, made active.
    await putSecret({ '1': key1, '2': randomBytes(16).toString('base64') });
    await mustKubectl([
      'patch',
      'hacluster',
      'web',
      '-n',
      ns,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { authSecretRef: { name: 'auth', activeKeyId: '2' } } }),
    ]);
    const bad = await until('AuthSecretInvalid True', async () => {
      const c = await authCond();
      return c?.status === 'True' ? c : undefined;
    });
    expect(bad.reason).toBe('InvalidSecret');
    expect(bad.message).toContain(`Secret ${ns}/auth: data["2"]: key 2 has 16 bytes`);
    expect(bad.message).toContain('openssl rand -base64 32');
    expect(bad.message).toContain('running keys (1, active 1) stay in use');
    const warning = await until('AuthSecretInvalid Event', async () =>
      (await events()).find((e) => e.reason === 'AuthSecretInvalid'),
    );
    expect(warning).toMatchObject({ type: 'Warning', regarding: { kind: 'HACluster', name: 'web' } });

    // Deleted altogether: still the running key, still quorate.
    await mustKubectl(['delete', 'secret', 'auth', '-n', ns]);
    await until('condition names the missing Secret', async () =>
      (await authCond())?.message.includes('Secret "auth" not found'),
    );
    // Several heartbeat rounds and dead times: the witness still answers with the running key.
    await sleep(3000);
    const s = await vipStatus();
    expect({ holder: s.holder, epoch: s.epoch }).toEqual({ holder: held.holder, epoch: held.epoch });
    expect([...bound].filter(([, m]) => m.size > 0).map(([n]) => n)).toEqual([held.holder]);
    expect((await clusterStatus()).quorum?.state).toBe('quorate');

    // Fixed.
    await putSecret({ '1': key1, '2': randomBytes(32).toString('base64') });
    const fixed = await until('AuthSecretInvalid False', async () => {
      const c = await authCond();
      return c?.status === 'False' ? c : undefined;
    });
    expect(fixed).toMatchObject({ reason: 'SecretValid', message: 'keys 1, 2 in use, active 2' });
    await until('AuthSecretValid Event', async () =>
      (await events()).find((e) => e.reason === 'AuthSecretValid' && e.type === 'Normal'),
    );
  });
});
