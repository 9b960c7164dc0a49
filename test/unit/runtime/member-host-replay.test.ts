/**
 * Replay after a restart, through the real wire codec and core (docs/adr/0015): three
 * MemberHosts on a simulated network; n1 holds the VIP. 1000 authentic datagrams addressed
 * to the voter n2 are recorded, n2 restarts (new codec: empty replay windows, new member),
 * the holder n1 powers off, and the recording is played back to n2 from n1's and n3's
 * addresses. Before the freshness proof the codec accepted all 1000 and n2 counted them
 * (the dead holder stayed alive there, its promises renewed); now none counts: each is
 * dropped as `not-fresh` (or by the replay window), and n3 or n2 takes the VIP over.
 */
import { randomBytes } from 'node:crypto';
import type { UnsafeOptions } from '../../../src/core/member.js';
import type { Peer } from '../../../src/core/ports.js';
import { deriveTiming, PROFILES } from '../../../src/core/timing.js';
import { silentLogger } from '../../../src/ops/log.js';
import type { ClusterConfig } from '../../../src/runtime/cluster-config.js';
import { MemberHost } from '../../../src/runtime/member-host.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { SimNetwork, type SimTransport } from '../../fakes/transport.js';
import { memberKeyOf, publicKeyOf } from '../../fixtures/member-keys.js';

const VIP = 'lab/web';
const NAMES = ['n1', 'n2', 'n3'];
const ip = (name: string) => `198.18.0.${10 + NAMES.indexOf(name)}`;

function config(): ClusterConfig {
  return {
    clusterId: 'lab/lab',
    namespace: 'lab',
    name: 'lab',
    port: 694,
    members: NAMES.map((id) => ({ id, address: ip(id), port: 694, publicKey: publicKeyOf(id) })),
    witness: null,
    quorum: 'majority',
    timing: deriveTiming(PROFILES.fast),
    autoFailback: false,
    keys: [{ id: 1, secret: new Uint8Array(randomBytes(32)) }],
    activeKeyId: 1,
    vips: [
      {
        vip: VIP,
        preferredNodes: ['n1'],
        spec: {} as ClusterConfig['vips'][number]['spec'],
        deleting: false,
        resources: [],
      },
    ],
    standby: new Set(),
    problems: [],
  };
}

async function scenario(unsafe: UnsafeOptions | undefined) {
  const world = new SimWorld();
  const clock = new SimClock({ world });
  const net = new SimNetwork({ clock, seed: 7, faults: { delayMs: 1, jitterMs: 1 } });
  const cfg = config();
  const bound = new Map<string, Set<string>>(NAMES.map((n) => [n, new Set()]));
  const transports = new Map<string, SimTransport>();
  const start = (name: string, incarnation: number): MemberHost => {
    const transport = net.transport(ip(name), 694);
    transports.set(name, transport);
    const host = new MemberHost(
      {
        clock,
        transport,
        log: silentLogger(),
        effects: {
          bind: (c) => void bound.get(name)!.add(c.vip),
          renew: () => {},
          unbind: (c) => void bound.get(name)!.delete(c.vip),
        },
      },
      { self: name, config: cfg, incarnation, signingKey: memberKeyOf(name), ...(unsafe ? { unsafe } : {}) },
    );
    host.start();
    return host;
  };
  const hosts = new Map(NAMES.map((n, i) => [n, start(n, 100 + i)]));
  await world.advance(2000);
  expect(bound.get('n1')).toEqual(new Set([VIP]));

  // The adversary records what reaches n2 (a second handler on its socket sees every datagram).
  const tape: Array<{ bytes: Uint8Array; from: Peer }> = [];
  transports.get('n2')!.onMessage((bytes, from) => {
    if (tape.length < 1000) tape.push({ bytes, from });
  });
  while (tape.length < 1000) await world.advance(100);

  // n2 restarts: a new life, a new codec with empty replay windows.
  await hosts.get('n2')!.stop();
  await transports.get('n2')!.close();
  const n2 = start('n2', 200);
  await world.advance(1000);
  const before = n2.counters.snapshot();
  const acceptedBefore = n2.counters.accepted;

  // The holder powers off, and the recording is played back to n2, 1000 datagrams in 1.5 s.
  net.partition(['198.18.0.10'], ['198.18.0.11', '198.18.0.12']);
  const deadAt = clock.now();
  const delivered: number[] = [];
  for (let i = 0; i < tape.length; i += 10) {
    for (const d of tape.slice(i, i + 10)) transports.get('n2')!.deliver(d.bytes, d.from);
    delivered.push(n2.counters.accepted);
    await world.advance(15);
  }
  const after = n2.counters.snapshot();
  const delta = (r: keyof typeof after) => after[r] - before[r];
  const n1Seen = n2.view().members.find((m) => m.id === 'n1')!.liveness;
  await world.advance(3000);
  return {
    tape,
    delta,
    acceptedDelta: n2.counters.accepted - acceptedBefore,
    n1Seen,
    takenBy: NAMES.filter((n) => n !== 'n1' && bound.get(n)!.has(VIP)),
    deadFor: clock.now() - deadAt,
    world,
  };
}

describe('MemberHost: a recording played back after a restart', () => {
  it('counts none of 1000 recorded datagrams, and the takeover proceeds', async () => {
    const r = await scenario(undefined);
    expect(r.tape).toHaveLength(1000);
    const replayDrops =
      r.delta('not-fresh') + r.delta('replay') + r.delta('stale-seq') + r.delta('stale-incarnation');
    // Every replayed datagram was dropped; n3's real traffic is all that was accepted.
    expect(replayDrops).toBe(1000);
    expect(r.delta('not-fresh')).toBeGreaterThan(0);
    expect(r.n1Seen).not.toBe('alive');
    expect(r.takenBy).toHaveLength(1);
  }, 30_000);

  it('without the freshness proof (unsafe), the replay keeps the dead holder alive', async () => {
    const r = await scenario({ skipFreshness: true });
    expect(r.delta('not-fresh')).toBe(0);
    // The fresh codec accepts the recording: the attack the proof closes.
    expect(r.acceptedDelta).toBeGreaterThan(900);
    expect(r.n1Seen).toBe('alive');
  }, 30_000);
});
