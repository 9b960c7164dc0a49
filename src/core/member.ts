/**
 * A member of a Heartline cluster as a pure state machine: failure detection, quorum leases
 * (voter and holder), election and takeover. The agent (or the controller's witness, or the
 * simulator) feeds it time and messages and performs the commands it returns.
 *
 * Rules the caller must keep:
 * - `now` comes from one monotonic clock and never goes back;
 * - commands are performed in order; `bind` only if `leaseExpiry` is still in the future
 *   when the address is actually added (the fence deadline is `leaseExpiry`, the kernel
 *   lifetime `ceil((leaseExpiry - now) / 1000)` seconds);
 * - a restarted agent sweeps its old addresses *before* the first `start`, with a strictly
 *   greater incarnation than its previous life;
 * - `wakeAt()` tells when `tick` must next be called (calling it more often is harmless).
 *
 * Member coordinates its parts: the shared state (member-context.ts), what it sends unasked
 * (heartbeat-sender.ts), its candidacies (acquisitions.ts), letting go of VIPs and handoffs
 * (release.ts), and the per-VIP decisions (candidacy.ts). It owns the order of a step:
 * expiries first, then the message or the timers, then batched sends, renewals, heartbeats.
 *
 * Size: the dispatcher and the state the parts share; its jobs are split out already
 * (heartbeat-sender, candidacy, acquisitions, release, member-context).
 */
import { Acquisitions } from './acquisitions.js';
import { provesFreshness } from './freshness.js';
import { Candidacy } from './candidacy.js';
import { HeartbeatSender } from './heartbeat-sender.js';
import type { Holding, Quorum } from './lease-holder.js';
import { VoterTable } from './lease-voter.js';
import {
  checkMembers,
  MemberConfigError,
  MemberContext,
  UINT32_MAX,
  type MemberComponents,
  type MemberInit,
  type Output,
  type VipSpec,
} from './member-context.js';
import { Membership, type Liveness } from './membership.js';
import {
  AckRefusal,
  releasedBy,
  type AckEntry,
  type Epoch,
  type Generation,
  type Heartbeat,
  type HoldingEntry,
  type Incarnation,
  type MemberId,
  type Message,
  type TakeoverAck,
  type TakeoverRequest,
  type VipId,
} from './messages.js';
import type { Millis } from './ports.js';
import { Releases } from './release.js';

export type { UnsafeOptions } from './lease-voter.js';
export type { QuorumMode } from './lease-holder.js';
export {
  MemberConfigError,
  type MemberComponents,
  type MemberEvent,
  type MemberInit,
  type Output,
  type UnbindReason,
  type VipSpec,
} from './member-context.js';

export class Member {
  readonly self: MemberId;
  readonly incarnation: Incarnation;
  private readonly ctx: MemberContext;
  private readonly sender: HeartbeatSender;
  private readonly acquisitions: Acquisitions;
  private readonly releases: Releases;
  private readonly candidacy: Candidacy;
  private started = false;
  private stopped = false;
  /** A peer's standby or health changed while handling a message: sweep before returning. */
  private electDue = false;
  /** A peer became ready to take VIPs (ADR 0014): decide our holdings again before returning. */
  private heldDue = false;
  /** Ready for the rest of this life: the settling flag no longer needs computing. */
  private readyForGood = false;

  constructor(components: MemberComponents, init: MemberInit) {
    this.ctx = new MemberContext(components, init);
    this.self = this.ctx.self;
    this.incarnation = this.ctx.incarnation;
    this.sender = new HeartbeatSender(this.ctx);
    this.acquisitions = new Acquisitions(this.ctx, this.sender);
    this.releases = new Releases(this.ctx, this.sender, this.acquisitions);
    this.candidacy = new Candidacy(this.ctx, this.acquisitions, this.releases);
    if (this.ctx.isWitness) {
      // A witness never holds: it is never anyone's successor.
      this.sender.setSettling(false);
      this.readyForGood = true;
    }
  }

