/**
 * What a member says unasked: its heartbeat rounds (every interval, earlier when its holdings
 * change), prompt echoes to holders, the holdings pages each heartbeat carries, and Release
 * messages. It numbers every message it sends (the holder counts grants from send times).
 */
import { laterMessage } from './freshness.js';
import type { MemberContext, Output } from './member-context.js';
import { UINT32_MAX } from './member-context.js';
import {
  LIMITS,
  type Conflict,
  type Epoch,
  type Heartbeat,
  type HoldingEntry,
  type HoldingsPage,
  type HoldingsVersion,
  type Incarnation,
  type MemberId,
  type Release,
  type Seq,
  type VipId,
} from './messages.js';
import type { Millis } from './ports.js';

/** What we echo to one peer: its newest message, the holdings version we know, our conflicts. */
interface EchoState {
  incarnation: Incarnation;
  seq: Seq;
  version: HoldingsVersion;
  conflicts: Conflict[];
}

export class HeartbeatSender {
  private seq: Seq = 0;
  private readonly echo = new Map<MemberId, EchoState>();
  private recentReleases: Array<HoldingEntry & { until: Millis }> = [];
  /** Holdings version last sent whole in one round (see roundPages). */
  private burstVersion: HoldingsVersion = 0;
  private nextHeartbeatAt: Millis = 0;
  private heartbeatDue = false;
  /** Last full heartbeat round, and when new holdings (binds) are due to be announced. */
  private lastRoundAt: Millis = -Infinity;
  private announceAt: Millis = Infinity;
  /** Last prompt echo per holder, and the holders to answer at the end of this step. */
  private promptEchoAt = new Map<MemberId, Millis>();
  private promptTo = new Set<MemberId>();
  /** Advertised in every heartbeat: we cannot take VIPs yet (Member.advertiseReadiness). */
  private settling = true;
  /** Releases without a successor to send at the end of this step, batched per peer. */
  private pendingReleases = new Map<MemberId, HoldingEntry[]>();

  /** `seq`: the last number a previous sender of this life used (the observer's reconfigure). */
  constructor(
    private readonly ctx: MemberContext,
    seq: Seq = 0,
  ) {
    this.seq = seq;
  }

  /** The last message number used. */
  get lastSeq(): Seq {
    return this.seq;
  }

  /** The first round goes out at `now`. */
  start(now: Millis): void {
    this.nextHeartbeatAt = now;
  }

  /** Marks a round due if the interval has passed. */
  tick(now: Millis): void {
    if (now >= this.nextHeartbeatAt) {
      this.heartbeatDue = true;
      this.nextHeartbeatAt = Math.max(this.nextHeartbeatAt + this.ctx.timing.intervalMs, now + 1);
      if (this.nextHeartbeatAt <= now) this.nextHeartbeatAt = now + this.ctx.timing.intervalMs;
    }
  }

  /** Sets the settling flag of our heartbeats; a change goes out in a round at the end of this step. */
  setSettling(settling: boolean): void {
    if (settling === this.settling) return;
    this.settling = settling;
    this.heartbeatDue = true;
  }

  /** A full round at the end of this step (our standby, health or holdings changed). */
  roundDue(): void {
    this.heartbeatDue = true;
  }

  /**
   * Announce new holdings soon, but at most one extra round per interval/4: a member acquiring
   * a hundred VIPs (acks arriving one by one) sent a full round, every page to every peer, per
   * bind; the burst of rounds stalled the process past deadMs.
   */
  announceSoon(): void {
    this.announceAt = Math.min(this.announceAt, this.lastRoundAt + this.ctx.timing.intervalMs / 4);
  }

  wakeAt(): Millis {
    return Math.min(this.nextHeartbeatAt, this.announceAt);
  }

  /** A message header with the next seq (its send time recorded for grants). */
  header(now: Millis) {
    return {
      clusterId: this.ctx.clusterId,
      from: this.ctx.self,
      incarnation: this.ctx.incarnation,
      seq: this.nextSeq(now),
    };
  }

  private nextSeq(now: Millis): Seq {
    this.seq = this.seq >= UINT32_MAX ? UINT32_MAX : this.seq + 1;
    this.ctx.leases.recordSend(this.seq, now);
    return this.seq;
  }

  /** Lists `vip` at `epoch` in the releases of our heartbeats for the next quietMs. */
  noteRelease(now: Millis, vip: VipId, epoch: Epoch): void {
    this.recentReleases.push({ vip, epoch, until: now + this.ctx.timing.quietMs });
  }

  /** Tells every peer we released `vip` at `epoch` (for `successor`, a planned move). */
  announceRelease(now: Millis, vip: VipId, epoch: Epoch, successor: MemberId | null, out: Output[]): void {
    this.noteRelease(now, vip, epoch);
    this.sendRelease(now, vip, epoch, successor, out);
  }

  /**
   * A Release to every peer (or to `peers`), without listing it in our heartbeats. One with a
   * successor (a planned move) goes out at once, in its own datagram; the others wait for the
   * end of the step ({@link flushReleases}) and share datagrams per peer (docs/adr/0041).
   */
  sendRelease(
    now: Millis,
    vip: VipId,
    epoch: Epoch,
    successor: MemberId | null,
    out: Output[],
    peers: readonly MemberId[] = this.ctx.peers,
  ): void {
    if (peers.length === 0) return;
    if (successor === null) {
      for (const to of peers) {
        const list = this.pendingReleases.get(to);
        if (list) list.push({ vip, epoch });
        else this.pendingReleases.set(to, [{ vip, epoch }]);
      }
      return;
    }
    const base = this.header(now);
    for (const to of peers) {
      const message: Release = { kind: 'release', ...base, vip, epoch, successor };
      out.push({ type: 'send', to, message });
    }
  }

