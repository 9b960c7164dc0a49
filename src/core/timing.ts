/**
 * Heartbeat timing (Heartbeat's ha.cf: keepalive, warntime, deadtime, initdead) and the
 * quorum-lease durations derived from it. All values are milliseconds on each member's
 * own monotonic clock.
 */
import type { Millis } from './ports.js';

/** Maximum clock-rate error assumed between any two members' monotonic clocks. */
export const DEFAULT_DRIFT_RATE = 1e-3;

export interface TimingSpec {
  /** Heartbeat period. */
  intervalMs: Millis;
  /** Silence after which a peer is reported late (warn). Default: half way to deadMs. */
  warnMs?: Millis;
  /** Silence after which a peer is declared dead and its VIPs may be taken over. */
  deadMs: Millis;
  /** At start, how long to wait for a peer never heard before declaring it dead. Default: 2 * deadMs. */
  initDeadMs?: Millis;
  /** Lease granted by one echo, counted from the holder's send time. Default: deadMs - intervalMs/2 - margin. */
  leaseMs?: Millis;
  /**
   * Largest forward step a member's monotonic clock may take (a broken or virtualised
   * monotonic source). Added to the voters' margin. Backward steps are not tolerated: the
   * Clock port is monotonic by contract. Default 0.
   */
  maxForwardStepMs?: Millis;
  /** Clock-rate error bound ρ. Default 1e-3. */
  driftRate?: number;
  /**
   * Fence delay budget D: how late (real time) the holder's address may still be on the link
   * after its fence deadline (the lease expiry): netd waking up late, the netlink removal,
   * and the agent-to-netd latency of the last renewal. Added to the voters' margin, so a
   * promise outlasts the address, not only the holder's belief. Default
   * {@link defaultFenceDelayMs}; docs/adr/0036-fence-delay-budget.md.
   */
  fenceDelayMs?: Millis;
}

export interface Timing {
  intervalMs: Millis;
  warnMs: Millis;
  deadMs: Millis;
  initDeadMs: Millis;
  /** L: a holder's grant from one echo lasts until sendTime + leaseMs (holder's clock). */
  leaseMs: Millis;
  /** A voter's promise lasts until receiveTime + leaseMs + marginMs (voter's clock). */
  marginMs: Millis;
  /** How long a restarted voter refuses takeovers (promises of its previous life): leaseMs + marginMs. */
  quietMs: Millis;
  maxForwardStepMs: Millis;
  driftRate: number;
  /** D: the fence delay budget counted in the margin (see {@link TimingSpec.fenceDelayMs}). */
  fenceDelayMs: Millis;
}

