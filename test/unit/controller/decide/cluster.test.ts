import { decideCluster } from '../../../../src/controller/decide/cluster.js';
import { WALL, config, obs } from './fixtures.js';

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
