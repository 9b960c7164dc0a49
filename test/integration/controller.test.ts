/**
 * The controller against the real API server: agents are MemberHosts on real UDP sockets on
 * 127.0.0.1 (one port each, through the heartbeat-port annotation; nothing in the network is
 * changed) with recording Effects; the controller runs in-process with the adapters
 * `heartline controller` ships with: RestApiSource and RestLeaseLock (docs/adr/0038).
 */
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { loadRestConfig } from '../../src/adapters/k8s/kubeconfig.js';
import { RestApiSource } from '../../src/adapters/k8s/rest-api-source.js';
import { RestClient } from '../../src/adapters/k8s/rest-client.js';
import { RestLeaseLock } from '../../src/adapters/k8s/rest-lease-lock.js';
import { UdpTransport } from '../../src/adapters/udp/udp-transport.js';
import { Controller } from '../../src/controller/controller.js';
import { InstrumentedApiSource } from '../../src/controller/instrumented-api.js';
import { ControllerMetrics } from '../../src/controller/metrics.js';
import type { ApiObject } from '../../src/core/ports.js';
import {
  HEARTBEAT_ADDRESS_ANNOTATION,
  MEMBER_KEY_ANNOTATION,
  HEARTBEAT_PORT_ANNOTATION,
  VIP_FINALIZER,
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
  until as untilShared,
} from './helpers.js';
import { memberKeyOf, publicKeyOf } from '../fixtures/member-keys.js';

jest.setTimeout(120_000);

const log = pino({ level: process.env.HEARTLINE_TEST_LOG ?? 'silent' });
const clock = new SystemClock();
/** Set HEARTLINE_DUMP_DIR to keep the VIP YAML, request counts and Events of the run (for docs). */
const dump = async (file: string, text: string) => {
  if (process.env.HEARTLINE_DUMP_DIR) await writeFile(join(process.env.HEARTLINE_DUMP_DIR, file), text);
};

const until = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000) =>
  untilShared(what, fn, timeoutMs, 100);

interface Agent {
  name: string;
  transport: UdpTransport;
  host?: MemberHost;
  bound: Map<string, number>;
}

interface RunningController {
  identity: string;
  controller: Controller;
  api: InstrumentedApiSource;
  port: number;
}

