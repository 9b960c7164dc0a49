/**
 * Auto failback through the simulator (issue 18 item 9, docs/adr/0014): every VIP prefers one
 * member, which crashes and restarts at the heal, or is cut off until the heal. After the
 * heal each VIP moves back exactly once: one bind, by the preferred member, at the next epoch
 * (after a crash; a cut-off member may have spent an epoch asking before it heard the holder),
 * with the world's PLANNED and HELD checks on.
 */
import { describeFailure, runOne } from './run.js';
import { failbackScenario, type FailbackShape } from './schedule.js';
import type { ProfileName } from '../../src/core/timing.js';

const SCHEDULES = Number(process.env.SIM_FAILBACK_SCHEDULES ?? 60);

describe.each([
  ['crash', 'fast'],
  ['crash', 'default'],
  ['partition', 'fast'],
  ['partition', 'default'],
] as Array<[FailbackShape, ProfileName]>)('failback after a %s (%s profile)', (shape, profile) => {
  test(`each VIP comes back to its preferred member in one planned move (${SCHEDULES} schedules)`, () => {
    let vips = 0;
    let planned = 0;
    for (let seed = 1; seed <= SCHEDULES; seed++) {
      let preferred = '';
      const mutate = failbackScenario(shape);
      const { result, scenario } = runOne(
        seed,
        { profile, maxVips: 12 },
        {
          mutate: (sc) => {
            preferred = mutate(sc);
          },
        },
      );
      if (result.violations.length > 0) throw new Error(describeFailure({ seed, result, scenario }, profile));
      planned += result.plannedMoves;
      for (const v of scenario.vips) {
        const before = result.binds.filter((b) => b.vip === v.vip && b.at < scenario.healAt);
        const after = result.binds.filter((b) => b.vip === v.vip && b.at >= scenario.healAt);
        const where = `seed ${seed} ${v.vip}: binds after the heal ${JSON.stringify(after)}`;
        expect({ where, moves: after.map((b) => b.node) }).toEqual({ where, moves: [preferred] });
        const last = before.at(-1);
        expect(last).toBeDefined();
        expect(last?.node).not.toBe(preferred);
        if (shape === 'crash')
          expect({ where, epoch: after[0]?.epoch }).toEqual({ where, epoch: (last?.epoch ?? 0) + 1 });
        vips++;
      }
    }
    expect(vips).toBeGreaterThanOrEqual(SCHEDULES);
    // After a restart the move waits for the member to be ready, past the heal's settling
    // window: the PLANNED check followed every one of them.
    if (shape === 'crash') expect(planned).toBe(vips);
  });
});
