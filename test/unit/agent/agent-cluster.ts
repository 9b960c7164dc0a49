/**
 * Three agents wired exactly as in production (Agent → MemberHost → core Member, executor,
 * health monitor) on fakes that pass the same contract suites as the real adapters, in one
 * simulated world (shared by agent.test.ts and agent-metrics.test.ts).
 */
import { Agent } from '../../../src/agent/agent.js';
import type { ApiObject } from '../../../src/core/ports.js';
import { silentLogger } from '../../../src/ops/log.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { FakeApiSource } from '../../fakes/k8s.js';
import { FakeNetworkDriver } from '../../fakes/network.js';
import { ScriptedServiceRunner } from '../../fakes/services.js';
import { SimNetwork } from '../../fakes/transport.js';
import { MEMBER_KEY_ANNOTATION } from '../../../src/runtime/cluster-config.js';

export const NS = 'default';
export const VIP = '198.18.0.100/24';
export const KEY = Buffer.alloc(32, 7).toString('base64');

export interface Node {
  name: string;
  ip: string;
  clock: SimClock;
  driver: FakeNetworkDriver;
  runner: ScriptedServiceRunner;
  agent: Agent;
  /** What the kernel "dropped" on this node's heartbeat socket, as its socketDrops reports it. */
  kernel: { drops: number; asked: Array<{ address: string; port: number }> };
}

export function objects(
  api: FakeApiSource,
  names: string[],
  opts: { quorum?: string; healthCheck?: boolean } = {},
): void {
  api.apply('Secret', { metadata: { name: 'auth', namespace: NS }, data: { '1': KEY } } as ApiObject);
  api.apply('HACluster', {
    metadata: { name: 'web', namespace: NS },
    spec: {
      nodeSelector: { 'heartline.dev/cluster': 'web' },
      heartbeat: { intervalMs: 100, deadMs: 300, warnMs: 200, initDeadMs: 1000 },
      transport: { port: 694, mode: 'unicast' },
      authSecretRef: { name: 'auth', activeKeyId: '1' },
      quorum: opts.quorum ?? 'majority',
      autoFailback: false,
    },
  });
  names.forEach((name, i) => nodeObject(api, name, `198.18.0.${11 + i}`));
  api.apply('Resource', {
    metadata: { name: 'web', namespace: NS },
    spec: {
      kind: 'exec',
      exec: { start: ['/etc/heartline/resource.d/web'], stop: ['/etc/heartline/resource.d/web'] },
      startTimeoutMs: 1000,
      stopTimeoutMs: 1000,
      ...(opts.healthCheck
        ? { healthCheck: { tcp: { port: 80 }, intervalMs: 100, timeoutMs: 50, failureThreshold: 2 } }
        : {}),
    },
  });
  api.apply('VirtualIP', {
    metadata: { name: 'web', namespace: NS },
    spec: { clusterRef: { name: 'web' }, address: VIP, preferredNodes: [names[0]], resources: ['web'] },
  });
}

export function nodeObject(
  api: FakeApiSource,
  name: string,
  ip: string,
  annotations: Record<string, string> = {},
): void {
  api.apply('Node', {
    metadata: { name, labels: { 'heartline.dev/cluster': 'web' }, annotations },
    status: { addresses: [{ type: 'InternalIP', address: ip }] },
  } as ApiObject);
}

export function cluster(names = ['n1', 'n2', 'n3'], opts: { healthCheck?: boolean } = {}) {
  const world = new SimWorld();
  const netClock = new SimClock({ world });
  const net = new SimNetwork({ clock: netClock, seed: 3, faults: { delayMs: 1, jitterMs: 1 } });
  const api = new FakeApiSource();
  objects(api, names, opts);
  const nodes: Node[] = names.map((name, i) => {
    // Clocks drift apart (1e-4) and start at different readings.
    const clock = new SimClock({ world, start: 1000 * i, rate: 1 + (i - 1) * 1e-4 });
    const ip = `198.18.0.${11 + i}`;
    const driver = new FakeNetworkDriver(
      { clock },
      { interfaces: [{ name: 'eth0', addresses: [`${ip}/24`] }] },
    );
    const runner = new ScriptedServiceRunner({ clock });
    const kernel: Node['kernel'] = { drops: 0, asked: [] };
    const agent = new Agent(
      {
        clock,
        api,
        driver,
        runner,
        log: silentLogger(),
        openTransport: async (port) => net.transport(ip, port),
        socketDrops: (local) => {
          kernel.asked.push(local);
          return kernel.drops;
        },
        publishMemberKey: (k) => api.annotateNode(name, { [MEMBER_KEY_ANNOTATION]: k }),
      },
      { node: name, namespace: NS, cluster: 'web', incarnation: 1 + i, unhealthyCooldownMs: 5000 },
    );
    return { name, ip, clock, driver, runner, agent, kernel };
  });
  const holders = () => nodes.filter((n) => n.driver.holds(VIP)).map((n) => n.name);
  let maxHolders = 0;
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      await world.advance(5);
      maxHolders = Math.max(maxHolders, holders().length);
    }
  };
  return { world, net, api, nodes, holders, run, maxHolders: () => maxHolders };
}
