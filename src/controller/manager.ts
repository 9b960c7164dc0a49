/**
 * The controller's manager, after controller-runtime's: one Runnable that owns what the
 * reconcilers share and nothing of what they decide. It keeps the informer cache synced
 * (leader and standby alike, so the standby is ready), runs leader election on the
 * LeaseLock, and while leading hands queued keys to a few workers, each key to one worker
 * at a time, with a periodic resync of every object as the level-based safety net.
 *
 * A reconciler is registered per kind. It returns `{ requeueAfterMs }` to run again later
 * (not an error: no backoff) and throws for a failure (retried with per-key backoff).
 */
import type { Logger } from 'pino';
import type { ApiKind, ApiSource, Clock, LeaseLock, Millis } from '../core/ports.js';
import { ObjectCache, objectKey, splitId, type CacheChange } from '../runtime/object-cache.js';
import { LeaderElector } from './leader-election.js';
import type { ControllerMetrics, ReconcileOutcome } from './metrics.js';
import { WorkQueue } from './work-queue.js';

/** What a reconcile asks of the manager: nothing (done), or another pass after a delay. */
export interface ReconcileResult {
  requeueAfterMs?: Millis;
}

export interface Reconciler {
  /** The kind it reconciles; its keys are that kind's cache keys (`namespace/name`). */
  readonly kind: ApiKind;
  /** Brings one object (which may be gone from the cache) to what it should be. */
  reconcile(id: string, log: Logger): Promise<ReconcileResult>;
  /** Drops leader-only state; runs when leadership ends, after the workers stopped. */
  stopLeading?(): Promise<void>;
}

export interface ManagerComponents {
  api: ApiSource;
  lease: LeaseLock;
  clock: Clock;
  log: Logger;
  metrics: Pick<
    ControllerMetrics,
    'leader' | 'reconciled' | 'workQueue' | 'setQueue' | 'maxConcurrentReconciles' | 'activeWorkers'
  >;
}

export interface ManagerInit {
  leaseDurationMs: Millis;
  renewDeadlineMs: Millis;
  renewPeriodMs: Millis;
  resyncMs: Millis;
  workers: number;
  /** A reconcile running longer than this makes the manager unhealthy. Default 120 000 ms. */
  stuckReconcileMs?: Millis;
  /**
   * A worker yields to the event loop after this many reconciles in a row (default 16), see
   * `yieldToEventLoop`.
   */
  reconcilesPerYield?: number;
  /**
   * Lets I/O callbacks run. A reconcile that writes nothing completes without waiting for I/O,
   * so without a yield a sweep over 1,000 unchanged VIPs would hold the event loop from start to
   * end, and the answers to the status writes of the VIPs that did change (queued before it,
   * urgent) would wait behind it. Default: setImmediate.
   */
  yieldToEventLoop?: () => Promise<void>;
  /** Every cache change, leader or not (enqueue is a no-op while not leading). */
  onChange: (change: CacheChange) => void;
  /** Runs on becoming leader, before any key is queued. */
  onStartedLeading?: () => void;
  /** Runs when leadership ended, after the reconcilers' `stopLeading`. */
  onStoppedLeading?: () => void;
  /** Runs on stop after leadership ended, before the cache stops (e.g. to flush Events). */
  onStopping?: () => Promise<void>;
}

/** Default number of concurrent reconcile workers. */
export const DEFAULT_WORKERS = 8;

const keyOf = (kind: ApiKind, id: string) => `${kind}|${id}`;

/** The work queue's name in the workqueue_* metrics (one queue for every kind). */
export const QUEUE_NAME = 'heartline-controller';

/** A reconciler's name in the controller_runtime_* metrics, as controller-runtime names controllers: the kind in lower case. */
export const controllerName = (kind: ApiKind) => kind.toLowerCase();

function splitKey(key: string): { kind: ApiKind; ns: string | undefined; name: string; id: string } {
  const [kind, id = ''] = key.split('|') as [ApiKind, string];
  return { kind, ...splitId(id), id };
}

export class Manager {
  readonly cache: ObjectCache;
  private readonly elector: LeaderElector;
  private readonly reconcilers = new Map<ApiKind, Reconciler>();
  private queue: WorkQueue | undefined;
  private workers: Promise<void> | undefined;
  private resync: { stop(): void } | undefined;
  /** Keys being reconciled, with when each started (liveness). */
  private readonly inFlight = new Map<string, Millis>();
  private stopped = false;
  private readonly running = new AbortController();
  private electorRun: Promise<void> | undefined;
  private electorExited: string | undefined;

  constructor(
    private readonly c: ManagerComponents,
    private readonly init: ManagerInit,
  ) {
    if (!Number.isInteger(init.workers) || init.workers < 1) {
      throw new Error(
        `controller workers: ${String(init.workers)} is not a positive integer; use e.g. ${DEFAULT_WORKERS}`,
      );
    }
    this.cache = new ObjectCache(
      c.api,
      (ch) => init.onChange(ch),
      (kind) => c.log.info({ kind }, 'cache synced'),
    );
    this.elector = new LeaderElector(
      { lock: c.lease, clock: c.clock, logger: c.log },
      {
        leaseDurationMs: init.leaseDurationMs,
        renewDeadlineMs: init.renewDeadlineMs,
        retryPeriodMs: init.renewPeriodMs,
        onStartedLeading: () => this.startLeading(),
        onStoppedLeading: () => this.stopLeading(),
      },
    );
  }

  /** Registers the reconciler of its kind (before `start`). */
  register(r: Reconciler): void {
    this.reconcilers.set(r.kind, r);
    const controller = controllerName(r.kind);
    this.c.metrics.maxConcurrentReconciles.set({ controller }, this.init.workers);
    this.c.metrics.activeWorkers.set({ controller }, 0);
  }

