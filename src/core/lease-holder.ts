/**
 * The holder's side of quorum leases: grants it holds from voters, counted from its own
 * send times, and the paged holdings set it advertises. A holder keeps a VIP only while a
 * quorum of voters (itself included) granted it *for that VIP at that epoch*: an echo counts
 * for a VIP only if the voter knew, when it received the echoed message, a holdings version
 * listing the VIP at that epoch.
 */
import {
  LIMITS,
  type Epoch,
  type HoldingsPage,
  type HoldingsVersion,
  type MemberId,
  type Seq,
  type VipId,
} from './messages.js';
import type { Millis } from './ports.js';
import type { Timing } from './timing.js';

export type QuorumMode = 'majority' | 'witness' | 'ignore';

export interface Quorum {
  mode: QuorumMode;
  /** Members whose grants count. */
  voters: readonly MemberId[];
  /** Grants needed (self included). */
  size: number;
}

/** The voter set and quorum size for a cluster of `members` (+ `witness` in witness mode). */
export function quorumOf(mode: QuorumMode, members: readonly MemberId[], witness: MemberId | null): Quorum {
  if (mode === 'ignore') return { mode, voters: [...members], size: 1 };
  const voters = mode === 'witness' && witness ? [...members, witness] : [...members];
  return { mode, voters, size: Math.floor(voters.length / 2) + 1 };
}

/** One VIP this member holds. */
export interface Holding {
  vip: VipId;
  epoch: Epoch;
  /** Grant expiry per voter (this member's clock). Self is not in the map. */
  grants: Map<MemberId, Millis>;
  /** Lease expiry last handed to the agent (bind/renew): the fence deadline. */
  emitted: Millis;
  boundAt: Millis;
  /** Memoised expiry; cleared whenever `grants` changes. */
  cached?: Millis | undefined;
  /**
   * Bounds on the expiry while `cached` is cleared: grants only grew since the last
   * computation (`lower` is that value; a revoke resets it) and none exceeds `upper`.
   */
  lower?: Millis | undefined;
  upper?: Millis | undefined;
}

const HISTORY = 64;

export class HolderLeases {
  readonly holdings = new Map<VipId, Holding>();
  private version: HoldingsVersion = 0;
  private readonly history = new Map<HoldingsVersion, Map<VipId, Epoch>>();
  private readonly sendLog = new Map<Seq, Millis>();
  private pageCursor = 0;
  /** The current version's entries, sorted, and its pages: built once per version. */
  private sorted: Array<[VipId, Epoch]> | undefined;
  private readonly pageCache = new Map<number, Array<{ vip: VipId; epoch: Epoch }>>();
  /** In 'ignore' mode the holder's only grant is its own liveness, renewed on every step. */
  private selfGrant: Millis = Infinity;

  constructor(
    private readonly self: MemberId,
    private readonly timing: Timing,
    private q: Quorum,
  ) {
    this.bump();
  }

  get quorum(): Quorum {
    return this.q;
  }

  /**
   * The voter set changed (a membership change in place): grants of members that are no
   * longer voters stop counting, and every lease is counted again under the new quorum.
   */
  setQuorum(quorum: Quorum): void {
    this.q = quorum;
    const voters = new Set(quorum.voters);
    for (const h of this.holdings.values()) {
      for (const m of [...h.grants.keys()]) if (!voters.has(m)) h.grants.delete(m);
      h.cached = undefined;
      h.lower = undefined;
      h.upper = undefined;
    }
  }

  get holdingsVersion(): HoldingsVersion {
    return this.version;
  }

  /** Remembers when message `seq` was sent, to count grants from it. */
  recordSend(seq: Seq, now: Millis): void {
    this.sendLog.set(seq, now);
  }

  sendTime(seq: Seq): Millis | undefined {
    return this.sendLog.get(seq);
  }

  /** Forgets send times whose grants would have expired anyway; advances ignore-mode self grant. */
  step(now: Millis): void {
    const horizon = now - this.timing.leaseMs;
    for (const [seq, t] of this.sendLog) {
      if (t >= horizon) break; // Map keeps insertion order, which is send order.
      this.sendLog.delete(seq);
    }
    if (this.quorum.mode === 'ignore') this.selfGrant = now + this.timing.leaseMs;
  }

  /** Lease expiry of a holding: the quorum-th latest grant, self counting as unbounded. */
  expiry(h: { grants: Map<MemberId, Millis>; cached?: Millis; lower?: Millis; upper?: Millis }): Millis {
    if (h.cached !== undefined && this.quorum.mode !== 'ignore') return h.cached;
    const v = this.compute(h);
    h.cached = v;
    h.lower = v;
    h.upper = v;
    return v;
  }

  /**
   * A lower bound on expiry(h), without computing it: the last computed value when grants
   * only grew since (echoes and acks), else the exact value. The expiry is the quorum-th
   * latest of ~M grants: recomputing it for every holding after every echo was half of a
   * holder's CPU in a 50-member cluster.
   */
  expiryAtLeast(h: Holding): Millis {
    if (h.cached !== undefined || this.quorum.mode === 'ignore' || h.lower === undefined)
      return this.expiry(h);
    return h.lower;
  }

  /** An upper bound on expiry(h) (no grant is later), without computing it. */
  expiryAtMost(h: Holding): Millis {
    if (h.cached !== undefined || this.quorum.mode === 'ignore' || h.upper === undefined)
      return this.expiry(h);
    return h.upper;
  }

