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
 */
import {
  elect,
  loadCap,
  rankIndex,
  type ElectionMember,
  type ElectionResult,
  type ElectionVip,
} from './election.js';
import { laterMessage, provesFreshness } from './freshness.js';
import { HolderLeases, quorumOf, type Holding, type Quorum, type QuorumMode } from './lease-holder.js';
import { VoterTable, type UnsafeOptions } from './lease-voter.js';
import { Membership, type Liveness, type LivenessChange } from './membership.js';
import {
  AckRefusal,
  LIMITS,
  TakeoverCause,
  type Assignment,
  type Conflict,
  type Destination,
  type Epoch,
  type Heartbeat,
  type HoldingEntry,
  type HoldingsPage,
  type HoldingsVersion,
  type Incarnation,
  type MemberId,
  type Message,
  type Release,
  type Seq,
  type AckEntry,
  type TakeoverAck,
  type TakeoverEntry,
  type TakeoverRequest,
  type VipId,
} from './messages.js';
import type { Millis } from './ports.js';
import type { Timing } from './timing.js';

export type { UnsafeOptions } from './lease-voter.js';
export type { QuorumMode } from './lease-holder.js';

/** A VIP as the core sees it. */
export interface VipSpec extends ElectionVip {
  /** Lowest epoch to use (from the VIP's status, the durable record). Default 0. */
  epochFloor?: Epoch;
}

export type UnbindReason =
  /** No quorum of unexpired grants any more. */
  | 'lease-expired'
  /** A newer epoch exists: someone else holds it. */
  | 'superseded'
  /** Planned move: released for `successor`. */
  | 'planned'
  /** The VIP was removed from the configuration or unassigned by the controller. */
  | 'removed'
  /** The member is stopping. */
  | 'stopped';

/** Commands for the agent. Times are on the member's own clock. */
export type Output =
  /** Add the address (kernel lifetime and fence deadline from `leaseExpiry`), announce it, start Resources. */
  | { type: 'bind'; vip: VipId; epoch: Epoch; leaseExpiry: Millis; reason: string }
  /** Extend the kernel lifetime and fence deadline of a bound address to `leaseExpiry`. */
  | { type: 'renew'; vip: VipId; epoch: Epoch; leaseExpiry: Millis }
  /** Stop Resources (planned) and remove the address now. */
  | { type: 'unbind'; vip: VipId; epoch: Epoch; reason: UnbindReason; detail: string }
  /** Send a message (to one member, or '*' for all). */
  | { type: 'send'; to: Destination; message: Message };

/** Things worth a log line, a metric or an Event. Informational: no action needed. */
export type MemberEvent =
  | { type: 'liveness'; change: LivenessChange }
  | { type: 'candidate'; vip: VipId; epoch: Epoch; reason: string }
  | { type: 'abandon'; vip: VipId; epoch: Epoch; reason: string }
  | { type: 'refused'; vip: VipId; epoch: Epoch; candidate: MemberId; reason: AckRefusal }
  /**
   * A message from a peer that has not proven freshness in this life (`unproven`), or from
   * before its proof (`stale`): it counted for nothing (docs/adr/0015). The host counts these
   * as `not-fresh` drops.
   */
  | { type: 'not-fresh'; from: MemberId; kind: Message['kind']; reason: 'unproven' | 'stale' };

export interface MemberComponents {
  /** Receives informational events (logs, metrics, Events). */
  observer?: (event: MemberEvent) => void;
}

export interface MemberInit {
  clusterId: string;
  self: MemberId;
  /** Strictly greater than any previous life of this member (e.g. boot counter or start time). */
  incarnation: Incarnation;
  /** Members that may hold VIPs, self included unless self is the witness. Same list on every member. */
  members: readonly MemberId[];
  /** The controller's witness voter (a member id that never holds), if any. */
  witness?: MemberId | null;
  /** Sender whose Assignment messages are accepted. */
  controller?: MemberId | null;
  quorum: QuorumMode;
  timing: Timing;
  vips: readonly VipSpec[];
  autoFailback?: boolean;
  /** Test-only breakages of the protocol (see {@link UnsafeOptions}). */
  unsafe?: UnsafeOptions;
}

/** The configuration is inconsistent; names the field and the fix. */
export class MemberConfigError extends Error {
  override readonly name = 'MemberConfigError';
}

interface Acquisition {
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
  reason: string;
}

interface EchoState {
  incarnation: Incarnation;
  seq: Seq;
  version: HoldingsVersion;
  conflicts: Conflict[];
}

const UINT32_MAX = 0xffffffff;

export class Member {
  readonly self: MemberId;
  readonly incarnation: Incarnation;
  readonly quorum: Quorum;
  private readonly voterSet: ReadonlySet<MemberId>;
  private readonly memberSet: ReadonlySet<MemberId>;
  private readonly timing: Timing;
  private readonly isWitness: boolean;
  private readonly peers: MemberId[];
  private readonly vips = new Map<VipId, VipSpec>();
  private sortedVips: VipId[] | undefined;
  private readonly assigned = new Map<VipId, { holder: MemberId | null; epoch: Epoch }>();
  private readonly acquiring = new Map<VipId, Acquisition>();
  private readonly echo = new Map<MemberId, EchoState>();
  private readonly unheldSince = new Map<VipId, Millis>();
  private recentReleases: Array<HoldingEntry & { until: Millis }> = [];
  /** Acquisitions whose takeover request goes out at the end of this step (batched). */
  private toRequest: Acquisition[] = [];
  /** Holdings version last sent whole in one round (see roundPages). */
  private burstVersion: HoldingsVersion = 0;
  /** Handoff grants (see handoff()) to send at the end of this step, per successor. */
  private toHandoff = new Map<MemberId, AckEntry[]>();
  private standby = false;
  private unhealthy = new Set<VipId>();
  private seq: Seq = 0;
  private started = false;
  private stopped = false;
  private startedAt: Millis = 0;
  private nextHeartbeatAt: Millis = 0;
  private heartbeatDue = false;
  /** Last full heartbeat round, and when new holdings (binds) are due to be announced. */
  private lastRoundAt: Millis = -Infinity;
  private announceAt: Millis = Infinity;
  /** Last heartbeat sent early to echo a holder (see onHeartbeat). */
  /** Last prompt echo per holder, and the holders to answer at the end of this step. */
  private promptEchoAt = new Map<MemberId, Millis>();
  private promptTo = new Set<MemberId>();
  private electDue = false;
  private wakeHint: Millis = Infinity;
  private lastNow: Millis = -Infinity;
  /** Load bound of the election sweep in progress ({@link loadCap}). */
  private loadBound = Infinity;
  /** Voters alive in our view (self included), counted at each sweep. */
  private votersAlive = 0;
  /** When the next full election sweep is due (see tick). */
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
  private membership!: Membership;
  private voter!: VoterTable;
  private leases: HolderLeases;

