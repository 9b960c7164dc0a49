/**
 * The controller's eyes on one cluster, as a pure state machine (hosted like Member: by
 * controller/observer.ts, which owns the codec, the socket and the timer). Fed the messages
 * members send to the witness id (`observe(now, msg)`) and woken at `wakeAt()` (`tick(now)`),
 * it keeps, like a member would, their liveness and their complete holdings sets, from which
 * it derives who holds each VIP at which epoch and how each VIP changed hands (from whom, to
 * whom, why, and how long it had no holder). The simulator runs it beside the members and
 * checks what it reports against where the addresses really are.
 *
 * It never votes and never echoes, so it grants nothing: in quorum "witness" the witness
 * Member votes beside it on the same socket; in the other modes it sends heartbeats of its
 * own (no holdings, no echoes), built by the member's own HeartbeatSender, only so that
 * members count it as heard and do not wait initDeadMs for it at start.
 */
import { HeartbeatSender } from './heartbeat-sender.js';
import { MemberContext, type Output } from './member-context.js';
import { Membership, type Liveness, type PeerState } from './membership.js';
import {
  releasedBy,
  type Epoch,
  type Incarnation,
  type MemberId,
  type Message,
  type VipId,
} from './messages.js';
import type { Millis } from './ports.js';
import type { Timing } from './timing.js';

/** Why a VIP left its holder, as far as the observer could tell. */
export type LossCause =
  /** The holder fell silent (warn or dead) while holding. */
  | 'HolderDead'
  /** The holder restarted (new incarnation): its previous life's addresses were swept. */
  | 'HolderRestarted'
  /** The holder asked for standby (drain, cordon, annotation) or is stopping gracefully. */
  | 'Drain'
  /** The holder reported the VIP's Resources failing. */
  | 'ResourceFailed'
  /** The holder gave it up while alive and healthy (planned move, failback, deletion). */
  | 'Released'
  /** A newer epoch appeared at another member while the old holder still listed it. */
  | 'Superseded';

export interface ObservedHolding {
  holder: MemberId;
  epoch: Epoch;
  /** When the observer first saw this holding (its clock). */
  since: Millis;
}

/** A VIP changing hands. `to` null: lost and not (yet) taken by anyone. */
export interface VipTransition {
  vip: VipId;
  from: MemberId | null;
  to: MemberId | null;
  epoch: Epoch;
  cause: LossCause | 'Initial';
  /** Start of the gap without a holder (observer's clock); for a death, when the holder was last heard. */
  lostAt: Millis | undefined;
  /** When the new holding was seen (or the loss, for `to` null). */
  at: Millis;
  /** Time without a holder, when the VIP was lost before it was taken. */
  gapMs: Millis | undefined;
}

export interface ObservedMember {
  id: MemberId;
  liveness: Liveness;
  incarnation: number;
  /** Observer's clock. */
  lastHeard: Millis | undefined;
  standby: boolean;
  unhealthy: VipId[];
  holdingsKnown: boolean;
  /** Highest membership generation its heartbeats advertised since the observer (re)started. */
  generation?: number;
}

export interface Observation {
  now: Millis;
  startedAt: Millis;
  /** Every member heard with a complete holdings set, or declared dead. Before that "nobody holds it" is not known. */
  settled: boolean;
  members: ObservedMember[];
  holdings: ReadonlyMap<VipId, ObservedHolding>;
  /** Members that list the VIP, any liveness but dead (more than one only transiently, during a takeover). */
  claims: ReadonlyMap<VipId, MemberId[]>;
  /** Last change of hands per VIP since the observer started. */
  transitions: ReadonlyMap<VipId, VipTransition>;
  /** VIPs in `holdings` per holder (members holding none are absent). */
  loads: ReadonlyMap<MemberId, number>;
}

/** What the observer watches: the cluster's member set, timing and VIPs. */
export interface ObserverConfig {
  clusterId: string;
  members: readonly MemberId[];
  timing: Timing;
  vips: readonly VipId[];
}