  get isLeader(): boolean {
    return this.elector.isLeader();
  }

  /**
   * Queues one object for its kind's reconciler; a no-op while not leading. `urgent` keys go
   * before ordinary ones (WorkQueue): an observed change of holder is written before a sweep.
   */
  enqueue(kind: ApiKind, id: string, urgent = false): void {
    this.queue?.add(keyOf(kind, id), urgent);
  }

  /** Urgent keys waiting, in flight or deferred (0 while not leading): Events wait for them. */
  urgentBacklog(): number {
    return this.queue?.urgentBacklog ?? 0;
  }

  /** Ready once every watch delivered its initial list (leader and standby alike). */
  ready(): { ready: boolean; reason: string } {
    if (this.stopped) return { ready: false, reason: 'stopping' };
    const pending = [...this.cache.unsyncedKinds(), ...this.cache.unsyncedNamed()];
    if (pending.length > 0)
      return { ready: false, reason: `waiting for the initial list of ${pending.join(', ')}` };
    return { ready: true, reason: this.isLeader ? 'leader' : 'standby' };
  }

  /**
   * Liveness: the election loop still runs and turns (no lease call hung, a leader renews),
   * and no reconcile is stuck. Unhealthy means a restart helps: the standby takes over.
   */
  liveness(): { healthy: boolean; reason: string } {
    if (this.stopped) return { healthy: true, reason: 'stopping' };
    if (this.electorExited !== undefined)
      return { healthy: false, reason: `leader election stopped: ${this.electorExited}` };
    const now = this.c.clock.now();
    const election = this.elector.liveness(now);
    if (!election.healthy) return election;
    const stuckMs = this.init.stuckReconcileMs ?? 120_000;
    for (const [key, since] of this.inFlight) {
      if (now - since > stuckMs)
        return {
          healthy: false,
          reason: `reconcile of ${key.replace('|', ' ')} running for ${Math.round(now - since)} ms (> ${stuckMs} ms)`,
        };
    }
    return election;
  }

  /** Starts leader election; the caller has started the cache's watches. */
  start(): void {
    this.electorRun = this.elector.run(this.running.signal).then(
      () => {
        if (!this.stopped) this.electorExited = 'the election loop returned';
      },
      (err: unknown) => {
        this.electorExited = (err as Error).message;
        this.c.log.error({ err }, 'leader election failed');
      },
    );
  }

  /** Ends leadership (releasing the lease, so the standby takes over at once), then stops the cache. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.running.abort(new Error('controller stopping'));
    await this.electorRun;
    await this.init.onStopping?.();
    this.cache.stop();
  }

  // ------------------------------------------------------------------------- leadership

  private startLeading(): void {
    if (this.stopped) return;
    this.c.metrics.leader.set(1);
    this.init.onStartedLeading?.();
    const queue = new WorkQueue(this.c.clock, { metrics: this.c.metrics.workQueue(QUEUE_NAME) });
    this.queue = queue;
    this.c.metrics.setQueue(QUEUE_NAME, queue);
    this.workers = Promise.all(Array.from({ length: this.init.workers }, () => this.runWorker(queue))).then(
      () => undefined,
    );
    this.enqueueAll();
    this.resync = this.c.clock.every(this.init.resyncMs, () => this.enqueueAll());
  }

  private async stopLeading(): Promise<void> {
    this.c.metrics.leader.set(0);
    this.resync?.stop();
    this.resync = undefined;
    this.queue?.shutDown();
    await this.workers;
    this.queue = undefined;
    this.c.metrics.setQueue(QUEUE_NAME, undefined);
    this.workers = undefined;
    for (const r of this.reconcilers.values()) await r.stopLeading?.();
    this.init.onStoppedLeading?.();
    this.c.log.info('leader-only work stopped');
  }

  private enqueueAll(): void {
    for (const kind of this.reconcilers.keys())
      for (const o of this.cache.list(kind)) this.enqueue(kind, objectKey(o));
  }

  // ------------------------------------------------------------------------- workers

  private async runWorker(queue: WorkQueue): Promise<void> {
    const perYield = this.init.reconcilesPerYield ?? 16;
    const yieldNow = this.init.yieldToEventLoop ?? (() => new Promise<void>((r) => setImmediate(r)));
    let inARow = 0;
    for (;;) {
      if (++inARow > perYield) {
        inARow = 0;
        await yieldNow();
      }
      const key = await queue.get();
      if (key === undefined) return;
      const { kind, ns, name, id } = splitKey(key);
      const log = this.c.log.child({ reconcile: kind, namespace: ns, name });
      const started = this.c.clock.now();
      this.inFlight.set(key, started);
      const controller = controllerName(kind);
      this.c.metrics.activeWorkers.inc({ controller });
      let result: ReconcileOutcome = 'success';
      try {
        const reconciler = this.reconcilers.get(kind);
        if (!reconciler) throw new Error(`no reconciler registered for kind ${kind} (key ${id})`);
        const r = await reconciler.reconcile(id, log);
        queue.forget(key);
        if (r.requeueAfterMs !== undefined) {
          result = 'requeue_after';
          // A deferred urgent key (its status write waits for the rate limit) stays urgent.
          queue.addAfter(key, r.requeueAfterMs, queue.takenUrgent(key));
        }
      } catch (err) {
        result = 'error';
        const delay = queue.addRateLimited(key);
        log.warn(
          { err, retryInMs: delay, retries: queue.retries(key) },
          'reconcile failed; retrying with backoff',
        );
      } finally {
        this.inFlight.delete(key);
        queue.done(key);
        this.c.metrics.activeWorkers.dec({ controller });
        this.c.metrics.reconciled(controller, result, this.c.clock.now() - started);
      }
    }
  }
}
