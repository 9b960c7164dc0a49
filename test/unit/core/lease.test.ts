import { AckRefusal } from '../../../src/core/messages.js';
import { HolderLeases, quorumOf } from '../../../src/core/lease-holder.js';
import { VoterTable } from '../../../src/core/lease-voter.js';
import { defaultFenceDelayMs, deriveTiming, leaseMargin, PROFILES } from '../../../src/core/timing.js';

const timing = deriveTiming({ intervalMs: 200, deadMs: 1000 });
const L = timing.leaseMs;
const M = timing.marginMs;

describe('timing', () => {
  test('margin covers 2ρL/(1-ρ) plus forward steps', () => {
    expect(leaseMargin(1000, 1e-3, 0)).toBe(Math.ceil(2000 / 999) + 1);
    expect(leaseMargin(1000, 1e-3, 20)).toBeGreaterThanOrEqual(20 + 2);
    expect(timing.leaseMs + timing.marginMs).toBeLessThanOrEqual(timing.deadMs);
  });
  test('the margin counts the fence delay budget: the address is gone before any promise ends', () => {
    expect(leaseMargin(1000, 1e-3, 0, 30)).toBe(Math.ceil(2000 / 999 + 30 * 1.001) + 1);
    for (const [name, p] of Object.entries(PROFILES)) {
      for (const S of [0, 20]) {
        const t = deriveTiming({ ...p, maxForwardStepMs: S });
        expect(t.fenceDelayMs).toBe({ default: 40, fast: 20, tight: 10 }[name]);
        const rho = t.driftRate;
        // Real time, worst case: the holder's grant runs L/(1-ρ) from its send, the address D
        // longer; the voter's promise at least (L + m - S)/(1+ρ) from its receive (after the send).
        const addressGone = t.leaseMs / (1 - rho) + t.fenceDelayMs;
        const promiseEnds = (t.leaseMs + t.marginMs - S) / (1 + rho);
        expect(addressGone).toBeLessThan(promiseEnds);
        // The budget comes out of the lease, not the failover: L + m is half an interval short of deadMs.
        expect(t.leaseMs + t.marginMs).toBe(p.deadMs - p.intervalMs / 2);
      }
    }
  });
  test('every timing the API admits derives with the default fence budget', () => {
    for (let i = 10; i <= 10_000; i = Math.ceil(i * 1.07)) {
      const t = deriveTiming({ intervalMs: i, deadMs: 3 * i });
      expect(t.fenceDelayMs).toBe(defaultFenceDelayMs(i));
      expect(t.leaseMs).toBeGreaterThan(2 * i);
    }
    expect(defaultFenceDelayMs(10_000)).toBe(50);
  });
  test('a fence budget the timing cannot afford is refused, naming the fix', () => {
    expect(() => deriveTiming({ ...PROFILES.fast, fenceDelayMs: 60 })).toThrow(
      /heartbeat\.leaseMs: must exceed 2 \* intervalMs .*fence delay budget 60 ms.*lower fenceDelayMs/,
    );
    expect(() => deriveTiming({ ...PROFILES.fast, fenceDelayMs: -1 })).toThrow(/heartbeat\.fenceDelayMs/);
    expect(deriveTiming({ ...PROFILES.fast, fenceDelayMs: 0 }).leaseMs).toBe(248);
  });
  test('rejects timings that cannot work, naming the field', () => {
    expect(() => deriveTiming({ intervalMs: 200, deadMs: 400 })).toThrow(
      /heartbeat\.deadMs must be at least 3 x heartbeat\.intervalMs/,
    );
    expect(() => deriveTiming({ intervalMs: 200, deadMs: 1000, leaseMs: 300 })).toThrow(/heartbeat\.leaseMs/);
    expect(() => deriveTiming({ intervalMs: 200, deadMs: 1000, warnMs: 1000 })).toThrow(/heartbeat\.warnMs/);
  });
});