  /** A grant of `h` grew to `until`: the memo is stale, the bounds still hold. */
  private raised(h: Holding, until: Millis): void {
    h.cached = undefined;
    if (h.upper !== undefined && until > h.upper) h.upper = until;
  }

  private compute(h: { grants: Map<MemberId, Millis> }): Millis {
    if (this.quorum.size === 1) return this.selfGrant;
    if (this.quorum.size === 2) {
      let best = -Infinity;
      for (const [m, t] of h.grants) if (m !== this.self && t > best) best = t;
      return best;
    }
    // The quorum-th latest of (self, grants): a native numeric sort of a typed array (this
    // runs for every holding after every echo; a comparator sort of 100 grants cost 10x more).
    const list = new Float64Array(h.grants.size + 1);
    let n = 0;
    list[n++] = this.selfGrant;
    for (const [m, t] of h.grants) if (m !== this.self) list[n++] = t;
    if (n < this.quorum.size) return -Infinity;
    const sorted = list.subarray(0, n).sort(); // ascending
    return sorted[n - this.quorum.size] ?? -Infinity;
  }

  add(now: Millis, vip: VipId, epoch: Epoch, grants: Map<MemberId, Millis>): Holding {
    const h: Holding = { vip, epoch, grants: new Map(grants), emitted: -Infinity, boundAt: now };
    this.holdings.set(vip, h);
    this.bump();
    return h;
  }

  remove(vip: VipId): Holding | undefined {
    const h = this.holdings.get(vip);
    if (h) {
      this.holdings.delete(vip);
      this.bump();
    }
    return h;
  }

  /**
   * Voter `from` echoed our message `seq` knowing holdings `version`: a grant until
   * sendTime(seq) + leaseMs for every VIP of that version still held at the same epoch,
   * except those the voter listed as conflicts.
   */
  onEcho(from: MemberId, seq: Seq, version: HoldingsVersion, refused: ReadonlySet<VipId>): void {
    if (!this.quorum.voters.includes(from)) return; // only voters grant
    const sent = this.sendLog.get(seq);
    const listed = this.history.get(version);
    if (sent === undefined || !listed) return;
    const until = sent + this.timing.leaseMs;
    for (const [vip, epoch] of listed) {
      if (refused.has(vip)) continue;
      const h = this.holdings.get(vip);
      if (!h || h.epoch !== epoch) continue;
      const prev = h.grants.get(from);
      if (prev === undefined || prev < until) {
        h.grants.set(from, until);
        this.raised(h, until);
      }
    }
  }

  /** Records a grant (e.g. from a late ack) on a holding. */
  grant(h: Holding, from: MemberId, until: Millis): void {
    if ((h.grants.get(from) ?? -Infinity) < until) {
      h.grants.set(from, until);
      this.raised(h, until);
    }
  }

  /** Voter `from` refused us `vip`: drop its grant for it. */
  revoke(from: MemberId, vip: VipId): void {
    const h = this.holdings.get(vip);
    if (h && h.grants.delete(from)) {
      h.cached = undefined;
      h.lower = undefined; // the expiry may have dropped: no lower bound any more
    }
  }

  /** Number of pages of the current holdings version. */
  pages(): number {
    return Math.max(1, Math.ceil(this.holdings.size / LIMITS.holdingsPerPage));
  }

  /** The next page to advertise (round robin over the current version). */
  nextPage(): HoldingsPage {
    const pages = this.pages();
    const page = this.pageCursor % pages;
    this.pageCursor = page + 1;
    return this.page(page, pages);
  }

  /**
   * Every page of the current version, in order, leaving the round robin at the start (a
   * burst: the whole set in one round, see Member.roundPages).
   */
  allPages(): HoldingsPage[] {
    const pages = this.pages();
    const list: HoldingsPage[] = [];
    for (let p = 0; p < pages; p++) list.push(this.page(p, pages));
    this.pageCursor = pages; // currentPage() is the last one sent; nextPage() starts over at 0
    return list;
  }

  /** The page last returned by nextPage (of the current version), without advancing. */
  currentPage(): HoldingsPage {
    const pages = this.pages();
    return this.page((this.pageCursor + pages - 1) % pages, pages);
  }

  private page(page: number, pages: number): HoldingsPage {
    let entries = this.pageCache.get(page);
    if (!entries) {
      if (!this.sorted) {
        const current = this.history.get(this.version) ?? new Map<VipId, Epoch>();
        this.sorted = [...current].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      }
      const slice = this.sorted.slice(page * LIMITS.holdingsPerPage, (page + 1) * LIMITS.holdingsPerPage);
      entries = slice.map(([vip, epoch]) => ({ vip, epoch }));
      this.pageCache.set(page, entries);
    }
    // Pages of one version never change: the same (read-only) entries are sent each time.
    return { version: this.version, page, pages, entries };
  }

  private bump(): void {
    this.version += 1;
    const snapshot = new Map<VipId, Epoch>();
    for (const [vip, h] of this.holdings) snapshot.set(vip, h.epoch);
    this.history.set(this.version, snapshot);
    this.history.delete(this.version - HISTORY);
    this.pageCursor = 0;
    this.sorted = undefined;
    this.pageCache.clear();
  }
}
