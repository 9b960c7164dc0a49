/**
 * MemberHost refuses a configuration that cannot run before it changes anything: the member
 * keeps its keys, its life (incarnation) and its VIPs, and no release goes out.
 */
import { KeyringError } from '../../../src/core/wire/index.js';
import { deriveTiming } from '../../../src/core/timing.js';
import { silentLogger } from '../../../src/ops/log.js';
import type { ClusterConfig } from '../../../src/runtime/cluster-config.js';
import { MemberHost, type BindCommand, type UnbindCommand } from '../../../src/runtime/member-host.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { SimNetwork } from '../../fakes/transport.js';
import { memberKeyOf, publicKeyOf } from '../../fixtures/member-keys.js';

const KEY = { id: 1, secret: new Uint8Array(32).fill(1) };

function config(over: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    clusterId: 'lab/web',
    namespace: 'lab',
    name: 'web',
    port: 694,
    members: ['a', 'b', 'c'].map((id, i) => ({
      id,
      address: `198.18.0.${i + 1}`,
      port: 694,
      publicKey: publicKeyOf(id),
    })),
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
    ...over,
  };
}

describe('MemberHost with a configuration that cannot run', () => {
  it('reconfigure throws before any change, in place or across a membership change', async () => {
    const world = new SimWorld();
    const clock = new SimClock({ world });
    const net = new SimNetwork({ clock, faults: { delayMs: 1 } });
    const good = config();
    const commands: Array<BindCommand | UnbindCommand> = [];
    const hosts = good.members.map(
      (m) =>
        new MemberHost(
          {
            clock,
            transport: net.transport(m.address, m.port),
            log: silentLogger(),
            effects: {
              bind: (cmd) => void (m.id === 'a' && commands.push(cmd)),
              renew: () => undefined,
              unbind: (cmd) => void (m.id === 'a' && commands.push(cmd)),
            },
          },
          { self: m.id, config: good, incarnation: 10, signingKey: memberKeyOf(m.id) },
        ),
    );
    hosts.forEach((h) => h.start());
    await world.advance(2000);
    expect(commands.map((c) => c.type)).toEqual(['bind']);
    const a = hosts[0]!;
    const incarnation = a.currentIncarnation;

    const shortKey = { keys: [KEY, { id: 2, secret: new Uint8Array(16) }], activeKeyId: 2 };
    expect(() => a.reconfigure(config(shortKey))).toThrow(KeyringError);
    expect(() => a.reconfigure(config({ activeKeyId: 7 }))).toThrow(KeyringError);
    // A membership change with a bad key: refused before the old life releases anything.
    const fewer = { members: good.members.slice(0, 2) };
    expect(() => a.reconfigure(config({ ...fewer, ...shortKey }))).toThrow(KeyringError);
    expect(a.configuration).toBe(good);
    expect(a.currentIncarnation).toBe(incarnation);
    await world.advance(2000);
    expect(commands.map((c) => c.type)).toEqual(['bind']);
    expect(a.view().holdings.map((h) => h.vip)).toEqual(['lab/vip1']);

    // A MemberHost never starts on such a configuration.
    const fresh = new MemberHost(
      {
        clock,
        transport: net.transport('198.18.0.9', 694),
        log: silentLogger(),
        effects: { bind: () => undefined, renew: () => undefined, unbind: () => undefined },
      },
      { self: 'a', config: config(shortKey), incarnation: 1, signingKey: memberKeyOf('a') },
    );
    expect(() => fresh.start()).toThrow(KeyringError);
    for (const h of hosts) await h.stop();
  });
});

describe('MemberHost on a planned move', () => {
  it('holds every datagram behind a planned unbind, then sends the grant, then the Release, and the successor binds on them', async () => {
    const world = new SimWorld();
    const clock = new SimClock({ world });
    const net = new SimNetwork({ clock, faults: { delayMs: 1 } });
    const good = config({
      vips: [{ ...config().vips[0]!, preferredNodes: ['a', 'b'] }],
    });
    const binds: Array<{ id: string; vip: string }> = [];
    const receivedByB: string[] = [];
    let finishUnbind: (() => void) | undefined;
    const hosts = good.members.map(
      (m) =>
        new MemberHost(
          {
            clock,
            transport: net.transport(m.address, m.port),
            log: silentLogger(),
            effects: {
              bind: (cmd) => void binds.push({ id: m.id, vip: cmd.vip }),
              renew: () => undefined,
              // a's first unbind (the move) finishes when the test says; later ones at once.
              unbind: () =>
                m.id === 'a' && finishUnbind === undefined
                  ? new Promise<void>((resolve) => (finishUnbind = resolve))
                  : Promise.resolve(),
            },
            ...(m.id === 'b' ? { onReceive: (kind: string) => void receivedByB.push(kind) } : {}),
          },
          { self: m.id, config: good, incarnation: 10, signingKey: memberKeyOf(m.id) },
        ),
    );
    hosts.forEach((h) => h.start());
    await world.advance(2000);
    expect(binds).toEqual([{ id: 'a', vip: 'lab/vip1' }]);
    receivedByB.length = 0;
    hosts[0]!.setLocal({ standby: true });
    // The address is not gone yet: neither the Release nor the grant reaches b.
    await world.advance(50);
    expect(receivedByB.filter((k) => k !== 'heartbeat')).toEqual([]);
    expect(finishUnbind).toBeDefined();
    finishUnbind!();
    await world.advance(5);
    expect(receivedByB.filter((k) => k !== 'heartbeat').slice(0, 2)).toEqual(['takeover-ack', 'release']);
    expect(binds.at(-1)).toEqual({ id: 'b', vip: 'lab/vip1' });
    const stopping = hosts.map((h) => h.stop());
    await world.advance(2000);
    await Promise.all(stopping);
  });
});
