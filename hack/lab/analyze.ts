/**
 * What a lab run means: pure functions from probe records, address samples and the fault
 * time to failover time, two-holder and no-holder time, lost probes and who answered.
 * All times are on the lab clock (ms, see clock.ts). No I/O, no clock reads.
 *
 * Conventions:
 * - A node "holds" a VIP from the first sample that shows it bound on a live link until the
 *   first later sample that does not. Samples are a step function: each holds until the
 *   node's next sample.
 * - That timeline is an upper bound on two-holder time: the order of two nodes' samples is
 *   known only to within the samples' latencies. `provenOverlap` is the lower bound, the time
 *   the samples prove two nodes held the VIP at the same instant; S1 is judged on it.
 * - A probe's reply time is `t + ms`. Failover and outages are measured on reply times,
 *   i.e. when the client learned the VIP works again.
 */
import type { ProbeRecord } from './prober.js';
import type { AddressSample } from './sampler.js';

export interface Interval {
  from: number;
  to: number;
}

/** A stretch of time during which the set of holders did not change. */
export interface HolderSegment extends Interval {
  /** Nodes holding the VIP on a live link, sorted. */
  holders: string[];
}

/** Total length of `intervals`. */
export function totalMs(intervals: readonly Interval[]): number {
  return intervals.reduce((a, i) => a + (i.to - i.from), 0);
}

/**
 * The default observation window for samples: from the moment every node has reported once
 * (before that, some node's state is unknown) to the last sample of any node.
 */
export function sampleWindow(samples: readonly AddressSample[]): Interval | undefined {
  const first = new Map<string, number>();
  let last = -Infinity;
  for (const s of samples) {
    const f = first.get(s.node);
    if (f === undefined || s.t < f) first.set(s.node, s.t);
    if (s.t > last) last = s.t;
  }
  if (first.size === 0) return undefined;
  return { from: Math.max(...first.values()), to: last };
}

/**
 * Holders of `vip` over `window` (default `sampleWindow(samples)`), as consecutive segments
 * that cover the window exactly; adjacent segments always differ in holders.
 */
export function holderTimeline(
  samples: readonly AddressSample[],
  vip: string,
  window?: Interval,
): HolderSegment[] {
  const w = window ?? sampleWindow(samples);
  if (!w || w.to <= w.from) return [];
  const sorted = [...samples].sort((a, b) => a.t - b.t);
  const holding = new Set<string>();
  const apply = (s: AddressSample): void => {
    if (s.live.includes(vip)) holding.add(s.node);
    else holding.delete(s.node);
  };
  let i = 0;
  while (i < sorted.length && sorted[i]!.t <= w.from) apply(sorted[i++]!);
  const segments: HolderSegment[] = [];
  let cur: HolderSegment = { from: w.from, to: w.to, holders: [...holding].sort() };
  for (; i < sorted.length && sorted[i]!.t < w.to; i++) {
    const s = sorted[i]!;
    apply(s);
    const holders = [...holding].sort();
    if (holders.join(',') === cur.holders.join(',')) continue;
    if (s.t > cur.from) segments.push({ ...cur, to: s.t });
    cur = { from: s.t, to: w.to, holders };
  }
  segments.push(cur);
  // Zero-length changes can leave equal neighbours; merge them.
  const merged: HolderSegment[] = [];
  for (const seg of segments) {
    const prev = merged.at(-1);
    if (prev && prev.holders.join(',') === seg.holders.join(',')) prev.to = seg.to;
    else merged.push({ ...seg });
  }
  return merged;
}

/** Intervals of `timeline` during which at least `min` nodes held the VIP (S1 is broken for min = 2). */
export function atLeast(timeline: readonly HolderSegment[], min: number): Interval[] {
  return mergeIntervals(timeline.filter((s) => s.holders.length >= min));
}

/**
 * Intervals during which at least `min` nodes are *proven* to have held `vip` at once.
 *
 * A sample is stamped when its poll was written (`t`) and read the kernel at some instant in
 * [t, t + lat]. So across a run of consecutive samples of one node that all show the VIP on a
 * live link, the node certainly held it from the latest instant the first read can have
 * happened (`first.t + first.lat`) to the earliest instant the last read can have happened
 * (`last.t`), and the state is assumed constant between two of its samples that agree (a change
 * in between causes an rtnetlink event, hence a sample). Where those certain spans of two nodes
 * overlap, both held the VIP at once whatever the true order of the reads was. An overlap
 * shorter than the samples' timing uncertainty is in `holderTimeline` (the upper bound) and not
 * here: two samples of different nodes a fraction of a millisecond apart do not say which read
 * came first. The sampler's snapshot on change (sampler.ts) polls every other node right after
 * a change is read, so a real overlap longer than about one poll round trip is proven.
 */
