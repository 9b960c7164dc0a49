/**
 * `heartline status` (`kubectl heartline status`): a cluster at a glance, like Pacemaker's
 * crm_mon or Heartbeat's cl_status. Pure: it renders API objects (and what the agents' own
 * endpoints said, when reachable) as text; src/cli/commands/ops.ts fetches them.
 */
import type { ApiObject } from '../core/ports.js';
import { MOVE_TO_ANNOTATION, nodeStandby } from '../runtime/cluster-config.js';

/** What one agent's endpoints said (GET /readyz and, when allowed, /metrics). */
export interface AgentLive {
  /** Where it was asked, e.g. https://198.18.0.11:9694. */
  url: string;
  /** Unreachable: why (connection refused, timeout, ...). */
  error?: string;
  ready?: boolean;
  /** /readyz's text, e.g. "member node-a running". */
  reason?: string;
  /** Seconds left on the quorum lease of each VIP it holds ("namespace/name"), from /metrics. */
  leaseLeft?: Map<string, number>;
  /** VIPs it has bound ("namespace/name"), from /metrics. */
  bound?: Set<string>;
  /** Why /metrics was not read (e.g. it needs a verified certificate to send a token). */
  metricsNote?: string;
}

export interface StatusInput {
  clusters: ApiObject[];
  vips: ApiObject[];
  nodes: ApiObject[];
  /** By node name; absent: not asked (--no-live). */
  live?: Map<string, AgentLive>;
  now: Date;
}

interface Cond {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Member {
  name: string;
  state: string;
  incarnation?: number;
  lastSeen?: string;
}
interface ClusterStatus {
  members?: Member[];
  quorum?: { state: string; have: number; need: number };
  conditions?: Cond[];
  membership?: { generation: number; members: string[] };
  summary?: { members: string; vips: string };
}
interface VipStatus {
  holder?: string;
  epoch?: number;
  since?: string;
  phase?: string;
  conditions?: Cond[];
  lastFailover?: { from?: string; to?: string; reason: string; durationMs?: number; time?: string };
  failoverCount?: number;
}

/** "3s", "4m", "2h", "5d" ago, like kubectl's AGE. */
export function ago(iso: string | undefined, now: Date): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Columns padded to the widest cell, two spaces apart, like kubectl get. */
export function table(rows: string[][], indent = '  '): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) =>
      (indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).trimEnd(),
    )
    .join('\n');
}

const cond = (conds: Cond[] | undefined, type: string) => conds?.find((c) => c.type === type);
const nsName = (o: ApiObject) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;

