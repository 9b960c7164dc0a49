/**
 * Membership and failure detection, like Heartbeat's ha.cf: a peer is `alive` while heard
 * within warnMs, `warn` until deadMs, then `dead`. A peer never heard since this member
 * started is `unknown` until initDeadMs, then `dead`. A later incarnation is a new life (the
 * peer restarted): its per-life state is reset, it is not a replay. A peer heard again after
 * being declared dead is alive again.
 *
 * Freshness (docs/adr/0015): a member that uses {@link Membership.admit} counts a peer's
 * messages only once the peer has proven, in this member's life, that it hears this life (it
 * echoed one of our recent sequence numbers, or acked one of our recent requests). A recording
 * made before we (re)started cannot contain that proof, so replayed traffic counts for nothing.
 */
import { laterLife, NO_INCARNATION } from './incarnation.js';
import type {
  Generation,
  HoldingEntry,
  HoldingsPage,
  HoldingsVersion,
  Incarnation,
  MemberId,
  Seq,
  VipId,
} from './messages.js';
import type { Millis } from './ports.js';
import type { Timing } from './timing.js';

export type Liveness = 'unknown' | 'alive' | 'warn' | 'dead';

/** What one received message meant for membership. */
export type MessageLife =
  /** From an older life of the peer: ignore the message. */
  | 'stale'
  /** First message of a new life (restart) or the first ever heard. */
  | 'new-life'
  /** A message of the current life. */
  | 'current';

/** The full holdings set of a peer at one version. */
export interface KnownHoldings {
  version: HoldingsVersion;
  entries: Map<VipId, number>;
}

export interface PeerState {
  id: MemberId;
  incarnation: Incarnation;
  /** Highest seq heard in this life. */
  maxSeq: Seq;
  /** Local time of the last message of this life; undefined if never heard. */
  lastHeard: Millis | undefined;
  /** Liveness as of the last evaluation. */
  liveness: Liveness;
  standby: boolean;
  witness: boolean;
  /** Its last heartbeat said it cannot take VIPs yet (Heartbeat.settling); true until heard. */
  settling: boolean;
  unhealthy: Set<VipId>;
  /** Newest complete holdings set of this life, if any. */
  holdings: KnownHoldings | undefined;
  /** Pages of a newer version being assembled. */
  pending: { version: HoldingsVersion; pages: number; got: Map<number, HoldingEntry[]> } | undefined;
  /**
   * The message that proved this peer fresh in our current life (see admit): its messages
   * count from this (incarnation, seq) on. Kept across the peer's new lives until the next
   * proof, and across our reconfigurations; undefined until the first proof.
   */
  proven: { incarnation: Incarnation; seq: Seq } | undefined;
  /** Highest membership generation its heartbeats advertised (0 until heard). */
  generation: Generation;
  /** When this member started counting the peer (its start, or when the peer was added). */
  since: Millis;
}

/**
 * What a message means for freshness (see {@link Membership.admit}):
 * - `fresh`: at or after the peer's proof in the proven life: it counts;
 * - `proof`: it proves freshness itself (it now counts, and so do later ones of that life);
 * - `unproven`: a life not proven yet (a restart of the peer, or a recording after ours): it
 *   does not count; the caller may echo it, so the peer can prove itself;
 * - `stale`: older than the proof (an earlier life, or an earlier seq of the proven life):
 *   possibly recorded before we started; ignored.
 */
export type Admission = 'fresh' | 'proof' | 'unproven' | 'stale';

/** A liveness change, for logs, status and the election. */
export interface LivenessChange {
  member: MemberId;
  from: Liveness;
  to: Liveness;
  /** Milliseconds since last heard (undefined if never heard). */
  silenceMs: Millis | undefined;
}

export class Membership {
  private readonly peers = new Map<MemberId, PeerState>();

  constructor(
    readonly self: MemberId,
    peerIds: readonly MemberId[],
    private readonly timing: Timing,
    private readonly startedAt: Millis,
  ) {
    this.setPeers(peerIds, startedAt);
  }

  /**
   * A membership change in place: peers not listed are forgotten, new ones start unknown
   * (never heard: they must prove freshness like any peer, and are `unknown` for initDeadMs
   * from `now`). Peers kept keep everything.
   */
  setPeers(peerIds: readonly MemberId[], now: Millis): void {
    const keep = new Set(peerIds);
    for (const id of [...this.peers.keys()]) if (!keep.has(id)) this.peers.delete(id);
    for (const id of peerIds) {
      if (id === this.self || this.peers.has(id)) continue;
      this.peers.set(id, {
        id,
        incarnation: 0,
        maxSeq: 0,
        lastHeard: undefined,
        liveness: 'unknown',
        standby: false,
        witness: false,
        settling: true,
        unhealthy: new Set(),
        holdings: undefined,
        pending: undefined,
        proven: undefined,
        generation: 0,
        since: now,
      });
    }
  }

  has(id: MemberId): boolean {
    return this.peers.has(id);
  }

  peer(id: MemberId): PeerState | undefined {
    return this.peers.get(id);
  }

  all(): IterableIterator<PeerState> {
    return this.peers.values();
  }

