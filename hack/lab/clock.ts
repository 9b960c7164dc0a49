/**
 * The lab's one clock. Every timestamp the lab records (probes, address samples, fault times)
 * is `labNow()` of the process that runs the experiment: `performance.timeOrigin +
 * performance.now()`, i.e. milliseconds that read like Unix time but advance monotonically
 * (NTP steps after the process started do not move it).
 *
 * Child processes (the prober) stamp records with their own `labNow()`, and the parent maps
 * them onto its clock with an offset measured by `syncRound` exchanges over the child's
 * stdin/stdout (NTP-style: offset = midpoint of the parent's send/receive times minus the
 * child's reading; error at most half the round trip of the best exchange).
 */
export function labNow(): number {
  return performance.timeOrigin + performance.now();
}

/** One clock exchange: the parent's send and receive times around the child's reading. */
export interface SyncExchange {
  sent: number;
  received: number;
  child: number;
}

/** Offset to add to a child's timestamps to put them on the parent's clock, and its error bound. */
export interface ClockOffset {
  offsetMs: number;
  errorMs: number;
}

/** Picks the exchange with the smallest round trip and derives the offset from it. */
export function offsetFrom(exchanges: readonly SyncExchange[]): ClockOffset {
  let best: SyncExchange | undefined;
  for (const e of exchanges) {
    if (!best || e.received - e.sent < best.received - best.sent) best = e;
  }
  if (!best) throw new Error('clock sync: no exchange completed; the child did not answer on stdout');
  return { offsetMs: (best.sent + best.received) / 2 - best.child, errorMs: (best.received - best.sent) / 2 };
}