  constructor(
    private readonly components: MemberComponents,
    private readonly init: MemberInit,
  ) {
    this.self = init.self;
    this.incarnation = init.incarnation;
    this.timing = init.timing;
    const witness = init.witness ?? null;
    this.isWitness = witness === init.self;
    if (!this.isWitness && !init.members.includes(init.self)) {
      throw new MemberConfigError(`members: ${init.self} is not listed; add it or make it the witness`);
    }
    if (witness && init.members.includes(witness)) {
      throw new MemberConfigError(
        `witness: ${witness} is also in members; the witness votes but never holds`,
      );
    }
    if (init.quorum === 'witness' && !witness) {
      throw new MemberConfigError('quorum: "witness" needs a witness member id (the controller)');
    }
    if (init.members.length + (witness ? 1 : 0) > LIMITS.maxMembers) {
      throw new MemberConfigError(`members: at most ${LIMITS.maxMembers} members (witness included)`);
    }
    this.quorum = quorumOf(init.quorum, init.members, witness);
    this.voterSet = new Set(this.quorum.voters);
    this.memberSet = new Set(init.members);
    this.peers = [...init.members, ...(witness ? [witness] : [])].filter((m) => m !== init.self);
    for (const v of init.vips) this.vips.set(v.vip, v);
    this.leases = new HolderLeases(this.self, this.timing, this.quorum);
  }

  /** Starts this life at `now`: first heartbeat goes out at once. */
  start(now: Millis): Output[] {
    if (this.started) return [];
    this.started = true;
    this.startedAt = now;
    this.lastNow = now;
    this.membership = new Membership(this.self, this.peers, this.timing, now);
    const floors = new Map<VipId, Epoch>();
    for (const v of this.vips.values()) if (v.epochFloor) floors.set(v.vip, v.epochFloor);
    this.voter = new VoterTable(this.self, this.timing, now, floors, this.init.unsafe);
    this.nextHeartbeatAt = now;
    return this.tick(now);
  }

  /** Advances time: expiries, liveness, heartbeats, elections, takeover retries. */
  tick(now: Millis): Output[] {
    const out: Output[] = [];
    if (!this.enter(now)) return out;
    this.expire(now, out);
    const changes = this.membership.tick(now);
    for (const change of changes) this.emit({ type: 'liveness', change });
    if (now >= this.nextHeartbeatAt) {
      this.heartbeatDue = true;
      this.nextHeartbeatAt = Math.max(this.nextHeartbeatAt + this.timing.intervalMs, now + 1);
      if (this.nextHeartbeatAt <= now) this.nextHeartbeatAt = now + this.timing.intervalMs;
    }
    // A full sweep over every VIP when liveness changed, once per interval, or when a VIP
    // asked for it (a fallback or promise timer); otherwise only the running candidacies.
    // Every wake-up used to sweep all VIPs: with 1,000 VIPs that was most of the CPU.
    if (changes.length > 0 || now >= this.sweepAt) this.electAll(now, out);
    else this.electAcquiring(now, out);
    this.finish(now, out);
    return out;
  }

  /** Handles one message received at `now` (already authenticated by the wire). */
  receive(now: Millis, msg: Message): Output[] {
    const out: Output[] = [];
    if (!this.enter(now)) return out;
    if (msg.clusterId !== this.init.clusterId || msg.from === this.self) return out;
    this.expire(now, out);
    if (msg.kind === 'assignment') {
      // From a peer (the controller's witness), an assignment counts only once it is fresh.
      const peer = this.membership.has(msg.from);
      if (!peer || this.admitted(now, msg)) {
        if (msg.from === (this.init.controller ?? null)) this.onAssignment(now, msg, out);
        if (peer) this.observe(now, msg);
      }
      this.finish(now, out);
      return out;
    }
    if (!this.membership.has(msg.from)) return out;
    if (!this.admitted(now, msg)) {
      this.finish(now, out); // a challenge echo may be due
      return out;
    }
    if (!this.observe(now, msg)) return out;
    this.electDue = false;
    switch (msg.kind) {
      case 'heartbeat':
        this.onHeartbeat(now, msg, out);
        break;
      case 'takeover':
        this.onTakeover(now, msg, out);
        break;
      case 'takeover-ack':
        this.onAck(now, msg, out);
        break;
      case 'release':
        this.voter.onRelease(now, msg.from, msg.vip, msg.epoch);
        this.membership.forgetClaim(msg.from, msg.vip, msg.epoch);
        this.electOne(now, msg.vip, out, msg.successor === this.self ? msg.from : undefined);
        if (msg.successor === this.self) this.declineHandoff(now, msg.vip, msg.epoch + 1, out);
        break;
    }
    if (this.electDue) {
      // A peer's standby or health changed: planned moves should not wait for our next tick.
      this.electDue = false;
      this.electAll(now, out);
    }
    this.finish(now, out);
    return out;
  }

  /** Local state reported by the agent: drain/standby and VIPs whose Resources fail here. */
  setLocal(now: Millis, local: { standby?: boolean; unhealthy?: Iterable<VipId> }): Output[] {
    if (local.standby !== undefined) this.standby = local.standby;
    if (local.unhealthy !== undefined) this.unhealthy = new Set(local.unhealthy);
    this.heartbeatDue = true;
    this.sweepAt = -Infinity;
    this.poolStep = -1;
    return this.started ? this.tick(now) : [];
  }

