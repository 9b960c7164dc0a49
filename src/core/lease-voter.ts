/**
 * The voter's side of quorum leases: what this member promised to whom. A promise to the
 * holder of a VIP lasts until receiveTime + leaseMs + marginMs on this member's clock and
 * is extended only for VIPs this member *knows* the holder holds (from a complete holdings
 * set or from an ack it gave). While a promise is active, the voter acks no other
 * candidate for that VIP; it acks at most one candidate per (vip, epoch).
 */
import { AckRefusal, type Conflict, type Epoch, type Incarnation, type MemberId, type VipId } from './messages.js';
import type { KnownHoldings } from './membership.js';
import type { Millis } from './ports.js';
import type { Timing } from './timing.js';

/** What this voter knows and promised about one VIP. */
export interface VoteRecord {
  epoch: Epoch;
  /** Holder (or acked candidate) at `epoch`; null if none known. */
  holder: MemberId | null;
  holderIncarnation: Incarnation;
  /** End of the promise not to help anyone else take the VIP (this member's clock). */
  promiseUntil: Millis;
  /** The holder gave `epoch` up: the promise is void, the epoch is spent. */
  released: boolean;
}

export interface VoteDecision {
  granted: boolean;
  reason: AckRefusal;
  record: VoteRecord;
}

/** Test-only protocol breakages, to show the simulator catches them. Never set in production. */
export interface UnsafeOptions {
  /** Ack a takeover even while the promise to the current holder is active. */
  ackDuringPromise?: boolean;
  /** Ack a second candidate at the same epoch. */
  ackTwicePerEpoch?: boolean;
  /** Skip the quiet period after a restart. */
  skipQuietPeriod?: boolean;
}

export class VoterTable {
  private readonly records = new Map<VipId, VoteRecord>();

  constructor(
    private readonly self: MemberId,
    private readonly timing: Timing,
    private readonly startedAt: Millis,
    floors: ReadonlyMap<VipId, Epoch> = new Map(),
    private readonly unsafe: UnsafeOptions = {},
  ) {
    for (const [vip, epoch] of floors) this.records.set(vip, this.empty(epoch));
  }

  get(vip: VipId): VoteRecord {
    let r = this.records.get(vip);
    if (!r) {
      r = this.empty(0);
      this.records.set(vip, r);
    }
    return r;
  }

  entries(): IterableIterator<[VipId, VoteRecord]> {
    return this.records.entries();
  }

  /** The current holder as this voter knows it (null if none or released). */
  holderOf(vip: VipId): MemberId | null {
    const r = this.records.get(vip);
    return r && !r.released ? r.holder : null;
  }

  /** End of this member's quiet period after start (it refuses takeovers until then). */
  quietUntil(): Millis {
    return this.startedAt + this.timing.quietMs;
  }

  /**
   * A complete holdings set of `from` was known when its message was received at `now`:
   * extend the promise for every listed VIP that does not conflict with a newer holdership
   * known here, learn newer epochs, and return the conflicts (VIPs `from` must not count a
   * grant from this member for).
   */
  onHoldings(now: Millis, from: MemberId, incarnation: Incarnation, known: KnownHoldings): Conflict[] {
    const conflicts: Conflict[] = [];
    const until = now + this.timing.leaseMs + this.timing.marginMs;
    for (const [vip, epoch] of known.entries) {
      const r = this.get(vip);
      if (epoch > r.epoch) {
        r.epoch = epoch;
        r.holder = from;
        r.holderIncarnation = incarnation;
        r.released = false;
        r.promiseUntil = Math.max(r.promiseUntil, until);
      } else if (epoch === r.epoch && r.holder === from && !r.released) {
        r.holderIncarnation = incarnation;
        r.promiseUntil = Math.max(r.promiseUntil, until);
      } else {
        conflicts.push({ member: from, vip, epoch: r.epoch, holder: r.released ? null : r.holder });
      }
    }
    return conflicts;
  }

