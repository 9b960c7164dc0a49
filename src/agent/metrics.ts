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
import { Registry, collectDefaultMetrics, type Counter, type Gauge, type Histogram } from 'prom-client';
import type { MemberView } from '../core/member.js';
import { TakeoverCause } from '../core/messages.js';
import type { Millis } from '../core/ports.js';
import { DROP_REASONS, type DropCounters } from '../core/wire/index.js';
import { metricFamilies } from '../ops/metric-families.js';
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
    /** The kernel's drops on the heartbeat socket (its receive buffer was full), if known. */
    kernelDrops: () => number | undefined = () => undefined,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'heartline_agent_' });
    const f = metricFamilies(this.registry);
    const vip = metricFamilies(this.registry, { prefix: 'heartline_vip_', labelNames: ['vip'] });
    const peer = metricFamilies(this.registry, { prefix: 'heartline_peer_', labelNames: ['peer'] });
    this.heartbeatsSent = f.counter(
      'heartline_datagrams_sent_total',
      'Datagrams sent, by message kind and whether the kernel took them.',
      ['kind', 'result'],
    );
    this.heartbeatsReceived = f.counter(
      'heartline_datagrams_received_total',
      'Datagrams received and accepted (authenticated, fresh), by message kind.',
      ['kind'],
    );
    f.gauge(
      'heartline_datagrams_dropped_total',
      "Datagrams dropped, by reason (counter semantics): the wire codec's reasons, and receive-buffer for those the kernel dropped before the agent read them (the heartbeat socket's buffer was full).",
      ['reason'],
      (g) => {
        const c = counters();
        if (c) for (const reason of DROP_REASONS) g.set({ reason }, c.get(reason));
        const k = kernelDrops();
        if (k !== undefined) g.set({ reason: 'receive-buffer' }, k);
      },
    );
    this.holder = vip.gauge('bound', '1 while this node has the VIP bound.');
    this.epoch = vip.gauge('epoch', 'Epoch at which this node holds the VIP.');
    this.failovers = vip.counter(
      'acquisitions_total',
      'VIPs this node took over (quorum of acks reached), by why it asked (HolderDead, Released, Unheld, Renew).',
      ['reason'],
    );
    this.failoverDuration = f.histogram(
      'heartline_failover_duration_seconds',
      'From deciding to take a VIP (e.g. its holder declared dead) to its address bound here, by why.',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      ['reason'],
    );
    this.bindDuration = f.histogram(
      'heartline_bind_duration_seconds',
      'From the bind command to the address being in the kernel.',
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
    );
    this.resourceOps = f.counter(
      'heartline_resource_operations_total',
      'Resource starts, stops and health checks on this node, by outcome (success, failure).',
      ['vip', 'resource', 'operation', 'result'],
    );
    this.peerHeartbeats = peer.counter(
      'heartbeats_received_total',
      'Heartbeats received and authenticated from each peer.',
    );
    this.peerMissed = peer.counter(
      'heartbeats_missed_total',
      'Heartbeat intervals with nothing heard from a peer of the same life, counted when it is heard again.',
    );
    this.peerRtt = peer.histogram(
      'rtt_seconds',
      'From sending a heartbeat to the peer echoing it (prompt while this node holds VIPs).',
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    );
    this.addressRefused = vip.counter(
      'address_conflicts_total',
      'Binds refused because another VirtualIP holds the same address on this node (should stay 0).',
    );
    // Read from the member at scrape time: always current, and a member or VIP that is gone
    // disappears from the output with it (no member running: no series).
    const fromMember =
      <L extends string>(set: (g: Gauge<L>, m: MemberSource) => void) =>
      (g: Gauge<L>) => {
        g.reset();
        const m = member();
        if (m) set(g, m);
      };
    f.gauge(
      'heartline_members_alive',
      'Members this node hears as alive or warn, itself included (the votes it can reach).',
      [],
      fromMember((g, m) => {
        const v = m.view();
        g.set(1 + v.members.filter((p) => p.liveness === 'alive' || p.liveness === 'warn').length);
      }),
    );
    f.gauge(
      'heartline_quorum_size',
      'Votes a lease or a takeover needs, this node included (1 with quorum: ignore).',
      [],
      fromMember((g, m) => g.set(m.quorumSize())),
    );
    f.gauge(
      'heartline_member_liveness',
      '1 for the state (unknown, alive, warn, dead) each peer is in as this node sees it, 0 for the others.',
      ['member', 'state'],
      fromMember((g, m) => {
        for (const p of m.view().members)
          for (const state of LIVENESS_STATES) g.set({ member: p.id, state }, p.liveness === state ? 1 : 0);
      }),
    );
    vip.gauge(
      'lease_remaining_seconds',
      'Time left on the quorum lease of each VIP this node holds (renewed every interval; 0 or below: released).',
      [],
      fromMember((g, m) => {
        const now = m.now();
        for (const h of m.view().holdings)
          g.set({ vip: h.vip }, Number.isFinite(h.leaseExpiry) ? (h.leaseExpiry - now) / 1000 : 0);
      }),
    );
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
