/**
 * A member's decisions per VIP: it runs the election on its own view and acts on the result
 * (keep, release for a planned move, stand as candidate, keep or drop a running candidacy),
 * with the fallback that lets the k-th ranked member step in when views disagree and nobody
 * holds the VIP. Full sweeps over every VIP run once per interval or when liveness changes;
 * between them only the running candidacies and single VIPs (a release).
 *
 * Size: the election's consequences per VIP in one place (keep, release, stand, fallback);
 * the mechanics live beside it (acquisitions.ts, release.ts).
 */
import { elect, loadCap, rankIndex, type ElectionMember, type ElectionResult } from './election.js';
import type { Acquisitions } from './acquisitions.js';
import type { VoteRecord } from './lease-voter.js';
import { UINT32_MAX, type MemberContext, type Output, type VipSpec } from './member-context.js';
import { AckRefusal, TakeoverCause, type Epoch, type MemberId, type VipId } from './messages.js';
import type { Millis } from './ports.js';
import type { Releases } from './release.js';

type Current = { holder: MemberId | null; epoch: Epoch };

export class Candidacy {
  private sortedVips: VipId[] | undefined;
  /**
   * Since when each VIP has had no live holder in our view, and the newest epoch known bound
   * (confirmed) then. A record is void once a newer epoch is known bound (a bind, ours or
   * another's, came and maybe went since): the next unheld period starts afresh. Deleted
   * whenever a live holder is seen, including ourselves.
   */
  private readonly unheldSince = new Map<VipId, { since: Millis; confirmed: Epoch }>();
  /**
   * Planned moves we heard of that name another member as successor: we do not stand for the
   * VIP until `until` (deadMs after the Release), unless the successor releases it first.
   */
  private readonly handedTo = new Map<VipId, { to: MemberId; until: Millis }>();
  /** Earliest time a decision asked to be looked at again (fallback, promise, quiet period). */
  private wakeHint: Millis = Infinity;
  /** Load bound of the election sweep in progress ({@link loadCap}). */
  private loadBound = Infinity;
  /** Voters alive in our view (self included), counted at each sweep. */
  private votersAlive = 0;
  /** When the next full election sweep is due (see Member.tick). */
  private sweepAt: Millis = -Infinity;
  private pool: ElectionMember[] | undefined;
  /** Step (entry) counter, and the step the pool's liveness / standby were filled in. */
  private step = 0;
  private poolStep = -1;
  private poolUnhealthy: Array<[number, ReadonlySet<VipId>]> = [];
  private poolLoads: ReadonlyMap<MemberId, number> = new Map();
  private poolHolder: MemberId | null = null;
  /**
   * Loads as the last sweep left them (its running placement included). Elections between
   * sweeps (a release, a retry) use them: recounting the voter table for every message was
   * a tenth of a member's CPU at 1,000 VIPs, and loads only order members near the bound.
   */
  private sweepLoads: Map<MemberId, number> | undefined;

  constructor(
    private readonly ctx: MemberContext,
    private readonly acquisitions: Acquisitions,
    private readonly releases: Releases,
  ) {}

  /** A new step (Member.enter): wake hints are recomputed by the decisions of this step. */
  enterStep(): void {
    this.wakeHint = Infinity;
    this.step++;
  }

  /** A member's standby or health changed: refill the election pool. */
  membersChanged(): void {
    this.poolStep = -1;
  }

  /** The member set changed (Member.setMembers): rebuild the pool and sweep at the next tick. */
  membersReplaced(): void {
    this.pool = undefined;
    this.poolStep = -1;
    this.poolUnhealthy = [];
    this.sweepLoads = undefined;
    this.sweepAt = -Infinity;
  }

  /** Our standby or health changed: refill the pool and sweep at the next tick. */
  localChanged(): void {
    this.sweepAt = -Infinity;
    this.poolStep = -1;
  }

  /** The VIP configuration changed: sweep at the next tick. */
  vipsChanged(): void {
    this.sortedVips = undefined;
    this.sweepAt = -Infinity;
  }

  /**
   * Ready to take a VIP now, as far as this life is concerned (advertised in our heartbeats
   * as not `settling`): settled (see {@link settled}), and past our quiet period when our own
   * ack counts toward the quorum (before it, our voter refuses every takeover, ours included).
   */
  ready(now: Millis): boolean {
    const { ctx } = this;
    if (!this.settled(now)) return false;
    const selfAcks = ctx.quorum.mode !== 'ignore' && ctx.voterSet.has(ctx.self);
    return !selfAcks || now >= ctx.voter.quietUntil();
  }

