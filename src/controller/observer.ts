/**
 * The controller's eyes on one cluster: it authenticates the heartbeats members send to the
 * controller's witness id and keeps, like a member would, their liveness and their complete
 * holdings sets, from which it derives who holds each VIP at which epoch and how each VIP
 * changed hands (from whom, to whom, why, and how long it had no holder).
 *
 * It never votes and never echoes, so it grants nothing: in quorum "witness" the witness
 * MemberHost votes beside it on the same socket; in the other modes the observer sends
 * heartbeats of its own (no holdings, no echoes) only so that members count it as heard and
 * do not wait initDeadMs for it at start.
 */
import type { Logger } from 'pino';
import type { Epoch, Heartbeat, MemberId, VipId } from '../core/messages.js';
import { Membership, type Liveness, type PeerState } from '../core/membership.js';
import type { Clock, Millis, Peer, Stoppable, Transport } from '../core/ports.js';
import { IdTable, Keyring, SourceBinding, WireCodec, type DropCounters } from '../core/wire/index.js';
import { RateLimitedLog } from '../ops/rate-limited-log.js';
import type { KeyObject } from 'node:crypto';
import {
  memberKeysOf,
  WITNESS_ID,
  type ClusterConfig,
  type MemberAddress,
} from '../runtime/cluster-config.js';

/** Where the observer's heartbeats go: each member's unicast link addresses, else its main address (the observer never multicasts). */
function unicastPeers(config: ClusterConfig): Map<MemberId, Peer[]> {
  return new Map(
    config.members.map((m) => [
      m.id,
      (m.unicast?.length ? m.unicast : [m.address]).map((address) => ({ address, port: m.port })),
    ]),
  );
}

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

export interface ObserverComponents {
  clock: Clock;
  transport: Transport;
  log: Logger;
  /** Called after the holders or the members' liveness changed. */
  onChange: (change: { vips: VipId[]; members: boolean }) => void;
  counters?: DropCounters;
}

export interface ObserverInit {
  config: ClusterConfig;
  incarnation: number;
  /** Send observer heartbeats (only when no witness MemberHost speaks for WITNESS_ID). */
  heartbeat: boolean;
  /** The controller's witness key: signs the observer's heartbeats (docs/adr/0021). */
  signingKey: KeyObject;
}

const EMPTY_HOLDINGS = { version: 1, page: 0, pages: 1, entries: [] };

export class ClusterObserver {
  private config: ClusterConfig;
  private codec: WireCodec;
  private membership!: Membership;
  private startedAt: Millis = 0;
  // `current`, `claimsByVip`, `transitions` and `loads` are handed out by observation() as they
  // are, so they are never changed in place once built: a change builds a new map (copy on
  // write). The controller reads an observation for every VIP it reconciles; copying three
  // maps of every VIP each time made a pass over 1,000 VIPs quadratic.
  private current = new Map<VipId, ObservedHolding>();
  private claimsByVip = new Map<VipId, MemberId[]>();
  private pendingLoss = new Map<VipId, { from: MemberId; epoch: Epoch; at: Millis; cause: LossCause }>();
  private transitions = new Map<VipId, VipTransition>();
  private loads = new Map<MemberId, number>();
  /** Each member's unicast destinations (one per unicast link). */
  private addresses = new Map<MemberId, Peer[]>();
  private timer: Stoppable | undefined;
  private heartbeatTimer: Stoppable | undefined;
  private seq = 0;
  private running = false;

  /** Drops are counted (codec); their log lines are rate-limited. */
  private readonly dropLog: RateLimitedLog;

  constructor(
    private readonly c: ObserverComponents,
    private readonly init: ObserverInit,
  ) {
    this.dropLog = new RateLimitedLog({ log: c.log, clock: c.clock }, { msg: 'datagram dropped' });
    this.config = init.config;
    this.codec = this.newCodec(init.config);
  }

  get counters(): DropCounters {
    return this.codec.counters;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.newMembership(this.config);
    this.c.transport.onMessage((bytes, from) => this.onDatagram(bytes, from));
    if (this.init.heartbeat) this.startHeartbeats();
    this.schedule();
  }

  stop(): void {
    this.running = false;
    this.timer?.stop();
    this.heartbeatTimer?.stop();
    this.timer = undefined;
    this.heartbeatTimer = undefined;
  }