  /** Replaces the VIP configuration. Removed VIPs are released. */
  setVips(now: Millis, vips: readonly VipSpec[]): Output[] {
    const out: Output[] = [];
    const next = new Map(vips.map((v) => [v.vip, v] as const));
    if (this.started && this.enter(now)) {
      for (const vip of [...this.leases.holdings.keys()]) {
        if (!next.has(vip)) this.giveUp(now, vip, 'removed', 'VIP removed from the configuration', null, out);
      }
      for (const vip of [...this.acquiring.keys()])
        if (!next.has(vip)) this.abandon(now, vip, 'VIP removed', out);
    }
    this.vips.clear();
    this.sortedVips = undefined;
    this.sweepAt = -Infinity;
    for (const [k, v] of next) {
      this.vips.set(k, v);
      if (this.started && v.epochFloor) this.voter.learn(k, v.epochFloor, null);
    }
    if (this.started) this.finish(now, out);
    return out;
  }

  /**
   * Graceful stop: releases every VIP and tells the peers this member is leaving, so the
   * successor takes over within a round trip instead of waiting for deadMs. Outputs, in
   * order: every `unbind`; then a final heartbeat to every peer with `standby: true`, no
   * holdings and the releases (peers exclude a standby member from elections until they hear
   * it again as non-standby or in a new life); then one Release per VIP and peer. Nothing
   * that reveals a release precedes its unbind.
   */
  stop(now: Millis): Output[] {
    const out: Output[] = [];
    if (!this.enter(now)) return out;
    now = this.lastNow;
    const released: HoldingEntry[] = [];
    for (const vip of [...this.leases.holdings.keys()]) {
      const h = this.leases.remove(vip) as Holding;
      out.push({ type: 'unbind', vip, epoch: h.epoch, reason: 'stopped', detail: 'member stopping' });
      this.voter.releaseSelf(now, vip, h.epoch);
      released.push({ vip, epoch: h.epoch });
    }
    for (const a of [...this.acquiring.values()]) {
      this.acquiring.delete(a.vip);
      this.emit({ type: 'abandon', vip: a.vip, epoch: a.epoch, reason: 'member stopping' });
      this.voter.releaseSelf(now, a.vip, a.epoch);
      released.push({ vip: a.vip, epoch: a.epoch });
    }
    for (const r of released) this.recentReleases.push({ ...r, until: now + this.timing.quietMs });
    // Leaving: peers rank a standby member last, so the successor asks at once.
    this.standby = true;
    this.heartbeatDue = false;
    this.sendHeartbeats(now, out);
    for (const r of released) {
      const base = this.header(now);
      for (const to of this.peers) {
        const message: Release = { kind: 'release', ...base, vip: r.vip, epoch: r.epoch, successor: null };
        out.push({ type: 'send', to, message });
      }
    }
    this.stopped = true;
    return out;
  }

  /** When `tick` must next be called. */
  wakeAt(): Millis {
    if (!this.started || this.stopped) return Infinity;
    let t = Math.min(
      this.nextHeartbeatAt,
      this.announceAt,
      this.membership.nextChangeAt(this.lastNow),
      this.wakeHint,
      this.sweepAt,
    );
    for (const h of this.leases.holdings.values()) {
      // Renewal time (near the deadline handed out) if the lease outlasts that deadline,
      // else its expiry. While the exact expiry is not computed but known to be at least the
      // deadline, wake at the renewal time: early at worst, and that tick computes it.
      const renewAt = h.emitted - this.timing.intervalMs / 2;
      if (h.cached === undefined && h.lower !== undefined && h.lower >= h.emitted && renewAt > this.lastNow) {
        t = Math.min(t, renewAt);
        continue;
      }
      const exp = this.leases.expiry(h);
      t = Math.min(t, exp > h.emitted ? renewAt : exp);
    }
    for (const a of this.acquiring.values())
      t = Math.min(t, a.lastSentAt + this.timing.intervalMs, a.quickRetryAt);
    return Math.max(t, this.lastNow);
  }

  /** Read-only view for status, logs and tests. */
  view(now: Millis): MemberView {
    const holdings = [...this.leases.holdings.values()].map((h) => ({
      vip: h.vip,
      epoch: h.epoch,
      leaseExpiry: this.leases.expiry(h),
    }));
    const members = this.peers.map((id) => ({
      id,
      liveness: this.membership?.liveness(id, now) ?? ('unknown' as Liveness),
    }));
    const table = this.voter
      ? [...this.voter.entries()].map(([vip, r]) => ({
          vip,
          epoch: r.epoch,
          holder: r.released ? null : r.holder,
          promiseTo: r.promiseTo,
          promiseUntil: r.promiseUntil,
        }))
      : [];
    const acquiring = [...this.acquiring.values()].map((a) => ({
      vip: a.vip,
      epoch: a.epoch,
      acks: [...a.acks.keys()],
    }));
    return { self: this.self, incarnation: this.incarnation, holdings, members, table, acquiring };
  }

  // ---------------------------------------------------------------------------------------

  private enter(now: Millis): boolean {
    if (!this.started || this.stopped) return false;
    if (now < this.lastNow) now = this.lastNow; // monotonic by contract; be defensive
    this.lastNow = now;
    this.leases.step(now);
    this.wakeHint = Infinity;
    this.step++;
    return true;
  }

  private emit(e: MemberEvent): void {
    this.components.observer?.(e);
  }

  /**
   * Freshness gate (docs/adr/0015): whether `msg` from a peer may count. A message of a life
   * that has not proven freshness yet counts for nothing, but a heartbeat is answered with an
   * echo (granting nothing: holdings version 0), so that its sender can prove itself.
   */
  private admitted(now: Millis, msg: Message): boolean {
    if (this.init.unsafe?.skipFreshness) return true;
    const proves = provesFreshness(msg, {
      self: this.self,
      incarnation: this.incarnation,
      sentAt: (s) => this.leases.sendTime(s),
    });
    const a = this.membership.admit(msg.from, msg.incarnation, msg.seq, proves);
    if (a === undefined) return false;
    if (a === 'fresh' || a === 'proof') return true;
    this.emit({ type: 'not-fresh', from: msg.from, kind: msg.kind, reason: a });
    if (a === 'unproven' && msg.kind === 'heartbeat') {
      const prev = this.echo.get(msg.from);
      if (!prev || laterMessage(msg, prev)) {
        this.echo.set(msg.from, { incarnation: msg.incarnation, seq: msg.seq, version: 0, conflicts: [] });
        if (now - (this.promptEchoAt.get(msg.from) ?? -Infinity) >= this.timing.intervalMs * 0.75) {
          this.promptEchoAt.set(msg.from, now);
          this.promptTo.add(msg.from);
        }
      }
    }
    return false;
  }

