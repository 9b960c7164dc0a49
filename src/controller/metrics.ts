/**
 * The controller's Prometheus metrics, in a registry of its own (served by OpsServer).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ControllerMetrics {
  readonly registry: Registry;
  readonly reconcileDuration: Histogram<'kind' | 'result'>;
  readonly apiRequests: Counter<'verb' | 'kind' | 'result'>;
  readonly failovers: Counter<'reason'>;
  readonly vipHolder: Gauge<'vip' | 'holder'>;
  readonly quorate: Gauge<'cluster'>;
  readonly quorumVotes: Gauge<'cluster' | 'votes'>;
  readonly leader: Gauge;
  readonly statusWritesDeferred: Counter<'kind'>;
  readonly eventsDropped: Counter;
  private readonly holders = new Map<string, string>();

  constructor(init: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (init.defaultMetrics)
      collectDefaultMetrics({ register: this.registry, prefix: 'heartline_controller_' });
    this.reconcileDuration = new Histogram({
      name: 'heartline_controller_reconcile_duration_seconds',
      help: 'Time to reconcile one object, by kind and outcome (success, requeue, error).',
      labelNames: ['kind', 'result'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
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
    this.eventsDropped = new Counter({
      name: 'heartline_controller_events_dropped_total',
      help: 'Events not recorded because too many were waiting to be sent (the status was written).',
      registers,
    });
  }

  /** Sets the holder of `vip` (undefined: nobody), removing the previous holder's series. */
  setHolder(vip: string, holder: string | undefined): void {
    const prev = this.holders.get(vip);
    if (prev === holder) return;
    if (prev !== undefined) this.vipHolder.remove({ vip, holder: prev });
    if (holder === undefined) this.holders.delete(vip);
    else {
      this.holders.set(vip, holder);
      this.vipHolder.set({ vip, holder }, 1);
    }
  }

  setQuorum(cluster: string, q: { state: string; have: number; need: number } | undefined): void {
    if (!q) {
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
