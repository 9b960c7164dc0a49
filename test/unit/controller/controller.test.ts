import { VIP_FINALIZER, WITNESS_ID } from '../../../src/runtime/cluster-config.js';
import { NS, Rig } from './rig.js';

type Cond = { type: string; status: string; reason: string; message: string };
const cond = (s: Record<string, unknown>, type: string): Cond | undefined =>
  (s.conditions as Cond[] | undefined)?.find((c) => c.type === type);

async function boot(rig: Rig): Promise<void> {
  rig.addController('c1');
  // The controller publishes the witness address; agents read it from HACluster status.
  await rig.until(async () =>
    Boolean(((await rig.object('HACluster', 'web'))?.status as { witness?: unknown } | undefined)?.witness),
  );
  await rig.startAgents();
  await rig.until(async () => Boolean((await rig.vipStatus()).holder));
}

/** Three nodes, vip1 preferring node-a then node-b. */
const twoPreferred = () =>
  new Rig({
    nodes: ['node-a', 'node-b', 'node-c'],
    vips: [{ name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['node-a', 'node-b'] }],
  });

/** Boots `rig` (twoPreferred) until node-a holds vip1. */
async function heldByNodeA(rig: Rig): Promise<void> {
  await boot(rig);
  await rig.advance(500);
  expect((await rig.vipStatus()).holder).toBe('node-a');
}

