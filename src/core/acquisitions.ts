/**
 * A member's running candidacies: takeover requests to the voters (batched per step), the
 * acks they answer, and the bind once a quorum of acks is unexpired. An abandoned candidacy
 * is released like a holding, since voters may have acked it; its Release datagram goes only to
 * the voters that did (see {@link Acquisitions.abandon}).
 */
import type { HeartbeatSender } from './heartbeat-sender.js';
import type { MemberContext, Output } from './member-context.js';
import {
  AckRefusal,
  LIMITS,
  TakeoverCause,
  type AckEntry,
  type Epoch,
  type HoldingEntry,
  type MemberId,
  type TakeoverAck,
  type TakeoverEntry,
  type TakeoverRequest,
  type VipId,
} from './messages.js';
import type { Millis } from './ports.js';

/** One candidacy: asking the voters for `vip` at `epoch`. */
export interface Acquisition {
  vip: VipId;
  epoch: Epoch;
  cause: TakeoverCause;
  previousHolder: MemberId | null;
  previousEpoch: Epoch;
  startedAt: Millis;
  lastSentAt: Millis;
  /** An early retry (a voter had not yet seen the previous holder's release), or Infinity. */
  quickRetryAt: Millis;
  /** Early retries used (bounded). */
  quickRetries: number;
  /** Grant expiry per voter, from acks (self: Infinity). */
  acks: Map<MemberId, Millis>;
  /** Highest spent epoch (no holder) a refusing voter named; learnt if this candidacy fails. */
  spentAbove?: Epoch;
  /** Voters that refused naming a spent higher epoch. */
  spentRefusers?: Set<MemberId>;
  reason: string;
}

export class Acquisitions {
  private readonly acquiring = new Map<VipId, Acquisition>();
  /**
   * Candidacies abandoned within the last quietMs, per VIP: a grant for one that arrives now
   * gets a Release of its own (see abandon()).
   */
  private readonly abandoned = new Map<VipId, { epoch: Epoch; until: Millis }>();
  /** Acquisitions whose takeover request goes out at the end of this step (batched). */
  private toRequest: Acquisition[] = [];
  /**
   * Grants that came before the candidacy they are for, per VIP: a releaser's handoff grant
   * travels ahead of its Release (docs/adr/0034), so that the successor binds on the Release
   * itself. Counted by begin() while unexpired, like a grant that came after the request.
   */
  private readonly early = new Map<VipId, { from: MemberId; epoch: Epoch; until: Millis }>();
  /**
   * VIPs we lost a split vote for to a candidate whose id sorts before ours, and until when we
   * do not stand for them again (one interval): see {@link yieldUntil}.
   */
  private readonly yielded = new Map<VipId, Millis>();

  constructor(
    private readonly ctx: MemberContext,
    private readonly sender: HeartbeatSender,
  ) {}

  get size(): number {
    return this.acquiring.size;
  }

  get(vip: VipId): Acquisition | undefined {
    return this.acquiring.get(vip);
  }

  has(vip: VipId): boolean {
    return this.acquiring.has(vip);
  }

  /** The voter set changed: acks of members that are no longer voters stop counting. */
  dropNonVoters(): void {
    for (const a of this.acquiring.values())
      for (const m of [...a.acks.keys()]) if (!this.ctx.voterSet.has(m)) a.acks.delete(m);
  }

  values(): IterableIterator<Acquisition> {
    return this.acquiring.values();
  }

  /** The VIPs asked for (a copy: safe to abandon while iterating). */
  vips(): VipId[] {
    return [...this.acquiring.keys()];
  }

  /** Starts a candidacy (self-acked already, if self votes) and asks the voters. */
  begin(
    now: Millis,
    init: Pick<Acquisition, 'vip' | 'epoch' | 'cause' | 'previousHolder' | 'previousEpoch' | 'reason'>,
    out: Output[],
  ): void {
    const a: Acquisition = {
      ...init,
      startedAt: now,
      lastSentAt: -Infinity,
      quickRetryAt: Infinity,
      quickRetries: 0,
      acks: new Map([[this.ctx.self, Infinity]]),
    };
    const g = this.early.get(a.vip);
    if (g) {
      this.early.delete(a.vip);
      if (g.epoch === a.epoch && g.until > now && this.ctx.voterSet.has(g.from)) a.acks.set(g.from, g.until);
    }
    this.acquiring.set(a.vip, a);
    this.abandoned.delete(a.vip);
    this.ctx.emit({ type: 'candidate', vip: a.vip, epoch: a.epoch, cause: a.cause, reason: a.reason });
    if (this.ctx.quorum.mode === 'ignore') {
      this.tryBind(now, a, out);
      return;
    }
    this.requestAcks(now, a);
    this.tryBind(now, a, out);
  }

  /** Asks the voters for acks for `a`, batched with the other requests of this step. */
  requestAcks(now: Millis, a: Acquisition): void {
    a.lastSentAt = now;
    a.quickRetryAt = Infinity;
    this.toRequest.push(a);
  }

