/**
 * The controller's Prometheus metrics, in a registry of its own (served by OpsServer).
 */
import { Registry, collectDefaultMetrics, type Counter, type Gauge, type Histogram } from 'prom-client';
import type { Millis } from '../core/ports.js';
import { metricFamilies } from '../ops/metric-families.js';
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
    const f = metricFamilies(this.registry);
    const own = metricFamilies(this.registry, { prefix: 'heartline_controller_' });
    const cluster = metricFamilies(this.registry, { prefix: 'heartline_cluster_', labelNames: ['cluster'] });
    if (init.defaultMetrics)
      collectDefaultMetrics({ register: this.registry, prefix: 'heartline_controller_' });
    this.apiRequests = own.counter(
      'api_requests_total',
      'Kubernetes API requests made by the controller, by verb, kind and result (ok, error).',
      ['verb', 'kind', 'result'],
    );
    this.failovers = f.counter(
      'heartline_failovers_total',
      'VIP moves from one holder to another observed by the controller, by reason.',
      ['reason'],
    );
    this.vipHolder = f.gauge(
      'heartline_vip_holder',
      '1 for the member holding each VIP (label holder), as the controller observes it.',
      ['vip', 'holder'],
    );
    this.quorate = cluster.gauge(
      'quorate',
      '1 when the HACluster has quorum (or quorum: ignore), 0 when lost.',
    );
    this.quorumVotes = cluster.gauge(
      'quorum_votes',
      'Votes reachable (votes="have") and needed (votes="need") per HACluster.',
      ['votes'],
    );
    this.leader = own.gauge('leader', '1 while this controller instance holds the leader Lease.');
    this.statusWritesDeferred = own.counter(
      'status_writes_deferred_total',
      'Status writes postponed to coalesce changes (at most one write per object per interval).',
      ['kind'],
    );
    f.gauge(
      'heartline_vip_unheld_seconds',
      'How long each VIP has had no holder, as the controller observes it (0 while held).',
      ['cluster', 'vip'],
      (g) => {
        g.reset();
        const t = now();
        for (const [vip, v] of vips)
          g.set({ cluster: v.cluster, vip }, v.unheldSince === undefined ? 0 : (t - v.unheldSince) / 1000);
      },
    );
    this.deadSeconds = cluster.gauge(
      'dead_seconds',
      'The HACluster heartbeat deadMs in seconds (alert thresholds are multiples of it).',
    );
    // controller-runtime's and client-go's own families, labelled by controller and by queue.
    const cr = metricFamilies(this.registry, { prefix: 'controller_runtime_', labelNames: ['controller'] });
    const wq = metricFamilies(this.registry, { prefix: 'workqueue_', labelNames: ['name'] });
    this.reconcileTotal = cr.counter(
      'reconcile_total',
      'Total number of reconciliations per controller (result: success, error, requeue, requeue_after).',
      ['result'],
    );
    this.reconcileErrors = cr.counter(
      'reconcile_errors_total',
      'Total number of reconciliation errors per controller.',
    );
    this.reconcileTime = cr.histogram(
      'reconcile_time_seconds',
      'Length of time per reconciliation per controller.',
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    );
    this.maxConcurrentReconciles = cr.gauge(
      'max_concurrent_reconciles',
      'Maximum number of concurrent reconciles per controller (the workers share one queue).',
    );
    this.activeWorkers = cr.gauge('active_workers', 'Number of currently used workers per controller.');
    wq.gauge('depth', 'Current depth of workqueue.', [], (g) => {
      g.reset();
      for (const [name, q] of queues) g.set({ name }, q.length);
    });
    this.queueAdds = wq.counter('adds_total', 'Total number of adds handled by workqueue.');
    this.queueRetries = wq.counter('retries_total', 'Total number of retries handled by workqueue.');
    const queueBuckets = [1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100];
    this.queueWait = wq.histogram(
      'queue_duration_seconds',
      'How long in seconds an item stays in workqueue before being requested.',
      queueBuckets,
    );
    this.queueWork = wq.histogram(
      'work_duration_seconds',
      'How long in seconds processing an item from workqueue takes.',
      queueBuckets,
    );
    wq.gauge(
      'unfinished_work_seconds',
      "How many seconds of work has been done that is in progress and hasn't been observed by work_duration.",
      [],
      (g) => {
        g.reset();
        for (const [name, q] of queues) g.set({ name }, q.inProgress().totalMs / 1000);
      },
    );
    wq.gauge(
      'longest_running_processor_seconds',
      'How many seconds has the longest running processor for workqueue been running.',
      [],
      (g) => {
        g.reset();
        for (const [name, q] of queues) g.set({ name }, q.inProgress().longestMs / 1000);
      },
    );
    this.eventsDropped = own.counter(
      'events_dropped_total',
      'Events not recorded because too many were waiting to be sent (the status was written).',
    );
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
