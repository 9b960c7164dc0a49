/**
 * The voter's side of quorum leases: what this member promised to whom. A promise to the
 * holder of a VIP lasts until receiveTime + leaseMs + marginMs on this member's clock and
 * is extended only for VIPs this member *knows* the holder holds (from a complete holdings
 * set or from an ack it gave). While a promise is active, the voter acks no other
 * candidate for that VIP; it acks at most one candidate per (vip, epoch).
 */
import { laterLife } from './incarnation.js';
import {
  AckRefusal,
  type Conflict,
  type Epoch,
  type Incarnation,
  type MemberId,
  type VipId,
} from './messages.js';
import type { KnownHoldings } from './membership.js';
import type { Millis } from './ports.js';
import type { Timing } from './timing.js';

/**
 * What this voter knows and promised about one VIP. Knowledge (epoch, holder) and the
 * promise are kept apart: knowledge may come from third parties and only makes the voter
 * stricter; the promise is only ever voided by its beneficiary (release, restart) or time.
 */
export interface VoteRecord {
  /** Highest epoch known for the VIP (bound, acked or learned). */
  epoch: Epoch;
  /** Holder (or acked candidate) at `epoch`; null if none known. */
  holder: MemberId | null;
  holderIncarnation: Incarnation;
  /** `epoch` was given up by its holder: it is spent. */
  released: boolean;
  /** Highest epoch known to have been *bound* (claimed in a holder's own holdings). */
  confirmedEpoch: Epoch;
  /** Beneficiary of the active promise, if any. */
  promiseTo: MemberId | null;
  promiseIncarnation: Incarnation;
  promiseEpoch: Epoch;
  /** End of the promise not to help anyone but `promiseTo` take the VIP (this member's clock). */
  promiseUntil: Millis;
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
  /** Count every authenticated message, proven fresh or not (replays after a restart count). */
  skipFreshness?: boolean;
  /** Grant and ack members at any membership generation (no voter rule across a change). */
  skipGenerationRule?: boolean;
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
    // A floor (the VIP's status epoch) is spent, not known bound: it says the epoch was used,
    // not who holds the VIP now. When the controller still bumped it for assignments (removed,
    // docs/adr/0033) a holder could be at a lower epoch, and taking the floor for confirmed hid
    // that holder's claim from a restarted member's election, which then asked for the VIP while
    // it was held (Member's claimant rule reads confirmedEpoch).
    for (const [vip, epoch] of floors) this.records.set(vip, { ...this.empty(epoch), confirmedEpoch: 0 });
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

  /** The current holder (or candidate) as this voter knows it; null if none or released. */
  holderOf(vip: VipId): MemberId | null {
    const r = this.records.get(vip);
    return r && !r.released ? r.holder : null;
  }

  /** End of this member's quiet period after start (it refuses takeovers until then). */
  quietUntil(): Millis {
    return this.startedAt + this.timing.quietMs;
  }

  /** True while this voter must not help anyone but `candidate` take `vip`. */
  promised(now: Millis, vip: VipId, candidate: MemberId): boolean {
    const r = this.get(vip);
    return r.promiseTo !== null && r.promiseTo !== candidate && now < r.promiseUntil;
  }

  /**
   * A complete holdings set of `from` was known when its message was received at `now`:
   * extend the promise for every listed VIP that does not conflict with a newer holdership
   * known here, learn newer epochs, and return the conflicts (VIPs `from` must not count a
   * grant from this member for).
   */
  onHoldings(now: Millis, from: MemberId, incarnation: Incarnation, known: KnownHoldings): Conflict[] {
    const conflicts: Conflict[] = [];
    for (const [vip, epoch] of known.entries) {
      const r = this.get(vip);
      // Same epoch, record released by someone else (a candidate of that epoch that gave up,
      // or an epoch floor with no holder): `from` claims it in its own holdings, so it won
      // that epoch's quorum. Promising it is only stricter; refusing would leave it without
      // this voter's grants and make us chase a VIP that is held. A release by `from` itself
      // stays final (a reordered older heartbeat must not revive it).
      const sameEpochOk = epoch === r.epoch && (r.released ? r.holder !== from : r.holder === from);
      if (epoch > r.epoch || sameEpochOk) {
        r.epoch = epoch;
        r.holder = from;
        r.holderIncarnation = incarnation;
        r.released = false;
        r.confirmedEpoch = Math.max(r.confirmedEpoch, epoch);
        this.promise(now, r, from, incarnation, epoch);
      } else {
        conflicts.push({ member: from, vip, epoch: r.epoch, holder: r.released ? null : r.holder });
      }
    }
    return conflicts;
  }

  /** Decides a takeover request from `candidate` received at `now`. */
  onTakeover(
    now: Millis,
    candidate: MemberId,
    incarnation: Incarnation,
    vip: VipId,
    epoch: Epoch,
  ): VoteDecision {
    const r = this.get(vip);
    const refuse = (reason: AckRefusal): VoteDecision => ({ granted: false, reason, record: r });
    if (now < this.quietUntil() && !this.unsafe.skipQuietPeriod) return refuse(AckRefusal.Starting);
    if (epoch < r.epoch) return refuse(AckRefusal.StaleEpoch);
    if (
      epoch === r.epoch &&
      !(r.holder === candidate && !r.released) &&
      !this.handedTo(now, r, candidate, epoch) &&
      !(this.unsafe.ackTwicePerEpoch && !r.released)
    ) {
      return refuse(r.released || r.holder === null ? AckRefusal.StaleEpoch : AckRefusal.OtherCandidate);
    }
    // Checked on every ack, re-acks included: knowledge learned from third parties may name
    // a holder at this epoch that this voter never promised anything.
    if (this.promised(now, vip, candidate) && !this.unsafe.ackDuringPromise)
      return refuse(AckRefusal.PromiseActive);
    r.epoch = epoch;
    r.holder = candidate;
    r.holderIncarnation = incarnation;
    r.released = false;
    this.promise(now, r, candidate, incarnation, epoch);
    return { granted: true, reason: AckRefusal.None, record: r };
  }

