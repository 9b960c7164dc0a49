/**
 * Pure summaries of failover trials: percentiles, per-(configuration, fault) tables and the
 * paired Heartline-fast / keepalived-0.1 s ratio. No I/O; shared by run.ts and plot.ts.
 */

/** One fault and its recovery, as measured by the client (prober) and the sampler. */
export interface TrialResult {
  config: string;
  fault: string;
  /** Round of the interleaved run (trials of different configurations in one round are neighbours in time). */
  round: number;
  /** Lab clock (ms) of the fault. */
  faultAt: number;
  /** Node faulted (the holder before the fault). */
  from: string;
  /** First other node to answer after the fault. */
  to?: string;
  /** Fault to first good reply from another node, ms; undefined if none within the observation window. */
  failoverMs?: number;
  /** Fault to first good reply from any node (the old node answering again counts), ms. */
  firstReplyMs?: number;
  /**
   * From the fault to the recovery step: time the samples prove two or more holders on live
   * links at once, ms (analyze.ts `provenOverlap`).
   */
  dualHolderMs: number;
  /** The same, as sampled: the upper bound, with changes the samples cannot order (absent in older results). */
  dualHolderSampledMs?: number;
  /** Same window: time with no holder, ms. */
  noHolderMs: number;
  /** Same window: probes started that failed, and that succeeded. */
  lostProbes: number;
  okProbes: number;
  /** Same window: the longest client-visible outage (run of failed probes, reply times), ms. */
  maxOutageMs?: number;
  /** Same window: failed probes by error (connect-timeout, ECONNREFUSED, ...). */
  probeErrors?: Record<string, number>;
  /** Same window: good replies that came from the faulted node after another node had answered. */
  oldNodeRepliesAfterFailover: number;
  /** When the client's neighbour entry for the VIP was flushed (ms after the fault; 500 ms after the failover). */
  arpFlushMs?: number;
  /** Length of the fault window (fault to recovery step), ms. */
  faultWindowMs: number;
  recovery: {
    /** What was done: `power-on (addresses cleared) + restart` or `restart daemon`. */
    action: string;
    /** Power-off only: the VIP was still configured on the dead node's down link at power-on. */
    vipLeftOnDeadNode?: boolean;
    /** Recovery window (recovery step to end of observation): two-holder time (proven, and as sampled), no-holder time, lost probes. */
    dualHolderMs: number;
    dualHolderSampledMs?: number;
    noHolderMs: number;
    lostProbes: number;
    /** Holders at the end of the recovery window (the VIP moved back if it is the faulted node). */
    holdersAfter: string[];
    windowMs: number;
  };
  /**
   * Before the fault: one node held the VIP but the client could not reach it for 15 s (its
   * neighbour entry named the previous holder), so the entry was flushed and the wait repeated.
   */
  clientNeighbourFlushed?: boolean;
  /** 1-minute load average when the fault was injected. */
  load1: number;
  /** Set when the trial could not be run (the lab did not reach a stable state); no metrics then. */
  skipped?: string;
}

/** Nearest-rank percentile of an ascending array (q in [0, 1]). NaN when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export interface Summary {
  config: string;
  fault: string;
  trials: number;
  /** Trials with no failover seen within the observation window. */
  noFailover: number;
  skipped: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
  /** Dual-holder time per trial, fault window: mean and max; and trials with any. */
  dualMean: number;
  dualMax: number;
  dualTrials: number;
  /** Dual-holder time in the recovery window: max, and trials with any. */
  recoveryDualMax: number;
  recoveryDualTrials: number;
  noHolderP50: number;
  noHolderMax: number;
  lostP50: number;
  lostMax: number;
  /** Longest client-visible outage per trial: p50, p95, max (NaN for results files without it). */
  outageP50: number;
  outageP95: number;
  outageMax: number;
  recoveryLostMax: number;
  oldNodeReplies: number;
  /** Trials where the VIP ended on the faulted node after recovery (failback). */
  failbacks: number;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const maxOf = (xs: number[]) => (xs.length ? Math.max(...xs) : NaN);
const asc = (xs: number[]) => [...xs].sort((a, b) => a - b);