  /**
   * Whether a message of `from` at (incarnation, seq) may count, before anything else looks
   * at it. `proves`: the message shows that its sender heard this member's current life
   * recently (it echoes, or acks, a sequence number we sent within the last lease). The first
   * such message of a peer's life sets the floor its later messages are measured against:
   * the peer's (incarnation, seq) only grow with time, so everything at or above the proof was
   * sent after the peer heard our current life, and no recording made before we started
   * reaches it. Changes only the floor.
   */
  admit(from: MemberId, incarnation: Incarnation, seq: Seq, proves: boolean): Admission | undefined {
    const p = this.peers.get(from);
    if (!p) return undefined;
    const f = p.proven;
    if (f && incarnation === f.incarnation) return seq >= f.seq ? 'fresh' : 'stale';
    if (f && !laterLife(incarnation, f.incarnation)) return 'stale';
    if (!proves) return 'unproven';
    p.proven = { incarnation, seq };
    return 'proof';
  }

  /**
   * Records a message from `from`. Returns 'stale' for an older life (caller drops it),
   * 'new-life' when the incarnation grew (caller forgets per-life state of that peer).
   */
  observe(now: Millis, from: MemberId, incarnation: Incarnation, seq: Seq): MessageLife | undefined {
    const p = this.peers.get(from);
    if (!p) return undefined;
    const heard = p.incarnation !== NO_INCARNATION;
    if (heard && laterLife(p.incarnation, incarnation)) return 'stale';
    let result: MessageLife = 'current';
    if (!heard || laterLife(incarnation, p.incarnation)) {
      p.incarnation = incarnation;
      p.maxSeq = 0;
      p.holdings = undefined;
      p.pending = undefined;
      p.unhealthy = new Set();
      p.standby = false;
      p.settling = true;
      result = 'new-life';
    }
    if (seq > p.maxSeq) p.maxSeq = seq;
    p.lastHeard = p.lastHeard === undefined ? now : Math.max(p.lastHeard, now);
    p.liveness = 'alive';
    return result;
  }

  /**
   * Adds one holdings page of the peer's current life. Returns the complete set when this
   * page completes a version newer than the known one.
   */
  addHoldingsPage(from: MemberId, page: HoldingsPage): KnownHoldings | undefined {
    const p = this.peers.get(from);
    if (!p) return undefined;
    if (p.holdings && page.version <= p.holdings.version) return undefined;
    if (page.pages < 1 || page.page >= page.pages) return undefined;
    if (!p.pending || p.pending.version < page.version) {
      p.pending = { version: page.version, pages: page.pages, got: new Map() };
    } else if (p.pending.version > page.version || p.pending.pages !== page.pages) {
      return undefined;
    }
    p.pending.got.set(page.page, page.entries);
    if (p.pending.got.size < p.pending.pages) return undefined;
    const entries = new Map<VipId, number>();
    for (const list of p.pending.got.values()) for (const e of list) entries.set(e.vip, e.epoch);
    p.holdings = { version: p.pending.version, entries };
    p.pending = undefined;
    return p.holdings;
  }

  /**
   * `from` released `vip` at `epoch`: its known holdings no longer list it, even before its
   * next holdings version arrives (the election must not take it for the holder).
   */
  forgetClaim(from: MemberId, vip: VipId, epoch: number): void {
    const entries = this.peers.get(from)?.holdings?.entries;
    if (entries?.get(vip) === epoch) entries.delete(vip);
  }

  /** Liveness of `id` at `now` (self is always alive). */
  liveness(id: MemberId, now: Millis): Liveness {
    if (id === this.self) return 'alive';
    const p = this.peers.get(id);
    if (!p) return 'dead';
    return this.evaluate(p, now);
  }

  isAlive(id: MemberId, now: Millis): boolean {
    const l = this.liveness(id, now);
    return l === 'alive' || l === 'warn';
  }

  /** Re-evaluates every peer; returns the changes since the last call. */
  tick(now: Millis): LivenessChange[] {
    const changes: LivenessChange[] = [];
    for (const p of this.peers.values()) {
      const to = this.evaluate(p, now);
      if (to !== p.liveness) {
        changes.push({
          member: p.id,
          from: p.liveness,
          to,
          silenceMs: p.lastHeard === undefined ? undefined : now - p.lastHeard,
        });
        p.liveness = to;
      }
    }
    return changes;
  }

  /** True once every peer has either been heard (with a complete holdings set) or declared dead. */
  settled(now: Millis): boolean {
    for (const p of this.peers.values()) {
      const l = this.evaluate(p, now);
      if (l === 'unknown') return false;
      if ((l === 'alive' || l === 'warn') && !p.holdings) return false;
    }
    return true;
  }

  /** Earliest future time at which some peer's liveness changes by silence alone. */
  nextChangeAt(now: Millis): Millis {
    let next = Infinity;
    const { warnMs, deadMs, initDeadMs } = this.timing;
    for (const p of this.peers.values()) {
      const cands =
        p.lastHeard === undefined ? [p.since + initDeadMs] : [p.lastHeard + warnMs, p.lastHeard + deadMs];
      for (const t of cands) if (t > now && t < next) next = t;
    }
    return next;
  }

  private evaluate(p: PeerState, now: Millis): Liveness {
    const { warnMs, deadMs, initDeadMs } = this.timing;
    if (p.lastHeard === undefined) return now >= p.since + initDeadMs ? 'dead' : 'unknown';
    const silence = now - p.lastHeard;
    if (silence >= deadMs) return 'dead';
    if (silence >= warnMs) return 'warn';
    return 'alive';
  }
}