export function provenOverlap(
  samples: readonly AddressSample[],
  vip: string,
  window?: Interval,
  min = 2,
): Interval[] {
  const w = window ?? sampleWindow(samples);
  if (!w || w.to <= w.from) return [];
  const byNode = new Map<string, AddressSample[]>();
  for (const s of samples) {
    const xs = byNode.get(s.node);
    if (xs) xs.push(s);
    else byNode.set(s.node, [s]);
  }
  const edges: Array<{ t: number; d: number }> = [];
  for (const xs of byNode.values()) {
    xs.sort((a, b) => a.t - b.t);
    let first: AddressSample | undefined;
    let last: AddressSample | undefined;
    const close = (): void => {
      if (first && last) {
        const from = Math.max(first.t + first.lat, w.from);
        const to = Math.min(last.t, w.to);
        if (to > from) edges.push({ t: from, d: 1 }, { t: to, d: -1 });
      }
      first = last = undefined;
    };
    for (const s of xs) {
      if (s.live.includes(vip)) {
        first ??= s;
        last = s;
      } else close();
    }
    close();
  }
  // Ends before starts at the same instant: touching spans do not overlap.
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  const out: Interval[] = [];
  let n = 0;
  let since = 0;
  for (const e of edges) {
    const before = n;
    n += e.d;
    if (before < min && n >= min) since = e.t;
    else if (before >= min && n < min && e.t > since) out.push({ from: since, to: e.t });
  }
  return mergeIntervals(out);
}

/** Intervals of `timeline` during which nobody held the VIP. */
export function nobody(timeline: readonly HolderSegment[]): Interval[] {
  return mergeIntervals(timeline.filter((s) => s.holders.length === 0));
}

function mergeIntervals(xs: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const x of [...xs].sort((a, b) => a.from - b.from)) {
    const prev = out.at(-1);
    if (prev && x.from <= prev.to) prev.to = Math.max(prev.to, x.to);
    else out.push({ from: x.from, to: x.to });
  }
  return out;
}

/** Probe counts over [from, to) of probe start times (all probes by default). */
export interface ProbeCounts {
  sent: number;
  ok: number;
  lost: number;
  /** Failed probes by error (`connect-timeout`, `ECONNREFUSED`, ...). */
  byError: Record<string, number>;
  /** Successful probes by answering node. */
  byNode: Record<string, number>;
}

export function countProbes(probes: readonly ProbeRecord[], window?: Partial<Interval>): ProbeCounts {
  const c: ProbeCounts = { sent: 0, ok: 0, lost: 0, byError: {}, byNode: {} };
  for (const p of probes) {
    if (window?.from !== undefined && p.t < window.from) continue;
    if (window?.to !== undefined && p.t >= window.to) continue;
    c.sent++;
    if (p.ok) {
      c.ok++;
      const n = p.node ?? '?';
      c.byNode[n] = (c.byNode[n] ?? 0) + 1;
    } else {
      c.lost++;
      const e = p.error ?? 'unknown';
      c.byError[e] = (c.byError[e] ?? 0) + 1;
    }
  }
  return c;
}

/**
 * Client-visible outages: for every run of consecutive failed probes (in start order), the
 * interval from the reply of the last good probe before it (or the first failed probe's start
 * when there is none) to the reply of the first good probe after it (or the last failed
 * probe's end when there is none).
 */
export function outages(probes: readonly ProbeRecord[]): Interval[] {
  const sorted = [...probes].sort((a, b) => a.t - b.t);
  const out: Interval[] = [];
  let lastOk: number | undefined;
  let run: { from: number; lastEnd: number } | undefined;
  for (const p of sorted) {
    if (p.ok) {
      const reply = p.t + p.ms;
      if (run) {
        out.push({ from: run.from, to: reply });
        run = undefined;
      }
      lastOk = Math.max(lastOk ?? -Infinity, reply);
    } else if (!run) {
      run = { from: lastOk ?? p.t, lastEnd: p.t + p.ms };
    } else {
      run.lastEnd = Math.max(run.lastEnd, p.t + p.ms);
    }
  }
  if (run) out.push({ from: run.from, to: run.lastEnd });
  return out;
}

