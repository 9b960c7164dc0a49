/**
 * How a member lets go of a VIP: unbind, release its epoch in the voter table, tell the
 * peers, and for a planned move grant the successor the next epoch at once (the handoff).
 * Also the successor's side when it will not take a VIP handed to it, and giving up what a
 * newer epoch supersedes.
 */
import type { Acquisitions } from './acquisitions.js';
import type { HeartbeatSender } from './heartbeat-sender.js';
import { UINT32_MAX, type MemberContext, type Output, type UnbindReason } from './member-context.js';
import {
  LIMITS,
  type AckEntry,
  type Epoch,
  type MemberId,
  type Seq,
  type TakeoverAck,
  type VipId,
} from './messages.js';
import type { Millis } from './ports.js';

export class Releases {
  /** Handoff grants (see handoff()) to send at the end of this step, per successor. */
  private toHandoff = new Map<MemberId, AckEntry[]>();
  /**
   * Planned handovers waiting for their successor to show it is ready (docs/adr/0034), per
   * VIP: asked at `since`, ready once the successor echoes a message of ours newer than
   * `afterSeq`.
   */
  private readonly asked = new Map<VipId, { since: Millis; afterSeq: Seq }>();
  /** Newest seq of ours each peer echoed (this life). */
  private readonly echoed = new Map<MemberId, Seq>();
  /** Set by a graceful stop: hand over at once (the process is leaving). */
  handOverNow = false;

  constructor(
    private readonly ctx: MemberContext,
    private readonly sender: HeartbeatSender,
    private readonly acquisitions: Acquisitions,
  ) {}

  /**
   * Unbinds `vip` (if held) and releases its epoch. `announce`: tell the peers (and, with a
   * `successor`, hand it over); a superseded holding is not announced.
   */
  giveUp(
    now: Millis,
    vip: VipId,
    reason: UnbindReason,
    detail: string,
    successor: MemberId | null,
    out: Output[],
    announce = true,
  ): void {
    this.asked.delete(vip);
    const h = this.ctx.leases.remove(vip);
    if (!h) return;
    out.push({ type: 'unbind', vip, epoch: h.epoch, reason, detail });
    this.ctx.voter.releaseSelf(now, vip, h.epoch);
    if (announce) this.sender.announceRelease(now, vip, h.epoch, successor, out);
    if (announce && successor !== null) this.handoff(now, successor, vip, h.epoch + 1);
    this.sender.roundDue();
  }

  /**
   * A planned handover of `vip` to `successor`, while we can still serve it: whether to release
   * now. The first time, no: we ask (a heartbeat round at the end of this step, whose change of
   * standby the successor echoes at once) and wait until the successor echoes a message we sent
   * after deciding, or one interval at most. The successor is then not in the middle of the
   * configuration change that made us decide (every agent rebuilds at once, and its Release
   * waited in the socket behind that rebuild), so the VIP spends less time on no node; the
   * client keeps being served by us meanwhile. Delaying a release changes no safety argument.
   * Returns the time to decide again when not ready.
   */
  handOverWhenReady(now: Millis, vip: VipId, successor: MemberId): true | Millis {
    if (this.handOverNow) return true;
    const { intervalMs } = this.ctx.timing;
    // Keyed by VIP alone: views (loads) may name another successor from one step to the next,
    // and the wait must not start over each time.
    const a = this.asked.get(vip);
    if (!a || now > a.since + 2 * intervalMs) {
      this.asked.set(vip, { since: now, afterSeq: this.sender.lastSeq });
      this.sender.roundDue();
      return now + intervalMs;
    }
    if ((this.echoed.get(successor) ?? 0) > a.afterSeq || now >= a.since + intervalMs) return true;
    return a.since + intervalMs;
  }

  /** `from` echoed our `seq`: whether a handover waiting for it is now ready. */
  onEcho(from: MemberId, seq: Seq): boolean {
    if (seq <= (this.echoed.get(from) ?? 0)) return false;
    this.echoed.set(from, seq);
    for (const a of this.asked.values()) if (seq > a.afterSeq) return true;
    return false;
  }

  /** Gives up holdings and candidacies that a newer epoch known to our voter table supersedes. */
  checkSuperseded(now: Millis, out: Output[]): void {
    const { leases, voter } = this.ctx;
    for (const h of [...leases.holdings.values()]) {
      const r = voter.get(h.vip);
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
    for (const a of [...this.acquisitions.values()]) {
      const r = voter.get(a.vip);
      if (r.epoch > a.epoch || (r.epoch === a.epoch && r.holder !== this.ctx.self)) {
        this.acquisitions.abandon(now, a.vip, `epoch ${r.epoch} taken by ${r.holder ?? 'unknown'}`, out);
      }
    }
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
    const { quorum, membership } = this.ctx;
    if (quorum.mode === 'ignore' || !quorum.voters.includes(this.ctx.self)) return;
    if (successor === this.ctx.self || !this.ctx.memberSet.has(successor)) return;
    if (!membership.isAlive(successor, now)) return;
    const peer = membership.peer(successor);
    if (!peer || peer.lastHeard === undefined) return;
    // The voter rule of membership changes: no grant to a member at an older generation.
    if (peer.generation < this.ctx.generation && !this.ctx.init.unsafe?.skipGenerationRule) return;
    const d = this.ctx.voter.handoff(now, successor, peer.incarnation, vip, epoch);
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

  /** Sends the handoff grants of this step, after the releases they follow. */
  flushHandoffs(now: Millis, out: Output[]): void {
    if (this.toHandoff.size === 0) return;
    for (const [successor, list] of this.toHandoff) {
      const peer = this.ctx.membership.peer(successor);
      if (!peer) continue;
      for (let i = 0; i < list.length; i += LIMITS.takeoversPerMessage) {
        const ack: TakeoverAck = {
          kind: 'takeover-ack',
          ...this.sender.header(now),
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

  /**
   * We were named successor of a planned move by `releaser` but are not taking `vip` at
   * `epoch` (standby, unhealthy, another view of the election, no quorum in view): the
   * releaser's voter granted us that epoch (handoff()), so release it at once rather than leave
   * its promise to run out with nobody holding the VIP. Only the releaser hands over, so only
   * it gets the datagram; the others read the release in our heartbeats.
   */
  declineHandoff(now: Millis, releaser: MemberId, vip: VipId, epoch: Epoch, out: Output[]): void {
    if (this.ctx.isWitness || this.acquisitions.has(vip) || this.ctx.leases.holdings.has(vip)) return;
    const r = this.ctx.voter.get(vip);
    if (r.epoch > epoch || (r.epoch === epoch && r.holder !== this.ctx.self && !r.released)) return;
    this.ctx.voter.learn(vip, epoch, null);
    this.sender.noteRelease(now, vip, epoch);
    this.sender.sendRelease(now, vip, epoch, null, out, [releaser]);
  }
}
