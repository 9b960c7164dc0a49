import { decideCluster } from '../../../src/controller/decide/cluster.js';
import { decideFinalize } from '../../../src/controller/decide/finalize.js';
import { decideVip, type VipInput } from '../../../src/controller/decide/vip.js';
import { quorumSummary } from '../../../src/controller/decide/view.js';
import type { Observation, VipTransition } from '../../../src/controller/observer.js';
import { deriveTiming } from '../../../src/core/timing.js';
import { WITNESS_ID, type ClusterConfig } from '../../../src/runtime/cluster-config.js';
import type { Liveness } from '../../../src/core/membership.js';
import type { VirtualIPStatus } from '../../../src/api/index.js';

const timing = deriveTiming({ intervalMs: 200, deadMs: 1000 });
const WALL = new Date(Date.UTC(2026, 10, 22, 1, 0, 0));

function config(over: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    clusterId: 'lab/web',
    namespace: 'lab',
    name: 'web',
    port: 694,
    members: ['a', 'b', 'c'].map((id, i) => ({ id, address: `198.18.0.${i + 1}`, port: 694 })),
    witness: { id: WITNESS_ID, address: '198.18.0.200', port: 694 },
    quorum: 'majority',
    timing,
    autoFailback: false,
    keys: [],
    activeKeyId: 1,
    vips: [
      {
        vip: 'lab/vip1',
        preferredNodes: ['a', 'b'],
        eligible: undefined,
        epochFloor: 0,
        spec: {} as never,
        deleting: false,
        resources: [],
      },
    ],
    standby: new Set(),
    problems: [],
    ...over,
  };
}

function obs(
  liveness: Record<string, Liveness>,
  holdings: Record<string, { holder: string; epoch: number }> = {},
  transitions: VipTransition[] = [],
  settled = true,
): Observation {
  return {
    now: 10_000,
    startedAt: 0,
    settled,
    members: Object.entries(liveness).map(([id, l]) => ({
      id,
      liveness: l,
      incarnation: 7,
      lastHeard: l === 'dead' ? 8000 : 9990,
      standby: false,
      unhealthy: [],
      holdingsKnown: true,
    })),
    holdings: new Map(Object.entries(holdings).map(([vip, h]) => [vip, { ...h, since: 9000 }])),
    claims: new Map(Object.entries(holdings).map(([vip, h]) => [vip, [h.holder]])),
    transitions: new Map(transitions.map((t) => [t.vip, t])),
    loads: Object.values(holdings).reduce(
      (m, h) => m.set(h.holder, (m.get(h.holder) ?? 0) + 1),
      new Map<string, number>(),
    ),
  };
}

function input(o: Observation, base: VirtualIPStatus | undefined, c = config()): VipInput {
  return {
    id: 'lab/vip1',
    address: '198.18.0.100/24',
    generation: 1,
    deleting: false,
    base,
    cluster: { ok: true, config: c, obs: o, quorum: quorumSummary(c, o) },
    now: 10_000,
    wallNow: WALL,
  };
}