  /**
   * Applies a new configuration; a different member list or timing starts observing afresh.
   * Throws before changing anything when `next` cannot run (bad keys, colliding ids).
   */
  reconfigure(next: ClusterConfig): void {
    const prev = this.config;
    const ids = (c: ClusterConfig) => c.members.map((m) => m.id).join(',');
    const sameTiming = JSON.stringify(prev.timing) === JSON.stringify(next.timing);
    if (prev.clusterId !== next.clusterId) {
      this.codec = this.newCodec(next);
    } else {
      const idTable = this.idTable(next);
      const sources = this.sources(next);
      const keyring = new Keyring(next.keys, next.activeKeyId);
      this.codec.reconfigure(idTable, sources, memberKeysOf(next.members));
      this.codec.setKeyring(keyring);
    }
    this.config = next;
    this.addresses = unicastPeers(next);
    const vips = new Set(next.vips.map((v) => v.vip));
    for (const vip of this.pendingLoss.keys()) if (!vips.has(vip)) this.pendingLoss.delete(vip);
    if ([...this.transitions.keys()].some((vip) => !vips.has(vip)))
      this.transitions = new Map([...this.transitions].filter(([vip]) => vips.has(vip)));
    if (!this.running) return;
    if (ids(prev) !== ids(next) || !sameTiming || prev.clusterId !== next.clusterId) {
      this.newMembership(next);
      this.recompute(this.c.clock.now(), true);
      if (this.init.heartbeat) this.startHeartbeats();
    }
    this.schedule();
  }

