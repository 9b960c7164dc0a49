/**
 * The agent's Prometheus metrics (own registry, so tests can run several agents in one
 * process). Every family is listed, with its labels and their bounds, in docs/metrics.md
 * (a unit test keeps the two equal).
 *
 * Label bounds: `vip` is a VirtualIP (namespace/name) of this node's HACluster, and appears
 * only on the node that binds it or runs its Resources; `member`/`peer` is a member of the
 * cluster (at most 256); `resource` is a Resource name; every other label has a fixed set
 * of values. Nothing is labelled per datagram, per address or per epoch.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MemberView } from '../core/member.js';
import { TakeoverCause } from '../core/messages.js';
import type { Millis } from '../core/ports.js';
import { DROP_REASONS, type DropCounters } from '../core/wire/index.js';
import type { PeerLinkSample } from '../runtime/peer-link-stats.js';

/** Why a candidacy started, as the `reason` label of the failover metrics. */
export const FAILOVER_REASONS: Readonly<Record<TakeoverCause, string>> = {
  [TakeoverCause.HolderDead]: 'HolderDead',
  [TakeoverCause.Released]: 'Released',
  [TakeoverCause.Unheld]: 'Unheld',
  [TakeoverCause.Renew]: 'Renew',
};

export const LIVENESS_STATES = ['unknown', 'alive', 'warn', 'dead'] as const;

/** What the collect-time metrics read from the running member (undefined: no member runs). */
export interface MemberSource {
  view(): MemberView;
  /** Votes a lease or a takeover needs, self included. */
  quorumSize(): number;
  now(): Millis;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly heartbeatsSent: Counter<'kind' | 'result'>;
  readonly heartbeatsReceived: Counter<'kind'>;
  readonly holder: Gauge<'vip'>;
  readonly epoch: Gauge<'vip'>;
  readonly failovers: Counter<'vip' | 'reason'>;
  readonly failoverDuration: Histogram<'reason'>;
  readonly bindDuration: Histogram;
  readonly resourceOps: Counter<'vip' | 'resource' | 'operation' | 'result'>;
  readonly peerHeartbeats: Counter<'peer'>;
  readonly peerMissed: Counter<'peer'>;
  readonly peerRtt: Histogram<'peer'>;
  readonly addressRefused: Counter<'vip'>;