describe('decideVip', () => {
  it('first holder: Bound status, epoch, since, Bound event with the election reason', () => {
    const d = decideVip(
      input(
        obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 1 } }),
        undefined,
      ),
    );
    expect(d.status).toMatchObject({
      holder: 'a',
      epoch: 1,
      phase: 'Bound',
      since: '2026-11-22T00:59:59Z',
      observedGeneration: 1,
    });
    expect(d.status.failoverCount).toBeUndefined();
    expect(d.events).toEqual([
      expect.objectContaining({
        type: 'Normal',
        reason: 'Bound',
        note: expect.stringContaining('a elected: preferred #1'),
      }),
    ]);
    expect(d.failover).toBeUndefined();
  });

  it('is stable: deciding again from its own output changes nothing and emits nothing', () => {
    const o = obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 1 } });
    const first = decideVip(input(o, undefined));
    const later = decideVip({
      ...input(o, first.status),
      wallNow: new Date(WALL.getTime() + 60_000),
      now: 70_000,
    });
    expect(later.status).toEqual(first.status);
    expect(later.events).toEqual([]);
  });

  it('a move records lastFailover with the gap and counts it', () => {
    const base = decideVip(
      input(
        obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 1 } }),
        undefined,
      ),
    ).status;
    const t: VipTransition = {
      vip: 'lab/vip1',
      from: 'a',
      to: 'b',
      epoch: 2,
      cause: 'HolderDead',
      lostAt: 8000,
      at: 9500,
      gapMs: 1500,
    };
    const d = decideVip(
      input(obs({ a: 'dead', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'b', epoch: 2 } }, [t]), base),
    );
    expect(d.status).toMatchObject({ holder: 'b', epoch: 2, failoverCount: 1 });
    expect(d.status.lastFailover).toEqual({
      from: 'a',
      to: 'b',
      reason: 'HolderDead',
      durationMs: 1500,
      time: '2026-11-22T01:00:00Z',
    });
    expect(d.failover).toEqual({ from: 'a', to: 'b', reason: 'HolderDead' });
    expect(d.events[0]).toMatchObject({ type: 'Warning', reason: 'Failover' });
    expect(d.events[0]!.note).toContain('holder a is not alive; b elected: preferred #2');
    expect(d.status.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'MembersUnavailable',
    });
  });

  it('a planned move back to a more preferred node with autoFailback is a Failback', () => {
    const c = config({ autoFailback: true });
    const base: VirtualIPStatus = { holder: 'b', epoch: 2, phase: 'Bound' };
    const t: VipTransition = {
      vip: 'lab/vip1',
      from: 'b',
      to: 'a',
      epoch: 3,
      cause: 'Released',
      lostAt: 9400,
      at: 9450,
      gapMs: 50,
    };
    const d = decideVip(
      input(
        obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 3 } }, [t]),
        base,
        c,
      ),
    );
    expect(d.status.lastFailover).toMatchObject({ from: 'b', to: 'a', reason: 'Failback', durationMs: 50 });
    expect(d.events[0]).toMatchObject({ type: 'Normal', reason: 'Failover' });
  });

  it('a planned release to the move target is Moved; a release from a node in standby is Drain', () => {
    const t = (from: string, to: string): VipTransition => ({
      vip: 'lab/vip1',
      from,
      to,
      epoch: 3,
      cause: 'Released',
      lostAt: 9400,
      at: 9420,
      gapMs: 20,
    });
    const withTarget = (over: Partial<ClusterConfig> = {}) => {
      const c = config(over);
      return { ...c, vips: c.vips.map((v) => ({ ...v, moveTo: 'c' })) };
    };
    const o = (from: string, to: string) =>
      obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: to, epoch: 3 } }, [t(from, to)]);
    const base: VirtualIPStatus = { holder: 'a', epoch: 2, phase: 'Bound' };
    const moved = decideVip(input(o('a', 'c'), base, withTarget()));
    expect(moved.status.lastFailover).toMatchObject({ from: 'a', to: 'c', reason: 'Moved', durationMs: 20 });
    expect(moved.failover).toEqual({ from: 'a', to: 'c', reason: 'Moved' });
    expect(moved.events[0]).toMatchObject({ type: 'Normal', reason: 'Failover' });
    expect(moved.events[0]!.note).toContain('(Moved)');
    // The target's node went into standby: the VIP leaves it; that is a drain, not a move.
    const away = decideVip(
      input(o('c', 'a'), { holder: 'c', epoch: 2, phase: 'Bound' }, withTarget({ standby: new Set(['c']) })),
    );
    expect(away.status.lastFailover).toMatchObject({ from: 'c', to: 'a', reason: 'Drain' });
  });

  it('keeps the last status while not every member has been heard', () => {
    const base: VirtualIPStatus = { holder: 'a', epoch: 4, phase: 'Bound' };
    const d = decideVip(input(obs({ a: 'unknown', b: 'unknown', c: 'unknown' }, {}, [], false), base));
    expect(d.status).toBe(base);
    expect(d.events).toEqual([]);
  });

  it('no holder and no usable member: Unassigned with the reason and a Warning', () => {
    const d = decideVip(
      input(
        obs({ a: 'alive', b: 'alive', c: 'alive' }),
        { phase: 'Binding', epoch: 3 },
        config({ standby: new Set(['a', 'b', 'c']) }),
      ),
    );
    expect(d.status.phase).toBe('Unassigned');
    expect(d.status.epoch).toBe(3);
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'NoEligibleMember',
    });
    expect(d.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'Unassigned' })]);
  });

  it("quorum lost: QuorumLost condition (the Event is the HACluster's); epoch never goes back", () => {
    const base: VirtualIPStatus = { holder: 'a', epoch: 5, phase: 'Bound' };
    const d = decideVip(input(obs({ a: 'dead', b: 'dead', c: 'alive' }), base));
    expect(d.status.holder).toBeUndefined();
    expect(d.status.epoch).toBe(5);
    expect(d.status.conditions?.find((c) => c.type === 'QuorumLost')).toMatchObject({
      status: 'True',
      message: 'no quorum of voters reachable; see the HACluster status.quorum',
    });
    expect(d.events.map((e) => e.reason)).toEqual(['Released']); // QuorumLost: one Event, on the HACluster
  });
});