/**
 * The longest client-visible outage after `since` (the fault), counting only its part after
 * `since`: the downtime a client saw because of the fault. 0 when there was none.
 */
export function longestOutageSince(outs: readonly Interval[], since: number): number {
  let longest = 0;
  for (const o of outs) if (o.to >= since) longest = Math.max(longest, o.to - Math.max(o.from, since));
  return longest;
}

export interface Failover {
  faultAt: number;
  /** Node whose good reply came last before the fault (or the caller's `from`). */
  from?: string;
  /** First node other than `from` to reply well after the fault. */
  to?: string;
  /** Reply time of that first good reply minus `faultAt`; undefined when no other node answered. */
  failoverMs?: number;
  /** Reply time of the first good reply from any node after the fault, minus `faultAt`. */
  firstReplyMs?: number;
}

/**
 * Failover time as the client saw it: from the fault to the first good reply from a node
 * other than the one answering before the fault. Pass `from` when the old holder is known
 * (e.g. no probe answered before the fault).
 */
export function failover(probes: readonly ProbeRecord[], faultAt: number, from?: string): Failover {
  const byReply = probes.filter((p) => p.ok).sort((a, b) => a.t + a.ms - (b.t + b.ms));
  let old = from;
  if (old === undefined) {
    for (const p of byReply) if (p.t + p.ms < faultAt) old = p.node;
  }
  const after = byReply.filter((p) => p.t + p.ms >= faultAt);
  const r: Failover = { faultAt };
  if (old !== undefined) r.from = old;
  const first = after[0];
  if (first) r.firstReplyMs = first.t + first.ms - faultAt;
  const moved = after.find((p) => p.node !== old);
  if (moved) {
    if (moved.node !== undefined) r.to = moved.node;
    r.failoverMs = moved.t + moved.ms - faultAt;
  }
  return r;
}

export interface LabRun {
  probes: readonly ProbeRecord[];
  samples: readonly AddressSample[];
  /** VIP address without prefix length, as the sampler reports it. */
  vip: string;
  /** When the fault (or the manual move) was injected. */
  faultAt: number;
  /** Old holder, when known better than "whoever answered last before the fault". */
  from?: string;
  /** Observation window for holder times (default `sampleWindow(samples)`). */
  window?: Interval;
}

export interface LabReport {
  vip: string;
  window: Interval | undefined;
  failover: Failover;
  /** Time with two or more holders on live links (S1 violated), and when. */
  dualHolderMs: number;
  dualHolder: Interval[];
  /**
   * Time the samples prove two or more nodes held the VIP at once (`provenOverlap`), and when:
   * the lower bound, on which S1 is judged. `dualHolderMs` is the upper bound.
   */
  dualHolderProvenMs: number;
  dualHolderProven: Interval[];
  /** Time with no holder, and when. */
  noHolderMs: number;
  noHolder: Interval[];
  /** All probes; `lost` counts every failed one. */
  probes: ProbeCounts;
  /** Probes started at or after the fault. */
  probesAfterFault: ProbeCounts;
  outages: Interval[];
  /** longestOutageSince(outages, faultAt). */
  maxOutageAfterFaultMs: number;
  timeline: HolderSegment[];
}

/** Everything the lab measures about one run. */
export function analyze(run: LabRun): LabReport {
  const window = run.window ?? sampleWindow(run.samples);
  const timeline = window ? holderTimeline(run.samples, run.vip, window) : [];
  const dualHolder = atLeast(timeline, 2);
  const dualHolderProven = window ? provenOverlap(run.samples, run.vip, window) : [];
  const noHolder = nobody(timeline);
  const outs = outages(run.probes);
  return {
    vip: run.vip,
    window,
    failover: failover(run.probes, run.faultAt, run.from),
    dualHolderMs: totalMs(dualHolder),
    dualHolder,
    dualHolderProvenMs: totalMs(dualHolderProven),
    dualHolderProven,
    noHolderMs: totalMs(noHolder),
    noHolder,
    probes: countProbes(run.probes),
    probesAfterFault: countProbes(run.probes, { from: run.faultAt }),
    outages: outs,
    maxOutageAfterFaultMs: longestOutageSince(outs, run.faultAt),
    timeline,
  };
}
