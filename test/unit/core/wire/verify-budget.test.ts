import { LIMITS } from '../../../../src/core/messages.js';
import { PROFILES } from '../../../../src/core/timing.js';
import { WireCodec } from '../../../../src/core/wire/codec.js';
import { Keyring } from '../../../../src/core/wire/keyring.js';
import { MemberKeys, formatMemberPublicKey } from '../../../../src/core/wire/member-keys.js';
import {
  DATAGRAMS_PER_INTERVAL,
  TOTAL_SENDERS,
  VerifyBudget,
  verifyBudgetFor,
  type VerifyBudgetInit,
} from '../../../../src/core/wire/verify-budget.js';
import { memberKeyOf, memberKeysFor } from '../../../fixtures/member-keys.js';
import {
  ALICE,
  BOB,
  KEY_A,
  MEMBERS,
  addressOf,
  heartbeat,
  ids,
  keyring,
  resign,
  signing,
  sources,
} from './fixtures.js';

const FAST = verifyBudgetFor(PROFILES.fast.intervalMs);
/** A member that holds the cluster key but not ALICE's member key. */
const FORGER = MEMBERS[5]!;

/** BOB's codec with the budget of the fast profile, on a clock the test moves. */
function receiver(budget: VerifyBudgetInit = FAST, memberKeys?: MemberKeys) {
  const clock = { t: 1000 };
  const codec = new WireCodec({
    ids,
    self: BOB,
    keyring,
    sources,
    ...signing(BOB),
    ...(memberKeys ? { memberKeys } : {}),
    verifyBudget: budget,
    now: () => clock.t,
  });
  return { codec, clock };
}

/** A datagram as `from` with a valid cluster MAC but signed by FORGER: the forgery of a key holder. */
function forged(from: string, incarnation: number, seq: number): Uint8Array {
  const real = new WireCodec({ ids, self: from, keyring, sources, ...signing(from) });
  return resign(real.encode(heartbeat(from, incarnation, seq), BOB), KEY_A, FORGER);
}

describe('verifyBudgetFor', () => {
  it('allows DATAGRAMS_PER_INTERVAL failed checks per interval and sender, TOTAL_SENDERS times that in total', () => {
    expect(DATAGRAMS_PER_INTERVAL).toBe(8);
    expect(TOTAL_SENDERS).toBe(4);
    expect(verifyBudgetFor(PROFILES.fast.intervalMs)).toEqual({
      perSenderPerSecond: 80,
      perSenderBurst: 80,
      totalPerSecond: 320,
      totalBurst: 320,
    });
    expect(verifyBudgetFor(PROFILES.default.intervalMs).perSenderPerSecond).toBe(40);
    // The shortest interval the API admits (10 ms) scales with it.
    expect(verifyBudgetFor(10).perSenderPerSecond).toBe(800);
  });

  it('refuses a budget that is not positive', () => {
    expect(() => verifyBudgetFor(0)).toThrow(RangeError);
    expect(() => new VerifyBudget({ ...FAST, totalBurst: 0 }, 0)).toThrow(/totalBurst/);
  });
});

