/**
 * Breaks the protocol on purpose and shows the simulator catches it: a voter that acks a
 * takeover while its promise to the current holder is still active lets a candidate that
 * cannot hear the holder (one-way loss) bind the VIP while the holder still holds it; and
 * without the address rule, two VirtualIP names on one address are bound on two nodes.
 */
import { describeFailure, runOne } from './run.js';
import { admittedVips, type Scenario } from './world.js';

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

describe('simulator catches two VirtualIPs on one address', () => {
  // Two names, one address, each preferring another node: leases are per name, so only the
  // address rule keeps them apart.
  const twins = (rule: boolean) => (s: Scenario) => {
    s.vips = [
      { vip: 'default/web', preferredNodes: ['n1'] },
      { vip: 'default/web-copy', preferredNodes: ['n2'] },
    ];
    s.addresses = { 'default/web': '198.18.0.100/24', 'default/web-copy': '198.18.0.100/32' };
    s.faults = [];
    if (!rule) s.noAddressRule = true;
  };

  test('with the rule the members run the older VIP only, and S1 holds per address', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const { result, scenario } = runOne(
        seed,
        { profile: 'fast', members: 3, maxVips: 1 },
        { mutate: twins(true) },
      );
      expect(admittedVips(scenario).map((v) => v.vip)).toEqual(['default/web']);
      if (result.violations.length) throw new Error(describeFailure({ seed, result, scenario }, 'fast'));
    }
  });

  test('without the rule the S1 check (per address) reports both names on two nodes', () => {
    const { result, scenario } = runOne(
      1,
      { profile: 'fast', members: 3, maxVips: 1 },
      { mutate: twins(false) },
    );
    const s1 = result.violations.find((v) => v.invariant === 'S1');
    expect(s1?.message).toMatch(/bound default\/web(-copy)? .* still had default\/web(-copy)?, same address/);
    expect(describeFailure({ seed: 1, result, scenario }, 'fast')).toMatch(
      /^seed 1 \(profile fast\) violates S1/,
    );
  });

  test('random duplicate-address schedules without the rule hit S1', () => {
    let found = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const { result } = runOne(
        seed,
        { profile: 'fast', maxVips: 3, faultMs: 1500, duplicateAddresses: 1 },
        { mutate: (s) => (s.noAddressRule = true) },
      );
      if (result.violations.some((v) => v.invariant === 'S1')) found++;
    }
    expect(found).toBeGreaterThan(0);
  });
});

describe('simulator checks the status the controller reports', () => {
  test('an observer deaf to the holder reports no holder: a STATUS violation, with the seed', () => {
    const { result, scenario } = runOne(
      1,
      { profile: 'fast', members: 3, maxVips: 1 },
      {
        mutate: (s) => {
          s.vips = [{ vip: 'default/web', preferredNodes: ['n1'] }];
          s.faults = [];
          s.membership = undefined;
          s.observerDeafTo = 'n1';
        },
      },
    );
    const status = result.violations.find((v) => v.invariant === 'STATUS');
    expect(status?.message).toMatch(
      /^default\/web is bound at n1 e\d+ since \d+ms, but the controller would write holder none epoch none \(phase \w+\)$/,
    );
    expect(describeFailure({ seed: 1, result, scenario }, 'fast')).toMatch(/violates STATUS/);
  });
});
