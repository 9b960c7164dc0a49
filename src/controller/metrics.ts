/**
 * The controller's Prometheus metrics, in a registry of its own (served by OpsServer).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Millis } from '../core/ports.js';
import type { WorkQueueMetrics } from './work-queue.js';

/** What the workqueue gauges read from the running queue. */
export interface QueueGauges {
  readonly length: number;
  inProgress(): { count: number; totalMs: Millis; longestMs: Millis };
}

/** Outcomes of a reconcile, as controller-runtime's controller_runtime_reconcile_total labels them. */
export type ReconcileOutcome = 'success' | 'error' | 'requeue_after';

export class ControllerMetrics {
  readonly registry: Registry;
  readonly apiRequests: Counter<'verb' | 'kind' | 'result'>;
  readonly failovers: Counter<'reason'>;
  readonly vipHolder: Gauge<'vip' | 'holder'>;
  readonly quorate: Gauge<'cluster'>;
  readonly quorumVotes: Gauge<'cluster' | 'votes'>;
  readonly leader: Gauge;
  readonly deadSeconds: Gauge<'cluster'>;
  readonly statusWritesDeferred: Counter<'kind'>;
  readonly eventsDropped: Counter;
  /** controller-runtime's reconcile metrics, labelled by controller (the kind, lower case). */
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly reconcileTime: Histogram<'controller'>;
  readonly maxConcurrentReconciles: Gauge<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  /** client-go's workqueue metrics, labelled by queue name. */
  private readonly queueAdds: Counter<'name'>;
  private readonly queueRetries: Counter<'name'>;
  private readonly queueWait: Histogram<'name'>;
  private readonly queueWork: Histogram<'name'>;
  private readonly queues = new Map<string, QueueGauges>();
  private readonly holders = new Map<string, string>();
  /** Every VIP reconciled: its cluster and, while it has no holder, since when (clock ms). */
  private readonly vips = new Map<string, { cluster: string; unheldSince: number | undefined }>();
  private readonly now: () => number;