  /**
   * Sends the requests queued in this step: one datagram per voter for every
   * {@link LIMITS.takeoversPerMessage} VIPs (each with its own seq, whose send time the
   * grants count from). Requests queued before an abandon in the same step still go out:
   * the candidacy existed, and its Release follows it.
   */
  flushRequests(now: Millis, out: Output[]): void {
    if (this.toRequest.length === 0) return;
    // Candidacies abandoned within this step have sent their Release: do not ask for them.
    const list = this.toRequest.filter(
      (a) => this.acquiring.get(a.vip) === a || this.ctx.leases.holdings.get(a.vip)?.epoch === a.epoch,
    );
    this.toRequest = [];
    for (let i = 0; i < list.length; i += LIMITS.takeoversPerMessage) {
      const entries: TakeoverEntry[] = list.slice(i, i + LIMITS.takeoversPerMessage).map((a) => ({
        vip: a.vip,
        epoch: a.epoch,
        previousHolder: a.previousHolder,
        previousEpoch: a.previousEpoch,
        cause: a.cause,
      }));
      const base = this.sender.header(now);
      for (const to of this.ctx.quorum.voters) {
        if (to === this.ctx.self) continue;
        const message: TakeoverRequest = {
          kind: 'takeover',
          ...base,
          ...(this.ctx.generation !== 0 ? { generation: this.ctx.generation } : {}),
          entries,
        };
        out.push({ type: 'send', to, message });
      }
    }
  }

  onAck(now: Millis, ack: TakeoverAck, out: Output[]): void {
    if (ack.candidate !== this.ctx.self || ack.requestIncarnation !== this.ctx.incarnation) return;
    if (!this.ctx.voterSet.has(ack.from)) return;
    const sent = this.ctx.leases.sendTime(ack.requestSeq);
    for (const e of ack.entries) this.onAckEntry(now, ack.from, e, sent, out);
  }

  private onAckEntry(
    now: Millis,
    from: MemberId,
    e: AckEntry,
    sent: Millis | undefined,
    out: Output[],
  ): void {
    const { leases, timing } = this.ctx;
    const held = leases.holdings.get(e.vip);
    if (e.granted && sent !== undefined && held && held.epoch === e.epoch) {
      leases.grant(held, from, sent + timing.leaseMs);
      return;
    }
    const a = this.acquiring.get(e.vip);
    if (!a && e.granted && sent !== undefined && !held && sent + timing.leaseMs > now) {
      // Ahead of its candidacy (a handoff grant before its Release): kept for begin().
      const g = this.early.get(e.vip);
      if (!g || g.epoch < e.epoch || (g.epoch === e.epoch && g.until < sent + timing.leaseMs))
        this.early.set(e.vip, { from, epoch: e.epoch, until: sent + timing.leaseMs });
    }
    if (!a || a.epoch !== e.epoch) {
      const gone = this.abandoned.get(e.vip);
      if (e.granted && gone?.epoch === e.epoch && now < gone.until)
        this.sender.sendRelease(now, e.vip, e.epoch, null, out, [from]);
      return;
    }
    if (
      !e.granted &&
      e.reason === AckRefusal.PromiseActive &&
      a.cause === TakeoverCause.Released &&
      e.knownEpoch === a.previousEpoch &&
      a.quickRetries < 3
    ) {
      // The voter still promises the previous holder, whose release we have seen: it is on
      // its way (a planned move or a graceful stop). Ask again shortly, not an interval later.
      a.quickRetries += 1;
      a.quickRetryAt = Math.min(a.quickRetryAt, now + Math.max(2, Math.round(timing.intervalMs / 20)));
      return;
    }
    if (e.granted) {
      if (sent === undefined) return;
      const until = sent + timing.leaseMs;
      if ((a.acks.get(from) ?? -Infinity) < until) a.acks.set(from, until);
      this.tryBind(now, a, out);
      return;
    }
    // A voter that knows a higher epoch with no holder (a spent one: a candidacy that gave up,
    // a release, a status floor) only says no. Had that epoch been bound, a quorum would know
    // it and refuse us too, so while the other voters can still make a quorum we keep counting
    // their grants; giving up on the first such refusal made a planned successor drop a quorum
    // and retry an interval later (seed 13, fast, moves, at b73bb6c). Once they cannot, we give
    // up at once (as before) and learn the spent epoch, so the next candidacy asks above it;
    // until then our own voter keeps the epoch we ask for, so a bind stays consistent with it.
    if (e.reason === AckRefusal.StaleEpoch && e.knownHolder === null && e.knownEpoch > a.epoch) {
      a.spentAbove = Math.max(a.spentAbove ?? 0, e.knownEpoch);
      (a.spentRefusers ??= new Set()).add(from);
      const { quorum } = this.ctx;
      if (quorum.voters.length - a.spentRefusers.size < quorum.size)
        this.abandon(now, e.vip, `voters know epoch ${a.spentAbove} (spent): no quorum left`, out);
      return;
    }
    if (e.knownEpoch > a.epoch || (e.knownEpoch === a.epoch && e.knownHolder !== this.ctx.self)) {
      this.ctx.voter.learn(e.vip, e.knownEpoch, e.knownHolder);
      if (
        e.reason === AckRefusal.OtherCandidate &&
        e.knownEpoch === a.epoch &&
        e.knownHolder !== null &&
        e.knownHolder < this.ctx.self
      ) {
        // A split vote: another candidate asked for the same epoch at the same time and each
        // voter granted the first it heard (itself first). Members whose sweeps run in phase
        // then meet again at every interval, each a step higher, and neither ever wins (fast
        // profile, two voters: simulator seed 3806). The one whose id sorts later sits the
        // next round out, so the other asks alone. Asking less never endangers S1.
        this.yielded.set(e.vip, now + timing.intervalMs);
      }
      if (e.reason === AckRefusal.OtherCandidate || e.reason === AckRefusal.StaleEpoch) {
        this.abandon(
          now,
          e.vip,
          `voter ${from} knows epoch ${e.knownEpoch} (${e.knownHolder ?? 'no holder'})`,
          out,
        );
      }
    }
  }