export function summarize(trials: readonly TrialResult[], config: string, fault: string): Summary {
  const all = trials.filter((t) => t.config === config && t.fault === fault);
  const run = all.filter((t) => !t.skipped);
  const fo = asc(run.filter((t) => t.failoverMs !== undefined).map((t) => t.failoverMs!));
  const dual = run.map((t) => t.dualHolderMs);
  return {
    config,
    fault,
    trials: run.length,
    noFailover: run.filter((t) => t.failoverMs === undefined).length,
    skipped: all.length - run.length,
    p50: percentile(fo, 0.5),
    p95: percentile(fo, 0.95),
    p99: percentile(fo, 0.99),
    max: fo.at(-1) ?? NaN,
    min: fo[0] ?? NaN,
    mean: mean(fo),
    dualMean: mean(dual),
    dualMax: maxOf(dual),
    dualTrials: dual.filter((d) => d > 0).length,
    recoveryDualMax: maxOf(run.map((t) => t.recovery.dualHolderMs)),
    recoveryDualTrials: run.filter((t) => t.recovery.dualHolderMs > 0).length,
    noHolderP50: percentile(asc(run.map((t) => t.noHolderMs)), 0.5),
    noHolderMax: maxOf(run.map((t) => t.noHolderMs)),
    lostP50: percentile(asc(run.map((t) => t.lostProbes)), 0.5),
    lostMax: maxOf(run.map((t) => t.lostProbes)),
    ...outageStats(run),
    recoveryLostMax: maxOf(run.map((t) => t.recovery.lostProbes)),
    oldNodeReplies: run.reduce((a, t) => a + t.oldNodeRepliesAfterFailover, 0),
    failbacks: run.filter(
      (t) => t.recovery.holdersAfter.length === 1 && t.recovery.holdersAfter[0] === t.from,
    ).length,
  };
}

function outageStats(run: readonly TrialResult[]): Pick<Summary, 'outageP50' | 'outageP95' | 'outageMax'> {
  const o = asc(run.filter((t) => t.maxOutageMs !== undefined).map((t) => t.maxOutageMs!));
  return { outageP50: percentile(o, 0.5), outageP95: percentile(o, 0.95), outageMax: o.at(-1) ?? NaN };
}

export interface PairedRatio {
  fault: string;
  numerator: string;
  denominator: string;
  /** Rounds where both configurations produced a failover time. */
  pairs: number;
  /** Median of the per-round ratios numerator / denominator. */
  medianOfRatios: number;
  /** Ratio of the two medians over the same rounds. */
  ratioOfMedians: number;
  /** Rounds where the numerator was faster. */
  numeratorFaster: number;
}

/** Ratio of failover times of `num` over `den`, paired by round (same run, adjacent in time). */
export function pairedRatio(
  trials: readonly TrialResult[],
  fault: string,
  num: string,
  den: string,
): PairedRatio {
  const key = (t: TrialResult) => t.round;
  const a = new Map<number, number>();
  const b = new Map<number, number>();
  for (const t of trials) {
    if (t.fault !== fault || t.skipped || t.failoverMs === undefined) continue;
    if (t.config === num) a.set(key(t), t.failoverMs);
    if (t.config === den) b.set(key(t), t.failoverMs);
  }
  const rounds = [...a.keys()].filter((r) => b.has(r));
  const ratios = asc(rounds.map((r) => a.get(r)! / b.get(r)!));
  const ma = percentile(asc(rounds.map((r) => a.get(r)!)), 0.5);
  const mb = percentile(asc(rounds.map((r) => b.get(r)!)), 0.5);
  return {
    fault,
    numerator: num,
    denominator: den,
    pairs: rounds.length,
    medianOfRatios: percentile(ratios, 0.5),
    ratioOfMedians: ma / mb,
    numeratorFaster: rounds.filter((r) => a.get(r)! < b.get(r)!).length,
  };
}

/** Fixed-width text table. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** Markdown table. */
export function mdTable(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');

/** Rows of the main table (failover distribution, dual / no holder, lost probes) for summaries. */
export function summaryRows(ss: readonly Summary[]): { head: string[]; rows: string[][] } {
  return {
    head: [
      'configuration',
      'fault',
      'n',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'max ms',
      'no failover',
      'dual-holder ms (max; trials)',
      'no-holder ms p50',
      'lost probes p50 / max',
      'client outage ms p50 / p95 / max',
      'replies from old node',
      'recovery dual ms (max; trials)',
      'failback',
    ],
    rows: ss.map((s) => [
      s.config,
      s.fault,
      String(s.trials),
      f0(s.p50),
      f0(s.p95),
      f0(s.p99),
      f0(s.max),
      String(s.noFailover),
      `${f0(s.dualMax)}; ${s.dualTrials}/${s.trials}`,
      f0(s.noHolderP50),
      `${f0(s.lostP50)} / ${f0(s.lostMax)}`,
      `${f0(s.outageP50)} / ${f0(s.outageP95)} / ${f0(s.outageMax)}`,
      String(s.oldNodeReplies),
      `${f0(s.recoveryDualMax)}; ${s.recoveryDualTrials}/${s.trials}`,
      `${s.failbacks}/${s.trials}`,
    ]),
  };
}