  /**
   * Every peer heard with its complete holdings (we know who holds what), or declared dead;
   * or initDeadMs has passed since we started. Before that we do not stand for any VIP.
   */
  private settled(now: Millis): boolean {
    return now >= this.ctx.startedAt + this.ctx.timing.initDeadMs || this.ctx.membership.settled(now);
  }

  sweepDue(now: Millis): boolean {
    return now >= this.sweepAt;
  }

  wakeAt(): Millis {
    return Math.min(this.wakeHint, this.sweepAt);
  }

  /**
   * `from` released `vip` (for `successor`, a planned move). A member that has not heard the
   * successor yet (the views differ, e.g. just after a partition heals) would otherwise elect
   * someone else and stand at once: two moves instead of one. The successor holds the
   * releaser's grant for the next epoch; it binds within a round trip, or declines (a Release
   * of its own), or deadMs pass.
   */
  onRelease(now: Millis, from: MemberId, vip: VipId, successor: MemberId | null): void {
    if (this.handedTo.get(vip)?.to === from) this.handedTo.delete(vip);
    if (successor !== null && successor !== this.ctx.self)
      this.handedTo.set(vip, { to: successor, until: now + this.ctx.timing.deadMs });
  }

  electAll(now: Millis, out: Output[]): void {
    if (this.ctx.isWitness) {
      this.sweepAt = Infinity; // a witness never holds: nothing to sweep
      return;
    }
    const loads = this.loads();
    this.loadBound = this.cap(now);
    const vips = (this.sortedVips ??= [...this.ctx.vips.keys()].sort());
    for (const vip of vips) {
      const result = this.decide(now, vip, loads, out);
      const cur = this.ctx.voter.holderOf(vip);
      if (result.holder && result.holder !== cur) {
        loads.set(result.holder, (loads.get(result.holder) ?? 0) + 1);
        if (cur) loads.set(cur, Math.max(0, (loads.get(cur) ?? 0) - 1));
      }
    }
    this.sweepLoads = loads;
    // The next sweep: an interval from now, or earlier if a VIP asked to be looked at again.
    this.sweepAt = Math.min(now + this.ctx.timing.intervalMs, this.wakeHint);
  }

  /** Between sweeps: only the running candidacies (retries, timeouts). */
  electAcquiring(now: Millis, out: Output[]): void {
    if (this.acquisitions.size === 0) return;
    const loads = this.sweepLoads ?? this.loads();
    this.loadBound = this.cap(now);
    for (const vip of this.acquisitions.vips()) this.decide(now, vip, loads, out);
    this.sweepAt = Math.min(this.sweepAt, this.wakeHint);
  }

  /** Only the VIPs we hold (a peer became ready to take VIPs: a handover may be due). */
  electHeld(now: Millis, out: Output[]): void {
    const { ctx } = this;
    if (ctx.isWitness || ctx.leases.holdings.size === 0) return;
    const loads = this.sweepLoads ?? this.loads();
    this.loadBound = this.cap(now);
    for (const vip of [...ctx.leases.holdings.keys()])
      if (ctx.vips.has(vip)) this.decide(now, vip, loads, out);
    this.sweepAt = Math.min(this.sweepAt, this.wakeHint);
  }

  /** `handoffFrom`: the VIP was just released for us by that member (a planned move). */
  electOne(now: Millis, vip: VipId, out: Output[], handoffFrom?: MemberId): void {
    if (this.ctx.isWitness || !this.ctx.vips.has(vip)) return;
    this.loadBound = this.cap(now);
    this.decide(now, vip, this.sweepLoads ?? this.loads(), out, handoffFrom);
    this.sweepAt = Math.min(this.sweepAt, this.wakeHint);
  }

