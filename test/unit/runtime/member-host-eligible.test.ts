/**
 * externalTrafficPolicy Local (docs/adr/0029): the Service reconciler narrows a VirtualIP's
 * eligible nodes to those with a ready endpoint. When that list changes, every member gets the
 * new configuration; the holder, no longer eligible, hands the VIP over by planned release to
 * an eligible member, and at no instant do two members have it bound.
 */
import { deriveTiming } from '../../../src/core/timing.js';
import { silentLogger } from '../../../src/ops/log.js';
import type { ClusterConfig } from '../../../src/runtime/cluster-config.js';
import { MemberHost } from '../../../src/runtime/member-host.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { SimNetwork } from '../../fakes/transport.js';
import { memberKeyOf, publicKeyOf } from '../../fixtures/member-keys.js';

const KEY = { id: 1, secret: new Uint8Array(32).fill(1) };

function config(eligible: string[] | undefined): ClusterConfig {
  return {
    clusterId: 'lab/web',
    namespace: 'lab',
    name: 'web',
    port: 694,
    members: ['n1', 'n2', 'n3'].map((id, i) => ({
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
        vip: 'lab/lb-198-18-20-1',
        preferredNodes: [],
        eligible,
        epochFloor: 0,
        spec: {} as never,
        deleting: false,
        resources: [],
      },
    ],
    standby: new Set(),
    problems: [],
  };
}

describe('MemberHost: eligible nodes that change (externalTrafficPolicy Local)', () => {
  it('the address follows the endpoint by planned release, never on two members', async () => {
    const world = new SimWorld();
    const clock = new SimClock({ world });
    const net = new SimNetwork({ clock, faults: { delayMs: 1 } });
    const start = config(['n2']);
    const bound = new Set<string>();
    let maxBound = 0;
    const unbinds: Array<{ node: string; reason: string }> = [];
    const hosts = start.members.map(
      (m) =>
        new MemberHost(
          {
            clock,
            transport: net.transport(m.address, m.port),
            log: silentLogger(),
            effects: {
              bind: () => {
                bound.add(m.id);
                maxBound = Math.max(maxBound, bound.size);
              },
              renew: () => undefined,
              unbind: (cmd) => {
                bound.delete(m.id);
                unbinds.push({ node: m.id, reason: cmd.reason });
              },
            },
          },
          { self: m.id, config: start, incarnation: 10, signingKey: memberKeyOf(m.id) },
        ),
    );
    hosts.forEach((h) => h.start());
    await world.advance(2000);
    expect([...bound]).toEqual(['n2']);

    // The endpoint moves to n3: every agent gets the new list (in any order).
    const moved = config(['n3']);
    for (const h of [hosts[2]!, hosts[0]!, hosts[1]!]) {
      h.reconfigure(moved);
      await world.advance(5);
    }
    // Well below deadMs + lease: a planned move, not a failover.
    await world.advance(250);
    expect([...bound]).toEqual(['n3']);
    expect(unbinds).toEqual([{ node: 'n2', reason: expect.not.stringMatching(/lease|expired/) }]);
    expect(maxBound).toBe(1);

    // No endpoint anywhere: nobody else may take it, and the holder keeps it (as for a
    // nodeSelector nobody matches); the Service's AddressHeld condition says NoEligibleNode.
    for (const h of hosts) h.reconfigure(config([]));
    await world.advance(1000);
    expect([...bound]).toEqual(['n3']);
    // An endpoint comes back on n1: planned move there.
    for (const h of hosts) h.reconfigure(config(['n1']));
    await world.advance(250);
    expect([...bound]).toEqual(['n1']);
    expect(unbinds.map((u) => u.node)).toEqual(['n2', 'n3']);
    expect(maxBound).toBe(1);
    for (const h of hosts) await h.stop();
  });
});
