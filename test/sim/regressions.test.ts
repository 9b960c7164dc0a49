/**
 * Schedules that once failed, kept as fixed regressions (each names the seed or the shape).
 */
import { runOne } from './run.js';

describe('simulator regressions', () => {
  test('seed 1370 (default): a drain ended while the agent was paused is applied on resume (L1)', () => {
    const { result } = runOne(1370, { profile: 'default', maxVips: 50 });
    expect(result.violations).toEqual([]);
  });

  test('a member that only it may hold a VIP takes it back after a drain that ended during its pause', () => {
    const binds: string[] = [];
    const { result, scenario } = runOne(
      7,
      { profile: 'default', members: 3, maxVips: 1 },
      {
        traceSink: (l) => {
          if (l.includes(' BIND ')) binds.push(l);
        },
        mutate: (sc) => {
          const d = sc.timing.deadMs;
          const t0 = sc.healAt - 4 * d;
          sc.quorum = 'majority';
          sc.witness = false;
          sc.vips = [{ vip: 'default/only-n2', preferredNodes: [], eligible: ['n2'] }];
          sc.faults = [
            { at: t0, kind: 'standby', node: 'n2', on: true },
            { at: t0 + d, kind: 'pause', node: 'n2', forMs: 3 * d },
            { at: t0 + 2 * d, kind: 'standby', node: 'n2', on: false },
          ];
        },
      },
    );
    expect(result.violations).toEqual([]);
    const afterHeal = binds.filter((l) => Number(l.trim().split(' ')[0]) >= scenario.healAt);
    expect(afterHeal.some((l) => l.includes('n2 BIND default/only-n2'))).toBe(true);
  });
});