  /**
   * Gives up the candidacy for `vip` and releases its epoch: listed in our heartbeats for
   * quietMs, like any release, and sent at once only to the voters whose promise we know of
   * (they granted it). A voter whose answer is still on its way gets its Release when its
   * grant arrives (onAckEntry); one that refuses holds no promise for it and gets nothing.
   * Sending every abandon to every peer made Releases 42 % of a 1,000-VIP cluster's datagrams,
   * most of them at start-up, when members stand for VIPs they cannot see held yet and are
   * refused (docs/benchmarks.md, "Releases"). A grant lost on the way, or arriving after
   * quietMs, is voided by the release in our heartbeats: a promise that runs longer delays a
   * takeover, it never endangers S1.
   */
  abandon(now: Millis, vip: VipId, reason: string, out: Output[]): void {
    const a = this.acquiring.get(vip);
    if (!a) return;
    this.acquiring.delete(vip);
    this.ctx.emit({ type: 'abandon', vip, epoch: a.epoch, reason });
    this.ctx.voter.releaseSelf(now, vip, a.epoch);
    if (a.spentAbove !== undefined) this.ctx.voter.learn(vip, a.spentAbove, null);
    this.sender.noteRelease(now, vip, a.epoch);
    const to = this.ctx.peers.filter((p) => a.acks.has(p));
    this.sender.sendRelease(now, vip, a.epoch, null, out, to);
    this.abandoned.set(vip, { epoch: a.epoch, until: now + this.ctx.timing.quietMs });
  }

  /**
   * Until when we leave `vip` to a candidate that won a split vote against us (see onAckEntry),
   * or -Infinity.
   */
  yieldUntil(vip: VipId, now: Millis): Millis {
    const until = this.yielded.get(vip);
    if (until === undefined) return -Infinity;
    if (until <= now) {
      this.yielded.delete(vip);
      return -Infinity;
    }
    return until;
  }

  /** Member.stop: drops every candidacy; the caller announces the returned releases. */
  abandonAll(now: Millis, reason: string): HoldingEntry[] {
    const released: HoldingEntry[] = [];
    for (const a of [...this.acquiring.values()]) {
      this.acquiring.delete(a.vip);
      this.ctx.emit({ type: 'abandon', vip: a.vip, epoch: a.epoch, reason });
      this.ctx.voter.releaseSelf(now, a.vip, a.epoch);
      released.push({ vip: a.vip, epoch: a.epoch });
    }
    return released;
  }

  /** Binds `a` if a quorum of its acks is unexpired. */
  private tryBind(now: Millis, a: Acquisition, out: Output[]): void {
    const exp = this.expiry(a);
    if (exp <= now) return;
    this.acquiring.delete(a.vip);
    const grants = new Map(a.acks);
    grants.delete(this.ctx.self);
    const h = this.ctx.leases.add(now, a.vip, a.epoch, grants);
    this.ctx.voter.holdSelf(a.vip, a.epoch, this.ctx.incarnation);
    const leaseExpiry = this.ctx.leases.expiry(h);
    h.emitted = leaseExpiry;
    out.push({ type: 'bind', vip: a.vip, epoch: a.epoch, leaseExpiry, reason: a.reason });
    this.sender.announceSoon();
  }

  /** Quorum-th latest ack; self counts only if it acked itself. */
  private expiry(a: Acquisition): Millis {
    const { quorum, leases, self } = this.ctx;
    if (quorum.mode === 'ignore') return a.acks.has(self) ? leases.expiry({ grants: new Map() }) : -Infinity;
    const list = [...a.acks.values()].sort((x, y) => y - x);
    return list.length >= quorum.size ? (list[quorum.size - 1] ?? -Infinity) : -Infinity;
  }

  /** Earliest retry of a running candidacy. */
  wakeAt(): Millis {
    let t = Infinity;
    for (const a of this.acquiring.values())
      t = Math.min(t, a.lastSentAt + this.ctx.timing.intervalMs, a.quickRetryAt);
    return t;
  }
}
