/**
 * How many signature verifications that fail a receiver pays for, per sender and in total,
 * before it drops datagrams unverified (`rate-limited`). Pure: time comes in as an argument.
 *
 * Why this shape (docs/adr/0026-verify-budget.md):
 *
 * - Only a datagram that passed every free check and the cluster HMAC reaches it: the
 *   sender's source address is one of its member's (source binding), the sequence number is
 *   fresh, and whoever sent it holds the cluster key. A flood without the key costs an HMAC
 *   each (about 3 µs) and never touches a budget, so it cannot make us drop anyone's
 *   datagrams.
 * - A verification that **succeeds costs no budget**: a member's own traffic, however fast
 *   (bursts of holdings pages, a release of hundreds of VIPs), is never limited. Only
 *   failures (a forgery, or a member whose new key we have not learnt yet) spend tokens.
 * - Two lanes per sender, because a token bucket cannot tell a forgery from the real
 *   datagram: `current` is a datagram of the sender's authenticated life whose sequence
 *   number is within one replay window above the highest accepted (what the real member
 *   sends next); `new` is everything else (a new life, a number far ahead, a sender never
 *   heard). A forger that does not see the member's traffic cannot guess its current
 *   numbers, so its flood lands in `new` and, once that lane's tokens are spent, is dropped
 *   unverified, while the member's own datagrams, in `current`, are still verified.
 * - Each lane also has a total over all senders, so a flood spoofing every member's address
 *   is bounded too.
 */
import type { MemberId } from '../messages.js';
import type { Millis } from '../ports.js';

/** Which bucket a datagram draws on (see the module comment). */
export type VerifyLane = 'current' | 'new';

export interface VerifyBudgetInit {
  /** Failed verifications per second one sender may cost in each lane. */
  perSenderPerSecond: number;
  /** Failed verifications one sender may cost at once in each lane (the bucket's depth). */
  perSenderBurst: number;
  /** Failed verifications per second of each lane, all senders together. */
  totalPerSecond: number;
  /** Depth of each lane's total bucket. */
  totalBurst: number;
}

/**
 * Datagrams one member may send one receiver in one heartbeat interval, rounded up with
 * headroom: the periodic round (1), up to three extra rounds announcing new holdings (they
 * are spaced at least interval/4 apart: 3 more), a prompt echo or freshness challenge (at
 * most one per 3/4 interval: 4/3), and one takeover request, ack or release: 6.33, so 8.
 * src/core/heartbeat-sender.ts holds the spacing rules. Failures cost tokens, successes do
 * not: this is how fast a member whose every datagram fails (its new member key not yet
 * learnt) is still tried, so it is heard with its first good datagram.
 */
export const DATAGRAMS_PER_INTERVAL = 8;

/** Senders whose failures the total of a lane covers at full rate at once. */
export const TOTAL_SENDERS = 4;

/**
 * The budget for a cluster heartbeating every `intervalMs`: per sender and lane
 * DATAGRAMS_PER_INTERVAL per interval (fast profile, 100 ms: 80 per second; default,
 * 200 ms: 40), a burst of one second of that, and TOTAL_SENDERS times as much per lane in
 * total.
 */
export function verifyBudgetFor(intervalMs: Millis): VerifyBudgetInit {
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be positive, got ${intervalMs}`);
  const perSecond = Math.ceil((DATAGRAMS_PER_INTERVAL * 1000) / intervalMs);
  return {
    perSenderPerSecond: perSecond,
    perSenderBurst: perSecond,
    totalPerSecond: TOTAL_SENDERS * perSecond,
    totalBurst: TOTAL_SENDERS * perSecond,
  };
}

class Bucket {
  tokens: number;
  at: Millis;

  constructor(
    private readonly perMs: number,
    private readonly burst: number,
    now: Millis,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Refills for the time since the last look; true when at least one token is left. */
  has(now: Millis): boolean {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.perMs);
      this.at = now;
    }
    return this.tokens >= 1;
  }

  spend(): void {
    this.tokens = Math.max(0, this.tokens - 1);
  }
}

/**
 * The verification budget of one receiver. For each datagram about to be verified: `allows`
 * (may it be verified now?), then, if its verification failed, `charge`. One per codec; the
 * codec forgets a sender's buckets when the sender leaves the configuration.
 */
export class VerifyBudget {
  readonly init: VerifyBudgetInit;
  readonly #perSender = new Map<MemberId, Record<VerifyLane, Bucket>>();
  readonly #total: Record<VerifyLane, Bucket>;

  constructor(init: VerifyBudgetInit, now: Millis) {
    for (const [k, v] of Object.entries(init)) {
      if (!(Number.isFinite(v) && v > 0))
        throw new RangeError(`verify budget ${k} must be positive, got ${v}`);
    }
    this.init = init;
    const perMs = init.totalPerSecond / 1000;
    this.#total = {
      current: new Bucket(perMs, init.totalBurst, now),
      new: new Bucket(perMs, init.totalBurst, now),
    };
  }

  #sender(sender: MemberId, now: Millis): Record<VerifyLane, Bucket> {
    let b = this.#perSender.get(sender);
    if (!b) {
      const perMs = this.init.perSenderPerSecond / 1000;
      b = {
        current: new Bucket(perMs, this.init.perSenderBurst, now),
        new: new Bucket(perMs, this.init.perSenderBurst, now),
      };
      this.#perSender.set(sender, b);
    }
    return b;
  }

  /** Whether a datagram of `sender` in `lane` may be verified at `now`: both its sender's and the lane's total bucket hold a token. */
  allows(sender: MemberId, lane: VerifyLane, now: Millis): boolean {
    return this.#sender(sender, now)[lane].has(now) && this.#total[lane].has(now);
  }

  /** A verification `allows` let through failed: it costs one token of the sender's lane and of the lane's total. */
  charge(sender: MemberId, lane: VerifyLane): void {
    this.#perSender.get(sender)?.[lane].spend();
    this.#total[lane].spend();
  }

  /** Forgets a sender (it left the configuration). */
  forget(sender: MemberId): void {
    this.#perSender.delete(sender);
  }
}
