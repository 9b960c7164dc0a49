/**
 * Redundant heartbeat links, with three agents wired as in production on fakes: every node
 * is on a data network (198.18.0.0/24, eth0) and a heartbeat network (198.19.0.0/24, eth1).
 * The HACluster sends unicast on the data network and multicast on eth1 (ha.cf `ucast eth0`
 * + `mcast eth1`). Cutting either network around the holder changes nothing; cutting both
 * fails over as usual. No two holders at any 5 ms step.
 */
import { describe, expect, it } from '@jest/globals';
import { Agent } from '../../../src/agent/agent.js';
import type { ApiObject } from '../../../src/core/ports.js';
import { silentLogger } from '../../../src/ops/log.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { FakeApiSource } from '../../fakes/k8s.js';
import { FakeNetworkDriver } from '../../fakes/network.js';
import { ScriptedServiceRunner } from '../../fakes/services.js';
import { SimNetwork } from '../../fakes/transport.js';
import { MEMBER_KEY_ANNOTATION } from '../../../src/runtime/cluster-config.js';

const NS = 'default';
const VIP = '198.18.0.100/24';
const GROUP = '239.192.0.94';
const NAMES = ['n1', 'n2', 'n3'];
const dataIp = (i: number) => `198.18.0.${11 + i}`;
const hbIp = (i: number) => `198.19.0.${11 + i}`;

function cluster(transport: Record<string, unknown>) {
  const world = new SimWorld();
  const net = new SimNetwork({
    clock: new SimClock({ world }),
    seed: 5,
    faults: { delayMs: 1, jitterMs: 1 },
  });
  const api = new FakeApiSource();
  api.apply('Secret', {
    metadata: { name: 'auth', namespace: NS },
    data: { '1': Buffer.alloc(32, 9).toString('base64') },
  } as ApiObject);
  api.apply('HACluster', {
    metadata: { name: 'web', namespace: NS },
    spec: {
      nodeSelector: { 'heartline.dev/cluster': 'web' },
      heartbeat: { intervalMs: 100, deadMs: 300, warnMs: 200, initDeadMs: 1000 },
      transport,
      authSecretRef: { name: 'auth', activeKeyId: '1' },
    },
  });
  api.apply('VirtualIP', {
    metadata: { name: 'web', namespace: NS },
    spec: { clusterRef: { name: 'web' }, address: VIP, preferredNodes: ['n1'] },
  });
  const nodes = NAMES.map((name, i) => {
    // The heartbeat network's address is on the Node (annotation), the data one is the InternalIP.
    api.apply('Node', {
      metadata: {
        name,
        labels: { 'heartline.dev/cluster': 'web' },
        annotations: { 'heartline.dev/heartbeat-address': hbIp(i) },
      },
      status: { addresses: [{ type: 'InternalIP', address: dataIp(i) }] },
    } as ApiObject);
    const clock = new SimClock({ world, start: 700 * i });
    const driver = new FakeNetworkDriver(
      { clock },
      {
        interfaces: [
          { name: 'eth0', addresses: [`${dataIp(i)}/24`] },
          { name: 'eth1', addresses: [`${hbIp(i)}/24`] },
        ],
      },
    );
    const agent = new Agent(
      {
        clock,
        api,
        driver,
        runner: new ScriptedServiceRunner({ clock }),
        log: silentLogger(),
        // One socket on every address of the node (eth0, eth1), as on 0.0.0.0.
        openTransport: async (port) => net.transport([dataIp(i), hbIp(i)], port),
        publishMemberKey: (k) => api.annotateNode(name, { [MEMBER_KEY_ANNOTATION]: k }),
      },
      { node: name, namespace: NS, cluster: 'web', incarnation: 1 + i },
    );
    return { name, data: dataIp(i), hb: hbIp(i), driver, agent };
  });
  const holders = () => nodes.filter((n) => n.driver.holds(VIP)).map((n) => n.name);
  const seen = new Set<string>();
  /** How n2 and n3 saw n1 (alive, warn, dead) at each step. */
  const n1Seen = new Set<string>();
  let maxHolders = 0;
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      await world.advance(5);
      const h = holders();
      maxHolders = Math.max(maxHolders, h.length);
      seen.add(h.join(',') || '-');
      for (const n of nodes.slice(1)) {
        const l = n.agent.member?.view().members.find((m) => m.id === 'n1')?.liveness;
        if (l) n1Seen.add(l);
      }
    }
  };
  /** Cuts one network between n1 and the others, both ways. */
  const cut = (net2: 'data' | 'hb') => net.partition([nodes[0]![net2]], [nodes[1]![net2], nodes[2]![net2]]);
  const counters = (i: number) => nodes[i]!.agent.member!.counters;
  return { world, net, nodes, holders, run, cut, seen, n1Seen, counters, maxHolders: () => maxHolders };
}

