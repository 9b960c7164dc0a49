import { Membership } from '../../../src/core/membership.js';
import { deriveTiming } from '../../../src/core/timing.js';

const timing = deriveTiming({ intervalMs: 200, deadMs: 1000, warnMs: 500, initDeadMs: 2000 });

describe('Membership', () => {
  test('a peer never heard is unknown until initDeadMs, then dead', () => {
    const m = new Membership('a', ['a', 'b'], timing, 0);
    expect(m.liveness('b', 1999)).toBe('unknown');
    expect(m.liveness('b', 2000)).toBe('dead');
    expect(m.tick(2000)).toEqual([{ member: 'b', from: 'unknown', to: 'dead', silenceMs: undefined }]);
  });

  test('alive -> warn -> dead by silence, and alive again when heard', () => {
    const m = new Membership('a', ['a', 'b'], timing, 0);
    expect(m.observe(100, 'b', 1, 1)).toBe('new-life');
    expect(m.liveness('b', 599)).toBe('alive');
    expect(m.liveness('b', 600)).toBe('warn');
    expect(m.isAlive('b', 1099)).toBe(true);
    expect(m.liveness('b', 1100)).toBe('dead');
    expect(m.nextChangeAt(700)).toBe(1100);
    m.tick(1100);
    expect(m.observe(1500, 'b', 1, 2)).toBe('current');
    expect(m.liveness('b', 1500)).toBe('alive');
  });

  test('a higher incarnation is a new life; an older one is stale', () => {
    const m = new Membership('a', ['a', 'b'], timing, 0);
    m.observe(0, 'b', 5, 100);
    m.addHoldingsPage('b', { version: 3, page: 0, pages: 1, entries: [{ vip: 'v', epoch: 2 }] });
    expect(m.peer('b')?.holdings?.version).toBe(3);
    expect(m.observe(10, 'b', 6, 1)).toBe('new-life');
    expect(m.peer('b')?.holdings).toBeUndefined();
    expect(m.peer('b')?.maxSeq).toBe(1);
    expect(m.observe(20, 'b', 5, 101)).toBe('stale');
  });

  test('admit: nothing counts before a proof; from the proof on, later seqs of that life count', () => {
    const m = new Membership('a', ['a', 'b'], timing, 0);
    expect(m.admit('b', 5, 10, false)).toBe('unproven');
    expect(m.admit('b', 5, 11, true)).toBe('proof');
    expect(m.admit('b', 5, 11, false)).toBe('fresh');
    expect(m.admit('b', 5, 40, false)).toBe('fresh');
    // Earlier seqs of the proven life may have been recorded before we started.
    expect(m.admit('b', 5, 10, false)).toBe('stale');
    expect(m.admit('b', 5, 10, true)).toBe('stale');
    // An earlier life is stale; a later one must prove itself again.
    expect(m.admit('b', 4, 900, true)).toBe('stale');
    expect(m.admit('b', 6, 1, false)).toBe('unproven');
    expect(m.admit('b', 5, 41, false)).toBe('fresh'); // the proven life still counts meanwhile
    expect(m.admit('b', 6, 2, true)).toBe('proof');
    expect(m.admit('b', 5, 42, false)).toBe('stale');
    expect(m.admit('c', 1, 1, true)).toBeUndefined(); // not a peer
  });

  test('lives wrap at 2^32 (serial arithmetic): the life after 0xffffffff is later', () => {
    const m = new Membership('a', ['a', 'b'], timing, 0);
    expect(m.observe(0, 'b', 0xffffffff, 7)).toBe('new-life');
    expect(m.observe(10, 'b', 1, 1)).toBe('new-life');
    expect(m.observe(20, 'b', 0xffffffff, 8)).toBe('stale');
    expect(m.admit('b', 0xffffffff, 9, true)).toBe('proof');
    expect(m.admit('b', 2, 1, true)).toBe('proof');
    expect(m.admit('b', 0xffffffff, 10, true)).toBe('stale');
  });

  test('holdings are known only once every page of one version arrived', () => {
    const m = new Membership('a', ['a', 'b'], timing, 0);
    m.observe(0, 'b', 1, 1);
    expect(
      m.addHoldingsPage('b', { version: 2, page: 0, pages: 2, entries: [{ vip: 'v1', epoch: 1 }] }),
    ).toBeUndefined();
    // A page of a newer version restarts assembly.
    expect(
      m.addHoldingsPage('b', { version: 3, page: 1, pages: 2, entries: [{ vip: 'v2', epoch: 4 }] }),
    ).toBeUndefined();
    const known = m.addHoldingsPage('b', {
      version: 3,
      page: 0,
      pages: 2,
      entries: [{ vip: 'v1', epoch: 1 }],
    });
    expect(known?.version).toBe(3);
    expect([...(known?.entries ?? [])]).toEqual([
      ['v2', 4],
      ['v1', 1],
    ]);
    // Older versions are ignored.
    expect(m.addHoldingsPage('b', { version: 2, page: 1, pages: 2, entries: [] })).toBeUndefined();
  });

  test('settled once every peer is heard with holdings or dead', () => {
    const m = new Membership('a', ['a', 'b', 'c'], timing, 0);
    m.observe(0, 'b', 1, 1);
    expect(m.settled(10)).toBe(false);
    m.addHoldingsPage('b', { version: 1, page: 0, pages: 1, entries: [] });
    expect(m.settled(10)).toBe(false); // c unknown
    expect(m.settled(1999)).toBe(false); // c still unknown
    expect(m.settled(2000)).toBe(true); // c declared dead at initDeadMs, b dead by silence
  });
});
