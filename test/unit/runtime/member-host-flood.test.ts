/**
 * MemberHost with the verification budget (docs/adr/0026), on the simulated clock and
 * network: someone with the cluster key floods two members with the holder's forged
 * heartbeats (a new life, from the holder's address). Nothing moves, the holder's own
 * heartbeats are still accepted, the forgeries are counted (`rate-limited` once the budget is
 * spent), and the drop log writes a bounded number of lines. Without the budget every
 * forgery costs a verification.
 */
import { pino } from 'pino';
import { deriveTiming } from '../../../src/core/timing.js';
import type { Heartbeat } from '../../../src/core/messages.js';
import {
  IdTable,
  Keyring,
  MemberKeys,
  SourceBinding,
  WireCodec,
  verifyBudgetFor,
} from '../../../src/core/wire/index.js';
import type { ClusterConfig } from '../../../src/runtime/cluster-config.js';
import { MemberHost, type BindCommand, type UnbindCommand } from '../../../src/runtime/member-host.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { SimNetwork } from '../../fakes/transport.js';
import { memberKeyOf, publicKeyOf } from '../../fixtures/member-keys.js';

const KEY = { id: 1, secret: new Uint8Array(32).fill(1) };
const TIMING = deriveTiming({ intervalMs: 100, deadMs: 300 });
const BUDGET = verifyBudgetFor(TIMING.intervalMs);

const config: ClusterConfig = {
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
  timing: TIMING,
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
};

function forgedHeartbeat(incarnation: number, seq: number): Heartbeat {
  return {
    kind: 'heartbeat',
    clusterId: config.clusterId,
    from: 'a',
    incarnation,
    seq,
    standby: false,
    witness: false,
    unhealthy: [],
    holdings: { version: 1, page: 0, pages: 1, entries: [{ vip: 'lab/vip1', epoch: 1 }] },
    releases: [],
    echoes: [],
    conflicts: [],
  };
}

async function run(opts: { verifyBudget: boolean; perMs: number; ms: number }) {
  const world = new SimWorld();
  const clock = new SimClock({ world });
  const net = new SimNetwork({ clock, faults: { delayMs: 1 } });
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  const commands: Array<(BindCommand | UnbindCommand) & { self: string }> = [];
  const hosts = config.members.map(
    (m) =>
      new MemberHost(
        {
          clock,
          transport: net.transport(m.address, m.port),
          log: m.id === 'b' ? log : pino({ level: 'silent' }),
          effects: {
            bind: (cmd) => void commands.push({ ...cmd, self: m.id }),
            renew: () => undefined,
            unbind: (cmd) => void commands.push({ ...cmd, self: m.id }),
          },
        },
        {
          self: m.id,
          config,
          incarnation: 10,
          signingKey: memberKeyOf(m.id),
          ...(opts.verifyBudget ? {} : { verifyBudget: false }),
        },
      ),
  );
  hosts.forEach((h) => h.start());
  await world.advance(2000);
  expect(commands.map((c) => `${c.type} ${c.self}`)).toEqual(['bind a']);
  const [a, b, c] = hosts as [MemberHost, MemberHost, MemberHost];
  // The forger: the cluster key, a member key of its own, the holder's next life.
  const forger = new WireCodec({
    ids: new IdTable({ clusterId: config.clusterId, members: ['a', 'b', 'c'], vips: ['lab/vip1'] }),
    self: 'a',
    keyring: new Keyring([KEY], 1),
    sources: new SourceBinding([]),
    signingKey: memberKeyOf('forger'),
    memberKeys: new MemberKeys([]),
  });
  const forged = Array.from({ length: 16 }, (_, i) =>
    forger.encode(forgedHeartbeat(a.currentIncarnation + 1, i + 1)),
  );
  const acceptedBefore = b.counters.accepted;
  let sent = 0;
  for (let ms = 0; ms < opts.ms; ms++) {
    for (let k = 0; k < opts.perMs; k++) {
      const d = forged[sent % forged.length]!;
      net.route({ address: '198.18.0.1', port: 694 }, { address: '198.18.0.2', port: 694 }, d);
      net.route({ address: '198.18.0.1', port: 694 }, { address: '198.18.0.3', port: 694 }, d);
      sent++;
    }
    await world.advance(1);
  }
  await world.advance(500);
  return { commands, b, c, sent, acceptedDuring: b.counters.accepted - acceptedBefore, lines, hosts };
}

describe('MemberHost under a flood of forged datagrams', () => {
  it('with the budget: nothing moves, the holder is still heard, forgeries counted as rate-limited beyond the budget, the log bounded', async () => {
    const r = await run({ verifyBudget: true, perMs: 5, ms: 3000 });
    expect(r.commands.map((c) => `${c.type} ${c.self}`)).toEqual(['bind a']);
    // a and c each heartbeat b about 10 times a second (prompt echoes add some): all accepted.
    expect(r.acceptedDuring).toBeGreaterThan(2 * 10 * 3);
    for (const h of [r.b, r.c]) {
      const verified = h.counters.get('bad-signature');
      expect(verified).toBeLessThanOrEqual(BUDGET.perSenderBurst + BUDGET.perSenderPerSecond * 3.6);
      expect(verified + h.counters.get('rate-limited')).toBe(r.sent);
    }
    const dropLines = r.lines.filter((l) => l.msg === 'datagram dropped');
    expect(dropLines.filter((l) => l.reason === 'rate-limited')).toHaveLength(10);
    expect(dropLines.filter((l) => l.reason === 'bad-signature')).toHaveLength(10);
    r.hosts.forEach((h) => void h.stop());
  });

  it('without it: every forgery is verified (bad-signature)', async () => {
    const r = await run({ verifyBudget: false, perMs: 1, ms: 1000 });
    expect(r.commands.map((c) => `${c.type} ${c.self}`)).toEqual(['bind a']);
    expect(r.b.counters.get('bad-signature')).toBe(r.sent);
    expect(r.b.counters.get('rate-limited')).toBe(0);
    r.hosts.forEach((h) => void h.stop());
  });
});