describe('decideCluster', () => {
  it('members, quorum with the witness vote, conditions and the witness address', () => {
    const c = config({ quorum: 'witness', members: config().members.slice(0, 2) });
    const o = obs({ a: 'alive', b: 'dead' });
    const d = decideCluster({
      name: 'lab/web',
      generation: 2,
      base: undefined,
      config: c,
      configError: undefined,
      obs: o,
      witness: { address: '198.18.0.200', port: 694 },
      now: 10_000,
      wallNow: WALL,
    });
    expect(d.status.members).toEqual([
      { name: 'a', state: 'alive', incarnation: 7 },
      { name: 'b', state: 'dead', incarnation: 7, lastSeen: '2026-11-22T00:59:58Z' },
    ]);
    expect(d.status.quorum).toEqual({ state: 'quorate', have: 2, need: 2 });
    // The MEMBERS and VIPS columns: alive/total, held/total.
    expect(d.status.summary).toEqual({ members: '1/2', vips: '0/1' });
    expect(d.status.witness).toEqual({ address: '198.18.0.200', port: 694 });
    expect(d.status.conditions?.map((x) => [x.type, x.status, x.reason])).toEqual([
      ['Ready', 'True', 'Quorate'],
      ['Degraded', 'True', 'MembersUnavailable'],
      ['AuthSecretInvalid', 'False', 'SecretValid'],
    ]);
    // lastSeen of a dead member does not move on later passes (no write per reconcile).
    const again = decideCluster({
      name: 'lab/web',
      generation: 2,
      base: d.status,
      config: c,
      configError: undefined,
      obs: { ...o, now: 50_000 },
      witness: { address: '198.18.0.200', port: 694 },
      now: 50_000,
      wallNow: new Date(WALL.getTime() + 40_000),
    });
    expect(again.status).toEqual(d.status);
  });

  it('an invalid configuration is reported with the message naming the field', () => {
    const d = decideCluster({
      name: 'lab/web',
      generation: 1,
      base: undefined,
      config: undefined,
      configError: 'HACluster lab/web: spec.authSecretRef.name: Secret "auth" not found; create it',
      obs: undefined,
      witness: undefined,
      now: 0,
      wallNow: WALL,
    });
    expect(d.status.conditions?.[0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: 'InvalidConfiguration',
    });
    expect(d.events[0]).toMatchObject({ type: 'Warning', reason: 'InvalidConfiguration' });
  });
});