  /** The voter set and quorum size of the current member set. */
  get quorum(): Quorum {
    return this.ctx.quorum;
  }

  /** Generation of the current member set (0: none published). */
  get generation(): Generation {
    return this.ctx.generation;
  }

  /**
   * A membership change in place (docs/protocol.md "Membership changes"): the member set of
   * `generation` replaces the current one; incarnation, leases, promises, candidacies and
   * every peer kept are unchanged. Added peers start unknown and must prove freshness;
   * removed ones are forgotten (promises made to them still run out, as promises do not
   * depend on the configuration), and grants or acks from members that are no longer voters
   * stop counting at once. A generation older than the current one is ignored (members learn
   * generations in order of publication, but a watch may deliver an old object late); the
   * same generation must carry the same set. Safe only with the controller's rules: one
   * voter between consecutive generations and the barrier before the next but one.
   * Throws MemberConfigError when `members` cannot run here (self not listed: stop instead).
   */
  setMembers(now: Millis, next: { members: readonly MemberId[]; generation: Generation }): Output[] {
    const { ctx } = this;
    if (next.generation < ctx.generation) return [];
    const same =
      next.members.length === ctx.members.length && next.members.every((m, i) => m === ctx.members[i]);
    if (next.generation === ctx.generation) {
      if (same) return [];
      throw new MemberConfigError(
        `generation: ${next.generation} already names another member set (${ctx.members.join(', ')}); publish a new generation`,
      );
    }
    checkMembers({ self: ctx.self, members: next.members, witness: ctx.witness, quorum: ctx.init.quorum });
    const out: Output[] = [];
    ctx.setMembers(next.members, next.generation);
    if (!this.started || this.stopped) return out;
    if (!this.enter(now)) return out;
    const kept = new Set(ctx.peers);
    for (const p of [...ctx.membership.all()]) if (!kept.has(p.id)) this.sender.forgetPeer(p.id);
    ctx.membership.setPeers(ctx.peers, now);
    ctx.leases.setQuorum(ctx.quorum);
    this.acquisitions.dropNonVoters();
    this.candidacy.membersReplaced();
    // Say the new generation at once: voters that moved grant only members that did.
    this.sender.roundDue();
    this.expire(now, out);
    this.candidacy.electAll(now, out);
    this.finish(now, out);
    return out;
  }

  /** Starts this life at `now`: first heartbeat goes out at once. */
  start(now: Millis): Output[] {
    if (this.started) return [];
    const { ctx } = this;
    this.started = true;
    ctx.startedAt = now;
    ctx.lastNow = now;
    ctx.membership = new Membership(ctx.self, ctx.peers, ctx.timing, now);
    const floors = new Map<VipId, Epoch>();
    for (const v of ctx.vips.values()) if (v.epochFloor) floors.set(v.vip, v.epochFloor);
    ctx.voter = new VoterTable(ctx.self, ctx.timing, now, floors, ctx.init.unsafe);
    this.sender.start(now);
    return this.tick(now);
  }

  /** Advances time: expiries, liveness, heartbeats, elections, takeover retries. */
  tick(now: Millis): Output[] {
    const out: Output[] = [];
    if (!this.enter(now)) return out;
    this.expire(now, out);
    const changes = this.ctx.membership.tick(now);
    for (const change of changes) this.ctx.emit({ type: 'liveness', change });
    this.sender.tick(now);
    // A full sweep over every VIP when liveness changed, once per interval, or when a VIP
    // asked for it (a fallback or promise timer); otherwise only the running candidacies.
    // Every wake-up used to sweep all VIPs: with 1,000 VIPs that was most of the CPU.
    if (changes.length > 0 || this.candidacy.sweepDue(now)) this.candidacy.electAll(now, out);
    else this.candidacy.electAcquiring(now, out);
    this.finish(now, out);
    return out;
  }

