/** The agent's Prometheus metrics (own registry, so tests can run several agents in one process). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DROP_REASONS, type DropCounters } from '../core/wire/index.js';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly heartbeatsSent: Counter<'kind' | 'result'>;
  readonly heartbeatsReceived: Counter<'kind'>;
  readonly holder: Gauge<'vip'>;
  readonly epoch: Gauge<'vip'>;
  readonly failovers: Counter<'vip' | 'reason'>;
  readonly bindDuration: Histogram;
  readonly quorum: Gauge;
  readonly probes: Counter<'vip' | 'resource' | 'result'>;
  readonly memberLiveness: Gauge<'member' | 'state'>;
  readonly addressRefused: Counter<'vip'>;

  constructor(counters: () => DropCounters | undefined) {
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
      help: 'VIPs this node took over, by reason.',
      labelNames: ['vip', 'reason'],
      registers: [r],
    });
    this.bindDuration = new Histogram({
      name: 'heartline_bind_duration_seconds',
      help: 'From the bind command to the address being in the kernel.',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers: [r],
    });
    this.quorum = new Gauge({
      name: 'heartline_members_alive',
      help: 'Members this node hears (itself included).',
      registers: [r],
    });
    this.probes = new Counter({
      name: 'heartline_health_probes_total',
      help: 'Resource health probes, by result.',
      labelNames: ['vip', 'resource', 'result'],
      registers: [r],
    });
    this.memberLiveness = new Gauge({
      name: 'heartline_member_liveness',
      help: '1 for the state each peer is in, as this node sees it.',
      labelNames: ['member', 'state'],
      registers: [r],
    });
    this.addressRefused = new Counter({
      name: 'heartline_vip_address_conflicts_total',
      help: 'Binds refused because another VirtualIP holds the same address on this node (should stay 0).',
      labelNames: ['vip'],
      registers: [r],
    });
  }
}