describe('decideVip: one address, one VirtualIP', () => {
  const refused = {
    ok: false as const,
    reason: 'DuplicateAddress' as const,
    message:
      'spec.address: 198.18.0.100 is already the address of VirtualIP lab/older (the older one keeps it; an address is held by one VirtualIP only): give this VirtualIP another address, or delete one of the two; it stays unbound until then',
    others: ['lab/older'],
  };

  it('a refused VirtualIP: AddressConflict True naming both, Ready False, one Warning Event', () => {
    const o = obs({ a: 'alive', b: 'alive', c: 'alive' });
    const d = decideVip({ ...input(o, undefined), addressVerdict: refused });
    const cond = (t: string) => d.status.conditions?.find((c) => c.type === t);
    expect(cond('AddressConflict')).toMatchObject({
      status: 'True',
      reason: 'DuplicateAddress',
      message: expect.stringContaining('VirtualIP lab/older'),
    });
    expect(cond('Ready')).toMatchObject({ status: 'False', reason: 'AddressConflict' });
    expect(d.status.holder).toBeUndefined();
    expect(d.status.phase).toBe('Unassigned');
    expect(d.events).toEqual([
      expect.objectContaining({
        type: 'Warning',
        reason: 'AddressConflict',
        note: expect.stringContaining('VirtualIP lab/older'),
      }),
    ]);
    // Level-based and quiet: deciding again from its own status emits nothing.
    const again = decideVip({ ...input(o, d.status), addressVerdict: refused });
    expect(again.status).toEqual(d.status);
    expect(again.events).toEqual([]);
  });

  it('the condition clears (False) once the address is free, and Ready follows the holder', () => {
    const o = obs({ a: 'alive', b: 'alive', c: 'alive' });
    const before = decideVip({ ...input(o, undefined), addressVerdict: refused });
    const held = obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 1 } });
    const d = decideVip({ ...input(held, before.status), addressVerdict: { ok: true } });
    expect(d.status.conditions?.find((c) => c.type === 'AddressConflict')).toMatchObject({
      status: 'False',
      reason: 'NoConflict',
    });
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    expect(d.events.map((e) => e.reason)).toEqual(['Bound']);
  });

  it('a Node address gets its own reason', () => {
    const o = obs({ a: 'alive', b: 'alive', c: 'alive' });
    const d = decideVip({
      ...input(o, undefined),
      addressVerdict: {
        ok: false,
        reason: 'NodeAddress',
        message: 'spec.address: 198.18.0.100 is an address of Node a; choose an address no Node uses',
        others: ['a'],
      },
    });
    expect(d.status.conditions?.find((c) => c.type === 'AddressConflict')).toMatchObject({
      status: 'True',
      reason: 'NodeAddress',
    });
    expect(d.events[0]).toMatchObject({ reason: 'AddressConflict', note: expect.stringContaining('Node a') });
  });
});