  /** Handles one message received at `now` (already authenticated by the wire). */
  receive(now: Millis, msg: Message): Output[] {
    const out: Output[] = [];
    if (!this.enter(now)) return out;
    const { ctx } = this;
    if (msg.clusterId !== ctx.clusterId || msg.from === ctx.self) return out;
    this.expire(now, out);
    if (!ctx.membership.has(msg.from)) return out;
    if (!this.admitted(now, msg)) {
      this.finish(now, out); // a challenge echo may be due
      return out;
    }
    if (!this.observe(now, msg)) return out;
    this.electDue = false;
    this.heldDue = false;
    switch (msg.kind) {
      case 'heartbeat':
        this.onHeartbeat(now, msg, out);
        break;
      case 'takeover':
        this.onTakeover(now, msg, out);
        break;
      case 'takeover-ack':
        this.acquisitions.onAck(now, msg, out);
        break;
      case 'release':
        // Every VIP of a batched Release (docs/adr/0041) as a Release of its own; one with
        // `also` never names a successor (the codec refuses it).
        for (const { vip, epoch } of releasedBy(msg)) {
          ctx.voter.onRelease(now, msg.from, vip, epoch);
          ctx.membership.forgetClaim(msg.from, vip, epoch);
          if (msg.successor === ctx.self && (this.acquisitions.get(vip)?.epoch ?? Infinity) <= epoch) {
            // Handed over while we were asking for an epoch it supersedes (views crossed): the
            // releaser granted us the next one; ask for that one instead.
            this.acquisitions.abandon(now, vip, `${msg.from} hands it over at epoch ${epoch + 1}`, out);
          }
          this.candidacy.onRelease(now, msg.from, vip, msg.successor);
          this.candidacy.electOne(now, vip, out, msg.successor === ctx.self ? msg.from : undefined);
          if (msg.successor === ctx.self) this.releases.declineHandoff(now, msg.from, vip, epoch + 1, out);
        }
        break;
    }
    if (this.electDue) {
      // A peer's standby or health changed: planned moves should not wait for our next tick.
      this.electDue = false;
      this.candidacy.electAll(now, out);
    } else if (this.heldDue) {
      this.candidacy.electHeld(now, out);
    }
    this.heldDue = false;
    this.finish(now, out);
    return out;
  }

  /** Local state reported by the agent: drain/standby and VIPs whose Resources fail here. */
  setLocal(now: Millis, local: { standby?: boolean; unhealthy?: Iterable<VipId> }): Output[] {
    if (local.standby !== undefined) this.ctx.standby = local.standby;
    if (local.unhealthy !== undefined) this.ctx.unhealthy = new Set(local.unhealthy);
    this.sender.roundDue();
    this.candidacy.localChanged();
    return this.started ? this.tick(now) : [];
  }

  /** Replaces the VIP configuration. Removed VIPs are released. */
  setVips(now: Millis, vips: readonly VipSpec[]): Output[] {
    const out: Output[] = [];
    const { ctx } = this;
    const next = new Map(vips.map((v) => [v.vip, v] as const));
    if (this.started && this.enter(now)) {
      for (const vip of [...ctx.leases.holdings.keys()]) {
        if (!next.has(vip))
          this.releases.giveUp(now, vip, 'removed', 'VIP removed from the configuration', null, out);
      }
      for (const vip of this.acquisitions.vips()) {
        const spec = next.get(vip);
        const asked = this.acquisitions.get(vip)?.epoch ?? 0;
        if (!spec) this.acquisitions.abandon(now, vip, 'VIP removed', out);
        // The VIP's status epoch reached the epoch we ask for: it was bound (or spent) by
        // someone else, possibly by a quorum of an older member set none of our voters was in.
        // A candidate starts above the floor; one that began before the floor rose gives that
        // epoch up and asks again above it (the next sweep), instead of retrying it.
        else if ((spec.epochFloor ?? 0) >= asked)
          this.acquisitions.abandon(
            now,
            vip,
            `epoch ${asked} is at or below the status epoch ${spec.epochFloor}`,
            out,
          );
      }
    }
    ctx.vips.clear();
    this.candidacy.vipsChanged();
    for (const [k, v] of next) {
      ctx.vips.set(k, v);
      if (this.started && v.epochFloor) ctx.voter.learn(k, v.epochFloor, null);
    }
    if (this.started) this.finish(now, out);
    return out;
  }