const LINKS = {
  links: [
    { mode: 'unicast', network: '198.18.0.0/24' },
    { mode: 'multicast', interface: 'eth1', group: GROUP },
  ],
};

describe('Agent with redundant links (unicast on eth0 + multicast on eth1)', () => {
  it('hears every peer on both links: the second copy of each datagram is a counted replay, nothing else drops', async () => {
    const c = cluster(LINKS);
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    for (let i = 0; i < 3; i++) {
      const k = c.counters(i);
      expect(k.accepted).toBeGreaterThan(20);
      // Both links deliver: roughly one duplicate per accepted datagram.
      expect(k.get('replay')).toBeGreaterThan(k.accepted / 2);
      // Multicast carries the round's heartbeats to the other peer too (addressed to it).
      expect(k.get('wrong-destination')).toBeGreaterThan(0);
      for (const reason of ['source-mismatch', 'bad-mac', 'internal-error', 'unknown-sender'] as const) {
        expect(k.get(reason)).toBe(0);
      }
    }
  });

  it.each<[string, 'data' | 'hb']>([
    ['data network (unicast)', 'data'],
    ['heartbeat network (multicast)', 'hb'],
  ])('cutting the holder off on the %s alone moves nothing', async (_what, network) => {
    const c = cluster(LINKS);
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    c.seen.clear();
    c.n1Seen.clear();
    const removesBefore = c.nodes[0]!.driver.calls.filter((x) => x.op === 'remove').length;
    c.cut(network);
    await c.run(3000);
    expect([...c.seen]).toEqual(['n1']);
    expect(c.nodes[0]!.driver.calls.filter((x) => x.op === 'remove').length).toBe(removesBefore);
    // Its peers never saw it late, let alone dead.
    expect([...c.n1Seen]).toEqual(['alive']);
    expect(c.maxHolders()).toBe(1);
  });

  it('cutting the holder off on both networks fails over as usual, never two holders', async () => {
    const c = cluster(LINKS);
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    c.cut('data');
    c.cut('hb');
    await c.run(3000);
    expect(c.holders()).toHaveLength(1);
    expect(c.holders()[0]).not.toBe('n1');
    expect(c.maxHolders()).toBe(1);
  });

  it('two unicast links (data network and heartbeat network): either one keeps the holder alive', async () => {
    const c = cluster({
      links: [
        { mode: 'unicast', network: '198.18.0.0/24' },
        { mode: 'unicast', network: '198.19.0.0/24' },
      ],
    });
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    c.seen.clear();
    c.n1Seen.clear();
    c.cut('hb');
    await c.run(2000);
    c.net.heal();
    c.cut('data');
    await c.run(2000);
    expect([...c.seen]).toEqual(['n1']);
    expect([...c.n1Seen]).toEqual(['alive']);
    c.cut('hb');
    await c.run(3000);
    expect(c.holders()).toHaveLength(1);
    expect(c.holders()[0]).not.toBe('n1');
    expect(c.maxHolders()).toBe(1);
  });

  it('multicast alone (the one-link form): members hear each other on the group only', async () => {
    const c = cluster({ mode: 'multicast', interface: 'eth1', group: GROUP });
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    expect(c.counters(1).get('replay')).toBe(0); // one link: no duplicates
    c.seen.clear();
    c.cut('data');
    await c.run(2000);
    expect([...c.seen]).toEqual(['n1']);
    c.cut('hb');
    await c.run(3000);
    expect(c.holders()).toHaveLength(1);
    expect(c.holders()[0]).not.toBe('n1');
    expect(c.maxHolders()).toBe(1);
  });

  it('one link (the default) still fails over when the holder is cut off on it', async () => {
    const c = cluster({ port: 694 });
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    // The default link uses the heartbeat address (the annotation): the hb network.
    c.cut('hb');
    await c.run(3000);
    expect(c.holders()).toHaveLength(1);
    expect(c.holders()[0]).not.toBe('n1');
    expect(c.maxHolders()).toBe(1);
  });
});
