import type { VirtualIPStatus } from '../../../../src/api/index.js';
import type { VipTransition } from '../../../../src/controller/observer.js';
import type { ClusterConfig } from '../../../../src/runtime/cluster-config.js';
import { decideVip } from '../../../../src/controller/decide/vip.js';
import { WALL, config, input, obs } from './fixtures.js';

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
