/**
 * MemberHost applies a member set published at a later generation in place: adding a member
 * and removing one keep the holder's VIP bound (no unbind, no new bind) and its incarnation.
 * Without a generation (labels only) a change is still a new life.
 */
import { deriveTiming } from '../../../src/core/timing.js';
import { silentLogger } from '../../../src/ops/log.js';
import type { ClusterConfig } from '../../../src/runtime/cluster-config.js';
import { MemberHost, type BindCommand, type UnbindCommand } from '../../../src/runtime/member-host.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { SimNetwork } from '../../fakes/transport.js';
import { memberKeyOf, withTestKeys } from '../../fixtures/member-keys.js';

const KEY = { id: 1, secret: new Uint8Array(32).fill(1) };
const ALL = ['a', 'b', 'c', 'd'];

function rawConfig(ids: string[], generation: number): ClusterConfig {
  return {
    clusterId: 'lab/web',
    namespace: 'lab',
    name: 'web',
    port: 694,
    members: ids.map((id) => ({ id, address: `198.18.0.${ALL.indexOf(id) + 1}`, port: 694 })),
    witness: null,
    quorum: 'majority',
    timing: deriveTiming({ intervalMs: 100, deadMs: 300 }),
    autoFailback: false,
    keys: [KEY],
    activeKeyId: 1,
    vips: [
      {
        vip: 'lab/vip1',
        preferredNodes: ['a'],
        eligible: undefined,
        epochFloor: 0,
        spec: {} as never,
        deleting: false,
        resources: [],
      },
    ],
    standby: new Set(),
    problems: [],
    generation,
  };
}

function config(ids: string[], generation: number): ClusterConfig {
  return withTestKeys(rawConfig(ids, generation));
}

function cluster() {
  const world = new SimWorld();
  const clock = new SimClock({ world });
  const net = new SimNetwork({ clock, faults: { delayMs: 1 } });
  const commands: Array<{ node: string; cmd: BindCommand | UnbindCommand }> = [];
  const hosts = new Map<string, MemberHost>();
  const host = (id: string, c: ClusterConfig) => {
    const h = new MemberHost(
      {
        clock,
        transport: net.transport(`198.18.0.${ALL.indexOf(id) + 1}`, 694),
        log: silentLogger(),
        effects: {
          bind: (cmd) => void commands.push({ node: id, cmd }),
          renew: () => undefined,
          unbind: (cmd) => void commands.push({ node: id, cmd }),
        },
      },
      { self: id, config: c, incarnation: 10, signingKey: memberKeyOf(id) },
    );
    hosts.set(id, h);
    h.start();
    return h;
  };
  return { world, commands, hosts, host };
}

describe('MemberHost membership changes', () => {
  it('adds and removes a member in place at later generations: the VIP stays bound', async () => {
    const { world, commands, hosts, host } = cluster();
    for (const id of ['a', 'b', 'c']) host(id, config(['a', 'b', 'c'], 1));
    await world.advance(2000);
    expect(commands.map((c) => `${c.node} ${c.cmd.type}`)).toEqual(['a bind']);
    // d joins (generation 2); the members learn it at different times.
    host('d', config(ALL, 2));
    for (const id of ['c', 'a', 'b']) {
      hosts.get(id)!.reconfigure(config(ALL, 2));
      await world.advance(50);
    }
    await world.advance(2000);
    expect(
      hosts
        .get('a')!
        .view()
        .members.find((m) => m.id === 'd')?.liveness,
    ).toBe('alive');
    // b leaves (generation 3): it stops gracefully; the others apply the set in place.
    await hosts.get('b')!.stop();
    for (const id of ['a', 'c', 'd']) hosts.get(id)!.reconfigure(config(['a', 'c', 'd'], 3));
    await world.advance(2000);
    expect(commands.map((c) => `${c.node} ${c.cmd.type}`)).toEqual(['a bind']);
    expect(hosts.get('a')!.currentIncarnation).toBe(10);
    expect(
      hosts
        .get('a')!
        .view()
        .holdings.map((h) => h.epoch),
    ).toEqual([1]);
    // An older generation (a stale object) changes nothing.
    hosts.get('a')!.reconfigure(config(['a', 'b'], 1));
    await world.advance(1000);
    expect(
      hosts
        .get('a')!
        .view()
        .members.map((m) => m.id),
    ).toEqual(['c', 'd']);
    expect(commands.map((c) => `${c.node} ${c.cmd.type}`)).toEqual(['a bind']);
  });

  it('without a generation a member set change is still a new life', async () => {
    const { world, commands, hosts, host } = cluster();
    for (const id of ['a', 'b', 'c']) host(id, config(['a', 'b', 'c'], 0));
    await world.advance(2000);
    hosts.get('a')!.reconfigure(config(ALL, 0));
    expect(commands.map((c) => `${c.node} ${c.cmd.type}`)).toEqual(['a bind', 'a unbind']);
    expect(hosts.get('a')!.currentIncarnation).toBe(11);
  });
});