export interface ObserverInit extends ObserverConfig {
  /** The witness id it receives as (members address the controller by it). */
  self: MemberId;
  incarnation: Incarnation;
  /** Send heartbeats (only when no witness Member speaks for `self`). */
  heartbeat: boolean;
}

/** What a step produced: datagrams to send, and what changed (for the reconcilers). */
export interface ObserverStep {
  out: Output[];
  /** Holders or member state changed; absent when nothing did. */
  change?: { vips: VipId[]; members: boolean };
}

export class Observer {
  private config: ObserverConfig;
  private membership: Membership;
  private startedAt: Millis;
  private sender: HeartbeatSender | undefined;
  private ctx: MemberContext | undefined;
  // `current`, `claimsByVip`, `transitions` and `loads` are handed out by observation() as they
  // are, so they are never changed in place once built: a change builds a new map (copy on
  // write). The controller reads an observation for every VIP it reconciles; copying three
  // maps of every VIP each time made a pass over 1,000 VIPs quadratic.
  private current = new Map<VipId, ObservedHolding>();
  private claimsByVip = new Map<VipId, MemberId[]>();
  private readonly pendingLoss = new Map<
    VipId,
    { from: MemberId; epoch: Epoch; at: Millis; cause: LossCause }
  >();
  private transitions = new Map<VipId, VipTransition>();
  private loads = new Map<MemberId, number>();

  constructor(
    private readonly init: ObserverInit,
    now: Millis,
  ) {
    this.config = init;
    this.startedAt = now;
    this.membership = this.newMembership(init, now);
    this.startHeartbeats(now);
  }

  /** When `tick` is due next (Infinity: only a message changes anything). */
  wakeAt(): Millis {
    return Math.min(this.membership.nextChangeAt(this.lastNow), this.sender?.wakeAt() ?? Infinity);
  }

  private lastNow: Millis = -Infinity;

  /** Liveness deadlines and heartbeat rounds due at `now`. */
  tick(now: Millis): ObserverStep {
    this.lastNow = Math.max(this.lastNow, now);
    const step: ObserverStep = { out: [] };
    const changes = this.membership.tick(now);
    this.recompute(now, changes.length > 0, step);
    this.heartbeats(now, step.out);
    return step;
  }

  /** A message a member sent to the witness id (authenticated and decoded by the host). */
  observe(now: Millis, msg: Message): ObserverStep {
    this.lastNow = Math.max(this.lastNow, now);
    const step: ObserverStep = { out: [] };
    const before = this.membership.liveness(msg.from, now);
    const o = this.membership.observe(now, msg.from, msg.incarnation, msg.seq);
    if (o === undefined || o === 'stale') return step;
    let changed = o === 'new-life' || before !== 'alive';
    const peer = this.membership.peer(msg.from);
    if (!peer) return step;
    if (msg.kind === 'heartbeat') {
      const standby = peer.standby;
      const unhealthy = [...peer.unhealthy].sort().join(',');
      peer.standby = msg.standby;
      peer.witness = msg.witness;
      peer.unhealthy = new Set(msg.unhealthy);
      // A member moving to a later membership generation may let the next one be published.
      if ((msg.generation ?? 0) > peer.generation) {
        peer.generation = msg.generation ?? 0;
        changed = true;
      }
      if (standby !== peer.standby || unhealthy !== [...peer.unhealthy].sort().join(',')) changed = true;
      if (this.membership.addHoldingsPage(msg.from, msg.holdings)) changed = true;
      for (const rel of msg.releases) if (released(peer, rel.vip, rel.epoch)) changed = true;
    } else if (msg.kind === 'release') {
      for (const r of releasedBy(msg)) if (released(peer, r.vip, r.epoch)) changed = true;
    }
    if (changed) this.recompute(now, o === 'new-life' || before !== 'alive', step);
    return step;
  }