describe('VoterTable (promises)', () => {
  const known = (entries: Array<[string, number]>) => ({ version: 1, entries: new Map(entries) });

  test('refuses takeovers during the quiet period after start', () => {
    const v = new VoterTable('m', timing, 0);
    expect(v.onTakeover(timing.quietMs - 1, 'q', 1, 'vip', 1).reason).toBe(AckRefusal.Starting);
    expect(v.onTakeover(timing.quietMs, 'q', 1, 'vip', 1).granted).toBe(true);
  });

  test('a promise to the holder blocks other candidates until receive time + L + margin', () => {
    const v = new VoterTable('m', timing, -10_000);
    expect(v.onHoldings(0, 'p', 1, known([['vip', 3]]))).toEqual([]);
    expect(v.onTakeover(L + M - 1, 'q', 1, 'vip', 4)).toMatchObject({
      granted: false,
      reason: AckRefusal.PromiseActive,
    });
    expect(v.onTakeover(L + M, 'q', 1, 'vip', 4).granted).toBe(true);
  });

  test('a release by the holder voids the promise at once; a third party release does not', () => {
    const v = new VoterTable('m', timing, -10_000);
    v.onHoldings(0, 'p', 1, known([['vip', 3]]));
    v.onRelease(10, 'x', 'vip', 9);
    expect(v.onTakeover(20, 'q', 1, 'vip', 4).reason).toBe(AckRefusal.PromiseActive);
    v.onRelease(30, 'p', 'vip', 3);
    expect(v.onTakeover(40, 'q', 1, 'vip', 4).granted).toBe(true);
  });

  test('a handoff promises the successor the next epoch without naming it holder', () => {
    const v = new VoterTable('m', timing, -10_000);
    v.holdSelf('vip', 3, 1);
    v.releaseSelf(100, 'vip', 3);
    expect(v.handoff(100, 's', 7, 'vip', 4).granted).toBe(true);
    // Spent, no holder: this member does not take the successor for the holder.
    expect(v.holderOf('vip')).toBeNull();
    expect(v.handoff(101, 's', 7, 'vip', 4).reason).toBe(AckRefusal.StaleEpoch);
    // Nobody else gets that epoch, nor a later one while the promise lasts.
    expect(v.onTakeover(101, 'q', 1, 'vip', 4).granted).toBe(false);
    expect(v.onTakeover(102, 'q', 1, 'vip', 5).reason).toBe(AckRefusal.PromiseActive);
    // The successor asking for it (its handoff ack was lost) is acked again, and is then holder.
    expect(v.onTakeover(103, 's', 7, 'vip', 4).granted).toBe(true);
    expect(v.holderOf('vip')).toBe('s');
  });

  test('a handoff nobody took: after its promise, the epoch stays spent and others may go on', () => {
    const v = new VoterTable('m', timing, -10_000);
    v.holdSelf('vip', 3, 1);
    v.releaseSelf(100, 'vip', 3);
    expect(v.handoff(100, 's', 7, 'vip', 4).granted).toBe(true);
    expect(v.onTakeover(100 + L + M, 's', 7, 'vip', 4).reason).toBe(AckRefusal.StaleEpoch);
    expect(v.onTakeover(100 + L + M, 'q', 1, 'vip', 5).granted).toBe(true);
  });

  test('acks one candidate per epoch; re-acks the same one', () => {
    const v = new VoterTable('m', timing, -10_000);
    expect(v.onTakeover(0, 'q', 1, 'vip', 1).granted).toBe(true);
    expect(v.onTakeover(1, 'r', 1, 'vip', 1).reason).toBe(AckRefusal.OtherCandidate);
    expect(v.onTakeover(2, 'q', 1, 'vip', 1).granted).toBe(true);
    expect(v.onTakeover(3, 'r', 1, 'vip', 0).reason).toBe(AckRefusal.StaleEpoch);
    // r at a higher epoch must wait for the promise to q.
    expect(v.onTakeover(4, 'r', 1, 'vip', 2).reason).toBe(AckRefusal.PromiseActive);
  });

  test('lists a conflict for a claim older than what it knows', () => {
    const v = new VoterTable('m', timing, -10_000);
    v.onHoldings(0, 'q', 1, known([['vip', 5]]));
    expect(v.onHoldings(1, 'p', 1, known([['vip', 4]]))).toEqual([
      { member: 'p', vip: 'vip', epoch: 5, holder: 'q' },
    ]);
  });

  test('third-party knowledge never re-acks without checking the promise', () => {
    const v = new VoterTable('m', timing, -10_000);
    v.holdSelf('vip', 4, 1);
    v.learn('vip', 5, 'q'); // ignored while we hold it
    expect(v.onTakeover(0, 'q', 1, 'vip', 5).reason).toBe(AckRefusal.PromiseActive);
  });

  test('a restarted holder (new incarnation) voids promises to its old life', () => {
    const v = new VoterTable('m', timing, -10_000);
    v.onHoldings(0, 'p', 1, known([['vip', 3]]));
    v.onNewLife(5, 'p', 2);
    expect(v.onTakeover(6, 'q', 1, 'vip', 4).granted).toBe(true);
  });
});

describe('HolderLeases (grants)', () => {
  test('grants count from the holder send time and need a quorum for that VIP', () => {
    const q = quorumOf('majority', ['a', 'b', 'c'], null);
    expect(q.size).toBe(2);
    const h = new HolderLeases('a', timing, q);
    const holding = h.add(0, 'vip', 1, new Map());
    expect(h.expiry(holding)).toBe(-Infinity);
    h.recordSend(7, 100);
    const page = h.nextPage();
    expect(page.entries).toEqual([{ vip: 'vip', epoch: 1 }]);
    h.onEcho('b', 7, page.version, new Set());
    expect(h.expiry(holding)).toBe(100 + L);
    // An echo naming a holdings version without the VIP grants nothing for it.
    h.add(0, 'other', 1, new Map());
    h.onEcho('c', 7, page.version, new Set());
    expect(h.expiry(h.holdings.get('other') as never)).toBe(-Infinity);
    // A conflict from the voter revokes its grant.
    h.revoke('b', 'vip');
    expect(h.expiry(holding)).toBe(100 + L); // still c's grant for vip
    h.revoke('c', 'vip');
    expect(h.expiry(holding)).toBe(-Infinity);
  });

  test('witness mode: two members + witness need two of three', () => {
    const q = quorumOf('witness', ['a', 'b'], 'ctl');
    expect(q.voters).toEqual(['a', 'b', 'ctl']);
    expect(q.size).toBe(2);
    expect(quorumOf('majority', ['a', 'b', 'c', 'd'], null).size).toBe(3);
    expect(quorumOf('ignore', ['a', 'b'], null).size).toBe(1);
  });

  test('holdings are paged 32 per heartbeat under one version; a partial round repeats the last page', () => {
    const h = new HolderLeases('a', timing, quorumOf('majority', ['a', 'b', 'c'], null));
    for (let i = 0; i < 40; i++) h.add(0, `ns/vip-${String(i).padStart(2, '0')}`, 1, new Map());
    expect(h.pages()).toBe(2);
    const p0 = h.nextPage();
    expect(h.currentPage().page).toBe(0);
    const p1 = h.nextPage();
    expect(h.currentPage()).toEqual(p1);
    expect([p0.page, p1.page, p0.version === p1.version]).toEqual([0, 1, true]);
    expect(p0.entries.length + p1.entries.length).toBe(40);
  });
});
