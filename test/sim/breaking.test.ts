/**
 * Breaks the protocol on purpose and shows the simulator catches it: a voter that acks a
 * takeover while its promise to the current holder is still active lets a candidate that
 * cannot hear the holder (one-way loss) bind the VIP while the holder still holds it.
 */
import { describeFailure, runOne } from './run.js';
import type { Scenario } from './world.js';

function oneWayCut(unsafe: boolean) {
  return (s: Scenario) => {
    s.vips = [{ vip: 'default/web', preferredNodes: ['n1'] }];
    s.autoFailback = false;
    // n1 holds the VIP; n2 stops hearing n1 (n1 -> n2 dropped) while n3 still hears both.
    const at = s.healAt - 4 * s.timing.deadMs;
    s.faults = [{ at, kind: 'oneway', from: 'n1', to: 'n2', untilMs: s.healAt }];
    if (unsafe) s.unsafe = { ackDuringPromise: true };
  };
}

describe('simulator catches a broken voter', () => {
  test('the correct protocol survives a one-way cut from the holder', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { result, scenario } = runOne(
        seed,
        { profile: 'default', members: 3, maxVips: 1 },
        { mutate: oneWayCut(false) },
      );
      if (result.violations.length) throw new Error(describeFailure({ seed, result, scenario }, 'default'));
    }
  });

  test('a voter that acks during its promise produces an S1 violation, with the seed', () => {
    const caught: string[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const { result, scenario } = runOne(
        seed,
        { profile: 'default', members: 3, maxVips: 1 },
        { mutate: oneWayCut(true) },
      );
      const s1 = result.violations.find((v) => v.invariant === 'S1');
      if (s1) caught.push(describeFailure({ seed, result, scenario }, 'default'));
    }
    expect(caught.length).toBeGreaterThan(0);
    expect(caught[0]).toMatch(
      /^seed \d+ \(profile default\) violates S1 .*while holder n1 still had it bound/,
    );
    expect(caught[0]).toContain('last events:');
  });

  test('random schedules with the broken voter hit S1 within a few hundred seeds', () => {
    let found: number | undefined;
    for (let seed = 1; seed <= 400 && found === undefined; seed++) {
      const { result } = runOne(
        seed,
        { profile: 'fast', maxVips: 3, faultMs: 1500 },
        { mutate: (s) => (s.unsafe = { ackDuringPromise: true }) },
      );
      if (result.violations.some((v) => v.invariant === 'S1')) found = seed;
    }
    expect(found).toBeDefined();
  });
});