describe('WireCodec with a verification budget', () => {
  it('never limits what members really send: 63 senders at 12 datagrams per fast-profile interval and one sending every holdings page at once, for 2 s', () => {
    const { codec, clock } = receiver();
    // Successes never spend tokens, so the count of senders and their rate (here above
    // DATAGRAMS_PER_INTERVAL) do not matter: 63 senders of the fixture table stand for the
    // 255 of the largest cluster (LIMITS.maxMembers).
    const senders = MEMBERS.filter((m) => m !== BOB);
    const codecs = new Map(
      senders.map((m) => [m, new WireCodec({ ids, self: m, keyring, sources, ...signing(m) })]),
    );
    const seq = new Map(senders.map((m) => [m, 0]));
    let sent = 0;
    for (let interval = 0; interval < 20; interval++) {
      const perSender = interval === 10 ? LIMITS.maxHoldingsPages : 12;
      for (let k = 0; k < perSender; k++) {
        for (const m of senders.slice(0, interval === 10 ? 1 : senders.length)) {
          const s = seq.get(m)! + 1;
          seq.set(m, s);
          const r = codec.decode(codecs.get(m)!.encode(heartbeat(m, 1, s), BOB), addressOf(m));
          expect(r.ok).toBe(true);
          sent++;
        }
      }
      clock.t += PROFILES.fast.intervalMs;
    }
    expect(codec.counters.accepted).toBe(sent);
    expect(codec.counters.get('rate-limited')).toBe(0);
    expect(LIMITS.maxMembers).toBe(256);
  });

  it("drops a key holder's forgeries of a new life unverified once the sender's budget is spent, and keeps verifying the member's own datagrams", () => {
    const { codec, clock } = receiver();
    const alice = new WireCodec({ ids, self: ALICE, keyring, sources, ...signing(ALICE) });
    let seq = 0;
    const real = () => codec.decode(alice.encode(heartbeat(ALICE, 9, ++seq), BOB), addressOf(ALICE));
    expect(real().ok).toBe(true);
    // 2 s of 1,000 forgeries per second, each claiming a new life of ALICE from her address;
    // her real heartbeats (10 per second) go on among them.
    for (let ms = 0; ms < 2000; ms++) {
      expect(codec.decode(forged(ALICE, 10, ms + 1), addressOf(ALICE)).ok).toBe(false);
      if (ms % 100 === 0) expect(real().ok).toBe(true);
      clock.t += 1;
    }
    const verified = codec.counters.get('bad-signature');
    // The burst, then 80 per second.
    expect(verified).toBeGreaterThanOrEqual(FAST.perSenderBurst + 2 * FAST.perSenderPerSecond - 2);
    expect(verified).toBeLessThanOrEqual(FAST.perSenderBurst + 2 * FAST.perSenderPerSecond + 1);
    expect(codec.counters.get('rate-limited')).toBe(2000 - verified);
    expect(codec.counters.accepted).toBe(21);
  });

  it('spends nothing on datagrams without the cluster key (bad-mac comes first)', () => {
    const { codec } = receiver();
    const stranger = new WireCodec({
      ids,
      self: ALICE,
      keyring: new Keyring([{ id: KEY_A.id, secret: new Uint8Array(32).fill(9) }], KEY_A.id),
      sources,
      ...signing(ALICE),
    });
    for (let i = 1; i <= 1000; i++) {
      expect(codec.decode(stranger.encode(heartbeat(ALICE, 10, i), BOB), addressOf(ALICE))).toMatchObject({
        reason: 'bad-mac',
      });
    }
    for (let i = 1; i <= FAST.perSenderBurst; i++) {
      expect(codec.decode(forged(ALICE, 10, i), addressOf(ALICE))).toMatchObject({ reason: 'bad-signature' });
    }
    expect(codec.counters.get('rate-limited')).toBe(0);
  });

  it('limits forgeries that continue the current life too (a forger that knows the numbers): that lane is spent and the member is dropped with them', () => {
    const { codec } = receiver();
    const alice = new WireCodec({ ids, self: ALICE, keyring, sources, ...signing(ALICE) });
    expect(codec.decode(alice.encode(heartbeat(ALICE, 9, 1), BOB), addressOf(ALICE)).ok).toBe(true);
    for (let s = 2; s < 2 + FAST.perSenderBurst; s++) {
      expect(codec.decode(forged(ALICE, 9, s), addressOf(ALICE))).toMatchObject({ reason: 'bad-signature' });
    }
    expect(codec.decode(forged(ALICE, 9, 500), addressOf(ALICE))).toMatchObject({ reason: 'rate-limited' });
    // The real next heartbeat falls in the spent lane: what the budget costs under such a flood.
    const next = codec.decode(alice.encode(heartbeat(ALICE, 9, 2), BOB), addressOf(ALICE));
    expect(next).toMatchObject({ ok: false, reason: 'rate-limited', sender: ALICE });
    // The new-life lane is separate: a restart of ALICE would still be heard.
    expect(codec.decode(forged(ALICE, 10, 1), addressOf(ALICE))).toMatchObject({ reason: 'bad-signature' });
  });

  it('a sequence number more than one replay window ahead is the new-life lane', () => {
    const { codec } = receiver();
    const alice = new WireCodec({ ids, self: ALICE, keyring, sources, ...signing(ALICE) });
    expect(codec.decode(alice.encode(heartbeat(ALICE, 9, 1), BOB), addressOf(ALICE)).ok).toBe(true);
    for (let i = 0; i < FAST.perSenderBurst; i++)
      codec.decode(forged(ALICE, 9, 1 + 1025 + i), addressOf(ALICE));
    expect(codec.decode(forged(ALICE, 9, 5000), addressOf(ALICE))).toMatchObject({ reason: 'rate-limited' });
    // One window ahead still continues the life.
    expect(codec.decode(forged(ALICE, 9, 1 + 1024), addressOf(ALICE))).toMatchObject({
      reason: 'bad-signature',
    });
    expect(codec.decode(alice.encode(heartbeat(ALICE, 9, 2), BOB), addressOf(ALICE)).ok).toBe(true);
  });

  it('bounds a flood spoofing many senders in total: TOTAL_SENDERS senders worth per lane', () => {
    const { codec, clock } = receiver();
    const spoofed = MEMBERS.filter((m) => m !== BOB && m !== FORGER).slice(0, 10);
    let seq = 0;
    for (let ms = 0; ms < 1000; ms++) {
      for (const m of spoofed) codec.decode(forged(m, 10, ++seq), addressOf(m));
      clock.t += 1;
    }
    const verified = codec.counters.get('bad-signature');
    expect(verified).toBeGreaterThanOrEqual(FAST.totalBurst + FAST.totalPerSecond - 2);
    expect(verified).toBeLessThanOrEqual(FAST.totalBurst + FAST.totalPerSecond + 1);
    expect(codec.counters.get('rate-limited')).toBe(10_000 - verified);
  });

  it('a member whose new key we have not learnt spends its budget, and is heard with its first datagram once we have', () => {
    const others = MEMBERS.filter((m) => m !== ALICE);
    const stale = MemberKeys.fromText([
      ...others.map((m) => [m, formatMemberPublicKey(memberKeyOf(m))] as const),
      [ALICE, formatMemberPublicKey(memberKeyOf(FORGER))],
    ]);
    const { codec, clock } = receiver(FAST, stale);
    const alice = new WireCodec({ ids, self: ALICE, keyring, sources, ...signing(ALICE) });
    let seq = 0;
    // 0.6 s of 500 datagrams per second, all failing: the budget allows burst + 80/s of checks.
    for (let i = 0; i < 300; i++) {
      codec.decode(alice.encode(heartbeat(ALICE, 9, ++seq), BOB), addressOf(ALICE));
      clock.t += 2;
    }
    expect(codec.counters.get('rate-limited')).toBeGreaterThan(0);
    codec.reconfigure(ids, sources, memberKeysFor(MEMBERS));
    clock.t += 1000 / FAST.perSenderPerSecond;
    expect(codec.decode(alice.encode(heartbeat(ALICE, 9, ++seq), BOB), addressOf(ALICE)).ok).toBe(true);
  });

  it('setVerifyBudget keeps an equal budget, replaces another, and removes it', () => {
    const { codec } = receiver({
      perSenderPerSecond: 1,
      perSenderBurst: 1,
      totalPerSecond: 1,
      totalBurst: 1,
    });
    expect(codec.decode(forged(ALICE, 10, 1), addressOf(ALICE))).toMatchObject({ reason: 'bad-signature' });
    codec.setVerifyBudget({ perSenderPerSecond: 1, perSenderBurst: 1, totalPerSecond: 1, totalBurst: 1 });
    expect(codec.decode(forged(ALICE, 10, 2), addressOf(ALICE))).toMatchObject({ reason: 'rate-limited' });
    codec.setVerifyBudget(FAST);
    expect(codec.decode(forged(ALICE, 10, 3), addressOf(ALICE))).toMatchObject({ reason: 'bad-signature' });
    codec.setVerifyBudget(undefined);
    for (let i = 0; i < 200; i++) codec.decode(forged(ALICE, 10, 4 + i), addressOf(ALICE));
    expect(codec.counters.get('rate-limited')).toBe(1);
  });

  it('needs a clock', () => {
    expect(
      () => new WireCodec({ ids, self: BOB, keyring, sources, ...signing(BOB), verifyBudget: FAST }),
    ).toThrow(/clock/);
  });
});
