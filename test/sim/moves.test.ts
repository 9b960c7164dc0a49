/**
 * Operator moves (heartline.dev/move-to, docs/adr/0031) in the simulator: static targets on
 * some VIPs and move / clear events during the faults, each member's watch seeing a change
 * after its own lag. Default profile only: the fast profile with moves breaks PLANNED (seed
 * 13) and S2 (seed 2962 with --max-vips 3 --duplicates 0.2), open findings of issue 15.
 */
import { describeFailure, runMany } from './run.js';

const total = Number(process.env.SIM_SCHEDULES ?? 600);

describe('simulator: operator moves keep S1, S2 and L1', () => {
  test(`default profile, up to 12 VIPs, moves during faults (${Math.round(total * 0.25)} schedules)`, () => {
    const s = runMany(400_000, Math.round(total * 0.25), { profile: 'default', maxVips: 12, moves: true });
    const hard = s.failures.filter((f) => f.result.violations.some((v) => v.invariant !== 'BACKSTOP'));
    if (hard.length > 0) throw new Error(describeFailure(hard[0] as (typeof hard)[number], 'default'));
    expect(s.faultKinds.move).toBeGreaterThan(0);
    expect(s.plannedMoves).toBeGreaterThan(0);
  }, 900_000);
});
