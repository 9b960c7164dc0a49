/**
 * The manager on its own: reconcilers by kind, `{ requeueAfterMs }` without backoff, and a
 * liveness check that fails when a restart would help (a hung lease call, a stuck reconcile).
 */
import type { Logger } from 'pino';
import type { LeaseLock } from '../../../src/core/ports.js';
import { Manager, type ReconcileResult, type Reconciler } from '../../../src/controller/manager.js';
import { ControllerMetrics } from '../../../src/controller/metrics.js';
import { silentLogger } from '../../../src/ops/log.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { FakeApiSource, FakeLeaseLock, FakeLeaseStore } from '../../fakes/k8s.js';

const NS = 'lab';

class Recorder implements Reconciler {
  readonly kind = 'VirtualIP' as const;
  readonly calls: string[] = [];
  constructor(private readonly answer: (id: string, n: number) => Promise<ReconcileResult>) {}
  reconcile(id: string, _log: Logger): Promise<ReconcileResult> {
    this.calls.push(id);
    return this.answer(id, this.calls.filter((c) => c === id).length);
  }
}

function setup(
  opts: {
    lease?: (l: LeaseLock) => LeaseLock;
    stuckReconcileMs?: number;
    vips?: number;
    yieldToEventLoop?: () => Promise<void>;
  } = {},
) {
  const world = new SimWorld();
  const clock = new SimClock({ world });
  const api = new FakeApiSource();
  for (let i = 1; i <= (opts.vips ?? 1); i++)
    api.apply('VirtualIP', {
      metadata: { name: `vip${i}`, namespace: NS },
      spec: { clusterRef: { name: 'web' }, address: `198.18.0.${100 + i}/24` },
    });
  const metrics = new ControllerMetrics({ now: () => clock.now() });
  const base = new FakeLeaseLock(
    { store: new FakeLeaseStore(), clock },
    { identity: 'c1', leaseDurationSeconds: 15 },
  );
  const manager = new Manager(
    { api, lease: opts.lease ? opts.lease(base) : base, clock, log: silentLogger(), metrics },
    {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      renewPeriodMs: 2000,
      resyncMs: 60_000,
      workers: 2,
      ...(opts.stuckReconcileMs !== undefined ? { stuckReconcileMs: opts.stuckReconcileMs } : {}),
      ...(opts.yieldToEventLoop ? { yieldToEventLoop: opts.yieldToEventLoop } : {}),
      onChange: (ch) =>
        manager.enqueue(ch.kind, `${ch.object.metadata.namespace}/${ch.object.metadata.name}`),
    },
  );
  return { world, clock, manager, metrics };
}