  /**
   * A new configuration: a different member list, timing or cluster starts observing afresh
   * (liveness and holdings relearned); VIPs gone from it lose their transitions.
   */
  reconfigure(now: Millis, next: ObserverConfig): ObserverStep {
    this.lastNow = Math.max(this.lastNow, now);
    const prev = this.config;
    const step: ObserverStep = { out: [] };
    this.config = next;
    const vips = new Set(next.vips);
    for (const vip of this.pendingLoss.keys()) if (!vips.has(vip)) this.pendingLoss.delete(vip);
    if ([...this.transitions.keys()].some((vip) => !vips.has(vip)))
      this.transitions = new Map([...this.transitions].filter(([vip]) => vips.has(vip)));
    const sameTiming = JSON.stringify(prev.timing) === JSON.stringify(next.timing);
    if (
      prev.members.join(',') !== next.members.join(',') ||
      !sameTiming ||
      prev.clusterId !== next.clusterId
    ) {
      this.startedAt = now;
      this.membership = this.newMembership(next, now);
      this.recompute(now, true, step);
      this.startHeartbeats(now);
      this.heartbeats(now, step.out);
    }
    return step;
  }

  observation(now: Millis): Observation {
    const members: ObservedMember[] = this.config.members.map((id) => {
      const p = this.membership.peer(id);
      return {
        id,
        liveness: this.membership.liveness(id, now),
        incarnation: p?.incarnation ?? 0,
        lastHeard: p?.lastHeard,
        standby: p?.standby ?? false,
        unhealthy: p ? [...p.unhealthy] : [],
        holdingsKnown: p?.holdings !== undefined,
        generation: p?.generation ?? 0,
      };
    });
    return {
      now,
      startedAt: this.startedAt,
      settled: this.membership.settled(now),
      members,
      holdings: this.current,
      claims: this.claimsByVip,
      transitions: this.transitions,
      loads: this.loads,
    };
  }

  // ---------------------------------------------------------------------------------------

  private newMembership(config: ObserverConfig, now: Millis): Membership {
    return new Membership(this.init.self, [...config.members], config.timing, now);
  }

  /** Heartbeats as the witness Member sends them (no holdings, no echoes, not settling). */
  private startHeartbeats(now: Millis): void {
    if (!this.init.heartbeat) return;
    this.ctx = new MemberContext(
      {},
      {
        clusterId: this.config.clusterId,
        self: this.init.self,
        incarnation: this.init.incarnation,
        members: this.config.members,
        witness: this.init.self,
        quorum: 'majority',
        timing: this.config.timing,
        vips: [],
      },
    );
    // Numbering goes on across reconfigurations: members drop a seq they have seen in this life.
    this.sender = new HeartbeatSender(this.ctx, this.sender?.lastSeq ?? 0);
    this.sender.setSettling(false);
    this.sender.start(now);
  }

  private heartbeats(now: Millis, out: Output[]): void {
    if (!this.sender || !this.ctx) return;
    this.ctx.leases.step(now);
    this.sender.tick(now);
    this.sender.flush(now, out);
  }

  /** Why `member` no longer lists `vip` (or is no longer counted), judged at `now`. */
  private lossCause(
    member: MemberId,
    vip: VipId,
    now: Millis,
    restarted: boolean,
  ): { cause: LossCause; at: Millis } {
    const p = this.membership.peer(member);
    const l = this.membership.liveness(member, now);
    if (l === 'dead' || l === 'warn' || l === 'unknown')
      return { cause: 'HolderDead', at: p?.lastHeard ?? now };
    if (restarted) return { cause: 'HolderRestarted', at: now };
    if (p?.standby) return { cause: 'Drain', at: now };
    if (p?.unhealthy.has(vip)) return { cause: 'ResourceFailed', at: now };
    return { cause: 'Released', at: now };
  }

