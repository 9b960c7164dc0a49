/**
 * CPU cost of the pure core (no wire, no sockets) for M members and V VIPs: every member
 * ticks and hears every peer's heartbeats on a simulated clock; prints milliseconds of CPU
 * per simulated second per member, and the share spent in `tick` versus `receive`.
 * Also reports when every VIP was first held (cold start) and how many each member holds; with
 * `--kill-at S` member 0 crashes (silenced) S simulated seconds after start, and the time from
 * the crash until every VIP it held is held elsewhere is reported.
 * Usage: npx tsx bench/scale/core-cost.ts [--members 63] [--vips 1000] [--seconds 3] [--preferred 100] [--kill-at 5]
 *          [--interval-ms 200] [--dead-ms 1000] [--warmup-s 3] [--delay-ms 0] [--stagger-ms 0] [--seed 1]
 */
import { Member, type Output } from '../../src/core/member.js';
import { AckRefusal } from '../../src/core/messages.js';

const refusalName = new Map(Object.entries(AckRefusal).map(([k, v]) => [v as number, k]));
import { deriveTiming } from '../../src/core/timing.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const M = arg('members', 63);
const V = arg('vips', 1000);
const SECONDS = arg('seconds', 3);
/** VIPs whose preferredNodes is [node-000] (the rest have no preference). */
const PREFERRED = arg('preferred', 100);
const KILL_AT = arg('kill-at', -1) * 1000;
const timing = deriveTiming({ intervalMs: arg('interval-ms', 200), deadMs: arg('dead-ms', 1000) });
/** Start-up window excluded from the CPU figures, seconds. */
const WARMUP_S = arg('warmup-s', 3);
/** One-way delay: uniform in [DELAY/2, 3·DELAY/2] ms (0: next step), seeded. */
const DELAY_MS = arg('delay-ms', 0);
/** Members start spread uniformly over this many ms (nodes booting, load-generator processes). */
const STAGGER_MS = arg('stagger-ms', 0);
let rng = arg('seed', 1) >>> 0 || 1;
const random = (): number => {
  rng ^= rng << 13;
  rng >>>= 0;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  rng >>>= 0;
  return rng / 4294967296;
};
const ids = Array.from({ length: M }, (_, i) => `node-${String(i).padStart(3, '0')}`);
const vips = Array.from({ length: V }, (_, i) => ({
  vip: `bench/vip-${String(i).padStart(4, '0')}`,
  preferredNodes: i < PREFERRED ? [ids[0]!] : [],
}));
const members = ids.map(
  (self) =>
    new Member(
      {
        // Candidacies, abandons and refused acks by reason (digits folded), in the measured window.
        observer: (e) => {
          if (measuredFrom < 0) return;
          if (e.type === 'refused') count(`refused: ${refusalName.get(e.reason) ?? e.reason}`);
          if (e.type !== 'candidate' && e.type !== 'abandon') return;
          count(`${e.type}: ${e.reason.replace(/[0-9]+/g, 'N').slice(0, 80)}`);
        },
      },
      {
        clusterId: 'bench/scale',
        self,
        incarnation: 1,
        members: ids,
        witness: null,
        quorum: 'majority',
        timing,
        vips,
      },
    ),
);
const byId = new Map(members.map((m) => [m.self, m]));
let now = 0;
let queue: Array<{ from: string; to: string; out: Output; at: number }> = [];
const deliverAt = (): number => (DELAY_MS > 0 ? now + DELAY_MS * (0.5 + random()) : now);
let tickMs = 0;
let recvMs = 0;
let delivered = 0;
const kinds = new Map<string, number>();
const count = (k: string) => kinds.set(k, (kinds.get(k) ?? 0) + 1);
function collect(from: Member, outs: Output[]): void {
  for (const o of outs) {
    count(o.type === 'send' ? o.message.kind : o.type === 'unbind' ? `unbind:${o.reason}` : o.type);
    if (o.type === 'send' && o.message.kind === 'heartbeat' && o.message.conflicts.length > 0)
      count('heartbeat with conflicts');
    if (o.type !== 'send') continue;
    if (o.to === '*') {
      for (const id of ids)
        if (id !== from.self) queue.push({ from: from.self, to: id, out: o, at: deliverAt() });
    } else {
      queue.push({ from: from.self, to: o.to, out: o, at: deliverAt() });
    }
  }
}
const startAt = new Map(members.map((m, i) => [m, STAGGER_MS > 0 ? Math.floor((i / M) * STAGGER_MS) : 0]));
const started = new Set<Member>();
const startDue = (): void => {
  for (const m of members) {
    if (started.has(m) || startAt.get(m)! > now) continue;
    started.add(m);
    collect(m, m.start(now));
  }
};
startDue();
let allHeldAt = -1;
let killed: Set<string> | undefined;
let reheldAt = -1;
const heldNow = (): Map<string, string> => {
  const h = new Map<string, string>();
  for (const m of members) {
    if (m === members[0] && killed) continue;
    for (const x of m.view(now).holdings) h.set(x.vip, m.self);
  }
  return h;
};
const stepMs = 10;
const wall0 = performance.now();
let measuredFrom = -1;
for (now = stepMs; now <= (SECONDS + WARMUP_S) * 1000; now += stepMs) {
  startDue();
  const measuring = now > WARMUP_S * 1000; // start-up (initDead, elections)
  if (measuring && measuredFrom < 0) {
    measuredFrom = now;
    tickMs = recvMs = delivered = 0;
    kinds.clear();
  }
  if (KILL_AT > 0 && now >= KILL_AT && !killed) {
    killed = new Set(members[0]!.view(now).holdings.map((h) => h.vip));
  }
  const due = DELAY_MS > 0 ? queue.filter((q) => q.at <= now) : queue;
  queue = DELAY_MS > 0 ? queue.filter((q) => q.at > now) : [];
  if (DELAY_MS > 0) due.sort((a, b) => a.at - b.at);
  const batch = due.filter((q) => !killed || (q.to !== ids[0] && q.from !== ids[0]));
  const t1 = performance.now();
  for (const { to, out } of batch) {
    if (out.type !== 'send') continue;
    const m = byId.get(to)!;
    if (!started.has(m)) continue; // not listening yet
    collect(m, m.receive(now, out.message));
    delivered++;
  }
  const t2 = performance.now();
  for (const m of members)
    if (started.has(m) && !(killed && m === members[0]) && m.wakeAt() <= now) collect(m, m.tick(now));
  const t3 = performance.now();
  if (allHeldAt < 0 || (killed && reheldAt < 0)) {
    const h = heldNow();
    if (allHeldAt < 0 && h.size === V) allHeldAt = now;
    if (killed && reheldAt < 0 && [...killed].every((v) => h.has(v))) reheldAt = now;
  }
  recvMs += t2 - t1;
  tickMs += t3 - t2;
}
const held = new Set<string>();
for (const m of members) for (const h of m.view(now).holdings) held.add(h.vip);
const perMemberHeld = members
  .filter((m) => !(killed && m === members[0]))
  .map((m) => m.view(now).holdings.length);
const simSeconds = (now - measuredFrom) / 1000;
const perMember = (tickMs + recvMs) / simSeconds / M;
console.log(
  JSON.stringify({
    members: M,
    vips: V,
    held: held.size,
    wallSeconds: Math.round(performance.now() - wall0) / 1000,
    simulatedSeconds: simSeconds,
    messagesPerSecondPerMember: Math.round(delivered / simSeconds / M),
    cpuMsPerSecondPerMember: Math.round(perMember * 10) / 10,
    outputs: Object.fromEntries(kinds),
    heldByPreferred: members[0]!.view(now).holdings.length,
    allHeldAtMs: allHeldAt,
    holdingsPerMember: { min: Math.min(...perMemberHeld), max: Math.max(...perMemberHeld) },
    ...(killed
      ? { killedHeld: killed.size, reheldAfterKillMs: reheldAt < 0 ? null : reheldAt - KILL_AT }
      : {}),
    tickShare: Math.round((tickMs / (tickMs + recvMs)) * 100) / 100,
  }),
);