  private observe(now: Millis, msg: Message): boolean {
    const o = this.membership.observe(now, msg.from, msg.incarnation, msg.seq);
    if (o === undefined || o === 'stale') return false;
    if (o === 'new-life') {
      this.voter.onNewLife(now, msg.from, msg.incarnation);
      this.echo.delete(msg.from);
    }
    return true;
  }

  private nextSeq(now: Millis): Seq {
    this.seq = this.seq >= UINT32_MAX ? UINT32_MAX : this.seq + 1;
    this.leases.recordSend(this.seq, now);
    return this.seq;
  }

  private header(now: Millis) {
    return {
      clusterId: this.init.clusterId,
      from: this.self,
      incarnation: this.incarnation,
      seq: this.nextSeq(now),
    };
  }

  /** Drops VIPs whose lease has no quorum any more. Runs before anything else on every entry. */
  private expire(now: Millis, out: Output[]): void {
    for (const h of [...this.leases.holdings.values()]) {
      if (this.leases.expiryAtLeast(h) > now) continue; // cannot have expired
      if (this.leases.expiry(h) <= now) {
        this.giveUp(
          now,
          h.vip,
          'lease-expired',
          `no quorum of unexpired grants (need ${this.quorum.size})`,
          null,
          out,
        );
      }
    }
  }

  private finish(now: Millis, out: Output[]): void {
    this.expire(now, out);
    this.flushRequests(now, out);
    this.flushHandoffs(now, out);
    const { intervalMs } = this.timing;
    for (const h of this.leases.holdings.values()) {
      // No renewal possible unless the lease may have grown by interval/4 or the deadline nears.
      if (h.emitted - now > intervalMs / 2 && this.leases.expiryAtMost(h) - h.emitted < intervalMs / 4)
        continue;
      const exp = this.leases.expiry(h);
      // Renew when the lease grew enough, or when the fence deadline handed out draws near.
      if (exp > h.emitted && (exp - h.emitted >= intervalMs / 4 || h.emitted - now <= intervalMs / 2)) {
        h.emitted = exp;
        out.push({ type: 'renew', vip: h.vip, epoch: h.epoch, leaseExpiry: exp });
      }
    }
    this.recentReleases = this.recentReleases.filter((r) => r.until > now);
    if (now >= this.announceAt) this.heartbeatDue = true;
    if (this.heartbeatDue) {
      this.heartbeatDue = false;
      this.announceAt = Infinity;
      this.lastRoundAt = now;
      this.promptTo.clear();
      this.sendHeartbeats(now, out);
    } else if (this.promptTo.size > 0) {
      const to = [...this.promptTo];
      this.promptTo.clear();
      this.sendHeartbeats(now, out, to);
    }
  }

  /**
   * A heartbeat round: to every peer, or (a prompt echo) to some. A partial round repeats the
   * holdings page of the last full round, so the round robin over pages is not disturbed.
   */
  private sendHeartbeats(now: Millis, out: Output[], only?: readonly MemberId[]): void {
    for (const holdings of only ? [this.leases.currentPage()] : this.roundPages())
      this.sendHeartbeatPage(now, out, holdings, only);
  }

  /**
   * Holdings pages for a full round: one page (round robin) while the holdings version is
   * one every peer has been sent whole; every page of it, as consecutive heartbeats, in the
   * first round after it changed. Voters only count a version they know completely (every
   * page), so with one page per round a member whose holdings change more often than once
   * per `pages` rounds (many VIPs being acquired) was never known completely: its new VIPs
   * had no renewal and expired, which changed the version again. The burst costs `pages`
   * heartbeats per peer in that round only.
   */
  private roundPages(): HoldingsPage[] {
    const version = this.leases.holdingsVersion;
    if (version === this.burstVersion || this.leases.pages() === 1) return [this.leases.nextPage()];
    this.burstVersion = version;
    return this.leases.allPages();
  }

  private sendHeartbeatPage(
    now: Millis,
    out: Output[],
    holdings: HoldingsPage,
    only?: readonly MemberId[],
  ): void {
    const header = this.header(now);
    const releases = this.recentReleases
      .slice(-LIMITS.releasesPerHeartbeat)
      .map(({ vip, epoch }) => ({ vip, epoch }));
    const unhealthy = [...this.unhealthy]
      .filter((v) => this.vips.has(v))
      .slice(0, LIMITS.unhealthyPerHeartbeat);
    for (const to of only ?? this.peers) {
      const e = this.echo.get(to);
      let echoes: Heartbeat['echoes'] = [];
      let conflicts: Conflict[] = [];
      if (e) {
        const fits = e.conflicts.length <= LIMITS.conflictsPerHeartbeat;
        echoes = [
          { member: to, incarnation: e.incarnation, seq: e.seq, holdingsVersion: fits ? e.version : 0 },
        ];
        conflicts = e.conflicts.slice(0, LIMITS.conflictsPerHeartbeat);
      }
      const message: Heartbeat = {
        kind: 'heartbeat',
        ...header,
        standby: this.standby,
        witness: this.isWitness,
        unhealthy,
        holdings,
        releases,
        echoes,
        conflicts,
      };
      out.push({ type: 'send', to, message });
    }
  }