  /** Runs the election for one VIP on this member's view and acts on the result. */
  private decide(
    now: Millis,
    vip: VipId,
    loads: Map<MemberId, number>,
    out: Output[],
    handoffFrom?: MemberId,
  ): ElectionResult {
    const spec = this.ctx.vips.get(vip) as VipSpec;
    const rec = this.ctx.voter.get(vip);
    const sticky = this.sticky(now, vip, spec, rec);
    if (sticky) return sticky;
    const current: Current = {
      holder: this.ctx.voter.holderOf(vip) ?? this.claimant(now, vip),
      epoch: rec.epoch,
    };
    const result = this.electFor(now, vip, spec, current, loads, handoffFrom);
    const acq = this.acquisitions.get(vip);
    if (this.ctx.leases.holdings.has(vip)) {
      this.unheldSince.delete(vip);
      this.actAsHolder(now, vip, result, out);
      return result;
    }
    // Track how long the VIP has had no live holder in our view.
    const liveHolder = current.holder !== null && this.ctx.membership.isAlive(current.holder, now);
    if (liveHolder) {
      this.unheldSince.delete(vip);
      this.handedTo.delete(vip);
    } else {
      const u = this.unheldSince.get(vip);
      if (!u || rec.confirmedEpoch > u.confirmed)
        this.unheldSince.set(vip, { since: now, confirmed: rec.confirmedEpoch });
    }
    if (acq) {
      // A live peer claims it in its holdings (we learned it after we stood): it keeps it or
      // releases it to us (a planned move); asking the voters meanwhile only earns refusals.
      const claim = this.claimant(now, vip);
      if (claim !== null && claim !== this.ctx.self) {
        this.acquisitions.abandon(now, vip, `${claim} holds it and is alive`, out);
        return result;
      }
    }
    if (result.holder !== this.ctx.self) {
      const fallback = liveHolder ? undefined : this.fallback(now, vip, spec, loads);
      if (!fallback) {
        if (acq && !liveHolder && now - acq.startedAt < this.ctx.timing.deadMs) {
          // Views differ on who should win; keep our running attempt for a while.
        } else if (acq) {
          this.acquisitions.abandon(now, vip, `no longer elected: ${result.reason}`, out);
          return result;
        } else {
          return result;
        }
      } else {
        result.reason = fallback;
      }
    }
    if (acq) {
      const { deadMs, quietMs, intervalMs } = this.ctx.timing;
      if (now - acq.startedAt > deadMs + quietMs) {
        this.acquisitions.abandon(now, vip, 'no quorum of acks in time', out);
        return result;
      }
      if (now >= acq.lastSentAt + intervalMs || now >= acq.quickRetryAt)
        this.acquisitions.requestAcks(now, acq);
      return result;
    }
    this.stand(now, vip, spec, rec, current, result, out);
    return result;
  }

  /**
   * The fast paths (the common case), when neither failback nor a move applies: a live,
   * usable peer holds it and we neither hold nor ask for it; or we hold it and may keep it.
   * elect() would answer "sticky" and decide() would do nothing, so the election is skipped.
   */
  private sticky(now: Millis, vip: VipId, spec: VipSpec, rec: VoteRecord): ElectionResult | undefined {
    const { ctx } = this;
    // A move target (docs/adr/0031) may override stickiness: run the election.
    if (ctx.autoFailback || spec.moveTo !== undefined) return undefined;
    const eligible = (id: MemberId) => !spec.eligible || spec.eligible.includes(id);
    if (!ctx.leases.holdings.has(vip) && !this.acquisitions.has(vip)) {
      const cur = rec.released ? this.claimant(now, vip) : rec.holder;
      if (cur !== null && cur !== ctx.self && ctx.memberSet.has(cur) && ctx.membership.isAlive(cur, now)) {
        const peer = ctx.membership.peer(cur);
        if (peer && !peer.standby && !peer.unhealthy.has(vip) && eligible(cur)) {
          this.unheldSince.delete(vip);
          return { holder: cur, reason: 'sticky' };
        }
      }
    }
    if (
      ctx.leases.holdings.has(vip) &&
      !ctx.standby &&
      !ctx.unhealthy.has(vip) &&
      eligible(ctx.self) &&
      ctx.voter.holderOf(vip) === ctx.self
    ) {
      this.unheldSince.delete(vip);
      return { holder: ctx.self, reason: 'sticky' };
    }
    return undefined;
  }

  /** Who should hold `vip` in our view: the named successor of a handoff, or elect(). */
  private electFor(
    now: Millis,
    vip: VipId,
    spec: VipSpec,
    current: Current,
    loads: Map<MemberId, number>,
    handoffFrom: MemberId | undefined,
  ): ElectionResult {
    const { ctx } = this;
    // A holder that moves a VIP for a planned reason names its successor: the successor takes
    // it if it can, even if its own view (e.g. the holder's standby, not yet heard) ranks
    // someone else. A view that still disagrees later moves it on, by the same planned path.
    const handedOver =
      handoffFrom !== undefined &&
      !ctx.standby &&
      !ctx.unhealthy.has(vip) &&
      (!spec.eligible || spec.eligible.includes(ctx.self));
    if (handedOver) return { holder: ctx.self, reason: `${handoffFrom} handed it over (planned move)` };
    return elect({
      spec,
      members: this.electionMembers(now, vip, loads),
      current,
      autoFailback: ctx.autoFailback,
      loadCap: this.loadBound,
    });
  }

