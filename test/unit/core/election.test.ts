import fc from 'fast-check';
import {
  elect,
  fnv1a,
  loadCap,
  mix32,
  rank,
  rankIndex,
  type ElectionMember,
} from '../../../src/core/election.js';

const m = (id: string, over: Partial<ElectionMember> = {}): ElectionMember => ({
  id,
  alive: true,
  healthy: true,
  standby: false,
  load: 0,
  ...over,
});
const none = { holder: null, epoch: 0 };

describe('elect', () => {
  test('first usable preferred node wins', () => {
    const r = elect({
      spec: { vip: 'ns/a', preferredNodes: ['x', 'y'] },
      members: [m('x', { alive: false }), m('y'), m('z')],
      current: none,
      autoFailback: false,
    });
    expect(r).toEqual({ holder: 'y', reason: 'y elected: preferred #2' });
  });

  test('skips standby, unhealthy and ineligible members', () => {
    const r = elect({
      spec: { vip: 'ns/a', preferredNodes: ['x', 'y', 'z'], eligible: ['x', 'y', 'w'] },
      members: [m('x', { standby: true }), m('y', { healthy: false }), m('z'), m('w')],
      current: none,
      autoFailback: false,
    });
    expect(r.holder).toBe('w');
  });

  test('sticky unless autoFailback', () => {
    const input = {
      spec: { vip: 'ns/a', preferredNodes: ['x'] },
      members: [m('x'), m('y')],
      current: { holder: 'y', epoch: 3 },
    };
    expect(elect({ ...input, autoFailback: false })).toEqual({
      holder: 'y',
      reason: 'y holds it and is healthy (sticky, autoFailback off)',
    });
    expect(elect({ ...input, autoFailback: true })).toEqual({
      holder: 'x',
      reason: 'fail back to preferred x from y (autoFailback)',
    });
  });

  test('a move target ranks first and overrides stickiness and failback while usable', () => {
    const input = {
      spec: { vip: 'ns/a', preferredNodes: ['x', 'y'], moveTo: 'z' },
      members: [m('x'), m('y'), m('z')],
      current: { holder: 'x', epoch: 3 },
    };
    for (const autoFailback of [false, true])
      expect(elect({ ...input, autoFailback })).toEqual({
        holder: 'z',
        reason: 'moved to z from x (heartline.dev/move-to)',
      });
    expect(elect({ ...input, current: none, autoFailback: false })).toEqual({
      holder: 'z',
      reason: 'z elected: move target (heartline.dev/move-to)',
    });
    // The target holds it: it stays.
    expect(elect({ ...input, current: { holder: 'z', epoch: 4 }, autoFailback: true }).holder).toBe('z');
    // Unusable target (standby, dead, not eligible): ignored.
    for (const z of [m('z', { standby: true }), m('z', { alive: false })])
      expect(elect({ ...input, members: [m('x'), m('y'), z], autoFailback: false }).holder).toBe('x');
    expect(
      elect({ ...input, spec: { ...input.spec, eligible: ['x', 'y'] }, autoFailback: false }).holder,
    ).toBe('x');
  });

  test('a dead holder is replaced and the reason says why', () => {
    const input = {
      spec: { vip: 'ns/a', preferredNodes: [] },
      members: [m('x', { alive: false }), m('y', { load: 3 }), m('z', { load: 1 })],
      current: { holder: 'x', epoch: 1 },
      autoFailback: false,
    };
    // Below the bound, load does not matter: the hash of (vip, member) decides.
    const h = (id: string) => mix32(fnv1a(`ns/a\u0000${id}`));
    const byHash = h('y') < h('z') ? 'y' : 'z';
    expect(elect(input)).toEqual({
      holder: byHash,
      reason: `holder x is not alive; ${byHash} elected: hash`,
    });
    // At the bound, the hash winner steps back and the reason names the bound.
    const other = byHash === 'y' ? 'z' : 'y';
    const members = input.members.map((x) => (x.id === byHash ? { ...x, load: 5 } : { ...x, load: 0 }));
    expect(elect({ ...input, members, loadCap: 5 })).toEqual({
      holder: other,
      reason: `holder x is not alive; ${other} elected: hash, 1 member at the load bound (5 VIPs) skipped`,
    });
  });

  test('the load bound is ceil(1.25 V / M), at least 1, and none without VIPs or members', () => {
    expect(loadCap(1000, 100)).toBe(13);
    expect(loadCap(150, 10)).toBe(19);
    expect(loadCap(1, 3)).toBe(1);
    expect(loadCap(0, 3)).toBe(Infinity);
    expect(loadCap(5, 0)).toBe(Infinity);
  });

  test('the bound does not override preference; a preferred member at the bound still wins', () => {
    const r = elect({
      spec: { vip: 'ns/a', preferredNodes: ['x'] },
      members: [m('x', { load: 9 }), m('y')],
      current: none,
      autoFailback: false,
      loadCap: 2,
    });
    expect(r.holder).toBe('x');
  });

  test('the same placement whatever loads below the bound each member sees (views may differ)', () => {
    const members = ['a', 'b', 'c', 'd', 'e'].map((id) => m(id));
    for (let i = 0; i < 50; i++) {
      const spec = { vip: `ns/v${i}`, preferredNodes: [] };
      const quiet = rank(spec, members, 10).map((x) => x.id);
      const busy = rank(
        spec,
        members.map((x, j) => ({ ...x, load: j * 2 })),
        10,
      ).map((x) => x.id);
      expect(busy).toEqual(quiet);
    }
  });

  test('bounded-load placement of 1000 VIPs on 100 members: nobody above the bound, everyone used', () => {
    const ids = Array.from({ length: 100 }, (_, i) => `node-${i}`);
    const load = new Map(ids.map((id) => [id, 0]));
    const cap = loadCap(1000, ids.length);
    for (let i = 0; i < 1000; i++) {
      const r = elect({
        spec: { vip: `ns/vip-${i}`, preferredNodes: [] },
        members: ids.map((id) => m(id, { load: load.get(id) ?? 0 })),
        current: none,
        autoFailback: false,
        loadCap: cap,
      });
      load.set(r.holder as string, (load.get(r.holder as string) ?? 0) + 1);
    }
    expect(Math.max(...load.values())).toBeLessThanOrEqual(cap);
    expect(Math.min(...load.values())).toBeGreaterThan(0);
  });

  test('ties break by hash of (vip, member), the same on every member', () => {
    const members = [m('a'), m('b'), m('c'), m('d')];
    const winners = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const spec = { vip: `ns/v${i}`, preferredNodes: [] };
      const r1 = elect({ spec, members, current: none, autoFailback: false });
      const r2 = elect({ spec, members: [...members].reverse(), current: none, autoFailback: false });
      expect(r2.holder).toBe(r1.holder);
      winners.add(r1.holder as string);
    }
    expect(winners.size).toBeGreaterThan(1); // spreads
    expect(fnv1a('')).toBe(0x811c9dc5);
  });

  test('nobody usable: no holder, with a reason', () => {
    const r = elect({
      spec: { vip: 'ns/a', preferredNodes: [] },
      members: [m('x', { alive: false })],
      current: none,
      autoFailback: false,
    });
    expect(r).toEqual({ holder: null, reason: 'no alive, healthy, eligible member outside standby' });
  });

  test('elect and rankIndex agree with rank() (sort-free equals the sort), on random inputs', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    const memberArb = fc.record({
      alive: fc.boolean(),
      healthy: fc.boolean(),
      standby: fc.boolean(),
      load: fc.integer({ min: 0, max: 6 }),
    });
    fc.assert(
      fc.property(
        fc.array(memberArb, { minLength: 6, maxLength: 6 }),
        fc.subarray(ids),
        fc.option(fc.subarray(ids), { nil: undefined }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 50 }),
        fc.option(fc.constantFrom(...ids), { nil: undefined }),
        (flags, preferredNodes, eligible, cap, v, moveTo) => {
          const members = flags.map((f, i) => m(ids[i]!, f));
          const spec = {
            vip: `ns/v${v}`,
            preferredNodes,
            ...(eligible ? { eligible } : {}),
            ...(moveTo ? { moveTo } : {}),
          };
          const usable = members.filter(
            (x) => x.alive && x.healthy && !x.standby && (!eligible || eligible.includes(x.id)),
          );
          const r = elect({ spec, members, current: none, autoFailback: false, loadCap: cap });
          const ranked = rank(spec, usable, cap);
          expect(r.holder).toBe(ranked[0]?.id ?? null);
          for (const id of ids) {
            expect(rankIndex(spec, members, cap, id)).toBe(ranked.findIndex((x) => x.id === id));
          }
        },
      ),
      { numRuns: 2000, seed: 20261122 },
    );
  });
});