  /**
   * Planned move by this member: it released `vip` and grants `successor` the next `epoch`
   * unasked (Member.handoff). The grant is a promise like any other, but the epoch is recorded
   * as spent with no holder: the successor may never hear of it (a partition, a pause), and this
   * member must not then treat it as the holder. The successor confirms it the usual way, by
   * listing the VIP in its holdings, or by asking for that epoch while the promise lasts.
   */
  handoff(
    now: Millis,
    successor: MemberId,
    incarnation: Incarnation,
    vip: VipId,
    epoch: Epoch,
  ): VoteDecision {
    const r = this.get(vip);
    const refuse = (reason: AckRefusal): VoteDecision => ({ granted: false, reason, record: r });
    if (now < this.quietUntil()) return refuse(AckRefusal.Starting);
    if (epoch <= r.epoch) return refuse(AckRefusal.StaleEpoch);
    if (this.promised(now, vip, successor)) return refuse(AckRefusal.PromiseActive);
    r.epoch = epoch;
    r.holder = null;
    r.holderIncarnation = 0;
    r.released = true;
    this.promise(now, r, successor, incarnation, epoch);
    return { granted: true, reason: AckRefusal.None, record: r };
  }

  /** `r` is a handoff of `epoch` to `candidate` whose promise still runs: it may be re-acked. */
  private handedTo(now: Millis, r: VoteRecord, candidate: MemberId, epoch: Epoch): boolean {
    return r.holder === null && r.promiseTo === candidate && r.promiseEpoch === epoch && now < r.promiseUntil;
  }

  /** `from` released `vip` at `epoch`: a promise to it for that epoch is void, the epoch spent. */
  onRelease(now: Millis, from: MemberId, vip: VipId, epoch: Epoch): void {
    const r = this.get(vip);
    if (r.epoch === epoch && r.holder === from) r.released = true;
    if (r.promiseTo === from && r.promiseEpoch === epoch) r.promiseUntil = Math.min(r.promiseUntil, now);
  }

  /**
   * `from` restarted (a new incarnation): its previous life swept its addresses before
   * speaking, so holdership and promises of that older life are void.
   */
  onNewLife(now: Millis, from: MemberId, incarnation: Incarnation): void {
    for (const r of this.records.values()) {
      if (r.holder === from && laterLife(incarnation, r.holderIncarnation)) r.released = true;
      if (r.promiseTo === from && laterLife(incarnation, r.promiseIncarnation))
        r.promiseUntil = Math.min(r.promiseUntil, now);
    }
  }

  /**
   * Learns a holdership from a third party (an ack's or conflict's view). Only makes this
   * voter stricter (higher epoch); never touches a promise.
   */
  learn(vip: VipId, epoch: Epoch, holder: MemberId | null): void {
    const r = this.get(vip);
    if (epoch <= r.epoch) return;
    // While we hold it, only a confirmed newer holding (onHoldings) displaces us.
    if (r.promiseTo === this.self && r.promiseUntil === Infinity) return;
    r.epoch = epoch;
    r.holder = holder;
    r.holderIncarnation = 0;
    r.released = holder === null;
  }

  /** This member holds `vip` at `epoch` itself: an unbounded promise to itself until it releases. */
  holdSelf(vip: VipId, epoch: Epoch, incarnation: Incarnation): void {
    const r = this.get(vip);
    r.epoch = Math.max(r.epoch, epoch);
    r.holder = this.self;
    r.holderIncarnation = incarnation;
    r.released = false;
    r.confirmedEpoch = Math.max(r.confirmedEpoch, epoch);
    r.promiseTo = this.self;
    r.promiseIncarnation = incarnation;
    r.promiseEpoch = epoch;
    r.promiseUntil = Infinity;
  }

  /** This member gave up `vip` at `epoch` (held or only asked for). */
  releaseSelf(now: Millis, vip: VipId, epoch: Epoch): void {
    this.onRelease(now, this.self, vip, epoch);
  }

  private promise(now: Millis, r: VoteRecord, to: MemberId, incarnation: Incarnation, epoch: Epoch): void {
    // Replacing a promise to someone else keeps its end (max): never shorter than promised.
    // Our own unbounded promise to ourselves is not carried over: we no longer hold it.
    const carried = r.promiseTo === this.self && to !== this.self ? -Infinity : r.promiseUntil;
    r.promiseUntil = Math.max(carried, now + this.timing.leaseMs + this.timing.marginMs);
    r.promiseTo = to;
    r.promiseIncarnation = incarnation;
    r.promiseEpoch = epoch;
  }

  private empty(epoch: Epoch): VoteRecord {
    return {
      epoch,
      holder: null,
      holderIncarnation: 0,
      released: true,
      confirmedEpoch: epoch,
      promiseTo: null,
      promiseIncarnation: 0,
      promiseEpoch: 0,
      promiseUntil: -Infinity,
    };
  }
}