  /** We hold `vip`: release it for a live elected member. */
  private actAsHolder(now: Millis, vip: VipId, result: ElectionResult, out: Output[]): void {
    if (
      result.holder &&
      result.holder !== this.ctx.self &&
      this.ctx.membership.isAlive(result.holder, now) &&
      this.ctx.membership.peer(result.holder)?.settling === false
    ) {
      // A planned move only to a member ready to take it (not settling): one that has just
      // restarted would decline it, and the VIP would have no holder (docs/adr/0014). Its
      // heartbeat saying it is ready makes us decide our holdings again at once (Member.heldDue).
      // While we can serve the VIP, only once the successor has shown it is ready for it
      // (docs/adr/0034); its echo makes us decide again at once (Member.heldDue).
      if (!this.ctx.unhealthy.has(vip)) {
        const ready = this.releases.handOverWhenReady(now, vip, result.holder);
        if (ready !== true) {
          this.wakeHint = Math.min(this.wakeHint, ready);
          return;
        }
      }
      this.releases.giveUp(now, vip, 'planned', result.reason, result.holder, out);
    }
  }

  /** Not holding, elected (or stepping in): start a candidacy if we may ask now. */
  private stand(
    now: Millis,
    vip: VipId,
    spec: VipSpec,
    rec: VoteRecord,
    current: Current,
    result: ElectionResult,
    out: Output[],
  ): void {
    const { ctx } = this;
    const { membership, quorum, timing } = ctx;
    if (!this.settled(now)) {
      this.wakeHint = Math.min(this.wakeHint, ctx.startedAt + timing.initDeadMs);
      return;
    }
    const curHolder = current.holder;
    if (curHolder && curHolder !== ctx.self && membership.isAlive(curHolder, now)) {
      return; // the holder is alive: it releases first (planned move), or keeps it
    }
    const handed = this.handedTo.get(vip);
    if (handed && now < handed.until) {
      this.wakeHint = Math.min(this.wakeHint, handed.until);
      return; // handed over to another member (onRelease): let it bind first
    }
    if (handed) this.handedTo.delete(vip);
    const yielded = this.acquisitions.yieldUntil(vip, now);
    if (yielded > now) {
      this.wakeHint = Math.min(this.wakeHint, yielded);
      return; // we lost a split vote for it to an earlier id: it asks alone this round
    }
    // Fewer voters alive than a quorum: no candidacy can win; asking would only flood the
    // network (a member cut off from the others, or the minority side of a partition).
    if (quorum.mode !== 'ignore' && this.votersAlive < quorum.size) return;
    // Read before our self-ack below updates the record.
    const previousEpoch = rec.epoch;
    const epoch = Math.max(rec.epoch + 1, (spec.epochFloor ?? 0) + 1);
    if (epoch > UINT32_MAX) return;
    const cause = curHolder
      ? TakeoverCause.HolderDead
      : rec.epoch > 0
        ? TakeoverCause.Released
        : TakeoverCause.Unheld;
    if (quorum.mode !== 'ignore' && quorum.voters.includes(ctx.self)) {
      const selfAck = ctx.voter.onTakeover(now, ctx.self, ctx.incarnation, vip, epoch);
      if (!selfAck.granted) {
        const wait =
          selfAck.reason === AckRefusal.Starting
            ? ctx.voter.quietUntil()
            : selfAck.reason === AckRefusal.PromiseActive
              ? selfAck.record.promiseUntil
              : Infinity;
        if (Number.isFinite(wait)) this.wakeHint = Math.min(this.wakeHint, wait);
        return;
      }
    } else if (quorum.mode === 'ignore') {
      ctx.voter.onTakeover(now, ctx.self, ctx.incarnation, vip, epoch);
    }
    this.acquisitions.begin(
      now,
      { vip, epoch, cause, previousHolder: curHolder, previousEpoch, reason: result.reason },
      out,
    );
  }