describe('Manager', () => {
  it('a worker yields to the event loop every 16 reconciles (a sweep never holds the loop)', async () => {
    let yields = 0;
    const { world, manager } = setup({
      vips: 64,
      yieldToEventLoop: () => {
        yields++;
        return new Promise((r) => setImmediate(r));
      },
    });
    const rec = new Recorder(() => Promise.resolve({}));
    manager.register(rec);
    manager.cache.watch('VirtualIP');
    manager.start();
    await world.advance(100);
    expect(new Set(rec.calls).size).toBe(64);
    // Two workers share 64 reconciles that never wait for I/O: at least one yield per 16 of them.
    expect(yields).toBeGreaterThanOrEqual(3);
    await manager.stop();
  });

  it('hands each key to its kind reconciler; requeueAfterMs runs it again after the delay, without backoff', async () => {
    const { world, manager, metrics } = setup();
    const rec = new Recorder((_id, n) => Promise.resolve(n < 3 ? { requeueAfterMs: 500 } : {}));
    manager.register(rec);
    manager.cache.watch('VirtualIP');
    manager.start();
    await world.advance(100);
    expect(manager.isLeader).toBe(true);
    const first = rec.calls.length;
    expect(first).toBeGreaterThanOrEqual(1);
    await world.advance(2000);
    expect(rec.calls.filter((c) => c === `${NS}/vip1`)).toHaveLength(3);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(
      /^controller_runtime_reconcile_total\{controller="virtualip",result="requeue_after"\} 2$/m,
    );
    expect(text).toMatch(
      /^controller_runtime_reconcile_total\{controller="virtualip",result="success"\} 1$/m,
    );
    expect(text).toMatch(/^controller_runtime_reconcile_errors_total\{controller="virtualip"\} 0$/m);
    expect(text).toMatch(/^controller_runtime_reconcile_time_seconds_count\{controller="virtualip"\} 3$/m);
    expect(text).toMatch(/^controller_runtime_max_concurrent_reconciles\{controller="virtualip"\} 2$/m);
    expect(text).toMatch(/^controller_runtime_active_workers\{controller="virtualip"\} 0$/m);
    // Three adds (the first and two requeues), each waited for and worked on, none waiting now.
    expect(text).toMatch(/^workqueue_adds_total\{name="heartline-controller"\} 3$/m);
    expect(text).toMatch(/^workqueue_queue_duration_seconds_count\{name="heartline-controller"\} 3$/m);
    expect(text).toMatch(/^workqueue_work_duration_seconds_count\{name="heartline-controller"\} 3$/m);
    expect(text).toMatch(/^workqueue_depth\{name="heartline-controller"\} 0$/m);
    expect(text).toMatch(/^workqueue_retries_total\{name="heartline-controller"\} 0$/m);
    expect(text).not.toMatch(/result="error"/);
    expect(manager.liveness()).toEqual({ healthy: true, reason: 'leading' });
    await manager.stop();
  });

  it('a key handed out urgent and deferred (requeueAfterMs) comes back before a sweep queued meanwhile', async () => {
    const { world, clock, manager } = setup({ vips: 40 });
    let phase: 'start' | 'storm' = 'start';
    const rec = new Recorder((id, n) => {
      if (phase === 'start') return Promise.resolve({});
      // The deferred status write of the moved VIP; the sweep's reconciles take 20 ms each.
      if (id === `${NS}/vip1`) return Promise.resolve(n === 1 ? { requeueAfterMs: 250 } : {});
      return new Promise((r) => clock.after(20, () => r({})));
    });
    manager.register(rec);
    manager.cache.watch('VirtualIP');
    manager.start();
    await world.advance(100);
    expect(new Set(rec.calls).size).toBe(40);
    rec.calls.length = 0;
    phase = 'storm';
    // An observed change of holder: vip1 urgent, deferred by 250 ms (the status rate limit).
    manager.enqueue('VirtualIP', `${NS}/vip1`, true);
    await world.advance(10);
    expect(rec.calls).toEqual([`${NS}/vip1`]);
    // Then a sweep queues the 39 others (a member died): 2 workers x 20 ms, about 400 ms of work.
    for (let i = 2; i <= 40; i++) manager.enqueue('VirtualIP', `${NS}/vip${i}`);
    await world.advance(600);
    const again = rec.calls.indexOf(`${NS}/vip1`, 1);
    expect(again).toBeGreaterThan(0);
    // vip1 came back 250 ms later and went ahead of the sweep's remaining keys.
    expect(rec.calls.length - again - 1).toBeGreaterThanOrEqual(10);
    expect(rec.calls).toHaveLength(41);
    await manager.stop();
  });

  it('a thrown reconcile is retried with growing backoff', async () => {
    const { world, manager, metrics } = setup();
    const rec = new Recorder(() => Promise.reject(new Error('api down')));
    manager.register(rec);
    manager.cache.watch('VirtualIP');
    manager.start();
    await world.advance(1000);
    // 50, 100, 200, 400 ms backoff: 5 attempts within the first second, not one per 50 ms.
    expect(rec.calls.length).toBeGreaterThanOrEqual(4);
    expect(rec.calls.length).toBeLessThanOrEqual(6);
    const text = await metrics.registry.metrics();
    const errors = Number(
      /^controller_runtime_reconcile_errors_total\{controller="virtualip"\} (\d+)$/m.exec(text)?.[1],
    );
    expect(errors).toBe(rec.calls.length);
    expect(text).toContain(
      `controller_runtime_reconcile_total{controller="virtualip",result="error"} ${errors}`,
    );
    expect(text).toContain(`workqueue_retries_total{name="heartline-controller"} ${errors}`);
    await manager.stop();
    // Leadership over: no queue, no depth series.
    expect(await metrics.registry.metrics()).not.toMatch(/^workqueue_depth\{/m);
  });

  it('is unhealthy while a reconcile is stuck beyond stuckReconcileMs, naming the object', async () => {
    const { world, manager, metrics } = setup({ stuckReconcileMs: 30_000 });
    let finish: (() => void) | undefined;
    const rec = new Recorder(() => new Promise<ReconcileResult>((r) => (finish = () => r({}))));
    manager.register(rec);
    manager.cache.watch('VirtualIP');
    manager.start();
    await world.advance(20_000);
    expect(manager.liveness().healthy).toBe(true);
    await world.advance(15_000);
    const l = manager.liveness();
    expect(l.healthy).toBe(false);
    // The stuck reconcile shows in the workqueue and worker gauges.
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^controller_runtime_active_workers\{controller="virtualip"\} 1$/m);
    const longest = Number(
      /^workqueue_longest_running_processor_seconds\{name="heartline-controller"\} (\S+)$/m.exec(text)?.[1],
    );
    expect(longest).toBeGreaterThan(30);
    expect(text).toMatch(/^workqueue_unfinished_work_seconds\{name="heartline-controller"\} \S+$/m);
    expect(l.reason).toMatch(/^reconcile of VirtualIP lab\/vip1 running for \d+ ms \(> 30000 ms\)$/);
    finish?.();
    await world.advance(10);
    expect(manager.liveness().healthy).toBe(true);
    await manager.stop();
  });

  it('is unhealthy when a lease call hangs for longer than the lease', async () => {
    let hang = false;
    const { world, manager } = setup({
      lease: (l) => ({
        identity: l.identity,
        tryAcquireOrRenew: () => (hang ? new Promise<boolean>(() => {}) : l.tryAcquireOrRenew()),
        release: () => l.release(),
        read: () => l.read(),
      }),
    });
    manager.register(new Recorder(() => Promise.resolve({})));
    manager.cache.watch('VirtualIP');
    manager.start();
    await world.advance(100);
    expect(manager.liveness()).toEqual({ healthy: true, reason: 'leading' });
    hang = true;
    await world.advance(10_000);
    expect(manager.liveness().healthy).toBe(true);
    await world.advance(10_000);
    expect(manager.liveness()).toEqual({
      healthy: false,
      reason: expect.stringMatching(/^lease call hung for \d+ ms \(> lease 15000 ms\)$/),
    });
  });

  it('is healthy while stopping, and ready only once the cache synced', async () => {
    const { world, manager } = setup();
    manager.register(new Recorder(() => Promise.resolve({})));
    manager.cache.watch('VirtualIP');
    manager.start();
    await world.advance(100);
    expect(manager.ready()).toEqual({ ready: true, reason: 'leader' });
    await manager.stop();
    expect(manager.ready()).toEqual({ ready: false, reason: 'stopping' });
    expect(manager.liveness().healthy).toBe(true);
  });
});
