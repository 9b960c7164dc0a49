/**
 * Membership changes in the simulator: the controller's generations (one voter apart, with
 * the barrier), members learning them at different times, and the voter rule keep S1; a
 * naive in-place change (each member switching to the labelled set on its own, no barrier,
 * no voter rule) is caught.
 */
import { describeFailure, runOne } from './run.js';
import type { Scenario } from './world.js';

/**
 * n1 holds the VIP in {n1,n2,n3}. Two nodes are labelled one after the other; n3, n4 and n5
 * learn at once, n1 and n2 only at the heal. n3 stops hearing n1 (one-way loss), so its
 * promise to n1 runs out: on the new set {n1..n5}, n3, n4 and n5 are a majority while n1 and
 * n2 are a majority of the old one.
 */
function laggingMajority(naive: boolean) {
  return (s: Scenario) => {
    const t = s.healAt - 5 * s.timing.deadMs;
    s.vips = [{ vip: 'default/web', preferredNodes: ['n1'] }];
    s.autoFailback = false;
    s.replayer = false;
    s.faults = [{ at: t - s.timing.deadMs, kind: 'oneway', from: 'n1', to: 'n3', untilMs: s.healAt }];
    s.membership = {
      universe: ['n1', 'n2', 'n3', 'n4', 'n5'],
      changes: [
        { at: t, op: 'add', node: 'n4' },
        { at: t + 1, op: 'add', node: 'n5' },
      ],
      lagMs: { n1: 1e9, n2: 1e9, n3: 1, n4: 1, n5: 1 },
      ...(naive ? { naive: true } : {}),
    };
  };
}

describe('membership changes in the simulator', () => {
  test('generations with the barrier and the voter rule: no violation with a lagging majority', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const { result, scenario } = runOne(
        seed,
        { profile: 'default', members: 3, maxVips: 1, quorum: 'majority' },
        { mutate: laggingMajority(false) },
      );
      if (result.violations.length) throw new Error(describeFailure({ seed, result, scenario }, 'default'));
      // While n1 and n2 lag, nobody else binds: the new members cannot make a quorum without
      // them. (Once n1 learns {n1..n4} it counts 3 of 4 and, with n3 cut off, loses the VIP.)
      expect(result.binds.filter((b) => b.node !== 'n1' && b.at < scenario.healAt)).toEqual([]);
    }
  });

  test('a naive in-place change (no barrier, no voter rule) produces an S1 violation', () => {
    const caught: string[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const { result, scenario } = runOne(
        seed,
        { profile: 'default', members: 3, maxVips: 1, quorum: 'majority' },
        { mutate: laggingMajority(true) },
      );
      if (result.violations.some((v) => v.invariant === 'S1'))
        caught.push(describeFailure({ seed, result, scenario }, 'default'));
    }
    expect(caught.length).toBeGreaterThan(0);
    expect(caught[0]).toMatch(/violates S1 .*while holder n1 still had it bound/);
  });

  test('random schedules with membership changes (add, remove, relabel, late learners) keep S1, S2, L1', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const { result, scenario } = runOne(seed, {
        profile: 'fast',
        maxVips: 3,
        membershipChanges: 1,
      });
      if (result.violations.length) throw new Error(describeFailure({ seed, result, scenario }, 'fast'));
    }
  });
});
