/**
 * Seeded random schedules through the simulator: S1, S2 and L1 must hold in every one.
 * SIM_SCHEDULES raises the count (e.g. SIM_SCHEDULES=10000 for the full run).
 */
import { describeFailure, runMany } from './run.js';

const total = Number(process.env.SIM_SCHEDULES ?? 600);

const TIMEOUT = 900_000;

describe('simulator: random schedules keep S1, S2 and L1', () => {
  test(
    `fast profile, small clusters (${Math.round(total * 0.75)} schedules)`,
    () => {
      const s = runMany(100_000, Math.round(total * 0.75), { profile: 'fast', maxVips: 3, faultMs: 1500 });
      const hard = s.failures.filter((f) => f.result.violations.some((v) => v.invariant !== 'BACKSTOP'));
      if (hard.length > 0) throw new Error(describeFailure(hard[0] as (typeof hard)[number], 'fast'));
      expect(s.schedules).toBe(Math.round(total * 0.75));
      expect(s.failovers.length).toBeGreaterThan(0);
    },
    TIMEOUT,
  );

  test(
    `default profile, up to 9 members and 12 VIPs (${Math.round(total * 0.25)} schedules)`,
    () => {
      const s = runMany(200_000, Math.round(total * 0.25), { profile: 'default', maxVips: 12 });
      const hard = s.failures.filter((f) => f.result.violations.some((v) => v.invariant !== 'BACKSTOP'));
      if (hard.length > 0) throw new Error(describeFailure(hard[0] as (typeof hard)[number], 'default'));
      expect(s.failovers.length).toBeGreaterThan(0);
    },
    TIMEOUT,
  );

  test(
    `VirtualIPs sharing an address, both profiles (${Math.round(total * 0.25)} schedules each): S1 per address`,
    () => {
      for (const profile of ['fast', 'default'] as const) {
        const s = runMany(300_000, Math.round(total * 0.25), {
          profile,
          maxVips: profile === 'fast' ? 3 : 8,
          duplicateAddresses: 1,
          ...(profile === 'fast' ? { faultMs: 1500 } : {}),
        });
        const hard = s.failures.filter((f) => f.result.violations.some((v) => v.invariant !== 'BACKSTOP'));
        if (hard.length > 0) throw new Error(describeFailure(hard[0] as (typeof hard)[number], profile));
      }
    },
    TIMEOUT,
  );
});
