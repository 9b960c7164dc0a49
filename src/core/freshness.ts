/**
 * Proof of freshness (docs/adr/0015): after this member (re)starts, its wire codec has
 * forgotten every sender's replay window, so a recording of old, authentic datagrams would be
 * accepted again. A peer's messages therefore count only from the first one that shows the
 * peer heard *this* life of ours recently: an echo of (our incarnation, a seq we sent within
 * the last lease), or a takeover-ack answering such a request of ours. A recording made
 * before this life cannot contain our new incarnation; one made during it would have to be
 * replayed within a lease of our send, which is no worse than a delayed datagram.
 */
import { laterLife } from './incarnation.js';
import type { Incarnation, MemberId, Message, Seq } from './messages.js';

/** This member's side of the proof: who it is, which life, and which seqs it sent recently. */
export interface FreshnessSelf {
  self: MemberId;
  incarnation: Incarnation;
  /** When seq `s` of this life was sent, if recently (within the lease); undefined otherwise. */
  sentAt: (s: Seq) => number | undefined;
}

/** Whether `msg` proves that its sender heard this member's current life recently. */
export function provesFreshness(msg: Message, me: FreshnessSelf): boolean {
  switch (msg.kind) {
    case 'heartbeat':
      for (const e of msg.echoes) {
        if (e.member === me.self && e.incarnation === me.incarnation && me.sentAt(e.seq) !== undefined)
          return true;
      }
      return false;
    case 'takeover-ack':
      return (
        msg.candidate === me.self &&
        msg.requestIncarnation === me.incarnation &&
        me.sentAt(msg.requestSeq) !== undefined
      );
    default:
      return false;
  }
}

/** (incarnation, seq) `a` comes after `b` in the sender's timeline. */
export function laterMessage(
  a: { incarnation: Incarnation; seq: Seq },
  b: { incarnation: Incarnation; seq: Seq },
): boolean {
  return laterLife(a.incarnation, b.incarnation) || (a.incarnation === b.incarnation && a.seq > b.seq);
}
