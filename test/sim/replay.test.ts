/**
 * The replaying adversary (Scenario.replayer): it records every datagram and plays the
 * recording back to each member that restarts. A voter restarts, then the holder dies: the
 * recording of the holder's heartbeats, played back to the voter, would keep the dead holder
 * "alive" there and its promises renewed, holding the takeover off until the recording runs
 * out. With the freshness proof (docs/adr/0015) nothing of it counts and the failover takes
 * its usual time; with the proof disabled (unsafe.skipFreshness) the simulator shows the
 * attack working.
 */
import { describeFailure, runMany, runOne } from './run.js';
import type { Scenario } from './world.js';

function voterRestartThenHolderCrash(unsafe: boolean) {
  return (s: Scenario) => {
    const d = s.timing.deadMs;
    s.quorum = 'majority';
    s.witness = false;
    s.autoFailback = false;
    s.replayer = true;
    s.vips = [{ vip: 'default/web', preferredNodes: ['n1'] }];
    // Well after start, so the recording is long: n2 (a voter) restarts, then n1 (the holder)
    // dies for good while the recording plays back to n2.
    const t0 = s.healAt - 24 * d;
    s.faults = [
      { at: t0, kind: 'crash', node: 'n2', fenceKilled: false, restartAt: t0 + 0.5 * d },
      { at: t0 + 3 * d, kind: 'crash', node: 'n1', fenceKilled: false, restartAt: null },
    ];
    if (unsafe) s.unsafe = { skipFreshness: true };
  };
}

function failovers(profile: 'default' | 'fast', unsafe: boolean): number[] {
  const out: number[] = [];
  for (let seed = 1; seed <= 10; seed++) {
    const deadMs = profile === 'fast' ? 300 : 1000;
    const { result, scenario } = runOne(
      seed,
      { profile, members: 3, maxVips: 1, faultMs: 30 * deadMs },
      { mutate: voterRestartThenHolderCrash(unsafe) },
    );
    if (result.violations.length) throw new Error(describeFailure({ seed, result, scenario }, profile));
    expect(result.failovers).toHaveLength(1);
    out.push(result.failovers[0] as number);
  }
  return out;
}

describe('simulator: a replaying adversary', () => {
  test.each(['default', 'fast'] as const)(
    '%s profile: a recording played to a restarted voter does not hold off a takeover',
    (profile) => {
      const deadMs = profile === 'fast' ? 300 : 1000;
      const safe = failovers(profile, false);
      // As without any replay: the holder is declared dead after deadMs, then one round trip.
      for (const ms of safe) expect(ms).toBeLessThanOrEqual(deadMs + 100);
      // The same schedules with the proof disabled: the replayed heartbeats keep the holder
      // alive at the restarted voter, whose ack the takeover needs.
      const broken = failovers(profile, true);
      for (const ms of broken) expect(ms).toBeGreaterThan(5 * deadMs);
    },
  );

  test('random schedules with the adversary in every one keep S1, S2 and L1', () => {
    const s = runMany(300_000, 200, { profile: 'fast', maxVips: 3, faultMs: 1500, replayer: true });
    const hard = s.failures.filter((f) => f.result.violations.some((v) => v.invariant !== 'BACKSTOP'));
    if (hard.length > 0) throw new Error(describeFailure(hard[0] as (typeof hard)[number], 'fast'));
    expect(s.faultKinds['replayer']).toBe(200);
  });
});