  /**
   * Graceful stop: releases every VIP and tells the peers this member is leaving, so the
   * successor takes over within a round trip instead of waiting for deadMs. First, with
   * `handOver` (a process stop, not leaving the member set), as in standby, each VIP whose
   * elected successor is alive and ready is handed over (its
   * `unbind`, its Releases naming the successor, our grant of the next epoch to it); then
   * every other `unbind`; a final heartbeat to every peer with `standby: true`, no holdings
   * and the releases (peers exclude a standby member from elections until they hear it again
   * as non-standby or in a new life); then one Release per remaining VIP and peer. Nothing
   * that reveals a release precedes its unbind.
   */
  stop(now: Millis, opts: { handOver?: boolean } = {}): Output[] {
    const out: Output[] = [];
    if (!this.enter(now)) return out;
    const { ctx } = this;
    now = ctx.lastNow;
    ctx.standby = true;
    const handed: Output[] = [];
    if (opts.handOver) {
      // A stop is a planned move, as a drain is (docs/adr/0008): in standby, each VIP goes to
      // the member the election picks, when it is alive and ready, with our grant for the next
      // epoch (the handoff), so that with three voters it binds on our release alone instead
      // of running a takeover round. Not when leaving the member set: the successor, at the
      // generation without us, ignores what we send, and the VIP would wait for deadMs.
      this.candidacy.localChanged();
      this.releases.handOverNow = true;
      this.candidacy.electHeld(now, handed);
      this.releases.flushHandoffs(now, handed);
    }
    out.push(...handed.filter((o) => o.type === 'unbind'));
    // What found no successor is released for anyone.
    const released: HoldingEntry[] = [];
    for (const vip of [...ctx.leases.holdings.keys()]) {
      const h = ctx.leases.remove(vip) as Holding;
      out.push({ type: 'unbind', vip, epoch: h.epoch, reason: 'stopped', detail: 'member stopping' });
      ctx.voter.releaseSelf(now, vip, h.epoch);
      released.push({ vip, epoch: h.epoch });
    }
    released.push(...this.acquisitions.abandonAll(now, 'member stopping'));
    for (const r of released) this.sender.noteRelease(now, r.vip, r.epoch);
    // Leaving: peers rank a standby member last, so the successor asks at once. The final
    // heartbeat (standby, every release listed) goes before the handovers' Releases and
    // grants, so that an observer sees a drain, not a bare release.
    this.sender.finalRound(now, out);
    out.push(...handed.filter((o) => o.type !== 'unbind'));
    for (const r of released) this.sender.sendRelease(now, r.vip, r.epoch, null, out);
    this.sender.flushReleases(now, out);
    this.stopped = true;
    return out;
  }

  /** When `tick` must next be called. */
  wakeAt(): Millis {
    if (!this.started || this.stopped) return Infinity;
    const { ctx } = this;
    let t = Math.min(this.sender.wakeAt(), ctx.membership.nextChangeAt(ctx.lastNow), this.candidacy.wakeAt());
    const { intervalMs } = ctx.timing;
    for (const h of ctx.leases.holdings.values()) {
      // Renewal time (near the deadline handed out) if the lease outlasts that deadline,
      // else its expiry. While the exact expiry is not computed but known to be at least the
      // deadline, wake at the renewal time: early at worst, and that tick computes it.
      const renewAt = h.emitted - intervalMs / 2;
      if (h.cached === undefined && h.lower !== undefined && h.lower >= h.emitted && renewAt > ctx.lastNow) {
        t = Math.min(t, renewAt);
        continue;
      }
      const exp = ctx.leases.expiry(h);
      t = Math.min(t, exp > h.emitted ? renewAt : exp);
    }
    t = Math.min(t, this.acquisitions.wakeAt());
    if (!this.readyForGood) {
      // Readiness changes by time alone at the end of the quiet period and at initDeadMs.
      for (const at of [ctx.voter.quietUntil(), ctx.startedAt + ctx.timing.initDeadMs])
        if (at > ctx.lastNow) t = Math.min(t, at);
    }
    return Math.max(t, ctx.lastNow);
  }