  /**
   * Sends the releases of this step that have no successor: per peer, one datagram for every
   * {@link LIMITS.releasesPerMessage} of them. Peers that get the same list share a sequence
   * number, as a single Release to every peer always did.
   */
  flushReleases(now: Millis, out: Output[]): void {
    if (this.pendingReleases.size === 0) return;
    const pending = this.pendingReleases;
    this.pendingReleases = new Map();
    const byList = new Map<string, { list: HoldingEntry[]; to: MemberId[] }>();
    for (const [to, list] of pending) {
      const key = list.map((e) => `${e.vip}@${e.epoch}`).join(',');
      const g = byList.get(key);
      if (g) g.to.push(to);
      else byList.set(key, { list, to: [to] });
    }
    for (const { list, to } of byList.values()) {
      for (let i = 0; i < list.length; i += LIMITS.releasesPerMessage) {
        const [first, ...also] = list.slice(i, i + LIMITS.releasesPerMessage) as [
          HoldingEntry,
          ...HoldingEntry[],
        ];
        const base = this.header(now);
        for (const peer of to) {
          const message: Release = {
            kind: 'release',
            ...base,
            vip: first.vip,
            epoch: first.epoch,
            successor: null,
            ...(also.length > 0 ? { also } : {}),
          };
          out.push({ type: 'send', to: peer, message });
        }
      }
    }
  }

  /** `from` started a new life: what we echoed to its old one is void. */
  forgetPeer(from: MemberId): void {
    this.echo.delete(from);
  }

  /**
   * A holder's lease is renewed by our echo of its heartbeat. Riding on our next periodic
   * heartbeat, the echo can come up to one interval late: with the fast profile (lease
   * ~230 ms, interval 100 ms) that left ~30 ms for scheduling jitter, and loaded nodes
   * flapped. So answer a holder at once (at most every 3/4 interval per holder): the renewal
   * lag becomes one round trip. Only that holder gets the extra heartbeat: a round to every
   * peer doubled the cluster's heartbeat traffic when every member holds a VIP. Extra
   * heartbeats change no safety argument.
   */
  promptEcho(now: Millis, hb: Heartbeat): void {
    if (
      hb.holdings.entries.length > 0 &&
      now - (this.promptEchoAt.get(hb.from) ?? -Infinity) >= this.ctx.timing.intervalMs * 0.75
    ) {
      this.promptEchoAt.set(hb.from, now);
      this.promptTo.add(hb.from);
    }
  }

  /** Echo `to` at the end of this step regardless of the prompt-echo spacing. */
  echoNow(to: MemberId): void {
    this.promptTo.add(to);
  }

  /** Records what our next heartbeat to `hb.from` echoes, if `hb` is its newest message. */
  recordEcho(hb: Heartbeat, version: HoldingsVersion, conflicts: Conflict[]): void {
    const prev = this.echo.get(hb.from);
    if (!prev || laterMessage(hb, prev)) {
      this.echo.set(hb.from, { incarnation: hb.incarnation, seq: hb.seq, version, conflicts });
    }
  }

  /**
   * A heartbeat of a life that has not proven freshness (docs/adr/0015): echo it, granting
   * nothing (holdings version 0), so that its sender can prove itself; at once (rate-limited
   * like prompt echoes) when it is newer than what we echo.
   */
  challenge(now: Millis, hb: Heartbeat): void {
    const prev = this.echo.get(hb.from);
    if (prev && !laterMessage(hb, prev)) return;
    this.echo.set(hb.from, { incarnation: hb.incarnation, seq: hb.seq, version: 0, conflicts: [] });
    if (now - (this.promptEchoAt.get(hb.from) ?? -Infinity) >= this.ctx.timing.intervalMs * 0.75) {
      this.promptEchoAt.set(hb.from, now);
      this.promptTo.add(hb.from);
    }
  }

  /** End of a step: the due round (or the prompt echoes alone). */
  flush(now: Millis, out: Output[]): void {
    this.flushReleases(now, out);
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

  /** The leaving member's last round (Member.stop), sent at once. */
  finalRound(now: Millis, out: Output[]): void {
    this.heartbeatDue = false;
    this.sendHeartbeats(now, out);
  }

  /**
   * A heartbeat round: to every peer, or (a prompt echo) to some. A partial round repeats the
   * holdings page of the last full round, so the round robin over pages is not disturbed.
   */
  private sendHeartbeats(now: Millis, out: Output[], only?: readonly MemberId[]): void {
    for (const holdings of only ? [this.ctx.leases.currentPage()] : this.roundPages())
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
    const leases = this.ctx.leases;
    const version = leases.holdingsVersion;
    if (version === this.burstVersion || leases.pages() === 1) return [leases.nextPage()];
    this.burstVersion = version;
    return leases.allPages();
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
    const unhealthy = [...this.ctx.unhealthy]
      .filter((v) => this.ctx.vips.has(v))
      .slice(0, LIMITS.unhealthyPerHeartbeat);
    for (const to of only ?? this.ctx.peers) {
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
        standby: this.ctx.standby,
        witness: this.ctx.isWitness,
        ...(this.settling ? { settling: true } : {}),
        ...(this.ctx.generation !== 0 ? { generation: this.ctx.generation } : {}),
        unhealthy,
        holdings,
        releases,
        echoes,
        conflicts,
      };
      out.push({ type: 'send', to, message });
    }
  }
}