describe('controller (real API server, agents on 127.0.0.1)', () => {
  let ns: string;
  const suffix = randomBytes(3).toString('hex');
  const nodeNames = ['a', 'b', 'c'].map((n) => `hl-ctl-${suffix}-${n}`);
  const agents: Agent[] = [];
  const controllers: RunningController[] = [];
  const reader = new K8sApiSource(
    { kubeConfig: loadKubeConfig(kubeconfig()), clock, logger: log },
    { identity: 'test-reader' },
  );

  async function startController(identity: string): Promise<RunningController> {
    const config = await loadRestConfig({ path: kubeconfig() });
    const transport = await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log });
    const api = new InstrumentedApiSource(new RestApiSource({ config, clock, logger: log }, { identity }));
    const lease = new RestLeaseLock(
      { client: new RestClient(config), clock },
      { namespace: ns, name: 'heartline-controller', identity, leaseDurationSeconds: 15 },
    );
    const controller = new Controller(
      { api, lease, clock, log: log.child({ identity }), metrics: new ControllerMetrics(), transport },
      { namespace: ns, witness: { address: '127.0.0.1', port: transport.address().port } },
    );
    controller.start();
    const rc = { identity, controller, api, port: transport.address().port };
    controllers.push(rc);
    return rc;
  }

  async function config(): Promise<ClusterConfig> {
    const cluster = (await reader.get('HACluster', { namespace: ns, name: 'web' }))!;
    return buildClusterConfig({
      cluster,
      vips: await reader.list('VirtualIP', { namespace: ns }),
      resources: [],
      nodes: (await reader.list('Node')).filter((n) => nodeNames.includes(n.metadata.name)),
      secret: await reader.get('Secret', { namespace: ns, name: 'auth' }),
      witness:
        (cluster.status as { witness?: { address: string; port: number } } | undefined)?.witness ?? null,
    });
  }

  function startAgent(a: Agent, cfg: ClusterConfig): void {
    a.host = new MemberHost(
      {
        clock,
        transport: a.transport,
        log: log.child({ agent: a.name }),
        effects: {
          bind: (cmd) => {
            a.bound.set(cmd.vip, cmd.epoch);
          },
          renew: () => {},
          unbind: (cmd) => {
            a.bound.delete(cmd.vip);
          },
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
  }

  async function vip(name = 'vip1'): Promise<ApiObject | undefined> {
    return reader.get('VirtualIP', { namespace: ns, name });
  }
  const vipStatus = async (name = 'vip1') => ((await vip(name))?.status ?? {}) as Record<string, unknown>;

  beforeAll(async () => {
    ns = await createTestNamespace('hl-controller');
    for (const name of nodeNames) {
      agents.push({
        name,
        transport: await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log }),
        bound: new Map(),
      });
    }
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
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'VirtualIP',
        metadata: { name: 'vip1', namespace: ns },
        spec: {
          clusterRef: { name: 'web' },
          address: '198.18.0.100/24',
          preferredNodes: [nodeNames[0], nodeNames[1]],
        },
      },
    ];
    await mustKubectl(['apply', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n'));
  });

  afterAll(async () => {
    for (const a of agents) {
      await a.host?.stop();
      await a.transport.close();
    }
    for (const c of controllers) await c.controller.stop();
    await reader.close();
    await kubectl(['delete', 'node', ...nodeNames, '--ignore-not-found', '--wait=false']);
    // Let the namespace go even if a finalizer is left (nothing else would remove it).
    const left = await kubectl(['get', 'virtualip', '-n', ns, '-o', 'name']);
    for (const n of left.stdout.split('\n').filter(Boolean)) {
      await kubectl([
        'patch',
        '-n',
        ns,
        n,
        '--type=json',
        '-p',
        '[{"op":"remove","path":"/metadata/finalizers"}]',
      ]);
    }
    await deleteNamespace(ns);
  });

  it('reports holders, failovers and releases; writes nothing at steady state; hands leadership over', async () => {
    const first = await startController('controller-1');
    await until('controller-1 to lead', async () => first.controller.isLeader);
    const second = await startController('controller-2');

    // The leader publishes its witness address; agents read it and start.
    const witness = await until('status.witness', async () => {
      const c = await reader.get('HACluster', { namespace: ns, name: 'web' });
      return (c?.status as { witness?: { port: number } } | undefined)?.witness;
    });
    expect(witness.port).toBe(first.port);
    const cfg = await config();
    expect(cfg.members.map((m) => m.port)).toEqual(agents.map((a) => a.transport.address().port));
    for (const a of agents) startAgent(a, cfg);

    // Holder, epoch, conditions, Event.
    const bound = await until('VIP status holder', async () => {
      const s = await vipStatus();
      return s.holder ? s : undefined;
    });
    expect(bound.holder).toBe(nodeNames[0]);
    expect(bound.epoch).toBe(1);
    expect(bound.phase).toBe('Bound');
    expect((await vip())!.metadata.finalizers).toContain(VIP_FINALIZER);
    const conds = bound.conditions as Array<{ type: string; status: string; reason: string }>;
    expect(conds.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'True'],
      ['Bound', 'True'],
      ['QuorumLost', 'False'],
      ['Degraded', 'False'],
      ['AddressConflict', 'False'],
    ]);
    const events = async () =>
      (
        JSON.parse(await mustKubectl(['get', 'events.events.k8s.io', '-n', ns, '-o', 'json'])) as {
          items: Array<{ reason: string; type: string; note: string; regarding: { kind: string } }>;
        }
      ).items;
    await until('Bound event', async () => (await events()).find((e) => e.reason === 'Bound'));

    // Steady state: no request through the controller's ApiSource (the Lease renewals go through the LeaseLock).
    await sleep(1500);
    const before = first.api.snapshot();
    await sleep(4000);
    const steady = first.api.snapshot();
    expect(steady).toEqual(before);
    expect(
      second.api.total('patch-status') + second.api.total('add-finalizer') + second.api.total('create-event'),
    ).toBe(0);
    await dump(
      'controller-requests.json',
      JSON.stringify({ first: steady, second: second.api.snapshot() }, null, 2),
    );

    // The holder crashes (socket closed first, so no release goes out).
    const holder = agents[0]!;
    await holder.transport.close();
    await holder.host?.stop();
    holder.host = undefined;
    const failedOver = await until('failover in status', async () => {
      const s = await vipStatus();
      return s.holder === nodeNames[1] ? s : undefined;
    });
    expect(failedOver.epoch).toBe(2);
    expect(failedOver.failoverCount).toBe(1);
    expect(failedOver.lastFailover).toMatchObject({
      from: nodeNames[0],
      to: nodeNames[1],
      reason: 'HolderDead',
    });
    const failoverEvent = await until('Failover event', async () =>
      (await events()).find((e) => e.reason === 'Failover'),
    );
    expect(failoverEvent.type).toBe('Warning');
    // Quiet again once the move is recorded.
    await sleep(1500);
    const settled = first.api.snapshot();
    await sleep(3000);
    expect(first.api.snapshot()).toEqual(settled);
    const yaml = await mustKubectl(['get', 'vip', 'vip1', '-n', ns, '-o', 'yaml']);
    await dump('controller-vip.yaml', yaml);

    // Leader handover: stopping the leader releases the Lease; the standby takes over at its next attempt.
    const stoppedAt = Date.now();
    await first.controller.stop();
    await until('controller-2 to lead', async () => second.controller.isLeader, 10_000);
    const handoverMs = Date.now() - stoppedAt;
    expect(handoverMs).toBeLessThan(5000);
    await until('witness moved to controller-2', async () => {
      const c = await reader.get('HACluster', { namespace: ns, name: 'web' });
      return (c?.status as { witness?: { port: number } } | undefined)?.witness?.port === second.port;
    });
    const afterHandover = await config();
    for (const a of agents) a.host?.reconfigure(afterHandover);

    // Deleting the VIP: the finalizer stays until no member holds it.
    await mustKubectl(['delete', 'vip', 'vip1', '-n', ns, '--wait=false']);
    await sleep(500);
    expect(await vip()).toBeDefined();
    const deleting = await config();
    for (const a of agents) a.host?.reconfigure(deleting);
    await until('VIP gone', async () => (await vip()) === undefined, 10_000);
    expect(agents.filter((a) => a.bound.size > 0)).toEqual([]);
    await until('Released event', async () =>
      (await events()).find((e) => e.reason === 'Released' && e.note.includes('finalizer')),
    );
    await dump(
      'controller-events.txt',
      (await events()).map((e) => `${e.type} ${e.reason} ${e.regarding.kind}: ${e.note}`).join('\n'),
    );
  });
});