  observation(): Observation {
    const now = this.c.clock.now();
    const members: ObservedMember[] = this.config.members.map((m) => {
      const p = this.membership?.peer(m.id);
      return {
        id: m.id,
        liveness: this.membership ? this.membership.liveness(m.id, now) : 'unknown',
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
      settled: this.membership ? this.membership.settled(now) : false,
      members,
      holdings: this.current,
      claims: this.claimsByVip,
      transitions: this.transitions,
      loads: this.loads,
    };
  }

  // ---------------------------------------------------------------------------------------

  private idTable(config: ClusterConfig): IdTable {
    return new IdTable({
      clusterId: config.clusterId,
      members: [...config.members.map((m) => m.id), WITNESS_ID],
      vips: config.vips.map((v) => v.vip),
    });
  }

  private sources(config: ClusterConfig): SourceBinding {
    return new SourceBinding(
      config.members.map(
        (m: MemberAddress) => [m.id, (m.sources ?? [m.address]).map((address) => ({ address }))] as const,
      ),
    );
  }

  private newCodec(config: ClusterConfig): WireCodec {
    const counters = this.codec?.counters ?? this.c.counters;
    const codec = new WireCodec({
      ids: this.idTable(config),
      self: WITNESS_ID,
      keyring: new Keyring(config.keys, config.activeKeyId),
      sources: this.sources(config),
      signingKey: this.init.signingKey,
      memberKeys: memberKeysOf(config.members),
      ...(counters ? { counters } : {}),
    });
    this.addresses = unicastPeers(config);
    return codec;
  }

  private newMembership(config: ClusterConfig): void {
    this.startedAt = this.c.clock.now();
    this.membership = new Membership(
      WITNESS_ID,
      config.members.map((m) => m.id),
      config.timing,
      this.startedAt,
    );
  }

  private startHeartbeats(): void {
    this.heartbeatTimer?.stop();
    this.heartbeatTimer = this.c.clock.every(this.config.timing.intervalMs, () => this.sendHeartbeats());
    this.sendHeartbeats();
  }

  private sendHeartbeats(): void {
    if (!this.running) return;
    for (const [id, peers] of this.addresses) {
      this.seq += 1;
      const message: Heartbeat = {
        kind: 'heartbeat',
        clusterId: this.config.clusterId,
        from: WITNESS_ID,
        incarnation: this.init.incarnation,
        seq: this.seq,
        standby: false,
        witness: true,
        unhealthy: [],
        holdings: EMPTY_HOLDINGS,
        releases: [],
        echoes: [],
        conflicts: [],
      };
      let datagram: Uint8Array;
      try {
        datagram = this.codec.encode(message, id);
      } catch (err) {
        this.c.log.error({ err, to: id }, 'cannot encode observer heartbeat');
        return;
      }
      for (const peer of peers) void this.c.transport.send(peer, datagram);
    }
  }

  private onDatagram(bytes: Uint8Array, from: Peer): void {
    if (!this.running) return;
    const r = this.codec.decode(bytes, from);
    if (!r.ok) {
      if (r.reason !== 'wrong-cluster') {
        this.dropLog.write(r.reason, {
          reason: r.reason,
          from: `${from.address}:${from.port}`,
          sender: r.sender,
        });
      }
      return;
    }
    const msg = r.message;
    const now = this.c.clock.now();
    const before = this.membership.liveness(msg.from, now);
    const o = this.membership.observe(now, msg.from, msg.incarnation, msg.seq);
    if (o === undefined || o === 'stale') return;
    let changed = o === 'new-life' || before !== 'alive';
    const peer = this.membership.peer(msg.from);
    if (!peer) return;
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
      for (const rel of msg.releases) if (this.released(peer, rel.vip, rel.epoch)) changed = true;
    } else if (msg.kind === 'release') {
      if (this.released(peer, msg.vip, msg.epoch)) changed = true;
    }
    if (changed) this.recompute(now, o === 'new-life' || before !== 'alive');
    this.schedule();
  }

  /** `peer` released `vip` at `epoch`: it no longer holds it, whatever its last holdings set said. */
  private released(peer: PeerState, vip: VipId, epoch: Epoch): boolean {
    const entries = peer.holdings?.entries;
    if (entries?.get(vip) !== epoch) return false;
    entries.delete(vip);
    return true;
  }

  private schedule(): void {
    if (!this.running) return;
    const now = this.c.clock.now();
    const at = this.membership.nextChangeAt(now);
    this.timer?.stop();
    this.timer = undefined;
    if (!Number.isFinite(at)) return;
    this.timer = this.c.clock.after(Math.max(1, at - now), () => {
      this.timer = undefined;
      if (!this.running) return;
      const t = this.c.clock.now();
      const changes = this.membership.tick(t);
      this.recompute(t, changes.length > 0);
      this.schedule();
    });
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

  private recompute(now: Millis, membersChanged: boolean): void {
    const next = new Map<VipId, { holder: MemberId; epoch: Epoch }>();
    const claims = new Map<VipId, MemberId[]>();
    const restartedNow = new Set<MemberId>();
    for (const m of this.config.members) {
      const p = this.membership.peer(m.id);
      if (!p) continue;
      const l = this.membership.liveness(m.id, now);
      if (l !== 'alive' && l !== 'warn') continue;
      if (!p.holdings) {
        if (p.incarnation > 0) restartedNow.add(m.id);
        continue;
      }
      for (const [vip, epoch] of p.holdings.entries) {
        const list = claims.get(vip) ?? [];
        list.push(m.id);
        claims.set(vip, list);
        const cur = next.get(vip);
        if (!cur || epoch > cur.epoch) next.set(vip, { holder: m.id, epoch });
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
      let t: VipTransition;
      const lost = this.pendingLoss.get(vip);
      if (prev) {
        // Handed over directly (the observer saw the new epoch before the old holding went).
        const superseded =
          this.membership.isAlive(prev.holder, now) &&
          (this.membership.peer(prev.holder)?.holdings?.entries.get(vip) ?? -1) === prev.epoch;
        const c = this.lossCause(prev.holder, vip, now, restartedNow.has(prev.holder));
        const cause: LossCause = superseded && c.cause === 'Released' ? 'Superseded' : c.cause;
        const lostAt = cause === 'HolderDead' ? c.at : undefined;
        t = {
          vip,
          from: prev.holder,
          to: now2.holder,
          epoch: now2.epoch,
          cause,
          lostAt,
          at: now,
          gapMs: lostAt === undefined ? undefined : now - lostAt,
        };
      } else if (lost) {
        t = {
          vip,
          from: lost.from,
          to: now2.holder,
          epoch: now2.epoch,
          cause: lost.cause,
          lostAt: lost.at,
          at: now,
          gapMs: now - lost.at,
        };
      } else {
        t = {
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
      this.pendingLoss.delete(vip);
      this.current.set(vip, { holder: now2.holder, epoch: now2.epoch, since: now });
      this.transitions.set(vip, t);
    }
    this.claimsByVip = claims;
    if (changedVips.length > 0) {
      const loads = new Map<MemberId, number>();
      for (const h of this.current.values()) loads.set(h.holder, (loads.get(h.holder) ?? 0) + 1);
      this.loads = loads;
    }
    if (changedVips.length > 0 || membersChanged) {
      this.c.onChange({ vips: changedVips, members: membersChanged });
    }
  }
}
