/**
 * Three agents wired exactly as in production (Agent → MemberHost → core Member, executor,
 * health monitor), on fakes that pass the same contract suites as the real adapters:
 * FakeApiSource, SimClock/SimWorld, SimNetwork, FakeNetworkDriver, ScriptedServiceRunner.
 * Checks at every 5 ms of simulated time that no two nodes have the VIP bound.
 */
import { describe, expect, it } from '@jest/globals';
import { Agent } from '../../../src/agent/agent.js';
import type { ApiObject } from '../../../src/core/ports.js';
import { silentLogger } from '../../../src/ops/log.js';
import { SimClock } from '../../fakes/clock.js';
import { FakeNetworkDriver } from '../../fakes/network.js';
import { ScriptedServiceRunner } from '../../fakes/services.js';
import { MEMBER_KEY_ANNOTATION } from '../../../src/runtime/cluster-config.js';

import { cluster, KEY, nodeObject, NS, VIP, type Node } from './agent-cluster.js';

describe('Agent on fakes', () => {
  it('elects the preferred node, binds, announces and starts the Resource', async () => {
    const c = cluster();
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    const n1 = c.nodes[0]!;
    expect(n1.driver.calls.some((x) => x.op === 'announce')).toBe(true);
    // The interface was looked up ahead (warm), so the bind is the add with its announcement
    // right behind it, no lookup in between.
    const ops = n1.driver.calls.map((x) => x.op);
    const add = ops.indexOf('add');
    expect(ops.slice(0, add)).toContain('interfaceFor');
    expect(ops.slice(add, add + 2)).toEqual(['add', 'announce']);
    expect(n1.runner.calls.filter((x) => x.op === 'start').map((x) => x.name)).toEqual(['default/web']);
    expect(c.nodes.every((n) => n.agent.ready().ready)).toBe(true);
    expect(c.maxHolders()).toBe(1);
  });

  it('is ready only once its member settled: peers heard and its quiet period as a voter over (a rolling update waits for that)', async () => {
    const c = cluster();
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    // n2 restarts (a new pod): a new life whose voter refuses takeovers for lease + margin.
    const n2 = c.nodes[1]!;
    await n2.agent.stop();
    const again = new Agent(
      {
        clock: n2.clock,
        api: c.api,
        driver: new FakeNetworkDriver(
          { clock: n2.clock },
          { interfaces: [{ name: 'eth0', addresses: [`${n2.ip}/24`] }] },
        ),
        runner: new ScriptedServiceRunner({ clock: n2.clock }),
        log: silentLogger(),
        openTransport: async (port) => c.net.transport(n2.ip, port),
        publishMemberKey: (k) => c.api.annotateNode('n2', { [MEMBER_KEY_ANNOTATION]: k }),
      },
      { node: 'n2', namespace: NS, cluster: 'web', incarnation: 100 },
    );
    again.start();
    const seen: Array<{ at: number; ready: boolean; reason: string }> = [];
    const startedAt = c.world.time;
    for (let t = 0; t < 3000; t += 5) {
      await c.run(5);
      const r = again.ready();
      if (seen.at(-1)?.reason !== r.reason) seen.push({ at: c.world.time - startedAt, ...r });
    }
    // Not ready (configuration, then settling), then ready for good, only after the quiet period.
    expect(seen.map((x) => x.ready)).toEqual([false, false, true]);
    expect(seen[1]!.reason).toMatch(/settling/);
    expect(seen[2]!.at).toBeGreaterThanOrEqual(again.member!.configuration.timing.quietMs);
    await again.stop();
  });

  it('fails over when the holder crashes, and never has two holders', async () => {
    const c = cluster();
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    // Crash n1: its process is gone (no more datagrams), the fence sweeps at once.
    const n1 = c.nodes[0]!;
    c.net.partition([n1.ip], [c.nodes[1]!.ip, c.nodes[2]!.ip]);
    n1.driver.agentDied();
    const crashAt = c.world.time;
    let tookOverAt = -1;
    for (let t = 0; t < 3000 && tookOverAt < 0; t += 5) {
      await c.run(5);
      if (c.holders().length === 1 && c.holders()[0] !== 'n1') tookOverAt = c.world.time;
    }
    expect(tookOverAt).toBeGreaterThan(0);
    // Fast profile: dead 300 ms, so failover well under a second of simulated time.
    expect(tookOverAt - crashAt).toBeLessThan(1000);
    await c.run(1000);
    expect(c.holders()).toHaveLength(1);
    expect(c.maxHolders()).toBe(1);
  });

  it('moves the VIP away from a node put in standby, as a planned release', async () => {
    const c = cluster();
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    nodeObject(c.api, 'n1', '198.18.0.11', { 'heartline.dev/standby': 'true' });
    await c.run(1000);
    expect(c.holders()).toHaveLength(1);
    expect(c.holders()[0]).not.toBe('n1');
    const n1 = c.nodes[0]!;
    // Planned: the Resource was stopped before the address went.
    const stopAt = n1.runner.calls.findIndex((x) => x.op === 'stop');
    expect(stopAt).toBeGreaterThanOrEqual(0);
    expect(n1.driver.calls.some((x) => x.op === 'remove')).toBe(true);
    expect(c.maxHolders()).toBe(1);
  });

  it('a holder whose Node leaves the member set releases (planned), then sends nothing; labelled again, it rejoins', async () => {
    const c = cluster();
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    const n1 = c.nodes[0]!;
    c.api.apply('Node', {
      metadata: { name: 'n1', labels: {} },
      status: { addresses: [{ type: 'InternalIP', address: n1.ip }] },
    } as ApiObject);
    await c.run(1000);
    expect(c.holders()).toHaveLength(1);
    expect(c.holders()[0]).not.toBe('n1');
    expect(n1.runner.calls.some((x) => x.op === 'stop')).toBe(true); // planned: Resources stopped
    expect(n1.agent.member).toBeUndefined();
    // Idle on a node its HACluster does not select: ready, so a DaemonSet rollout completes.
    expect(n1.agent.ready()).toEqual({
      ready: true,
      reason: expect.stringMatching(/^idle: .*n1 is not a member/),
    });
    const sent = () => n1.agent.metrics.registry.getSingleMetricAsString('heartline_datagrams_sent_total');
    const before = await sent();
    await c.run(2000);
    expect(await sent()).toBe(before); // no heartbeat, no takeover request after leaving
    nodeObject(c.api, 'n1', n1.ip);
    await c.run(3000);
    expect(n1.agent.member).toBeDefined();
    expect(c.holders()).toHaveLength(1);
    expect(c.maxHolders()).toBe(1);
  });

  it('only a member reads the auth Secret: a node outside the selector never watches it, and drops it when it leaves', async () => {
    const c = cluster(['n1', 'n2', 'n3']);
    // n4 runs an agent (a DaemonSet reaches every node) but is not labelled into the cluster.
    c.api.apply('Node', {
      metadata: { name: 'n4', labels: {} },
      status: { addresses: [{ type: 'InternalIP', address: '198.18.0.14' }] },
    } as ApiObject);
    const clock = new SimClock({ world: c.world });
    const outsider = new Agent(
      {
        clock,
        api: c.api,
        driver: new FakeNetworkDriver(
          { clock },
          { interfaces: [{ name: 'eth0', addresses: ['198.18.0.14/24'] }] },
        ),
        runner: new ScriptedServiceRunner({ clock }),
        log: silentLogger(),
        openTransport: async (port) => c.net.transport('198.18.0.14', port),
        publishMemberKey: (k) => c.api.annotateNode('n4', { [MEMBER_KEY_ANNOTATION]: k }),
      },
      { node: 'n4', namespace: NS, cluster: 'web', incarnation: 9 },
    );
    c.nodes.forEach((n) => n.agent.start());
    outsider.start();
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    // Three members watch the Secret by name; the outsider does not.
    expect(c.api.watchesOf('Secret')).toHaveLength(3);
    expect(c.api.watchesOf('Secret').every((w) => w.fieldSelector === 'metadata.name=auth')).toBe(true);
    expect(outsider.member).toBeUndefined();
    expect(outsider.ready().reason).toMatch(/n4 is not a member.*label it to match spec.nodeSelector/);
    // Members published their public keys on their Nodes; the outsider wrote nothing.
    const keyOn = async (n: string) =>
      (await c.api.get('Node', { name: n }))?.metadata.annotations?.[MEMBER_KEY_ANNOTATION];
    for (const n of c.nodes) expect(await keyOn(n.name)).toBe(n.agent.publicKey);
    expect(await keyOn('n4')).toBeUndefined();

    // Labelled in: it reads the Secret and joins.
    nodeObject(c.api, 'n4', '198.18.0.14');
    await c.run(2000);
    expect(c.api.watchesOf('Secret')).toHaveLength(4);
    expect(outsider.member).toBeDefined();
    expect(await keyOn('n4')).toBe(outsider.publicKey);

    // Labelled out: it leaves and stops watching the Secret.
    c.api.apply('Node', {
      metadata: { name: 'n4', labels: {} },
      status: { addresses: [{ type: 'InternalIP', address: '198.18.0.14' }] },
    } as ApiObject);
    await c.run(1500);
    expect(outsider.member).toBeUndefined();
    expect(c.api.watchesOf('Secret')).toHaveLength(3);
    expect(c.holders()).toEqual(['n1']);
    expect(c.maxHolders()).toBe(1);
    await outsider.stop();
  });

  it('moves the VIP when the Resource health check keeps failing', async () => {
    const c = cluster(['n1', 'n2', 'n3'], { healthCheck: true });
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    c.nodes[0]!.runner.script('default/web', { probe: 'fail' });
    await c.run(1500);
    expect(c.holders()).toHaveLength(1);
    expect(c.holders()[0]).not.toBe('n1');
    expect(c.maxHolders()).toBe(1);
  });

  it('releases everything on graceful stop and the fence sweeps', async () => {
    const c = cluster();
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    const n1 = c.nodes[0]!;
    const stopping = n1.agent.stop();
    await c.run(500);
    await stopping;
    expect(n1.driver.holds(VIP)).toBe(false);
    await c.run(500);
    expect(c.holders()).toHaveLength(1);
    expect(c.maxHolders()).toBe(1);
  });

  it('reports a failed Resource start in status and Events, and moves the VIP', async () => {
    const c = cluster();
    c.nodes[0]!.runner.script('default/web', { start: { ok: false, detail: 'exit code 1: port in use' } });
    c.nodes.forEach((n) => n.agent.start());
    await c.run(3000);
    expect(c.holders()).toHaveLength(1);
    expect(c.holders()[0]).not.toBe('n1');
    const res = await c.api.get('Resource', { namespace: NS, name: 'web' });
    const nodes = (res!.status as { nodes: Array<{ name: string; state: string; message?: string }> }).nodes;
    expect(nodes.find((n) => n.name === 'n1')).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('port in use'),
    });
    expect(nodes.find((n) => n.name === c.holders()[0])).toMatchObject({ state: 'running' });
    const warning = c.api.events.find((e) => e.reason === 'ResourceStartFailed');
    expect(warning?.note).toContain('port in use');
    expect(c.maxHolders()).toBe(1);
  });

  it('adds the address again when the fence removed it but the lease still holds (late renewal)', async () => {
    const c = cluster();
    c.nodes.forEach((n) => n.agent.start());
    await c.run(2500);
    expect(c.holders()).toEqual(['n1']);
    const n1 = c.nodes[0]!;
    await n1.driver.remove({ cidr: VIP, iface: 'eth0' }); // as the fence does at a passed deadline
    expect(c.holders()).toEqual([]);
    await c.run(500);
    expect(c.holders()).toEqual(['n1']);
    expect(c.api.events.some((e) => e.reason === 'Refenced')).toBe(true);
    expect(c.maxHolders()).toBe(1);
  });

  it('VirtualIPs sharing one address: only the oldest is ever bound, on one node (issue 18, finding 1)', async () => {
    const c = cluster(['n1', 'n2', 'n3', 'n4']);
    // Four names, one address (prefixes differ), each preferring another node; "web" (made
    // first) keeps it. Before the address rule, n2 and n3 ended up holding it together.
    const made = (s: number) => `2026-01-01T00:00:0${s}Z`;
    c.api.apply('VirtualIP', {
      metadata: { name: 'web', namespace: NS, creationTimestamp: made(0) },
      spec: { clusterRef: { name: 'web' }, address: VIP, preferredNodes: ['n1'] },
    });
    ['n2', 'n3', 'n4'].forEach((node, i) =>
      c.api.apply('VirtualIP', {
        metadata: { name: `dup-${i}`, namespace: NS, creationTimestamp: made(i + 1) },
        spec: {
          clusterRef: { name: 'web' },
          address: i === 0 ? '198.18.0.100/32' : VIP,
          preferredNodes: [node],
        },
      }),
    );
    c.nodes.forEach((n) => n.agent.start());
    await c.run(3000);
    expect(c.holders()).toEqual(['n1']);
    expect(c.maxHolders()).toBe(1);
    for (const n of c.nodes) {
      expect(n.agent.boundVips().map((b) => b.vip)).toEqual(n.name === 'n1' ? ['default/web'] : []);
      expect(n.agent.member?.configuration.problems.join('\n')).toContain(
        'VirtualIP default/dup-1: not bound: spec.address: 198.18.0.100 is already the address of VirtualIP default/web',
      );
    }
    // The holder crashes: the address moves with "web", never to a duplicate.
    c.net.partition(
      [c.nodes[0]!.ip],
      c.nodes.slice(1).map((n) => n.ip),
    );
    c.nodes[0]!.driver.agentDied();
    await c.run(2000);
    expect(c.holders()).toHaveLength(1);
    expect(c.maxHolders()).toBe(1);
    const holder = c.nodes.find((n) => n.driver.holds(VIP))!;
    expect(holder.agent.boundVips().map((b) => b.vip)).toEqual(['default/web']);
  });

  it('reports an unusable configuration by name and stays unready', async () => {
    const c = cluster();
    c.api.delete('Secret', { namespace: NS, name: 'auth' });
    c.nodes[0]!.agent.start();
    await c.run(200);
    const r = c.nodes[0]!.agent.ready();
    expect(r.ready).toBe(false);
    expect(r.reason).toMatch(/authSecretRef.*auth.*not found/);
  });

  describe('a bad auth Secret', () => {
    const SHORT = Buffer.alloc(16, 9).toString('base64');
    const KEY2 = Buffer.alloc(32, 8).toString('base64');
    const secret = (data: Record<string, string>) =>
      ({ metadata: { name: 'auth', namespace: NS }, data }) as ApiObject;
    const setActive = async (c: ReturnType<typeof cluster>, id: string) => {
      const hac = (await c.api.get('HACluster', { namespace: NS, name: 'web' }))!;
      const spec = structuredClone(hac.spec) as { authSecretRef: { activeKeyId: string } };
      spec.authSecretRef.activeKeyId = id;
      c.api.apply('HACluster', { metadata: { name: 'web', namespace: NS }, spec } as ApiObject);
    };
    const keyIds = (n: Node) => n.agent.member?.configuration.keys.map((k) => k.id);
    /** Call counts of each node's driver and runner, to look at what came after. */
    const mark = (c: ReturnType<typeof cluster>) =>
      c.nodes.map((n) => ({ driver: n.driver.calls.length, runner: n.runner.calls.length }));
    /** Address adds and removes, Resource starts and stops, since `from`. */
    const moves = (c: ReturnType<typeof cluster>, from: ReturnType<typeof mark>) =>
      c.nodes.flatMap((n, i) => [
        ...n.driver.calls.slice(from[i]!.driver).filter((x) => x.op === 'add' || x.op === 'remove'),
        ...n.runner.calls.slice(from[i]!.runner).filter((x) => x.op === 'start' || x.op === 'stop'),
      ]);

    it('edited in while running: keys and configuration stay, each agent says so in an Event, nothing moves', async () => {
      const c = cluster();
      c.nodes.forEach((n) => n.agent.start());
      await c.run(2500);
      expect(c.holders()).toEqual(['n1']);
      const epoch = c.nodes[0]!.agent.boundVips()[0]!.epoch;
      const calls = mark(c);
      // 1. A 16-byte key added as the active key.
      c.api.apply('Secret', secret({ '1': KEY, '2': SHORT }));
      await setActive(c, '2');
      await c.run(1500);
      expect(c.holders()).toEqual(['n1']);
      expect(c.nodes[0]!.agent.boundVips()[0]!.epoch).toBe(epoch);
      expect(moves(c, calls)).toEqual([]);
      expect(c.nodes.map(keyIds)).toEqual([[1], [1], [1]]);
      expect(c.nodes.every((n) => n.agent.ready().ready)).toBe(true);
      const warnings = c.api.events.filter((e) => e.reason === 'AuthSecretInvalid');
      expect(warnings.map((e) => e.note.split(':')[0]).sort()).toEqual(['n1', 'n2', 'n3']);
      expect(warnings[0]).toMatchObject({
        type: 'Warning',
        regarding: expect.objectContaining({ kind: 'HACluster' }),
      });
      expect(warnings[0]!.note).toContain('data["2"]: key 2 has 16 bytes');
      expect(warnings[0]!.note).toContain('openssl rand -base64 32');
      expect(warnings[0]!.note).toContain('keeping the running configuration (keys 1, active 1)');
      // 2. activeKeyId naming a key the Secret does not hold.
      c.api.apply('Secret', secret({ '1': KEY }));
      await setActive(c, '7');
      await c.run(1500);
      expect(c.holders()).toEqual(['n1']);
      expect(moves(c, calls)).toEqual([]);
      const missing = c.api.events.filter((e) => e.note.includes('key 7 is not in Secret auth'));
      expect(missing).toHaveLength(3);
      // 3. The Secret deleted.
      c.api.delete('Secret', { namespace: NS, name: 'auth' });
      await c.run(1000);
      expect(c.holders()).toEqual(['n1']);
      expect(c.nodes.map(keyIds)).toEqual([[1], [1], [1]]);
      // 4. Fixed: a proper second key, then made active. The new keys apply in place.
      c.api.apply('Secret', secret({ '1': KEY, '2': KEY2 }));
      await setActive(c, '2');
      await c.run(1500);
      expect(c.nodes.map(keyIds)).toEqual([
        [1, 2],
        [1, 2],
        [1, 2],
      ]);
      expect(c.nodes.map((n) => n.agent.member?.configuration.activeKeyId)).toEqual([2, 2, 2]);
      expect(c.holders()).toEqual(['n1']);
      expect(c.nodes[0]!.agent.boundVips()[0]!.epoch).toBe(epoch);
      expect(moves(c, calls)).toEqual([]);
      expect(c.maxHolders()).toBe(1);
    });

    it('at start: the agent waits unready, names the key and the fix, and starts once the Secret is fixed', async () => {
      const c = cluster();
      c.api.apply('Secret', secret({ '1': SHORT }));
      c.nodes.forEach((n) => n.agent.start());
      await c.run(1500);
      expect(c.holders()).toEqual([]);
      for (const n of c.nodes) {
        expect(n.agent.ready()).toEqual({
          ready: false,
          reason: expect.stringContaining('Secret default/auth: data["1"]: key 1 has 16 bytes'),
        });
        expect(n.agent.member).toBeUndefined();
      }
      expect(c.api.events.filter((e) => e.reason === 'AuthSecretInvalid')).toHaveLength(3);
      expect(c.api.events[0]!.note).toContain('the member does not start until this is fixed');
      c.api.apply('Secret', secret({ '1': KEY }));
      await c.run(2500);
      expect(c.nodes.every((n) => n.agent.ready().ready)).toBe(true);
      expect(c.holders()).toEqual(['n1']);
      expect(c.maxHolders()).toBe(1);
    });
  });
});