  private onHeartbeat(now: Millis, hb: Heartbeat, out: Output[]): void {
    const peer = this.membership.peer(hb.from);
    if (!peer) return;
    // A holder's lease is renewed by our echo of its heartbeat. Riding on our next periodic
    // heartbeat, the echo can come up to one interval late: with the fast profile (lease
    // ~230 ms, interval 100 ms) that left ~30 ms for scheduling jitter, and loaded nodes
    // flapped. So answer a holder at once (at most every 3/4 interval per holder): the renewal
    // lag becomes one round trip. Only that holder gets the extra heartbeat: a round to every
    // peer doubled the cluster's heartbeat traffic when every member holds a VIP. Extra
    // heartbeats change no safety argument.
    if (
      hb.holdings.entries.length > 0 &&
      now - (this.promptEchoAt.get(hb.from) ?? -Infinity) >= this.timing.intervalMs * 0.75
    ) {
      this.promptEchoAt.set(hb.from, now);
      this.promptTo.add(hb.from);
    }
    const changed =
      peer.standby !== hb.standby ||
      peer.unhealthy.size !== hb.unhealthy.length ||
      hb.unhealthy.some((v) => !peer.unhealthy.has(v));
    peer.standby = hb.standby;
    peer.witness = hb.witness;
    if (changed) peer.unhealthy = new Set(hb.unhealthy);
    if (changed) this.electDue = true;
    if (changed) this.poolStep = -1;
    for (const r of hb.releases) {
      this.voter.onRelease(now, hb.from, r.vip, r.epoch);
      this.membership.forgetClaim(hb.from, r.vip, r.epoch);
    }
    const completed = this.membership.addHoldingsPage(hb.from, hb.holdings);
    // A holder's new version just became known whole (its last page): echo it now, so its new
    // VIPs are renewed without waiting for our next round (the prompt echo above went out with
    // the first page, when only the older version was known).
    if (completed && completed.entries.size > 0 && hb.holdings.pages > 1) this.promptTo.add(hb.from);
    const known = peer.holdings;
    const prev = this.echo.get(hb.from);
    const conflicts = known ? this.voter.onHoldings(now, hb.from, hb.incarnation, known) : [];
    if (!prev || laterMessage(hb, prev)) {
      this.echo.set(hb.from, {
        incarnation: hb.incarnation,
        seq: hb.seq,
        version: known?.version ?? 0,
        conflicts,
      });
    }
    // Grants and conflicts addressed to us.
    const refused = new Set<VipId>();
    for (const c of hb.conflicts) {
      if (c.member !== this.self) continue;
      refused.add(c.vip);
      this.leases.revoke(hb.from, c.vip);
      this.voter.learn(c.vip, c.epoch, c.holder);
    }
    // Only voters grant: a peer outside the voter set (e.g. an observing controller) never counts.
    const voter = this.voterSet.has(hb.from);
    for (const e of hb.echoes) {
      if (voter && e.member === this.self && e.incarnation === this.incarnation) {
        this.leases.onEcho(hb.from, e.seq, e.holdingsVersion, refused);
      }
    }
    this.checkSuperseded(now, out);
    if (peer.liveness !== 'alive') {
      // A peer coming back may change who should hold what.
    }
  }

