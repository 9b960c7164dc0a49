/**
 * One address, one VirtualIP, against the real API server: the controller runs in-process;
 * agents are MemberHosts on real UDP sockets on 127.0.0.1 (nothing in the network changes)
 * with recording effects, rebuilding their configuration from the API every 100 ms the way
 * the agent does (buildClusterConfig over what the API holds).
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
  type ClusterConfig,
} from '../../src/runtime/cluster-config.js';
import { MemberHost } from '../../src/runtime/member-host.js';
import {
  createTestNamespace,
  deleteNamespace,
  kubeconfig,
  kubectl,
  mustKubectl,
  sleep,
  until,
} from './helpers.js';
import { memberKeyOf, publicKeyOf } from '../fixtures/member-keys.js';

jest.setTimeout(120_000);

const log = pino({ level: process.env.HEARTLINE_TEST_LOG ?? 'silent' });
const clock = new SystemClock();

interface Agent {
  name: string;
  transport: UdpTransport;
  host?: MemberHost;
  bound: Map<string, number>;
}

type Cond = { type: string; status: string; reason: string; message: string };

describe('address conflicts (real API server)', () => {
  let ns: string;
  const suffix = randomBytes(3).toString('hex');
  const nodeNames = ['a', 'b', 'c'].map((n) => `hl-addr-${suffix}-${n}`);
  const agents: Agent[] = [];
  let controller: Controller | undefined;
  let ticker: ReturnType<typeof setInterval> | undefined;
  /** Every moment an agent loop saw, as "vips bound per node". */
  const boundLog: Array<Record<string, string[]>> = [];
  const reader = new K8sApiSource(
    { kubeConfig: loadKubeConfig(kubeconfig()), clock, logger: log },
    { identity: 'test-reader' },
  );

  async function config(): Promise<ClusterConfig | undefined> {
    const cluster = await reader.get('HACluster', { namespace: ns, name: 'web' });
    const witness = (cluster?.status as { witness?: { address: string; port: number } } | undefined)?.witness;
    if (!cluster || !witness) return undefined;
    return buildClusterConfig({
      cluster,
      vips: await reader.list('VirtualIP', { namespace: ns }),
      resources: [],
      nodes: (await reader.list('Node')).filter((n) => nodeNames.includes(n.metadata.name)),
      secret: await reader.get('Secret', { namespace: ns, name: 'auth' }),
      witness,
    });
  }

  /** The agents' watch loop: rebuild from the API, start or reconfigure each member. */
  async function agentLoop(): Promise<void> {
    const cfg = await config();
    if (!cfg) return;
    for (const a of agents) {
      if (!a.host) {
        a.host = new MemberHost(
          {
            clock,
            transport: a.transport,
            log: log.child({ agent: a.name }),
            effects: {
              bind: (cmd) => void a.bound.set(cmd.vip, cmd.epoch),
              renew: () => {},
              unbind: (cmd) => void a.bound.delete(cmd.vip),
            },
          },
          {
            self: a.name,
            config: cfg,
            incarnation: Math.floor(Date.now() / 1000),
            signingKey: memberKeyOf(a.name),
          },
        );
        a.host.start();
      } else a.host.reconfigure(cfg);
    }
  }

  const vipStatus = async (name: string) =>
    ((await reader.get('VirtualIP', { namespace: ns, name }))?.status ?? {}) as {
      holder?: string;
      conditions?: Cond[];
    };
  const cond = async (name: string, type: string) =>
    (await vipStatus(name)).conditions?.find((c) => c.type === type);
  const holdersOf = (vip: string) => agents.filter((a) => a.bound.has(`${ns}/${vip}`)).map((a) => a.name);
  const vipDoc = (name: string, address: string, preferred: string) => ({
    apiVersion: 'heartline.dev/v1alpha1',
    kind: 'VirtualIP',
    metadata: { name, namespace: ns },
    spec: { clusterRef: { name: 'web' }, address, preferredNodes: [preferred] },
  });

  beforeAll(async () => {
    ns = await createTestNamespace('hl-address');
    for (const name of nodeNames)
      agents.push({
        name,
        transport: await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log }),
        bound: new Map(),
      });
    const docs = [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'auth', namespace: ns },
        data: { '1': randomBytes(32).toString('base64') },
      },
      ...agents.map((a) => ({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: a.name,
          labels: { 'heartline.dev/test-cluster': suffix },
          annotations: {
            [HEARTBEAT_ADDRESS_ANNOTATION]: '127.0.0.1',
            [MEMBER_KEY_ANNOTATION]: publicKeyOf(a.name),
            [HEARTBEAT_PORT_ANNOTATION]: String(a.transport.address().port),
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
          quorum: 'majority',
        },
      },
      // Named so that name order would pick the other one: age decides.
      vipDoc('zz-older', '198.18.0.100/24', nodeNames[0]!),
    ];
    await mustKubectl(['apply', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n'));
    const kubeConfig = loadKubeConfig(kubeconfig());
    const transport = await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log });
    controller = new Controller(
      {
        api: new K8sApiSource({ kubeConfig, clock, logger: log }, { identity: 'controller' }),
        lease: new K8sLeaseLock(
          { kubeConfig, clock },
          { namespace: ns, name: 'heartline-controller', identity: 'controller', leaseDurationSeconds: 15 },
        ),
        clock,
        log,
        metrics: new ControllerMetrics(),
        transport,
      },
      { namespace: ns, witness: { address: '127.0.0.1', port: transport.address().port } },
    );
    controller.start();
    let busy = false;
    ticker = setInterval(() => {
      if (busy) return;
      busy = true;
      agentLoop()
        .then(() => boundLog.push(Object.fromEntries(agents.map((a) => [a.name, [...a.bound.keys()]]))))
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, 100);
  });

  afterAll(async () => {
    if (ticker) clearInterval(ticker);
    for (const a of agents) {
      await a.host?.stop();
      await a.transport.close();
    }
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

  it('the younger duplicate gets AddressConflict and an Event, is never bound, and takes over once the older is deleted', async () => {
    await until('zz-older held', async () => holdersOf('zz-older').length === 1, 20_000);
    await until('zz-older Ready', async () => (await cond('zz-older', 'Ready'))?.status === 'True');
    await sleep(1100); // creationTimestamp has whole seconds: make the second one younger
    await mustKubectl(
      ['apply', '-f', '-'],
      JSON.stringify(vipDoc('aa-younger', '198.18.0.100/32', nodeNames[1]!)),
    );

    const conflict = await until('AddressConflict on aa-younger', async () => {
      const c = await cond('aa-younger', 'AddressConflict');
      return c?.status === 'True' ? c : undefined;
    });
    expect(conflict.reason).toBe('DuplicateAddress');
    expect(conflict.message).toContain(`VirtualIP ${ns}/zz-older`);
    expect(await cond('aa-younger', 'Ready')).toMatchObject({ status: 'False', reason: 'AddressConflict' });
    expect(await cond('zz-older', 'Ready')).toMatchObject({ status: 'True' });
    expect(await cond('zz-older', 'AddressConflict')).toMatchObject({ status: 'False' });
    const event = await until('AddressConflict Event', async () => {
      const items = (
        JSON.parse(await mustKubectl(['get', 'events.events.k8s.io', '-n', ns, '-o', 'json'])) as {
          items: Array<{ reason: string; type: string; note: string; regarding: { name: string } }>;
        }
      ).items;
      return items.find((e) => e.reason === 'AddressConflict');
    });
    expect(event).toMatchObject({ type: 'Warning', regarding: { name: 'aa-younger' } });
    expect(event.note).toContain(`${ns}/zz-older`);
    await sleep(1500);
    expect(holdersOf('aa-younger')).toEqual([]);

    // The older one goes: the younger becomes eligible, after the older was released.
    await mustKubectl(['delete', 'vip', 'zz-older', '-n', ns, '--wait=false']);
    await until(
      'aa-younger bound',
      async () => holdersOf('aa-younger').length === 1 && holdersOf('zz-older').length === 0,
      20_000,
    );
    await until(
      'AddressConflict cleared',
      async () => (await cond('aa-younger', 'AddressConflict'))?.status === 'False',
    );
    await until('aa-younger Ready', async () => (await cond('aa-younger', 'Ready'))?.status === 'True');
    // At no sampled moment were both names (one address) bound anywhere.
    const both = boundLog.filter((m) => {
      const all = Object.values(m).flat();
      return all.includes(`${ns}/zz-older`) && all.includes(`${ns}/aa-younger`);
    });
    expect(both).toEqual([]);
  });

  it("refuses a VirtualIP on a Node's address, with its own reason", async () => {
    await mustKubectl([
      'patch',
      'node',
      nodeNames[2]!,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: '198.18.0.50' }] } }),
    ]);
    await mustKubectl(
      ['apply', '-f', '-'],
      JSON.stringify(vipDoc('on-node', '198.18.0.50/24', nodeNames[0]!)),
    );
    const c = await until('AddressConflict on on-node', async () => {
      const x = await cond('on-node', 'AddressConflict');
      return x?.status === 'True' ? x : undefined;
    });
    expect(c.reason).toBe('NodeAddress');
    expect(c.message).toContain(`Node ${nodeNames[2]}`);
    await sleep(1000);
    expect(holdersOf('on-node')).toEqual([]);
  });
});