/** A timing field is out of range; the message names the field (`heartbeat.<field>`) and the fix. */
export class TimingError extends Error {
  override readonly name = 'TimingError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The four timing fields a user sets (HACluster `spec.heartbeat`), all filled. */
export interface HeartbeatTiming {
  intervalMs: Millis;
  warnMs: Millis;
  deadMs: Millis;
  initDeadMs: Millis;
}

/**
 * The shipped profiles, the one definition: the HACluster defaults (`default`), the
 * documented `fast` profile, the simulator's `--profile` and the lab's clusters all read
 * these. default: safe on any LAN; fast: sub-second failover on quiet, dedicated links;
 * tight: under 200 ms failover, for dedicated links and nodes with CPU to spare
 * (docs/benchmarks.md "Tight profile" has what it was measured to survive).
 */
export const PROFILES = {
  default: { intervalMs: 200, deadMs: 1000, warnMs: 500, initDeadMs: 2000 },
  fast: { intervalMs: 100, deadMs: 300, warnMs: 200, initDeadMs: 1000 },
  tight: { intervalMs: 50, deadMs: 160, warnMs: 100, initDeadMs: 500 },
} as const satisfies Record<string, HeartbeatTiming>;
export type ProfileName = keyof typeof PROFILES;

/**
 * One cross-field rule on the heartbeat fields. The API's CRD rule (CEL) and zod
 * refinement use `holds` and `message` as they are, and {@link deriveTiming} refuses with
 * them, so what the API server admits is what a member runs with.
 */
export interface HeartbeatRule {
  /** The field to blame (and change). */
  field: keyof HeartbeatTiming;
  /** The fields `holds` reads. */
  reads: ReadonlyArray<keyof HeartbeatTiming>;
  /** True when the timing is acceptable. */
  holds: (h: HeartbeatTiming) => boolean;
  /** What is wrong and the fix; names the field as `heartbeat.<field>`. */
  message: string;
}

export const HEARTBEAT_RULES: readonly HeartbeatRule[] = [
  {
    field: 'deadMs',
    reads: ['deadMs', 'intervalMs'],
    holds: (h) => h.deadMs >= 3 * h.intervalMs,
    message: `heartbeat.deadMs must be at least 3 x heartbeat.intervalMs so that one lost heartbeat is not a failure; raise deadMs or lower intervalMs (defaults ${PROFILES.default.deadMs}/${PROFILES.default.intervalMs}, fast profile ${PROFILES.fast.deadMs}/${PROFILES.fast.intervalMs})`,
  },
  {
    // Strictly above the interval: a peer's silence reaches one interval before every
    // heartbeat, so warnMs == intervalMs would report every member late all the time.
    field: 'warnMs',
    reads: ['warnMs', 'intervalMs', 'deadMs'],
    holds: (h) => h.warnMs > h.intervalMs && h.warnMs < h.deadMs,
    message: `heartbeat.warnMs must be above heartbeat.intervalMs and below heartbeat.deadMs; set it in between (default ${PROFILES.default.warnMs} with interval ${PROFILES.default.intervalMs} and dead ${PROFILES.default.deadMs})`,
  },
  {
    field: 'initDeadMs',
    reads: ['initDeadMs', 'deadMs'],
    holds: (h) => h.initDeadMs >= h.deadMs,
    message:
      'heartbeat.initDeadMs must be at least heartbeat.deadMs (a starting member must wait at least as long as a running one); raise initDeadMs, e.g. to 2 x deadMs',
  },
];

/**
 * Margin a voter adds to its promise so that, with clock rates off by at most ρ in either
 * direction, forward steps up to `maxForwardStepMs` on the voter and the holder's fence
 * removing the address up to `fenceDelayMs` after its deadline, the promise outlasts in real
 * time the address bound under every grant the holder derives from the same message.
 * The holder's grant lasts at most L/(1-ρ) real time from the send and the address at most
 * D longer; the voter's promise at least (L + margin - step)/(1+ρ) from the receive, which
 * is after the send. Hence margin >= 2ρL/(1-ρ) + (step + D)(1+ρ) (docs/protocol.md, "Clocks,
 * the fence and the margin"). Rounded up, plus 1 ms for integer rounding of clock readings.
 */
export function leaseMargin(
  leaseMs: Millis,
  driftRate: number,
  maxForwardStepMs: Millis,
  fenceDelayMs: Millis = 0,
): Millis {
  return (
    Math.ceil(
      (2 * driftRate * leaseMs) / (1 - driftRate) + (maxForwardStepMs + fenceDelayMs) * (1 + driftRate),
    ) + 1
  );
}

/**
 * The default fence delay budget: a fifth of the interval, at most 50 ms (default profile
 * 40 ms, fast 20 ms). It comes out of the holder's lease, not the failover time, and a fifth
 * of an interval keeps `leaseMs > 2 * intervalMs` for every timing the API admits
 * (`deadMs >= 3 * intervalMs`). Measured fence lateness: docs/fence.md; decision:
 * docs/adr/0036-fence-delay-budget.md.
 */
export function defaultFenceDelayMs(intervalMs: Millis): Millis {
  return Math.min(50, Math.floor(intervalMs / 5));
}

/** Fills defaults and validates. Throws {@link TimingError} naming the field. */
export function deriveTiming(spec: TimingSpec): Timing {
  const { intervalMs, deadMs } = spec;
  const int = (field: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0)
      throw new TimingError(field, `heartbeat.${field}: must be a positive integer, got ${v}`);
  };
  int('intervalMs', intervalMs);
  int('deadMs', deadMs);
  const warnMs = spec.warnMs ?? Math.round((intervalMs + deadMs) / 2);
  int('warnMs', warnMs);
  const initDeadMs = spec.initDeadMs ?? 2 * deadMs;
  int('initDeadMs', initDeadMs);
  const heartbeat: HeartbeatTiming = { intervalMs, warnMs, deadMs, initDeadMs };
  for (const rule of HEARTBEAT_RULES) {
    if (!rule.holds(heartbeat)) {
      const got = rule.reads.map((f) => `${f} ${heartbeat[f]}`).join(', ');
      throw new TimingError(rule.field, `${rule.message}; got ${got}`);
    }
  }
  const driftRate = spec.driftRate ?? DEFAULT_DRIFT_RATE;
  if (!(driftRate >= 0 && driftRate < 0.01))
    throw new TimingError('driftRate', `heartbeat.driftRate: must be in [0, 0.01), got ${driftRate}`);
  const maxForwardStepMs = spec.maxForwardStepMs ?? 0;
  if (!(Number.isInteger(maxForwardStepMs) && maxForwardStepMs >= 0)) {
    throw new TimingError(
      'maxForwardStepMs',
      `heartbeat.maxForwardStepMs: must be a non-negative integer, got ${maxForwardStepMs}`,
    );
  }
  const fenceDelayMs = spec.fenceDelayMs ?? defaultFenceDelayMs(intervalMs);
  if (!(Number.isInteger(fenceDelayMs) && fenceDelayMs >= 0)) {
    throw new TimingError(
      'fenceDelayMs',
      `heartbeat.fenceDelayMs: must be a non-negative integer, got ${fenceDelayMs}`,
    );
  }
  // Default: voters' promises (lease + margin) end half an interval before peers declare
  // the holder dead, so a candidate's first takeover round is normally acked at once. The
  // fence budget is taken from the lease (the holder lets go earlier), not added to failover.
  const base = deadMs - Math.floor(intervalMs / 2);
  const leaseMs = spec.leaseMs ?? base - leaseMargin(base, driftRate, maxForwardStepMs, fenceDelayMs);
  int('leaseMs', leaseMs);
  if (leaseMs <= 2 * intervalMs) {
    throw new TimingError(
      'leaseMs',
      `heartbeat.leaseMs: must exceed 2 * intervalMs (${2 * intervalMs}): an echo arrives up to one interval after the echoed heartbeat and must outlive the next one; got ${leaseMs} (fence delay budget ${fenceDelayMs} ms), raise deadMs or lower fenceDelayMs`,
    );
  }
  const marginMs = leaseMargin(leaseMs, driftRate, maxForwardStepMs, fenceDelayMs);
  if (leaseMs + marginMs > deadMs) {
    throw new TimingError(
      'leaseMs',
      `heartbeat.leaseMs: lease + margin (${leaseMs} + ${marginMs}) must not exceed deadMs (${deadMs}), or failover waits on promises: lower leaseMs`,
    );
  }
  return {
    intervalMs,
    warnMs,
    deadMs,
    initDeadMs,
    leaseMs,
    marginMs,
    quietMs: leaseMs + marginMs,
    maxForwardStepMs,
    driftRate,
    fenceDelayMs,
  };
}