  /** Read-only view for status, logs and tests. */
  view(now: Millis): MemberView {
    const { ctx } = this;
    const holdings = [...ctx.leases.holdings.values()].map((h) => ({
      vip: h.vip,
      epoch: h.epoch,
      leaseExpiry: ctx.leases.expiry(h),
    }));
    const members = ctx.peers.map((id) => ({
      id,
      liveness: this.started ? ctx.membership.liveness(id, now) : ('unknown' as Liveness),
    }));
    const table = this.started
      ? [...ctx.voter.entries()].map(([vip, r]) => ({
          vip,
          epoch: r.epoch,
          holder: r.released ? null : r.holder,
          promiseTo: r.promiseTo,
          promiseUntil: r.promiseUntil,
        }))
      : [];
    const acquiring = [...this.acquisitions.values()].map((a) => ({
      vip: a.vip,
      epoch: a.epoch,
      acks: [...a.acks.keys()],
    }));
    const ready = this.readyForGood || (this.started && !this.stopped && this.candidacy.ready(now));
    return { self: this.self, incarnation: this.incarnation, ready, holdings, members, table, acquiring };
  }

  // ---------------------------------------------------------------------------------------

  private enter(now: Millis): boolean {
    if (!this.started || this.stopped) return false;
    const { ctx } = this;
    if (now < ctx.lastNow) now = ctx.lastNow; // monotonic by contract; be defensive
    ctx.lastNow = now;
    ctx.leases.step(now);
    this.candidacy.enterStep();
    return true;
  }

  /**
   * Freshness gate (docs/adr/0015): whether `msg` from a peer may count. A message of a life
   * that has not proven freshness yet counts for nothing, but a heartbeat is answered with an
   * echo that grants nothing, so that its sender can prove itself.
   */
  private admitted(now: Millis, msg: Message): boolean {
    const { ctx } = this;
    if (ctx.init.unsafe?.skipFreshness) return true;
    const proves = provesFreshness(msg, {
      self: ctx.self,
      incarnation: ctx.incarnation,
      sentAt: (s) => ctx.leases.sendTime(s),
    });
    const a = ctx.membership.admit(msg.from, msg.incarnation, msg.seq, proves);
    if (a === undefined) return false;
    if (a === 'fresh' || a === 'proof') return true;
    ctx.emit({ type: 'not-fresh', from: msg.from, kind: msg.kind, reason: a });
    if (a === 'unproven' && msg.kind === 'heartbeat') this.sender.challenge(now, msg);
    return false;
  }

  private observe(now: Millis, msg: Message): boolean {
    const o = this.ctx.membership.observe(now, msg.from, msg.incarnation, msg.seq);
    if (o === undefined || o === 'stale') return false;
    if (o === 'new-life') {
      this.ctx.voter.onNewLife(now, msg.from, msg.incarnation);
      this.sender.forgetPeer(msg.from);
    }
    return true;
  }

  /** Drops VIPs whose lease has no quorum any more. Runs before anything else on every entry. */
  private expire(now: Millis, out: Output[]): void {
    const { leases, quorum } = this.ctx;
    for (const h of [...leases.holdings.values()]) {
      if (leases.expiryAtLeast(h) > now) continue; // cannot have expired
      if (leases.expiry(h) <= now) {
        this.releases.giveUp(
          now,
          h.vip,
          'lease-expired',
          `no quorum of unexpired grants (need ${quorum.size})`,
          null,
          out,
        );
      }
    }
  }