describe('decideCluster: auth Secret', () => {
  const running = config({
    keys: [
      { id: 1, secret: new Uint8Array(32) },
      { id: 2, secret: new Uint8Array(32) },
    ],
    activeKeyId: 2,
  });
  const o = obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 3 } });
  const problem =
    'Secret lab/auth: data["3"]: key 3 has 16 bytes: use at least 32 random bytes; generate one with: openssl rand -base64 32';
  const input = (over: Partial<Parameters<typeof decideCluster>[0]>) => ({
    name: 'lab/web',
    generation: 1,
    base: undefined,
    config: running,
    configError: undefined,
    obs: o,
    witness: undefined,
    now: 10_000,
    wallNow: WALL,
    ...over,
  });
  const authCond = (d: ReturnType<typeof decideCluster>) =>
    d.status.conditions?.find((c) => c.type === 'AuthSecretInvalid');

  it('a bad Secret while running: AuthSecretInvalid True naming the key, the running keys and the fix; Ready stays; one Warning', () => {
    const good = decideCluster(input({}));
    const bad = decideCluster(input({ base: good.status, configError: problem, authSecretError: problem }));
    expect(authCond(bad)).toMatchObject({ status: 'True', reason: 'InvalidSecret' });
    expect(authCond(bad)?.message).toContain('data["3"]: key 3 has 16 bytes');
    expect(authCond(bad)?.message).toContain('openssl rand -base64 32');
    expect(authCond(bad)?.message).toContain('running keys (1, 2, active 2) stay in use');
    expect(bad.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Quorate',
    });
    expect(bad.status.members?.map((m) => m.state)).toEqual(['alive', 'alive', 'alive']);
    expect(bad.events).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'AuthSecretInvalid', action: 'Configure' }),
    ]);
    // The same problem on the next pass: no second Event, no status change.
    const again = decideCluster(input({ base: bad.status, configError: problem, authSecretError: problem }));
    expect(again.events).toEqual([]);
    expect(again.status).toEqual(bad.status);
    // Fixed: the condition clears and says so once.
    const fixed = decideCluster(input({ base: again.status }));
    expect(authCond(fixed)).toMatchObject({ status: 'False', reason: 'SecretValid' });
    expect(fixed.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'AuthSecretValid' })]);
  });

  it('a bad Secret before anything runs: Ready False and AuthSecretInvalid True, one Warning', () => {
    const d = decideCluster(
      input({ config: undefined, obs: undefined, configError: problem, authSecretError: problem }),
    );
    expect(d.status.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'False', 'InvalidConfiguration'],
      ['AuthSecretInvalid', 'True', 'InvalidSecret'],
    ]);
    expect(authCond(d)?.message).toContain('members do not start until it is fixed');
    expect(d.events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'AuthSecretInvalid']]);
  });

  it('another bad object while running: Degraded names it, the last good configuration keeps running', () => {
    const err = 'HACluster lab/web: spec.heartbeat.warnMs: must be below deadMs';
    const d = decideCluster(input({ configError: err }));
    expect(d.status.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'InvalidConfiguration',
      message: `${err}; the last good configuration keeps running`,
    });
    expect(d.status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(d.events.map((e) => e.reason)).toEqual(['InvalidConfiguration']);
  });
});

describe('decideFinalize', () => {
  const c = config();
  const finalize = (o: Observation, now: number, releaseTimeoutMs?: number) =>
    decideFinalize({
      id: 'lab/vip1',
      address: '198.18.0.100/24',
      cluster: { ok: true, config: c, obs: o, quorum: quorumSummary(c, o) },
      now,
      deletingSince: 10_000,
      releaseTimeoutMs,
      finalizer: 'heartline.dev/release',
    });

  it('removes the finalizer once the settled observer sees no claim', () => {
    const d = finalize(obs({ a: 'alive', b: 'alive', c: 'alive' }), 10_000);
    expect(d).toMatchObject({ remove: true, released: true, waitedMs: 0 });
    expect(d.remove && d.events.map((e) => [e.type, e.reason])).toEqual([['Normal', 'Released']]);
  });

  it('waits while a member claims it, or the observer has not settled', () => {
    const held = obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 3 } });
    expect(finalize(held, 10_100)).toEqual({ remove: false, retryInMs: 250 });
    const unsettled = obs({ a: 'alive', b: 'alive', c: 'alive' }, {}, [], false);
    expect(finalize(unsettled, 10_100).remove).toBe(false);
  });

  it('removes it anyway after the timeout with a Warning naming the claimant', () => {
    const held = obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 3 } });
    expect(finalize(held, 10_900, 1000)).toEqual({ remove: false, retryInMs: 100 });
    const d = finalize(held, 11_000, 1000);
    expect(d.remove).toBe(true);
    if (!d.remove) return;
    expect(d.released).toBe(false);
    expect(d.events[0]).toMatchObject({ type: 'Warning', reason: 'ReleaseTimeout' });
    expect(d.events[0]!.note).toMatch(/still claimed by a 1000 ms after deletion/);
  });

  it('a VIP whose HACluster is gone is released at once', () => {
    const d = decideFinalize({
      id: 'lab/vip1',
      address: '198.18.0.100/24',
      cluster: { ok: false, reason: 'ClusterNotFound', message: 'gone' },
      now: 10_000,
      deletingSince: 10_000,
      releaseTimeoutMs: undefined,
      finalizer: 'heartline.dev/release',
    });
    expect(d).toMatchObject({ remove: true, released: true });
  });
});