  /**
   * `now`: a monotonic clock in ms (the controller's Clock), for how long a VIP has had no
   * holder. Default: performance.now.
   */
  constructor(init: { defaultMetrics?: boolean; now?: () => number } = {}) {
    this.now = init.now ?? (() => performance.now());
    const vips = this.vips;
    const now = this.now;
    const queues = this.queues;
    this.registry = new Registry();
    const registers = [this.registry];
    if (init.defaultMetrics)
      collectDefaultMetrics({ register: this.registry, prefix: 'heartline_controller_' });
    this.apiRequests = new Counter({
      name: 'heartline_controller_api_requests_total',
      help: 'Kubernetes API requests made by the controller, by verb, kind and result (ok, error).',
      labelNames: ['verb', 'kind', 'result'],
      registers,
    });
    this.failovers = new Counter({
      name: 'heartline_failovers_total',
      help: 'VIP moves from one holder to another observed by the controller, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.vipHolder = new Gauge({
      name: 'heartline_vip_holder',
      help: '1 for the member holding each VIP (label holder), as the controller observes it.',
      labelNames: ['vip', 'holder'],
      registers,
    });
    this.quorate = new Gauge({
      name: 'heartline_cluster_quorate',
      help: '1 when the HACluster has quorum (or quorum: ignore), 0 when lost.',
      labelNames: ['cluster'],
      registers,
    });
    this.quorumVotes = new Gauge({
      name: 'heartline_cluster_quorum_votes',
      help: 'Votes reachable (votes="have") and needed (votes="need") per HACluster.',
      labelNames: ['cluster', 'votes'],
      registers,
    });
    this.leader = new Gauge({
      name: 'heartline_controller_leader',
      help: '1 while this controller instance holds the leader Lease.',
      registers,
    });
    this.statusWritesDeferred = new Counter({
      name: 'heartline_controller_status_writes_deferred_total',
      help: 'Status writes postponed to coalesce changes (at most one write per object per interval).',
      labelNames: ['kind'],
      registers,
    });
    new Gauge({
      name: 'heartline_vip_unheld_seconds',
      help: 'How long each VIP has had no holder, as the controller observes it (0 while held).',
      labelNames: ['cluster', 'vip'],
      registers,
      collect() {
        this.reset();
        const t = now();
        for (const [vip, v] of vips)
          this.set({ cluster: v.cluster, vip }, v.unheldSince === undefined ? 0 : (t - v.unheldSince) / 1000);
      },
    });
    this.deadSeconds = new Gauge({
      name: 'heartline_cluster_dead_seconds',
      help: 'The HACluster heartbeat deadMs in seconds (alert thresholds are multiples of it).',
      labelNames: ['cluster'],
      registers,
    });
    this.reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller (result: success, error, requeue, requeue_after).',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller.',
      labelNames: ['controller'],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller.',
      labelNames: ['controller'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.maxConcurrentReconciles = new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller (the workers share one queue).',
      labelNames: ['controller'],
      registers,
    });
    this.activeWorkers = new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller.',
      labelNames: ['controller'],
      registers,
    });
    new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const [name, q] of queues) this.set({ name }, q.length);
      },
    });
    this.queueAdds = new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue.',
      labelNames: ['name'],
      registers,
    });
    this.queueRetries = new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue.',
      labelNames: ['name'],
      registers,
    });
    const queueBuckets = [1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100];
    this.queueWait = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested.',
      labelNames: ['name'],
      buckets: queueBuckets,
      registers,
    });
    this.queueWork = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes.',
      labelNames: ['name'],
      buckets: queueBuckets,
      registers,
    });
    new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration.",
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const [name, q] of queues) this.set({ name }, q.inProgress().totalMs / 1000);
      },
    });
    new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const [name, q] of queues) this.set({ name }, q.inProgress().longestMs / 1000);
      },
    });
    this.eventsDropped = new Counter({
      name: 'heartline_controller_events_dropped_total',
      help: 'Events not recorded because too many were waiting to be sent (the status was written).',
      registers,
    });
  }

  /**
   * Sets the holder of `vip` (undefined: nobody), removing the previous holder's series;
   * `cluster` is its HACluster (namespace/name).
   */
  setHolder(vip: string, holder: string | undefined, cluster?: string): void {
    const known = this.vips.get(vip);
    const unheldSince = holder !== undefined ? undefined : (known?.unheldSince ?? this.now());
    this.vips.set(vip, { cluster: cluster ?? known?.cluster ?? '', unheldSince });
    const prev = this.holders.get(vip);
    if (prev === holder) return;
    if (prev !== undefined) this.vipHolder.remove({ vip, holder: prev });
    if (holder === undefined) this.holders.delete(vip);
    else {
      this.holders.set(vip, holder);
      this.vipHolder.set({ vip, holder }, 1);
    }
  }

  /** The workqueue metrics of queue `name`, for WorkQueueInit.metrics. */
  workQueue(name: string): WorkQueueMetrics {
    this.queueAdds.inc({ name }, 0);
    this.queueRetries.inc({ name }, 0);
    return {
      added: () => this.queueAdds.inc({ name }),
      retried: () => this.queueRetries.inc({ name }),
      taken: (ms) => this.queueWait.observe({ name }, ms / 1000),
      finished: (ms) => this.queueWork.observe({ name }, ms / 1000),
    };
  }

  /** The running queue `name` for the depth and in-progress gauges (undefined: none runs). */
  setQueue(name: string, queue: QueueGauges | undefined): void {
    if (queue) this.queues.set(name, queue);
    else this.queues.delete(name);
  }

  /**
   * One reconcile of `controller` finished with `outcome` after `ms`; `errors` and every
   * outcome of it start at 0 the first time, so that a first error shows as an increase.
   */
  reconciled(controller: string, outcome: ReconcileOutcome, ms: Millis): void {
    this.reconcileTotal.inc({ controller, result: outcome });
    if (outcome === 'error') this.reconcileErrors.inc({ controller });
    else this.reconcileErrors.inc({ controller }, 0);
    this.reconcileTime.observe({ controller }, ms / 1000);
  }

  /** The VIP is gone: every series of it goes. */
  forgetVip(vip: string): void {
    this.setHolder(vip, undefined);
    this.vips.delete(vip);
  }

  /**
   * Leadership ended: what this replica observed of VIPs stops being current, so their series
   * go (a standby must not report a VIP as unheld, or held, from a stale view).
   */
  forgetAllVips(): void {
    for (const vip of [...this.vips.keys(), ...this.holders.keys()]) this.forgetVip(vip);
  }

  setQuorum(
    cluster: string,
    q: { state: string; have: number; need: number } | undefined,
    deadMs?: number,
  ): void {
    if (deadMs !== undefined) this.deadSeconds.set({ cluster }, deadMs / 1000);
    if (!q) {
      this.deadSeconds.remove({ cluster });
      this.quorate.remove({ cluster });
      this.quorumVotes.remove({ cluster, votes: 'have' });
      this.quorumVotes.remove({ cluster, votes: 'need' });
      return;
    }
    this.quorate.set({ cluster }, q.state === 'lost' ? 0 : 1);
    this.quorumVotes.set({ cluster, votes: 'have' }, q.have);
    this.quorumVotes.set({ cluster, votes: 'need' }, q.need);
  }
}