  /** End of a step: expiries, batched requests and handoffs, renewals, heartbeats. */
  private finish(now: Millis, out: Output[]): void {
    this.expire(now, out);
    this.acquisitions.flushRequests(now, out);
    this.releases.flushHandoffs(now, out);
    this.renew(now, out);
    this.advertiseReadiness(now);
    this.sender.flush(now, out);
  }

  /**
   * Our heartbeats say `settling` until we could take a VIP handed to us (Candidacy.ready):
   * holders hand VIPs over only to members that are not settling (docs/adr/0014). Once ready
   * past initDeadMs we stay ready for this life, and the check costs nothing any more.
   */
  private advertiseReadiness(now: Millis): void {
    if (this.readyForGood) return;
    const ready = this.candidacy.ready(now);
    this.sender.setSettling(!ready);
    if (ready && now >= this.ctx.startedAt + this.ctx.timing.initDeadMs) this.readyForGood = true;
  }

  /** Hands the agent a later fence deadline for holdings whose lease grew enough or nears it. */
  private renew(now: Millis, out: Output[]): void {
    const { leases } = this.ctx;
    const { intervalMs } = this.ctx.timing;
    for (const h of leases.holdings.values()) {
      // No renewal possible unless the lease may have grown by interval/4 or the deadline nears.
      if (h.emitted - now > intervalMs / 2 && leases.expiryAtMost(h) - h.emitted < intervalMs / 4) continue;
      const exp = leases.expiry(h);
      // Renew when the lease grew enough, or when the fence deadline handed out draws near.
      if (exp > h.emitted && (exp - h.emitted >= intervalMs / 4 || h.emitted - now <= intervalMs / 2)) {
        h.emitted = exp;
        out.push({ type: 'renew', vip: h.vip, epoch: h.epoch, leaseExpiry: exp });
      }
    }
  }

  /** A peer's heartbeat: its state for the election, our echo, our grants and conflicts. */
  private onHeartbeat(now: Millis, hb: Heartbeat, out: Output[]): void {
    const { ctx } = this;
    const peer = ctx.membership.peer(hb.from);
    if (!peer) return;
    this.sender.promptEcho(now, hb);
    const settling = hb.settling ?? false;
    // Ready now: a handover of ours to it may be due. Only our holdings can be affected (a
    // full sweep per peer that became ready tripled the core's CPU at a 63-member cold start).
    if (peer.settling && !settling) this.heldDue = true;
    const changed =
      peer.standby !== hb.standby ||
      peer.unhealthy.size !== hb.unhealthy.length ||
      hb.unhealthy.some((v) => !peer.unhealthy.has(v));
    peer.standby = hb.standby;
    peer.witness = hb.witness;
    peer.settling = settling;
    const generation = hb.generation ?? 0;
    if (generation > peer.generation) peer.generation = generation;
    // Voter rule (membership changes): a member at an older generation than ours gets no
    // promise and no grant from us (an echo of holdings version 0 keeps it proving freshness).
    const behind = generation < ctx.generation && !ctx.init.unsafe?.skipGenerationRule;
    if (changed) {
      peer.unhealthy = new Set(hb.unhealthy);
      this.electDue = true;
      this.candidacy.membersChanged();
      // A holder going to standby is about to hand a VIP over and waits for our echo of this
      // heartbeat (docs/adr/0034): answer now, not at the prompt-echo spacing.
      this.sender.echoNow(hb.from);
    }
    for (const r of hb.releases) {
      ctx.voter.onRelease(now, hb.from, r.vip, r.epoch);
      ctx.membership.forgetClaim(hb.from, r.vip, r.epoch);
    }
    const completed = ctx.membership.addHoldingsPage(hb.from, hb.holdings);
    // A holder's new version just became known whole (its last page): echo it now, so its new
    // VIPs are renewed without waiting for our next round (the prompt echo above went out with
    // the first page, when only the older version was known).
    if (completed && completed.entries.size > 0 && hb.holdings.pages > 1) this.sender.echoNow(hb.from);
    const known = behind ? undefined : peer.holdings;
    const conflicts = known ? ctx.voter.onHoldings(now, hb.from, hb.incarnation, known) : [];
    this.sender.recordEcho(hb, known?.version ?? 0, conflicts);
    // Grants and conflicts addressed to us.
    const refused = new Set<VipId>();
    for (const c of hb.conflicts) {
      if (c.member !== ctx.self) continue;
      refused.add(c.vip);
      ctx.leases.revoke(hb.from, c.vip);
      ctx.voter.learn(c.vip, c.epoch, c.holder);
    }
    // Only voters grant: a peer outside the voter set (e.g. an observing controller) never counts.
    const voter = ctx.voterSet.has(hb.from);
    for (const e of hb.echoes) {
      if (e.member !== ctx.self || e.incarnation !== ctx.incarnation) continue;
      if (voter) ctx.leases.onEcho(hb.from, e.seq, e.holdingsVersion, refused);
      if (this.releases.onEcho(hb.from, e.seq)) this.heldDue = true;
    }
    this.releases.checkSuperseded(now, out);
  }