  /** Decides a takeover request from `candidate` received at `now`. */
  onTakeover(now: Millis, candidate: MemberId, incarnation: Incarnation, vip: VipId, epoch: Epoch): VoteDecision {
    const r = this.get(vip);
    const refuse = (reason: AckRefusal): VoteDecision => ({ granted: false, reason, record: r });
    if (now < this.quietUntil() && !this.unsafe.skipQuietPeriod) {
      return refuse(AckRefusal.Starting);
    }
    if (epoch < r.epoch) return refuse(AckRefusal.StaleEpoch);
    if (epoch === r.epoch) {
      if (r.holder === candidate && !r.released) {
        r.promiseUntil = Math.max(r.promiseUntil, now + this.timing.leaseMs + this.timing.marginMs);
        return { granted: true, reason: AckRefusal.None, record: r };
      }
      if (!(this.unsafe.ackTwicePerEpoch && !r.released)) {
        return refuse(r.released || r.holder === null ? AckRefusal.StaleEpoch : AckRefusal.OtherCandidate);
      }
    }
    const promised = r.holder !== null && !r.released && r.holder !== candidate && now < r.promiseUntil;
    if (promised && !this.unsafe.ackDuringPromise) return refuse(AckRefusal.PromiseActive);
    r.epoch = epoch;
    r.holder = candidate;
    r.holderIncarnation = incarnation;
    r.released = false;
    r.promiseUntil = Math.max(r.promiseUntil, now + this.timing.leaseMs + this.timing.marginMs);
    return { granted: true, reason: AckRefusal.None, record: r };
  }

  /** `from` released `vip` at `epoch`: its promise is void and the epoch spent. */
  onRelease(now: Millis, from: MemberId, vip: VipId, epoch: Epoch): void {
    const r = this.get(vip);
    if (epoch > r.epoch) {
      // Released an epoch this voter never saw: learn it as spent.
      r.epoch = epoch;
      r.holder = null;
      r.released = true;
      r.promiseUntil = Math.min(r.promiseUntil, now);
      return;
    }
    if (epoch === r.epoch && r.holder === from && !r.released) {
      r.released = true;
      r.promiseUntil = Math.min(r.promiseUntil, now);
    }
  }

  /**
   * `from` restarted (a new incarnation): its previous life swept its addresses before
   * speaking, so holdership of that older life is void.
   */
  onNewLife(now: Millis, from: MemberId, incarnation: Incarnation): void {
    for (const r of this.records.values()) {
      if (r.holder === from && r.holderIncarnation < incarnation && !r.released) {
        r.released = true;
        r.promiseUntil = Math.min(r.promiseUntil, now);
      }
    }
  }

  /**
   * Learns a holdership from a third party (an ack's or conflict's view). Only makes this
   * voter stricter: it never shortens a promise.
   */
  learn(vip: VipId, epoch: Epoch, holder: MemberId | null): void {
    const r = this.get(vip);
    if (epoch <= r.epoch) return;
    r.epoch = epoch;
    r.holder = holder;
    r.holderIncarnation = 0;
    r.released = holder === null;
  }

  /** This member holds `vip` at `epoch` itself: an unbounded promise until it releases. */
  holdSelf(vip: VipId, epoch: Epoch, incarnation: Incarnation): void {
    const r = this.get(vip);
    r.epoch = Math.max(r.epoch, epoch);
    r.holder = this.self;
    r.holderIncarnation = incarnation;
    r.released = false;
    r.promiseUntil = Infinity;
  }

  /** This member gave up `vip` at `epoch`. */
  releaseSelf(now: Millis, vip: VipId, epoch: Epoch): void {
    const r = this.get(vip);
    if (r.epoch === epoch && r.holder === this.self) {
      r.released = true;
      r.promiseUntil = now;
    } else if (epoch > r.epoch) {
      r.epoch = epoch;
      r.holder = null;
      r.released = true;
    }
  }

  private empty(epoch: Epoch): VoteRecord {
    return { epoch, holder: null, holderIncarnation: 0, promiseUntil: -Infinity, released: true };
  }
}