  constructor(
    counters: () => DropCounters | undefined,
    member: () => MemberSource | undefined = () => undefined,
  ) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'heartline_agent_' });
    this.heartbeatsSent = new Counter({
      name: 'heartline_datagrams_sent_total',
      help: 'Datagrams sent, by message kind and whether the kernel took them.',
      labelNames: ['kind', 'result'],
      registers: [r],
    });
    this.heartbeatsReceived = new Counter({
      name: 'heartline_datagrams_received_total',
      help: 'Datagrams received and accepted (authenticated, fresh), by message kind.',
      labelNames: ['kind'],
      registers: [r],
    });
    new Gauge({
      name: 'heartline_datagrams_dropped_total',
      help: 'Datagrams dropped, by reason (counter semantics; exported from the wire codec).',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        const c = counters();
        if (!c) return;
        for (const reason of DROP_REASONS) this.set({ reason }, c.get(reason));
      },
    });
    this.holder = new Gauge({
      name: 'heartline_vip_bound',
      help: '1 while this node has the VIP bound.',
      labelNames: ['vip'],
      registers: [r],
    });
    this.epoch = new Gauge({
      name: 'heartline_vip_epoch',
      help: 'Epoch at which this node holds the VIP.',
      labelNames: ['vip'],
      registers: [r],
    });
    this.failovers = new Counter({
      name: 'heartline_vip_acquisitions_total',
      help: 'VIPs this node took over (quorum of acks reached), by why it asked (HolderDead, Released, Unheld, Renew).',
      labelNames: ['vip', 'reason'],
      registers: [r],
    });
    this.failoverDuration = new Histogram({
      name: 'heartline_failover_duration_seconds',
      help: 'From deciding to take a VIP (e.g. its holder declared dead) to its address bound here, by why.',
      labelNames: ['reason'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    this.bindDuration = new Histogram({
      name: 'heartline_bind_duration_seconds',
      help: 'From the bind command to the address being in the kernel.',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers: [r],
    });
    this.resourceOps = new Counter({
      name: 'heartline_resource_operations_total',
      help: 'Resource starts, stops and health checks on this node, by outcome (success, failure).',
      labelNames: ['vip', 'resource', 'operation', 'result'],
      registers: [r],
    });
    this.peerHeartbeats = new Counter({
      name: 'heartline_peer_heartbeats_received_total',
      help: 'Heartbeats received and authenticated from each peer.',
      labelNames: ['peer'],
      registers: [r],
    });
    this.peerMissed = new Counter({
      name: 'heartline_peer_heartbeats_missed_total',
      help: 'Heartbeat intervals with nothing heard from a peer of the same life, counted when it is heard again.',
      labelNames: ['peer'],
      registers: [r],
    });
    this.peerRtt = new Histogram({
      name: 'heartline_peer_rtt_seconds',
      help: 'From sending a heartbeat to the peer echoing it (prompt while this node holds VIPs).',
      labelNames: ['peer'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [r],
    });
    this.addressRefused = new Counter({
      name: 'heartline_vip_address_conflicts_total',
      help: 'Binds refused because another VirtualIP holds the same address on this node (should stay 0).',
      labelNames: ['vip'],
      registers: [r],
    });
    // Read from the member at scrape time: always current, and a member or VIP that is gone
    // disappears from the output with it.
    new Gauge({
      name: 'heartline_members_alive',
      help: 'Members this node hears as alive or warn, itself included (the votes it can reach).',
      registers: [r],
      collect() {
        this.reset();
        const m = member();
        if (!m) return;
        const v = m.view();
        this.set(1 + v.members.filter((p) => p.liveness === 'alive' || p.liveness === 'warn').length);
      },
    });
    new Gauge({
      name: 'heartline_quorum_size',
      help: 'Votes a lease or a takeover needs, this node included (1 with quorum: ignore).',
      registers: [r],
      collect() {
        this.reset();
        const m = member();
        if (m) this.set(m.quorumSize());
      },
    });
    new Gauge({
      name: 'heartline_member_liveness',
      help: '1 for the state (unknown, alive, warn, dead) each peer is in as this node sees it, 0 for the others.',
      labelNames: ['member', 'state'],
      registers: [r],
      collect() {
        this.reset();
        const m = member();
        if (!m) return;
        for (const p of m.view().members)
          for (const state of LIVENESS_STATES)
            this.set({ member: p.id, state }, p.liveness === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'heartline_vip_lease_remaining_seconds',
      help: 'Time left on the quorum lease of each VIP this node holds (renewed every interval; 0 or below: released).',
      labelNames: ['vip'],
      registers: [r],
      collect() {
        this.reset();
        const m = member();
        if (!m) return;
        const now = m.now();
        for (const h of m.view().holdings)
          this.set({ vip: h.vip }, Number.isFinite(h.leaseExpiry) ? (h.leaseExpiry - now) / 1000 : 0);
      },
    });
  }

  /**
   * The cluster's VIPs: each gets its move counters (reasons HolderDead and Released) at 0, so
   * that Prometheus sees the first move as an increase (a series born at 1 shows none).
   */
  vipsConfigured(vips: readonly string[]): void {
    for (const vip of vips)
      for (const reason of ['HolderDead', 'Released']) this.failovers.inc({ vip, reason }, 0);
  }

  /** A VIP is being bound here: its Resources' operation counters start at 0 (see vipsConfigured). */
  resourcesBinding(vip: string, resources: readonly string[]): void {
    for (const resource of resources)
      for (const operation of ['start', 'stop', 'check'])
        for (const result of ['success', 'failure'])
          this.resourceOps.inc({ vip, resource, operation, result }, 0);
  }

  /** A peer's heartbeat (see PeerLinkStats). */
  peerHeartbeat(s: PeerLinkSample): void {
    this.peerHeartbeats.inc({ peer: s.peer });
    if (s.missed > 0) this.peerMissed.inc({ peer: s.peer }, s.missed);
    else this.peerMissed.inc({ peer: s.peer }, 0); // the series exists from the first heartbeat
    if (s.rttMs !== undefined) this.peerRtt.observe({ peer: s.peer }, s.rttMs / 1000);
  }
}