  /** A takeover request: our vote per VIP (as a voter), answered at once. */
  private onTakeover(now: Millis, req: TakeoverRequest, out: Output[]): void {
    const { ctx } = this;
    if (!ctx.quorum.voters.includes(ctx.self)) return;
    // Voter rule (membership changes): no ack to a candidate at an older generation than ours.
    const behind = (req.generation ?? 0) < ctx.generation && !ctx.init.unsafe?.skipGenerationRule;
    const entries: AckEntry[] = req.entries.map((e) => {
      const d = behind
        ? { granted: false, reason: AckRefusal.OldGeneration, record: ctx.voter.get(e.vip) }
        : ctx.voter.onTakeover(now, req.from, req.incarnation, e.vip, e.epoch);
      if (!d.granted)
        ctx.emit({ type: 'refused', vip: e.vip, epoch: e.epoch, candidate: req.from, reason: d.reason });
      const r = d.record;
      return {
        vip: e.vip,
        epoch: e.epoch,
        granted: d.granted,
        reason: d.reason,
        knownEpoch: r.epoch,
        knownHolder: r.released ? null : r.holder,
        promiseRemainingMs:
          r.promiseTo === null ? 0 : Math.max(0, Math.min(UINT32_MAX, Math.ceil(r.promiseUntil - now))),
      };
    });
    const ack: TakeoverAck = {
      kind: 'takeover-ack',
      ...this.sender.header(now),
      candidate: req.from,
      requestIncarnation: req.incarnation,
      requestSeq: req.seq,
      entries,
    };
    out.push({ type: 'send', to: req.from, message: ack });
    this.releases.checkSuperseded(now, out);
  }
}

/** A member's state for status, logs and tests. */
export interface MemberView {
  self: MemberId;
  incarnation: Incarnation;
  /**
   * Not settling any more (docs/adr/0014): it heard its peers (or initDeadMs passed) and, as a
   * voter, its quiet period after the start is over, so it can take a VIP handed to it and
   * its acks count. A rolling restart should wait for this before it stops the next member.
   */
  ready: boolean;
  holdings: Array<{ vip: VipId; epoch: Epoch; leaseExpiry: Millis }>;
  members: Array<{ id: MemberId; liveness: Liveness }>;
  table: Array<{
    vip: VipId;
    epoch: Epoch;
    holder: MemberId | null;
    promiseTo: MemberId | null;
    promiseUntil: Millis;
  }>;
  acquiring: Array<{ vip: VipId; epoch: Epoch; acks: MemberId[] }>;
}

export type { Holding };