/** The crm_mon-like text for every HACluster in `input` (their VIPs, members and failovers). */
export function renderStatus(input: StatusInput): string {
  const { now } = input;
  const out: string[] = [];
  const nodes = new Map(input.nodes.map((n) => [n.metadata.name, n]));
  if (input.clusters.length === 0) return 'No HACluster found.\n';
  for (const c of input.clusters) {
    const st = (c.status ?? {}) as ClusterStatus;
    const ns = c.metadata.namespace ?? 'default';
    const vips = input.vips.filter(
      (v) =>
        (v.metadata.namespace ?? 'default') === ns &&
        (v.spec as { clusterRef?: { name?: string } } | undefined)?.clusterRef?.name === c.metadata.name,
    );
    const spec = (c.spec ?? {}) as {
      quorum?: string;
      autoFailback?: boolean;
      heartbeat?: { intervalMs?: number; deadMs?: number };
    };
    const q = st.quorum;
    const ready = cond(st.conditions, 'Ready');
    out.push(
      `HACluster ${ns}/${c.metadata.name}: ${ready?.status === 'True' ? 'Ready' : `NOT READY (${ready?.reason ?? 'no status yet'})`}`,
    );
    out.push(
      `  quorum ${q ? `${q.state} (${q.have} votes, ${q.need} needed)` : 'unknown'}, policy ${spec.quorum ?? 'majority'}` +
        ` · members ${st.summary?.members ?? '?'} alive · VIPs ${st.summary?.vips ?? '?'} held` +
        ` · heartbeat ${spec.heartbeat?.intervalMs ?? '?'}/${spec.heartbeat?.deadMs ?? '?'} ms` +
        ` · autoFailback ${spec.autoFailback ? 'on' : 'off'}` +
        (st.membership ? ` · member set generation ${st.membership.generation}` : ''),
    );
    for (const cd of st.conditions ?? []) {
      const bad =
        (cd.type === 'Ready' && cd.status !== 'True') ||
        (cd.type !== 'Ready' && cd.status === 'True' && cd.type !== 'Bound');
      if (bad) out.push(`  ! ${cd.type}: ${cd.reason ?? ''}: ${cd.message ?? ''}`);
    }

    // Members.
    const holds = new Map<string, string[]>();
    for (const v of vips) {
      const h = ((v.status ?? {}) as VipStatus).holder;
      if (h) holds.set(h, [...(holds.get(h) ?? []), v.metadata.name]);
    }
    const names = st.members?.map((m) => m.name) ?? st.membership?.members ?? [];
    const rows: string[][] = [['MEMBER', 'STATE', 'INCARNATION', 'LAST-SEEN', 'STANDBY', 'HOLDS', 'AGENT']];
    for (const name of names) {
      const m = st.members?.find((x) => x.name === name);
      const node = nodes.get(name);
      const standby = node
        ? (node.spec as { unschedulable?: boolean } | undefined)?.unschedulable
          ? 'cordoned'
          : nodeStandby(node)
            ? 'yes'
            : '-'
        : 'no Node';
      rows.push([
        name,
        m?.state ?? 'unknown',
        m?.incarnation !== undefined ? String(m.incarnation) : '-',
        m?.lastSeen ? `${ago(m.lastSeen, now)} ago` : m?.state === 'alive' ? 'now' : '-',
        standby,
        holds.get(name)?.join(',') ?? '-',
        agentText(input.live?.get(name)),
      ]);
    }
    out.push('', table(rows));

    // VIPs.
    const vrows: string[][] = [
      ['VIP', 'ADDRESS', 'HOLDER', 'EPOCH', 'PHASE', 'READY', 'SINCE', 'LEASE-LEFT', 'FAILOVERS'],
    ];
    const notes: string[] = [];
    for (const v of [...vips].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      const s = (v.status ?? {}) as VipStatus;
      const r = cond(s.conditions, 'Ready');
      const lease = s.holder ? input.live?.get(s.holder)?.leaseLeft?.get(nsName(v)) : undefined;
      vrows.push([
        v.metadata.name,
        (v.spec as { address?: string } | undefined)?.address ?? '?',
        s.holder ?? '<none>',
        s.epoch !== undefined ? String(s.epoch) : '-',
        s.phase ?? '-',
        r?.status ?? '-',
        s.since ? ago(s.since, now) : '-',
        lease !== undefined ? `${lease.toFixed(2)}s` : '-',
        String(s.failoverCount ?? 0),
      ]);
      if (r && r.status !== 'True')
        notes.push(`  ! ${v.metadata.name}: ${r.reason ?? ''}: ${r.message ?? ''}`);
      const target = v.metadata.annotations?.[MOVE_TO_ANNOTATION];
      if (target)
        notes.push(
          `  > ${v.metadata.name}: moved to ${target} (${MOVE_TO_ANNOTATION}); it stays there while ${target} is usable. Clear: kubectl heartline move ${v.metadata.name} --clear`,
        );
      // Two members claiming one VIP (live view): say so loudly.
      const claims = [...(input.live ?? [])].filter(([, a]) => a.bound?.has(nsName(v))).map(([n]) => n);
      if (claims.length > 1)
        notes.push(`  !! ${v.metadata.name}: bound on ${claims.join(' and ')} (live view)`);
    }
    out.push('', vips.length ? table(vrows) : '  (no VirtualIP)');
    const metricsNote = [...(input.live?.values() ?? [])].find((a) => a.metricsNote)?.metricsNote;
    if (metricsNote) notes.push(`  (LEASE-LEFT: ${metricsNote})`);
    if (notes.length) out.push(...notes);

    // Last failovers, newest first.
    const moves = vips
      .map((v) => ({ v, f: ((v.status ?? {}) as VipStatus).lastFailover }))
      .filter((x): x is { v: ApiObject; f: NonNullable<VipStatus['lastFailover']> } => x.f !== undefined)
      .sort((a, b) => Date.parse(b.f.time ?? '') - Date.parse(a.f.time ?? ''));
    if (moves.length) {
      out.push('', '  Last failovers:');
      const frows = moves.map(({ v, f }) => [
        f.time ? `${ago(f.time, now)} ago` : '-',
        v.metadata.name,
        `${f.from || '<none>'} -> ${f.to || '<none>'}`,
        f.reason,
        f.durationMs !== undefined ? `${f.durationMs} ms without a holder` : '',
      ]);
      out.push(table(frows, '    '));
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

function agentText(a: AgentLive | undefined): string {
  if (!a) return '-';
  if (a.error) return `unreachable (${a.error})`;
  return a.ready ? 'ready' : `not ready: ${a.reason ?? ''}`;
}

/**
 * The agent metrics `heartline status` reads, from Prometheus text: VIPs bound and the lease
 * time left on each (heartline_vip_bound, heartline_vip_lease_remaining_seconds; label vip).
 */
export function parseAgentMetrics(text: string): { bound: Set<string>; leaseLeft: Map<string, number> } {
  const bound = new Set<string>();
  const leaseLeft = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(heartline_vip_bound|heartline_vip_lease_remaining_seconds)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const vip = /(?:^|,)vip="([^"]*)"/.exec(m[2]!)?.[1];
    const value = Number(m[3]);
    if (vip === undefined || !Number.isFinite(value)) continue;
    if (m[1] === 'heartline_vip_bound') {
      if (value === 1) bound.add(vip);
    } else leaseLeft.set(vip, value);
  }
  return { bound, leaseLeft };
}