  private onTakeover(now: Millis, req: TakeoverRequest, out: Output[]): void {
    if (!this.quorum.voters.includes(this.self)) return;
    const entries: AckEntry[] = req.entries.map((e) => {
      const d = this.voter.onTakeover(now, req.from, req.incarnation, e.vip, e.epoch);
      if (!d.granted)
        this.emit({ type: 'refused', vip: e.vip, epoch: e.epoch, candidate: req.from, reason: d.reason });
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
      ...this.header(now),
      candidate: req.from,
      requestIncarnation: req.incarnation,
      requestSeq: req.seq,
      entries,
    };
    out.push({ type: 'send', to: req.from, message: ack });
    this.checkSuperseded(now, out);
  }

  private onAck(now: Millis, ack: TakeoverAck, out: Output[]): void {
    if (ack.candidate !== this.self || ack.requestIncarnation !== this.incarnation) return;
    if (!this.voterSet.has(ack.from)) return;
    const sent = this.leases.sendTime(ack.requestSeq);
    for (const e of ack.entries) this.onAckEntry(now, ack.from, e, sent, out);
  }

  private onAckEntry(
    now: Millis,
    from: MemberId,
    e: AckEntry,
    sent: Millis | undefined,
    out: Output[],
  ): void {
    const held = this.leases.holdings.get(e.vip);
    if (e.granted && sent !== undefined && held && held.epoch === e.epoch) {
      this.leases.grant(held, from, sent + this.timing.leaseMs);
      return;
    }
    const a = this.acquiring.get(e.vip);
    if (!a || a.epoch !== e.epoch) return;
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
      a.quickRetryAt = Math.min(a.quickRetryAt, now + Math.max(2, Math.round(this.timing.intervalMs / 20)));
      return;
    }
    if (e.granted) {
      if (sent === undefined) return;
      const until = sent + this.timing.leaseMs;
      if ((a.acks.get(from) ?? -Infinity) < until) a.acks.set(from, until);
      this.tryBind(now, a, out);
      return;
    }
    if (e.knownEpoch > a.epoch || (e.knownEpoch === a.epoch && e.knownHolder !== this.self)) {
      this.voter.learn(e.vip, e.knownEpoch, e.knownHolder);
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

  private onAssignment(now: Millis, msg: Assignment, out: Output[]): void {
    const prev = this.assigned.get(msg.vip);
    if (prev && prev.epoch >= msg.epoch) return;
    this.assigned.set(msg.vip, { holder: msg.holder, epoch: msg.epoch });
    this.electOne(now, msg.vip, out);
  }

  /** Gives up holdings and candidacies that a newer epoch known to our voter table supersedes. */
  private checkSuperseded(now: Millis, out: Output[]): void {
    for (const h of [...this.leases.holdings.values()]) {
      const r = this.voter.get(h.vip);
      if (r.confirmedEpoch > h.epoch) {
        this.giveUp(
          now,
          h.vip,
          'superseded',
          `epoch ${r.epoch} held by ${r.holder ?? 'unknown'}`,
          null,
          out,
          false,
        );
      }
    }
    for (const a of [...this.acquiring.values()]) {
      const r = this.voter.get(a.vip);
      if (r.epoch > a.epoch || (r.epoch === a.epoch && r.holder !== this.self)) {
        this.abandon(now, a.vip, `epoch ${r.epoch} taken by ${r.holder ?? 'unknown'}`, out);
      }
    }
  }

  private giveUp(
    now: Millis,
    vip: VipId,
    reason: UnbindReason,
    detail: string,
    successor: MemberId | null,
    out: Output[],
    announce = true,
  ): void {
    const h = this.leases.remove(vip);
    if (!h) return;
    out.push({ type: 'unbind', vip, epoch: h.epoch, reason, detail });
    this.voter.releaseSelf(now, vip, h.epoch);
    if (announce) this.announceRelease(now, vip, h.epoch, successor, out);
    if (announce && successor !== null) this.handoff(now, successor, vip, h.epoch + 1);
    this.heartbeatDue = true;
  }

  /**
   * Planned move: we released `vip` at `epoch - 1` for `successor`. Our voter grants the
   * successor `epoch` at once, without waiting for its takeover request, so that it can bind as
   * soon as it hears the release: with three members our grant and the successor's own make a
   * quorum, and the move costs one datagram instead of a request round trip. Only the releasing
   * holder does this: if other voters did too, a majority could promise a successor that never
   * heard the release (a partition), and would stick to it as holder while nobody holds the VIP.
   *
   * The grant is a vote with the usual epoch and promise rules (voter.handoff), answering the
   * newest message we heard from the successor as if it were its request: the successor
   * counts the grant from that message's send time, which precedes our promise (it starts now),
   * so the lease it derives ends before our promise does, as with a takeover-ack.
   */
  private handoff(now: Millis, successor: MemberId, vip: VipId, epoch: Epoch): void {
    if (this.quorum.mode === 'ignore' || !this.quorum.voters.includes(this.self)) return;
    if (successor === this.self || !this.memberSet.has(successor)) return;
    if (!this.membership.isAlive(successor, now)) return;
    const peer = this.membership.peer(successor);
    if (!peer || peer.lastHeard === undefined) return;
    const d = this.voter.handoff(now, successor, peer.incarnation, vip, epoch);
    if (!d.granted) return;
    const r = d.record;
    const entry: AckEntry = {
      vip,
      epoch,
      granted: true,
      reason: d.reason,
      knownEpoch: r.epoch,
      knownHolder: r.released ? null : r.holder,
      promiseRemainingMs: Math.max(0, Math.min(UINT32_MAX, Math.ceil(r.promiseUntil - now))),
    };
    const list = this.toHandoff.get(successor);
    if (list) list.push(entry);
    else this.toHandoff.set(successor, [entry]);
  }

  /**
   * We were named successor of a planned move but are not taking `vip` at `epoch` (standby,
   * unhealthy, another view of the election, no quorum in view): voters may have granted us
   * that epoch already (handoff()), so release it at once rather than leave their promises
   * to run out with nobody holding the VIP.
   */
  private declineHandoff(now: Millis, vip: VipId, epoch: Epoch, out: Output[]): void {
    if (this.isWitness || this.acquiring.has(vip) || this.leases.holdings.has(vip)) return;
    const r = this.voter.get(vip);
    if (r.epoch > epoch || (r.epoch === epoch && r.holder !== this.self && !r.released)) return;
    this.voter.learn(vip, epoch, null);
    this.announceRelease(now, vip, epoch, null, out);
  }

  private abandon(now: Millis, vip: VipId, reason: string, out: Output[]): void {
    const a = this.acquiring.get(vip);
    if (!a) return;
    this.acquiring.delete(vip);
    this.emit({ type: 'abandon', vip, epoch: a.epoch, reason });
    this.voter.releaseSelf(now, vip, a.epoch);
    this.announceRelease(now, vip, a.epoch, null, out);
  }

  private announceRelease(
    now: Millis,
    vip: VipId,
    epoch: Epoch,
    successor: MemberId | null,
    out: Output[],
  ): void {
    this.recentReleases.push({ vip, epoch, until: now + this.timing.quietMs });
    const base = this.header(now);
    for (const to of this.peers) {
      const message: Release = { kind: 'release', ...base, vip, epoch, successor };
      out.push({ type: 'send', to, message });
    }
  }

  private tryBind(now: Millis, a: Acquisition, out: Output[]): void {
    const exp = this.acquisitionExpiry(a);
    if (exp <= now) return;
    this.acquiring.delete(a.vip);
    const grants = new Map(a.acks);
    grants.delete(this.self);
    const h = this.leases.add(now, a.vip, a.epoch, grants);
    this.voter.holdSelf(a.vip, a.epoch, this.incarnation);
    const leaseExpiry = this.leases.expiry(h);
    h.emitted = leaseExpiry;
    out.push({ type: 'bind', vip: a.vip, epoch: a.epoch, leaseExpiry, reason: a.reason });
    // Announce the new holdings soon, but at most one extra round per interval/4: a member
    // acquiring a hundred VIPs (acks arriving one by one) sent a full round, every page to
    // every peer, per bind; the burst of rounds stalled the process past deadMs.
    this.announceAt = Math.min(this.announceAt, this.lastRoundAt + this.timing.intervalMs / 4);
  }

  /** Quorum-th latest ack; self counts only if it acked itself. */
  private acquisitionExpiry(a: Acquisition): Millis {
    if (this.quorum.mode === 'ignore')
      return a.acks.has(this.self) ? this.leases.expiry({ grants: new Map() }) : -Infinity;
    const list = [...a.acks.values()].sort((x, y) => y - x);
    return list.length >= this.quorum.size ? (list[this.quorum.size - 1] ?? -Infinity) : -Infinity;
  }

  /**
   * The election's view of every member for `vip`. Returns the same pooled objects on every
   * call (filled in anew): elect() and rankIndex() keep no reference to them, and a sweep over
   * 1,000 VIPs in a 100-member cluster would otherwise allocate 100,000 objects.
   */
  private electionMembers(now: Millis, vip: VipId, loads: Map<MemberId, number>): ElectionMember[] {
    // `load` is read lazily (a getter on the pooled object): the election looks at a few
    // members only, and filling 100 loads per VIP was a tenth of a member's CPU.
    const pool = (this.pool ??= this.init.members.map((id) => {
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
        const self = m.id === this.self;
        const peer = self ? undefined : this.membership.peer(m.id);
        m.alive = this.membership.isAlive(m.id, now);
        m.standby = self ? this.standby : (peer?.standby ?? false);
        m.healthy = true;
        const unhealthy = self ? this.unhealthy : peer?.unhealthy;
        if (unhealthy && unhealthy.size > 0) this.poolUnhealthy.push([i, unhealthy]);
      }
    }
    for (const [i, set] of this.poolUnhealthy) (pool[i] as ElectionMember).healthy = !set.has(vip);
    this.poolLoads = loads;
    this.poolHolder = this.voter.holderOf(vip) ?? this.claimant(this.lastNow, vip);
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
    const floor = this.voter.get(vip).confirmedEpoch;
    for (const p of this.membership.all()) {
      const e = p.holdings?.entries.get(vip);
      if (e !== undefined && e >= floor && this.membership.isAlive(p.id, now)) return p.id;
    }
    return null;
  }

  /** VIPs held per member in our voter table (O(VIPs): once per sweep). */
  private loads(): Map<MemberId, number> {
    const loads = new Map<MemberId, number>();
    for (const [vip, r] of this.voter.entries()) {
      if (!this.vips.has(vip) || r.released || r.holder === null) continue;
      loads.set(r.holder, (loads.get(r.holder) ?? 0) + 1);
    }
    return loads;
  }

  /** The load bound over the members that can take VIPs now (alive, not standby). */
  private cap(now: Millis): number {
    let usable = 0;
    for (const id of this.init.members) {
      if (id === this.self ? this.standby : !this.membership.isAlive(id, now)) continue;
      if (id !== this.self && this.membership.peer(id)?.standby) continue;
      usable++;
    }
    this.votersAlive = this.quorum.voters.filter(
      (v) => v === this.self || this.membership.isAlive(v, now),
    ).length;
    return loadCap(this.vips.size, usable);
  }

  private electAll(now: Millis, out: Output[]): void {
    if (this.isWitness) {
      this.sweepAt = Infinity; // a witness never holds: nothing to sweep
      return;
    }
    const loads = this.loads();
    this.loadBound = this.cap(now);
    const vips = (this.sortedVips ??= [...this.vips.keys()].sort());
    for (const vip of vips) {
      const result = this.decide(now, vip, loads, out);
      const cur = this.voter.holderOf(vip);
      if (result.holder && result.holder !== cur) {
        loads.set(result.holder, (loads.get(result.holder) ?? 0) + 1);
        if (cur) loads.set(cur, Math.max(0, (loads.get(cur) ?? 0) - 1));
      }
    }
    this.sweepLoads = loads;
    // The next sweep: an interval from now, or earlier if a VIP asked to be looked at again.
    this.sweepAt = Math.min(now + this.timing.intervalMs, this.wakeHint);
  }

  /** Between sweeps: only the running candidacies (retries, timeouts). */
  private electAcquiring(now: Millis, out: Output[]): void {
    if (this.acquiring.size === 0) return;
    const loads = this.sweepLoads ?? this.loads();
    this.loadBound = this.cap(now);
    for (const vip of [...this.acquiring.keys()]) this.decide(now, vip, loads, out);
    this.sweepAt = Math.min(this.sweepAt, this.wakeHint);
  }

  /** `handoffFrom`: the VIP was just released for us by that member (a planned move). */
  private electOne(now: Millis, vip: VipId, out: Output[], handoffFrom?: MemberId): void {
    if (this.isWitness || !this.vips.has(vip)) return;
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
    const spec = this.vips.get(vip) as VipSpec;
    const rec = this.voter.get(vip);
    const assignment = this.assigned.get(vip);
    // Fast path (the common case): a live, usable peer holds it, we neither hold nor ask for
    // it, no assignment and no failback. elect() would keep the holder (sticky) and nothing
    // below would act, so skip building the election.
    if (
      !assignment &&
      !(this.init.autoFailback ?? false) &&
      !this.leases.holdings.has(vip) &&
      !this.acquiring.has(vip)
    ) {
      const cur = rec.released ? this.claimant(now, vip) : rec.holder;
      if (cur !== null && cur !== this.self && this.memberSet.has(cur) && this.membership.isAlive(cur, now)) {
        const peer = this.membership.peer(cur);
        if (
          peer &&
          !peer.standby &&
          !peer.unhealthy.has(vip) &&
          (!spec.eligible || spec.eligible.includes(cur))
        ) {
          this.unheldSince.delete(vip);
          return { holder: cur, reason: 'sticky' };
        }
      }
    }
    // Second fast path: we hold it and may keep it (usable here, no assignment, no failback):
    // elect() would answer "sticky", and the holder branch below would do nothing.
    if (
      !assignment &&
      !(this.init.autoFailback ?? false) &&
      this.leases.holdings.has(vip) &&
      !this.standby &&
      !this.unhealthy.has(vip) &&
      (!spec.eligible || spec.eligible.includes(this.self)) &&
      this.voter.holderOf(vip) === this.self
    ) {
      this.unheldSince.delete(vip);
      return { holder: this.self, reason: 'sticky' };
    }
    const current = { holder: this.voter.holderOf(vip) ?? this.claimant(now, vip), epoch: rec.epoch };
    // A holder that moves a VIP for a planned reason names its successor: the successor takes
    // it if it can, even if its own view (e.g. the holder's standby, not yet heard) ranks
    // someone else. A view that still disagrees later moves it on, by the same planned path.
    const handedOver =
      handoffFrom !== undefined &&
      !assignment &&
      !this.standby &&
      !this.unhealthy.has(vip) &&
      (!spec.eligible || spec.eligible.includes(this.self));
    const result: ElectionResult = handedOver
      ? { holder: this.self, reason: `${handoffFrom} handed it over (planned move)` }
      : assignment && assignment.holder === null
        ? { holder: null, reason: 'unassigned by the controller' }
        : elect({
            spec,
            members: this.electionMembers(now, vip, loads),
            current,
            assigned: assignment?.holder,
            autoFailback: this.init.autoFailback ?? false,
            loadCap: this.loadBound,
          });
    const held = this.leases.holdings.get(vip);
    const acq = this.acquiring.get(vip);
    if (held) {
      if (result.holder === null && assignment && assignment.holder === null) {
        this.giveUp(now, vip, 'removed', result.reason, null, out);
      } else if (
        result.holder &&
        result.holder !== this.self &&
        this.membership.isAlive(result.holder, now)
      ) {
        this.giveUp(now, vip, 'planned', result.reason, result.holder, out);
      }
      return result;
    }
    // Track how long the VIP has had no live holder in our view.
    const liveHolder = current.holder !== null && this.membership.isAlive(current.holder, now);
    if (liveHolder) this.unheldSince.delete(vip);
    else if (!this.unheldSince.has(vip)) this.unheldSince.set(vip, now);
    if (result.holder !== this.self) {
      const fallback = liveHolder ? undefined : this.fallback(now, vip, spec, loads);
      if (!fallback) {
        if (acq && !liveHolder && now - acq.startedAt < this.timing.deadMs) {
          // Views differ on who should win; keep our running attempt for a while.
        } else if (acq) {
          this.abandon(now, vip, `no longer elected: ${result.reason}`, out);
          return result;
        } else {
          return result;
        }
      } else {
        result.reason = fallback;
      }
    }
    if (acq) {
      if (now - acq.startedAt > this.timing.deadMs + this.timing.quietMs) {
        this.abandon(now, vip, 'no quorum of acks in time', out);
        return result;
      }
      if (now >= acq.lastSentAt + this.timing.intervalMs || now >= acq.quickRetryAt)
        this.requestAcks(now, acq);
      return result;
    }
    // Not holding, elected: may we ask?
    if (!this.membership.settled(now) && now < this.startedAt + this.timing.initDeadMs) {
      this.wakeHint = Math.min(this.wakeHint, this.startedAt + this.timing.initDeadMs);
      return result;
    }
    const curHolder = current.holder;
    if (curHolder && curHolder !== this.self && this.membership.isAlive(curHolder, now)) {
      return result; // the holder is alive: it releases first (planned move), or keeps it
    }
    // Fewer voters alive than a quorum: no candidacy can win; asking would only flood the
    // network (a member cut off from the others, or the minority side of a partition).
    if (this.quorum.mode !== 'ignore' && this.votersAlive < this.quorum.size) return result;
    // Read before our self-ack below updates the record.
    const previousEpoch = rec.epoch;
    const epoch = Math.max(
      rec.epoch + 1,
      assignment?.holder === this.self ? assignment.epoch : 0,
      (spec.epochFloor ?? 0) + 1,
    );
    if (epoch > UINT32_MAX) return result;
    const cause =
      assignment?.holder === this.self
        ? TakeoverCause.Assigned
        : curHolder
          ? TakeoverCause.HolderDead
          : rec.epoch > 0
            ? TakeoverCause.Released
            : TakeoverCause.Unheld;
    if (this.quorum.mode !== 'ignore' && this.quorum.voters.includes(this.self)) {
      const selfAck = this.voter.onTakeover(now, this.self, this.incarnation, vip, epoch);
      if (!selfAck.granted) {
        const wait =
          selfAck.reason === AckRefusal.Starting
            ? this.voter.quietUntil()
            : selfAck.reason === AckRefusal.PromiseActive
              ? selfAck.record.promiseUntil
              : Infinity;
        if (Number.isFinite(wait)) this.wakeHint = Math.min(this.wakeHint, wait);
        return result;
      }
    } else if (this.quorum.mode === 'ignore') {
      this.voter.onTakeover(now, this.self, this.incarnation, vip, epoch);
    }
    const a: Acquisition = {
      vip,
      epoch,
      cause,
      previousHolder: curHolder,
      previousEpoch,
      startedAt: now,
      lastSentAt: -Infinity,
      quickRetryAt: Infinity,
      quickRetries: 0,
      acks: new Map([[this.self, Infinity]]),
      reason: result.reason,
    };
    this.acquiring.set(vip, a);
    this.emit({ type: 'candidate', vip, epoch, reason: result.reason });
    if (this.quorum.mode === 'ignore') {
      this.tryBind(now, a, out);
      return result;
    }
    this.requestAcks(now, a);
    this.tryBind(now, a, out);
    return result;
  }

  /**
   * Views may disagree on the winner (each thinks another should take it). If the VIP has
   * had no live holder for deadMs plus `k` intervals, the member ranked k-th steps in.
   */
  private fallback(now: Millis, vip: VipId, spec: VipSpec, loads: Map<MemberId, number>): string | undefined {
    const since = this.unheldSince.get(vip);
    if (since === undefined) return undefined;
    if (now - since < this.timing.deadMs) {
      // Nobody steps in before deadMs (k = 0): skip ranking until then.
      this.wakeHint = Math.min(this.wakeHint, since + this.timing.deadMs);
      return undefined;
    }
    const k = rankIndex(spec, this.electionMembers(now, vip, loads), this.loadBound, this.self);
    if (k < 0) return undefined;
    const wait = this.timing.deadMs + k * this.timing.intervalMs;
    if (now - since < wait) {
      this.wakeHint = Math.min(this.wakeHint, since + wait);
      return undefined;
    }
    return `no live holder for ${Math.round(now - since)}ms; ${this.self} (rank ${k + 1}) steps in`;
  }

  /** Asks the voters for acks for `a`, batched with the other requests of this step. */
  private requestAcks(now: Millis, a: Acquisition): void {
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
  private flushRequests(now: Millis, out: Output[]): void {
    if (this.toRequest.length === 0) return;
    // Candidacies abandoned within this step have sent their Release: do not ask for them.
    const list = this.toRequest.filter(
      (a) => this.acquiring.get(a.vip) === a || this.leases.holdings.get(a.vip)?.epoch === a.epoch,
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
      const base = this.header(now);
      for (const to of this.quorum.voters) {
        if (to === this.self) continue;
        const message: TakeoverRequest = { kind: 'takeover', ...base, entries };
        out.push({ type: 'send', to, message });
      }
    }
  }

  /** Sends the handoff grants of this step, after the releases they follow. */
  private flushHandoffs(now: Millis, out: Output[]): void {
    if (this.toHandoff.size === 0) return;
    for (const [successor, list] of this.toHandoff) {
      const peer = this.membership.peer(successor);
      if (!peer) continue;
      for (let i = 0; i < list.length; i += LIMITS.takeoversPerMessage) {
        const ack: TakeoverAck = {
          kind: 'takeover-ack',
          ...this.header(now),
          candidate: successor,
          requestIncarnation: peer.incarnation,
          requestSeq: peer.maxSeq,
          entries: list.slice(i, i + LIMITS.takeoversPerMessage),
        };
        out.push({ type: 'send', to: successor, message: ack });
      }
    }
    this.toHandoff.clear();
  }
}

/** A member's state for status, logs and tests. */
export interface MemberView {
  self: MemberId;
  incarnation: Incarnation;
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