  /**
   * Views may disagree on the winner (each thinks another should take it). If the VIP has
   * had no live holder for deadMs plus `k` intervals, the member ranked k-th steps in.
   */
  private fallback(now: Millis, vip: VipId, spec: VipSpec, loads: Map<MemberId, number>): string | undefined {
    const since = this.unheldSince.get(vip)?.since;
    if (since === undefined) return undefined;
    const { deadMs, intervalMs } = this.ctx.timing;
    if (now - since < deadMs) {
      // Nobody steps in before deadMs (k = 0): skip ranking until then.
      this.wakeHint = Math.min(this.wakeHint, since + deadMs);
      return undefined;
    }
    const k = rankIndex(spec, this.electionMembers(now, vip, loads), this.loadBound, this.ctx.self);
    if (k < 0) return undefined;
    const wait = deadMs + k * intervalMs;
    if (now - since < wait) {
      this.wakeHint = Math.min(this.wakeHint, since + wait);
      return undefined;
    }
    return `no live holder for ${Math.round(now - since)}ms; ${this.ctx.self} (rank ${k + 1}) steps in`;
  }

  /**
   * The election's view of every member for `vip`. Returns the same pooled objects on every
   * call (filled in anew): elect() and rankIndex() keep no reference to them, and a sweep over
   * 1,000 VIPs in a 100-member cluster would otherwise allocate 100,000 objects.
   */
  private electionMembers(now: Millis, vip: VipId, loads: Map<MemberId, number>): ElectionMember[] {
    const { ctx } = this;
    // `load` is read lazily (a getter on the pooled object): the election looks at a few
    // members only, and filling 100 loads per VIP was a tenth of a member's CPU.
    const pool = (this.pool ??= ctx.members.map((id) => {
      const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
      return {
        id,
        alive: false,
        healthy: true,
        standby: false,
        get load() {
          return Math.max(0, (self.poolLoads.get(id) ?? 0) - (self.poolHolder === id ? 1 : 0));
        },
      };
    }));
    if (this.poolStep !== this.step) {
      // Liveness and standby do not depend on the VIP: once per step (onHeartbeat and
      // setLocal reset poolStep when a peer's or our standby / health changes).
      this.poolStep = this.step;
      this.poolUnhealthy = [];
      for (const [i, m] of pool.entries()) {
        const self = m.id === ctx.self;
        const peer = self ? undefined : ctx.membership.peer(m.id);
        m.alive = ctx.membership.isAlive(m.id, now);
        m.standby = self ? ctx.standby : (peer?.standby ?? false);
        m.healthy = true;
        const unhealthy = self ? ctx.unhealthy : peer?.unhealthy;
        if (unhealthy && unhealthy.size > 0) this.poolUnhealthy.push([i, unhealthy]);
      }
    }
    for (const [i, set] of this.poolUnhealthy) (pool[i] as ElectionMember).healthy = !set.has(vip);
    this.poolLoads = loads;
    this.poolHolder = ctx.voter.holderOf(vip) ?? this.claimant(ctx.lastNow, vip);
    return pool;
  }

  /**
   * For the election only (never for votes): a live peer that lists `vip` in its complete
   * holdings at an epoch no older than the newest confirmed one, when our voter table names no
   * holder. A failed candidacy leaves its epoch spent (released) in our table, above the real
   * holder's: without this we took the VIP for unheld, stepped in again and again (refused:
   * promise active) and never saw the holder. The claim goes when its holder's next holdings
   * no longer list it, or the holder dies.
   */
  private claimant(now: Millis, vip: VipId): MemberId | null {
    const floor = this.ctx.voter.get(vip).confirmedEpoch;
    for (const p of this.ctx.membership.all()) {
      const e = p.holdings?.entries.get(vip);
      if (e !== undefined && e >= floor && this.ctx.membership.isAlive(p.id, now)) return p.id;
    }
    return null;
  }

  /** VIPs held per member in our voter table (O(VIPs): once per sweep). */
  private loads(): Map<MemberId, number> {
    const loads = new Map<MemberId, number>();
    for (const [vip, r] of this.ctx.voter.entries()) {
      if (!this.ctx.vips.has(vip) || r.released || r.holder === null) continue;
      loads.set(r.holder, (loads.get(r.holder) ?? 0) + 1);
    }
    return loads;
  }

  /** The load bound over the members that can take VIPs now (alive, not standby). */
  private cap(now: Millis): number {
    const { ctx } = this;
    let usable = 0;
    for (const id of ctx.members) {
      if (id === ctx.self ? ctx.standby : !ctx.membership.isAlive(id, now)) continue;
      if (id !== ctx.self && ctx.membership.peer(id)?.standby) continue;
      usable++;
    }
    this.votersAlive = ctx.quorum.voters.filter(
      (v) => v === ctx.self || ctx.membership.isAlive(v, now),
    ).length;
    return loadCap(ctx.vips.size, usable);
  }
}
