import { elect, fnv1a, type ElectionMember } from '../../../src/core/election.js';

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

  test('a dead holder is replaced and the reason says why', () => {
    const r = elect({
      spec: { vip: 'ns/a', preferredNodes: [] },
      members: [m('x', { alive: false }), m('y', { load: 3 }), m('z', { load: 1 })],
      current: { holder: 'x', epoch: 1 },
      autoFailback: false,
    });
    expect(r).toEqual({ holder: 'z', reason: 'holder x is not alive; z elected: least loaded (1 VIPs)' });
  });

  test('assignment from the controller has priority when usable', () => {
    const base = {
      spec: { vip: 'ns/a', preferredNodes: ['x'] },
      current: { holder: 'x', epoch: 2 },
      autoFailback: false,
    };
    expect(elect({ ...base, members: [m('x'), m('y')], assigned: 'y' }).holder).toBe('y');
    expect(elect({ ...base, members: [m('x'), m('y', { standby: true })], assigned: 'y' }).holder).toBe('x');
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
});