describe('controller on a simulated cluster', () => {
  let rig: Rig;
  afterEach(async () => {
    await rig?.close();
  });

  it('publishes the witness, adds the finalizer and reports holder, epoch, conditions and a Bound event', async () => {
    rig = new Rig({
      nodes: ['node-a', 'node-b', 'node-c'],
      vips: [{ name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['node-b'] }],
    });
    await boot(rig);
    const cluster = (await rig.object('HACluster', 'web'))!;
    const cs = cluster.status as Record<string, unknown>;
    expect(cs.witness).toEqual({
      address: '198.18.0.200',
      port: 694,
      publicKey: expect.stringMatching(/^ed25519:[A-Za-z0-9+/]{43}=$/),
    });
    const vip = (await rig.object('VirtualIP', 'vip1'))!;
    expect(vip.metadata.finalizers).toContain(VIP_FINALIZER);
    await rig.advance(1000);
    const s = await rig.vipStatus();
    expect(rig.holders()).toEqual(['node-b']);
    expect(s.holder).toBe('node-b');
    expect(s.epoch).toBe(1);
    expect(s.phase).toBe('Bound');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'Bound' });
    expect(cond(s, 'Bound')).toMatchObject({ status: 'True' });
    expect(cond(s, 'QuorumLost')).toMatchObject({ status: 'False', reason: 'Quorate' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'False', reason: 'Redundant' });
    expect(s.since).toMatch(/^2026-11-22T00:00:\d\dZ$/);
    const bound = rig.api.events.find((e) => e.reason === 'Bound');
    expect(bound?.note).toContain('node-b holds 198.18.0.100/24 at epoch 1');
    expect(bound?.note).toContain('preferred #1');
    const members = cs.members as Array<{ name: string; state: string }> | undefined;
    const after = (await rig.object('HACluster', 'web'))!.status as {
      members: Array<{ name: string; state: string }>;
      quorum: unknown;
    };
    expect(after.members.map((m) => [m.name, m.state])).toEqual([
      ['node-a', 'alive'],
      ['node-b', 'alive'],
      ['node-c', 'alive'],
    ]);
    expect(after.quorum).toEqual({ state: 'quorate', have: 3, need: 2 });
    expect(members === undefined || Array.isArray(members)).toBe(true);
  });

  it('records a failover when the holder crashes: lastFailover, failoverCount and a Warning event', async () => {
    rig = twoPreferred();
    await heldByNodeA(rig);
    const crashedAt = rig.world.time;
    await rig.agents.get('node-a')!.crash();
    await rig.until(async () => (await rig.vipStatus()).holder === 'node-b');
    const s = await rig.vipStatus();
    expect(rig.holders()).toEqual(['node-b']);
    expect(s.epoch).toBe(2);
    expect(s.failoverCount).toBe(1);
    const lf = s.lastFailover as { from: string; to: string; reason: string; durationMs: number };
    expect(lf).toMatchObject({ from: 'node-a', to: 'node-b', reason: 'HolderDead' });
    // The gap runs from node-a's last heartbeat to node-b's first holding seen: within the simulated time.
    expect(lf.durationMs).toBeGreaterThan(0);
    expect(lf.durationMs).toBeLessThanOrEqual(rig.world.time - crashedAt + 250);
    const ev = rig.api.events.find((e) => e.reason === 'Failover');
    expect(ev?.type).toBe('Warning');
    expect(ev?.note).toContain('moved from node-a to node-b at epoch 2 (HolderDead)');
    await rig.until(async () => {
      const c = (await rig.object('HACluster', 'web'))!.status as {
        members: Array<{ name: string; state: string; lastSeen?: string }>;
      };
      return c.members.find((m) => m.name === 'node-a')?.state === 'dead';
    });
    const c = (await rig.object('HACluster', 'web'))!.status as {
      members: Array<{ name: string; state: string; lastSeen?: string }>;
    };
    expect(c.members.find((m) => m.name === 'node-a')?.lastSeen).toMatch(/Z$/);
    expect(rig.api.events.some((e) => e.reason === 'MemberDead' && e.note.startsWith('node-a'))).toBe(true);
    const reg = rig.controllers[0]!.metrics.registry;
    expect(await reg.getSingleMetricAsString('heartline_failovers_total')).toContain(
      'reason="HolderDead"} 1',
    );
    // Held again: no time without a holder; the NoHolder alert's threshold unit is the cluster's deadMs.
    expect(await reg.getSingleMetricAsString('heartline_vip_unheld_seconds')).toMatch(
      new RegExp(`\\{cluster="${NS}/web",vip="${NS}/vip1"\\} 0$`, 'm'),
    );
    expect(await reg.getSingleMetricAsString('heartline_cluster_dead_seconds')).toMatch(
      new RegExp(`\\{cluster="${NS}/web"\\} \\d+(\\.\\d+)?$`, 'm'),
    );
  });

  it("a dead holder's VIP reaches status at once when a member binds it, not a rate-limit interval later", async () => {
    rig = twoPreferred();
    await heldByNodeA(rig);
    const seen: Array<{ at: number; holder: string }> = [];
    const w = rig.api.watch('VirtualIP', (e) => {
      if (e.type === 'synced') return;
      const h = (e.object.status as { holder?: string } | undefined)?.holder ?? '';
      if (seen.at(-1)?.holder !== h) seen.push({ at: rig.world.time, holder: h });
    });
    await rig.agents.get('node-a')!.crash();
    await rig.until(() => Promise.resolve(rig.agents.get('node-b')!.bound.size > 0));
    const boundAt = rig.world.time;
    await rig.until(async () => (await rig.vipStatus()).holder === 'node-b');
    w.stop();
    // Status said "no holder" first (the controller declared node-a dead before node-b bound),
    // less than the 250 ms rate limit before node-b's write: that write still went at once.
    const lost = seen.find((x) => x.holder === '')!;
    const moved = seen.find((x) => x.holder === 'node-b')!;
    expect(seen.map((x) => x.holder)).toEqual(['node-a', '', 'node-b']);
    expect(moved.at - lost.at).toBeLessThan(250);
    expect(moved.at - boundAt).toBeLessThanOrEqual(20);
  });

  it('a graceful stop is a planned move (the stopping member goes standby first): Drain, not HolderDead', async () => {
    rig = new Rig({
      nodes: ['node-a', 'node-b', 'node-c'],
      vips: [{ name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['node-a', 'node-b'] }],
    });
    await boot(rig);
    await rig.advance(500);
    await rig.agents.get('node-a')!.stop();
    await rig.until(async () => (await rig.vipStatus()).holder === 'node-b');
    const lf = (await rig.vipStatus()).lastFailover as { reason: string; from: string };
    expect(lf).toMatchObject({ from: 'node-a', reason: 'Drain' });
    expect(rig.api.events.find((e) => e.reason === 'Failover')?.type).toBe('Normal');
  });

  it('writes nothing at steady state', async () => {
    rig = new Rig({
      nodes: ['node-a', 'node-b', 'node-c'],
      vips: [
        { name: 'vip1', address: '198.18.0.100/24' },
        { name: 'vip2', address: '198.18.0.101/24' },
        { name: 'vip3', address: '198.18.0.102/24' },
      ],
    });
    await boot(rig);
    await rig.until(async () =>
      Boolean((await rig.vipStatus('vip2')).holder && (await rig.vipStatus('vip3')).holder),
    );
    await rig.advance(5000);
    const { api } = rig.controllers[0]!;
    const before = api.snapshot();
    await rig.advance(30_000);
    expect(api.snapshot()).toEqual(before);
    expect(api.total('patch-status')).toBeGreaterThan(0);
  });

  it('removes the finalizer of a deleted VirtualIP once no member holds it', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    await boot(rig);
    await rig.advance(500);
    rig.api.delete('VirtualIP', { namespace: NS, name: 'vip1' });
    await rig.advance(300);
    // Still held: the finalizer stays.
    expect(await rig.object('VirtualIP', 'vip1')).toBeDefined();
    await rig.reconfigureAgents(); // agents see the deletion and release
    await rig.until(async () => (await rig.object('VirtualIP', 'vip1')) === undefined, 5000);
    expect(rig.holders()).toEqual([]);
    expect(rig.api.events.find((e) => e.reason === 'Released' && e.note.includes('finalizer'))?.type).toBe(
      'Normal',
    );
  });

  it('removes the finalizer after the bounded timeout when a member keeps claiming the VIP', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    await boot(rig);
    await rig.advance(500);
    rig.api.delete('VirtualIP', { namespace: NS, name: 'vip1' });
    const waited = await rig.until(async () => (await rig.object('VirtualIP', 'vip1')) === undefined, 10_000);
    // 2 x deadMs + lease + margin with the default timing (1000 ms dead).
    expect(waited).toBeGreaterThanOrEqual(2 * 1000 + 800);
    const ev = rig.api.events.find((e) => e.reason === 'ReleaseTimeout');
    expect(ev?.type).toBe('Warning');
    expect(ev?.note).toMatch(/still claimed by node-/);
  });

  it('only the leader writes; stopping it hands over to the standby at once', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    await boot(rig);
    const first = rig.controllers[0]!;
    const second = rig.addController('c2');
    await rig.advance(5000);
    expect(first.controller.isLeader).toBe(true);
    expect(second.controller.isLeader).toBe(false);
    expect(second.controller.ready()).toEqual({ ready: true, reason: 'standby' });
    expect(
      second.api.total('patch-status') + second.api.total('add-finalizer') + second.api.total('create-event'),
    ).toBe(0);
    await first.controller.stop();
    const took = await rig.until(() => second.controller.isLeader, 5000);
    expect(took).toBeLessThanOrEqual(2100); // one renew period, not the 15 s lease
    // The new leader publishes its own witness address; agents follow it in place.
    await rig.until(
      async () =>
        ((await rig.object('HACluster', 'web'))!.status as { witness: { address: string } }).witness
          .address === second.address,
    );
    await rig.reconfigureAgents();
    await rig.agents.get(rig.holders()[0]!)!.crash();
    await rig.until(async () => (await rig.vipStatus()).failoverCount === 1);
    expect(second.api.total('patch-status')).toBeGreaterThan(0);
  });

  it('a leader that cannot renew stops its witness and reconcilers before the lease could pass on', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    await boot(rig);
    const first = rig.controllers[0]!;
    const second = rig.addController('c2');
    await rig.advance(3000);
    expect(first.controller.isLeader).toBe(true);
    rig.leases.failNext(16); // about 16 s of failed Lease requests (both instances try every 2 s)
    await rig.advance(13_500); // past the 10 s renew deadline plus one renew period
    expect(first.controller.isLeader).toBe(false);
    expect(second.controller.isLeader).toBe(false);
    expect(await first.metrics.registry.getSingleMetricAsString('heartline_controller_leader')).toContain(
      'heartline_controller_leader 0',
    );
    // No longer leading: no view of the VIPs or clusters (a stale one would feed NoHolder).
    const text = await first.metrics.registry.metrics();
    expect(text).not.toMatch(
      /^heartline_(vip_holder|vip_unheld_seconds|cluster_quorate|cluster_dead_seconds)\{/m,
    );
    // Nobody leads: nothing is written, even when the holder changes.
    const writes = first.api.total('patch-status') + second.api.total('patch-status');
    await rig.agents.get(rig.holders()[0]!)!.crash();
    await rig.advance(1500);
    expect(first.api.total('patch-status') + second.api.total('patch-status')).toBe(writes);
    // The Lease API is back: exactly one instance leads again and catches up.
    await rig.until(() => first.controller.isLeader || second.controller.isLeader, 20_000);
    expect(first.controller.isLeader && second.controller.isLeader).toBe(false);
    await rig.until(async () => (await rig.vipStatus()).failoverCount === 1);
  });

  it('votes as witness in a two-node cluster: the survivor takes over only with the witness vote', async () => {
    rig = new Rig({
      nodes: ['node-a', 'node-b'],
      quorum: 'witness',
      vips: [{ name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['node-a'] }],
    });
    await boot(rig);
    await rig.advance(500);
    const config = await rig.config();
    expect(config.witness?.id).toBe(WITNESS_ID);
    expect(((await rig.object('HACluster', 'web'))!.status as { quorum: unknown }).quorum).toEqual({
      state: 'quorate',
      have: 3,
      need: 2,
    });
    await rig.agents.get('node-a')!.crash();
    await rig.until(async () => (await rig.vipStatus()).holder === 'node-b');
    expect(rig.holders()).toEqual(['node-b']);
    const cs = (await rig.object('HACluster', 'web'))!.status as { quorum: unknown };
    await rig.advance(2000);
    expect(((await rig.object('HACluster', 'web'))!.status as { quorum: unknown }).quorum).toEqual({
      state: 'quorate',
      have: 2,
      need: 2,
    });
    expect(cs).toBeDefined();
  });

  it('reports lost quorum on the cluster and the VIP, with one Event on the cluster', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    await boot(rig);
    await rig.advance(500);
    await rig.agents.get('node-a')!.crash();
    await rig.agents.get('node-b')!.crash();
    await rig.until(async () => cond(await rig.vipStatus(), 'QuorumLost')?.status === 'True');
    const s = await rig.vipStatus();
    expect(s.holder).toBeUndefined();
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'QuorumLost' });
    const cs = (await rig.object('HACluster', 'web'))!.status as { quorum: unknown };
    expect(cs.quorum).toEqual({ state: 'lost', have: 1, need: 2 });
    expect(
      rig.api.events
        .filter((e) => e.reason === 'QuorumLost')
        .map((e) => e.regarding.kind)
        .sort(),
    ).toEqual(['HACluster']); // not one per VIP: a flapping quorum would cost an Event per VIP per flap
  });

  it('retries failed status writes with backoff and records the failure in metrics', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    rig.api.failNext('patchStatus', new Error('injected: connection refused'), 4);
    await boot(rig);
    const s = await rig.vipStatus();
    expect(s.holder).toBeDefined();
    const { metrics } = rig.controllers[0]!;
    expect(await metrics.registry.getSingleMetricAsString('heartline_controller_api_requests_total')).toMatch(
      /verb="patch-status",kind="[A-Za-z]+",result="error"} \d/,
    );
    expect(await metrics.registry.getSingleMetricAsString('controller_runtime_reconcile_total')).toContain(
      'result="error"',
    );
  });

  it('an address a VIP may still be bound at is not given to another VIP until it moved (held-address index)', async () => {
    rig = new Rig({
      nodes: ['node-a', 'node-b', 'node-c'],
      vips: [{ name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['node-a'] }],
    });
    await boot(rig);
    await rig.advance(500);
    const first = await rig.vipStatus('vip1');
    expect(first.holder).toBe('node-a');
    const vip1 = (await rig.object('VirtualIP', 'vip1'))!;
    // vip1 moves to .101 while held at .100; vip2 asks for .100 at once.
    rig.api.apply('VirtualIP', { ...vip1, spec: { ...(vip1.spec as object), address: '198.18.0.101/24' } });
    rig.api.apply('VirtualIP', {
      metadata: { name: 'vip2', namespace: NS },
      spec: { clusterRef: { name: 'web' }, address: '198.18.0.100/24', preferredNodes: ['node-b'] },
    });
    // node-a keeps vip1 bound at .100 (the simulated agents keep their configuration): vip2 waits.
    for (let i = 0; i < 10; i++) {
      await rig.advance(300);
      expect((await rig.vipStatus('vip1')).holder).toBe('node-a');
      expect(cond(await rig.vipStatus('vip2'), 'AddressConflict')).toMatchObject({
        status: 'True',
        reason: 'AwaitingRelease',
      });
    }
    // vip1 bound again elsewhere, at a new epoch and its new address: .100 is free for vip2.
    await rig.agents.get('node-a')!.crash();
    await rig.until(async () => ((await rig.vipStatus('vip1')).epoch ?? 0) > (first.epoch ?? 0));
    await rig.until(
      async () => cond(await rig.vipStatus('vip2'), 'AddressConflict')?.reason === 'NoConflict',
    );
    expect(cond(await rig.vipStatus('vip2'), 'AddressConflict')?.status).toBe('False');
  });

  it('marks an invalid VirtualIP with the field and the fix', async () => {
    rig = new Rig({ nodes: ['node-a'] });
    rig.api.apply('VirtualIP', {
      metadata: { name: 'bad', namespace: NS },
      spec: { clusterRef: { name: 'web' }, address: '198.18.0.300/24' },
    });
    rig.addController('c1');
    await rig.until(async () => Boolean((await rig.vipStatus('bad')).phase));
    const ready = cond(await rig.vipStatus('bad'), 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'InvalidVirtualIP' });
    expect(ready?.message).toContain('address');
    expect(rig.api.events.find((e) => e.reason === 'InvalidVirtualIP')?.type).toBe('Warning');
  });

  it('marks a VirtualIP whose HACluster does not exist', async () => {
    rig = new Rig({ nodes: ['node-a'] });
    rig.api.apply('VirtualIP', {
      metadata: { name: 'orphan', namespace: NS },
      spec: { clusterRef: { name: 'nope' }, address: '198.18.0.110/24' },
    });
    rig.addController('c1');
    await rig.until(async () => Boolean((await rig.vipStatus('orphan')).phase));
    const s = await rig.vipStatus('orphan');
    expect(s.phase).toBe('Pending');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'ClusterNotFound' });
    expect(cond(s, 'Ready')?.message).toContain('spec.clusterRef.name');
  });

  it('a bad auth Secret: AuthSecretInvalid and a Warning, the witness keeps voting with its keys, a failover still completes', async () => {
    rig = new Rig({
      nodes: ['node-a', 'node-b'],
      quorum: 'witness',
      vips: [{ name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['node-a', 'node-b'] }],
    });
    await boot(rig);
    await rig.advance(500);
    expect(rig.holders()).toEqual(['node-a']);
    const key1 = (await rig.api.get('Secret', { namespace: NS, name: 'auth' }))!.data as Record<
      string,
      string
    >;
    // A 16-byte key added and made active.
    rig.api.apply('Secret', {
      metadata: { name: 'auth', namespace: NS },
      data: { ...key1, '2': Buffer.alloc(16, 3).toString('base64') },
    } as never);
    const hac = (await rig.object('HACluster', 'web'))!;
    rig.api.apply('HACluster', {
      metadata: { name: 'web', namespace: NS },
      spec: { ...(hac.spec as object), authSecretRef: { name: 'auth', activeKeyId: '2' } },
    } as never);
    await rig.until(async () => {
      const c = (await rig.object('HACluster', 'web'))!.status as Record<string, unknown>;
      return cond(c, 'AuthSecretInvalid')?.status === 'True';
    });
    const status = (await rig.object('HACluster', 'web'))!.status as Record<string, unknown>;
    expect(cond(status, 'AuthSecretInvalid')?.message).toContain(
      'Secret lab/auth: data["2"]: key 2 has 16 bytes',
    );
    expect(cond(status, 'AuthSecretInvalid')?.message).toContain('running keys (1, active 1) stay in use');
    expect(cond(status, 'Ready')).toMatchObject({ status: 'True', reason: 'Quorate' });
    await rig.controllers[0]!.controller.flushEvents();
    expect(rig.api.events.filter((e) => e.reason === 'AuthSecretInvalid')).toHaveLength(1);
    expect(rig.holders()).toEqual(['node-a']);
    // The witness still votes with the running key: node-b takes over from a crashed node-a
    // (one node and the witness make the quorum of three).
    await rig.agents.get('node-a')!.crash();
    await rig.until(async () => (await rig.vipStatus()).holder === 'node-b');
    expect(rig.holders()).toEqual(['node-b']);
    // Fixed: the condition clears, with a Normal Event.
    rig.api.apply('Secret', {
      metadata: { name: 'auth', namespace: NS },
      data: { ...key1, '2': Buffer.alloc(32, 3).toString('base64') },
    } as never);
    await rig.until(async () => {
      const c = (await rig.object('HACluster', 'web'))!.status as Record<string, unknown>;
      return cond(c, 'AuthSecretInvalid')?.status === 'False';
    });
    await rig.controllers[0]!.controller.flushEvents();
    expect(rig.api.events.filter((e) => e.reason === 'AuthSecretValid')).toHaveLength(1);
  });

  it('reads only the Secrets its HAClusters name, each by name; a renamed reference moves the watch', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    rig.api.apply('Secret', {
      metadata: { name: 'someone-elses', namespace: NS },
      data: { token: Buffer.from('not for Heartline').toString('base64') },
    } as never);
    await boot(rig);
    const secretWatches = () => rig.api.watchesOf('Secret').map((w) => `${w.namespace}|${w.fieldSelector}`);
    expect(secretWatches()).toEqual([`${NS}|metadata.name=auth`]);
    expect(rig.controllers[0]!.controller.ready()).toMatchObject({ ready: true });
    // The reference moves to a new Secret: the old watch stops, the new one starts, and the
    // cluster keeps running (the witness keys come from the new Secret).
    const data = (await rig.api.get('Secret', { namespace: NS, name: 'auth' }))!.data;
    rig.api.apply('Secret', { metadata: { name: 'auth-2', namespace: NS }, data } as never);
    const hac = (await rig.object('HACluster', 'web'))!;
    rig.api.apply('HACluster', {
      metadata: { name: 'web', namespace: NS },
      spec: { ...(hac.spec as object), authSecretRef: { name: 'auth-2', activeKeyId: '1' } },
    } as never);
    await rig.advance(500);
    expect(secretWatches()).toEqual([`${NS}|metadata.name=auth-2`]);
    const status = (await rig.object('HACluster', 'web'))!.status as Record<string, unknown>;
    expect(cond(status, 'AuthSecretInvalid')?.status ?? 'False').toBe('False');
    // No HACluster left: no Secret is watched.
    rig.api.delete('HACluster', { namespace: NS, name: 'web' });
    await rig.advance(200);
    expect(secretWatches()).toEqual([]);
  });

  it('an auth Secret it may not read (its watch never delivers) is reported after 10 s, naming the RBAC fix', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    rig.addController('c1', {
      // As a watch the API server keeps refusing: no event, ever.
      wrap: (api) =>
        new Proxy(api, {
          get: (t, p) =>
            p === 'watch'
              ? (...a: Parameters<typeof api.watch>) =>
                  a[0] === 'Secret' ? { stop: () => {} } : t.watch(...a)
              : (Reflect.get(t, p) as unknown),
        }),
    });
    const invalid = async () =>
      cond(
        ((await rig.object('HACluster', 'web'))!.status ?? {}) as Record<string, unknown>,
        'AuthSecretInvalid',
      );
    await rig.advance(5000);
    expect(await invalid()).toBeUndefined(); // no false alarm while the watch may still deliver
    await rig.until(async () => (await invalid())?.status === 'True', 10_000);
    expect((await invalid())?.message).toContain(
      'grant the heartline-controller ServiceAccount get, list and watch on secrets with resourceNames [auth] in namespace lab',
    );
  });

  it('the auth Secret deleted: the witness keeps voting with the running keys', async () => {
    rig = new Rig({
      nodes: ['node-a', 'node-b'],
      quorum: 'witness',
      vips: [{ name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['node-a', 'node-b'] }],
    });
    await boot(rig);
    await rig.advance(500);
    rig.api.delete('Secret', { namespace: NS, name: 'auth' });
    await rig.until(async () => {
      const c = (await rig.object('HACluster', 'web'))!.status as Record<string, unknown>;
      return cond(c, 'AuthSecretInvalid')?.status === 'True';
    });
    const status = (await rig.object('HACluster', 'web'))!.status as Record<string, unknown>;
    expect(cond(status, 'AuthSecretInvalid')?.message).toContain('Secret "auth" not found in namespace lab');
    await rig.agents.get('node-a')!.crash();
    await rig.until(async () => (await rig.vipStatus()).holder === 'node-b');
    expect(rig.holders()).toEqual(['node-b']);
  });
});
