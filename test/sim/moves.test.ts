/**
 * Operator moves (heartline.dev/move-to, docs/adr/0031) in the simulator: static targets on
 * some VIPs and move / clear events during the faults, each member's watch seeing a change
 * after its own lag. Both profiles; the fast one found seed 2962 (S2 across two member
 * removals, fixed: test/sim/regressions.test.ts). hack/test.sh runs moves in a quarter of its
 * schedules (`--moves 0.25`).
 */
import { describeFailure, runMany } from './run.js';
import { hasMoves, makeScenario } from './schedule.js';

const total = Number(process.env.SIM_SCHEDULES ?? 600);

describe('simulator: operator moves keep S1, S2 and L1', () => {
  test(`default profile, up to 12 VIPs, moves during faults (${Math.round(total * 0.25)} schedules)`, () => {
    const s = runMany(400_000, Math.round(total * 0.25), { profile: 'default', maxVips: 12, moves: true });
    const hard = s.failures.filter((f) => f.result.violations.some((v) => v.invariant !== 'BACKSTOP'));
    if (hard.length > 0) throw new Error(describeFailure(hard[0] as (typeof hard)[number], 'default'));
    expect(s.faultKinds.move).toBeGreaterThan(0);
    expect(s.plannedMoves).toBeGreaterThan(0);
  }, 900_000);

  test(`fast profile, up to 3 VIPs, shared addresses, member changes, moves (${Math.round(total * 0.25)} schedules)`, () => {
    const s = runMany(410_000, Math.round(total * 0.25), {
      profile: 'fast',
      maxVips: 3,
      duplicateAddresses: 0.2,
      membershipChanges: 0.25,
      moves: true,
    });
    const hard = s.failures.filter((f) => f.result.violations.some((v) => v.invariant !== 'BACKSTOP'));
    if (hard.length > 0) throw new Error(describeFailure(hard[0] as (typeof hard)[number], 'fast'));
    expect(s.faultKinds.move).toBeGreaterThan(0);
  }, 900_000);

  test('moves in a fraction of the schedules leave the others exactly as without the option', () => {
    const opts = { profile: 'fast' as const, maxVips: 3, duplicateAddresses: 0.2, membershipChanges: 0.25 };
    let withMoves = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const some = makeScenario(seed, { ...opts, moves: 0.25 });
      if (hasMoves(seed, 0.25)) {
        withMoves++;
        // Same faults but the move events, which come from their own stream.
        const plain = makeScenario(seed, opts);
        expect(some.faults.filter((f) => f.kind !== 'move')).toEqual(plain.faults);
        expect(some).toEqual(makeScenario(seed, { ...opts, moves: true }));
      } else {
        expect(some).toEqual(makeScenario(seed, opts));
      }
    }
    expect(withMoves).toBeGreaterThan(60);
    expect(withMoves).toBeLessThan(140);
  });
});