  private recompute(now: Millis, membersChanged: boolean, step: ObserverStep): void {
    const next = new Map<VipId, { holder: MemberId; epoch: Epoch }>();
    const claims = new Map<VipId, MemberId[]>();
    const restartedNow = new Set<MemberId>();
    for (const id of this.config.members) {
      const p = this.membership.peer(id);
      if (!p) continue;
      const l = this.membership.liveness(id, now);
      if (l !== 'alive' && l !== 'warn') continue;
      if (!p.holdings) {
        if (p.incarnation > 0) restartedNow.add(id);
        continue;
      }
      for (const [vip, epoch] of p.holdings.entries) {
        const list = claims.get(vip) ?? [];
        list.push(id);
        claims.set(vip, list);
        const cur = next.get(vip);
        if (!cur || epoch > cur.epoch) next.set(vip, { holder: id, epoch });
      }
    }
    const changedVips: VipId[] = [];
    const vips = new Set([...this.current.keys(), ...next.keys()]);
    const old = this.current;
    for (const vip of vips) {
      const prev = old.get(vip);
      const now2 = next.get(vip);
      if (prev && now2 && prev.holder === now2.holder && prev.epoch === now2.epoch) continue;
      if (changedVips.length === 0) {
        this.current = new Map(old);
        this.transitions = new Map(this.transitions);
      }
      changedVips.push(vip);
      if (prev && !now2) {
        const { cause, at } = this.lossCause(prev.holder, vip, now, restartedNow.has(prev.holder));
        this.pendingLoss.set(vip, { from: prev.holder, epoch: prev.epoch, at, cause });
        this.current.delete(vip);
        this.transitions.set(vip, {
          vip,
          from: prev.holder,
          to: null,
          epoch: prev.epoch,
          cause,
          lostAt: at,
          at: now,
          gapMs: undefined,
        });
        continue;
      }
      if (!now2) continue;
      this.transitions.set(vip, this.transition(vip, prev, now2, now, restartedNow));
      this.pendingLoss.delete(vip);
      this.current.set(vip, { holder: now2.holder, epoch: now2.epoch, since: now });
    }
    this.claimsByVip = claims;
    if (changedVips.length > 0) {
      const loads = new Map<MemberId, number>();
      for (const h of this.current.values()) loads.set(h.holder, (loads.get(h.holder) ?? 0) + 1);
      this.loads = loads;
    }
    if (changedVips.length > 0 || membersChanged)
      step.change = { vips: changedVips, members: membersChanged };
  }

  /** How `vip` came to `now2.holder`: from `prev` directly, after a loss, or first seen. */
  private transition(
    vip: VipId,
    prev: ObservedHolding | undefined,
    now2: { holder: MemberId; epoch: Epoch },
    now: Millis,
    restartedNow: ReadonlySet<MemberId>,
  ): VipTransition {
    const lost = this.pendingLoss.get(vip);
    if (prev) {
      // Handed over directly (the observer saw the new epoch before the old holding went).
      const superseded =
        this.membership.isAlive(prev.holder, now) &&
        (this.membership.peer(prev.holder)?.holdings?.entries.get(vip) ?? -1) === prev.epoch;
      const c = this.lossCause(prev.holder, vip, now, restartedNow.has(prev.holder));
      const cause: LossCause = superseded && c.cause === 'Released' ? 'Superseded' : c.cause;
      const lostAt = cause === 'HolderDead' ? c.at : undefined;
      return {
        vip,
        from: prev.holder,
        to: now2.holder,
        epoch: now2.epoch,
        cause,
        lostAt,
        at: now,
        gapMs: lostAt === undefined ? undefined : now - lostAt,
      };
    }
    if (lost)
      return {
        vip,
        from: lost.from,
        to: now2.holder,
        epoch: now2.epoch,
        cause: lost.cause,
        lostAt: lost.at,
        at: now,
        gapMs: now - lost.at,
      };
    return {
      vip,
      from: null,
      to: now2.holder,
      epoch: now2.epoch,
      cause: 'Initial',
      lostAt: undefined,
      at: now,
      gapMs: undefined,
    };
  }
}

/** `peer` released `vip` at `epoch`: it no longer holds it, whatever its last holdings set said. */
function released(peer: PeerState, vip: VipId, epoch: Epoch): boolean {
  const entries = peer.holdings?.entries;
  if (entries?.get(vip) !== epoch) return false;
  entries.delete(vip);
  return true;
}
