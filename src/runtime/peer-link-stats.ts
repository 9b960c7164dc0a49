/**
 * Per-peer link quality as the metrics report it: the round trip of our heartbeats (from
 * sending one to hearing the peer echo it) and the heartbeats a peer's silence says we
 * missed. Pure bookkeeping over times the host passes in; no clock of its own.
 *
 * Round trip: a peer echoes, in its heartbeats to us, the newest of our heartbeats it heard.
 * The first heartbeat echoing a given one of ours gives `now - sentAt(ours)`. While this
 * member holds VIPs its peers echo at once (prompt echo, ADR 0004), so that is a network round
 * trip plus scheduling; otherwise the echo rides the peer's next periodic heartbeat and can
 * be up to one interval later.
 *
 * Missed heartbeats: a peer heartbeats every interval, so a gap of g between two of its
 * heartbeats of one life means round(g / interval) - 1 rounds we did not hear (lost on the
 * way, or not sent: a paused peer). A gap across a restart of the peer (a new incarnation)
 * counts nothing: it was down, not losing heartbeats.
 */
import type { Heartbeat, Incarnation, MemberId, Seq } from '../core/messages.js';
import type { Millis } from '../core/ports.js';

/** What one heartbeat from a peer says about the link. */
export interface PeerLinkSample {
  peer: MemberId;
  /** Milliseconds from sending our echoed heartbeat to receiving this one; absent if it echoes nothing new. */
  rttMs?: Millis;
  /** Heartbeat rounds of the peer not heard before this one (0 normally). */
  missed: number;
}

/** Sent heartbeats remembered for round trips (a few seconds' worth at any interval). */
const SENT_KEPT = 256;

export class PeerLinkStats {
  private readonly sent = new Map<Seq, Millis>();
  private readonly peers = new Map<MemberId, { incarnation: Incarnation; at: Millis; echoed: Seq }>();

  constructor(private intervalMs: Millis) {}

  /** The heartbeat interval changed (a new configuration). */
  setInterval(intervalMs: Millis): void {
    this.intervalMs = intervalMs;
  }

  /** We sent heartbeat `seq` at `at` (once per seq, whatever the number of peers). */
  sentHeartbeat(seq: Seq, at: Millis): void {
    if (this.sent.has(seq)) return;
    this.sent.set(seq, at);
    if (this.sent.size > SENT_KEPT) this.sent.delete(this.sent.keys().next().value!);
  }

  /** A new life of ours: earlier sequence numbers mean nothing any more. */
  newLife(): void {
    this.sent.clear();
    for (const p of this.peers.values()) p.echoed = 0;
  }

  /** A peer's authenticated heartbeat received at `at`; `self` and `incarnation` are ours. */
  heartbeat(hb: Heartbeat, at: Millis, self: MemberId, incarnation: Incarnation): PeerLinkSample {
    const prev = this.peers.get(hb.from);
    let missed = 0;
    if (prev && prev.incarnation === hb.incarnation && at > prev.at) {
      missed = Math.max(0, Math.round((at - prev.at) / this.intervalMs) - 1);
    }
    const state = { incarnation: hb.incarnation, at, echoed: prev?.echoed ?? 0 };
    const sample: PeerLinkSample = { peer: hb.from, missed };
    for (const e of hb.echoes) {
      if (e.member !== self || e.incarnation !== incarnation || e.seq <= state.echoed) continue;
      state.echoed = e.seq;
      const sentAt = this.sent.get(e.seq);
      if (sentAt !== undefined && at >= sentAt) sample.rttMs = at - sentAt;
    }
    this.peers.set(hb.from, state);
    return sample;
  }

  /** Forgets peers not in `keep` (removed from the member set). */
  retain(keep: ReadonlySet<MemberId>): void {
    for (const id of [...this.peers.keys()]) if (!keep.has(id)) this.peers.delete(id);
  }
}
