import { laterLife } from '../incarnation.js';
import { WireError } from './errors.js';

/** What the replay guard says about an (incarnation, seq) before the datagram is authenticated. */
export type ReplayVerdict = 'fresh' | 'stale-incarnation' | 'stale-seq' | 'replay';

class Window {
  incarnation: number;
  top: number;
  readonly bits: Uint32Array;

  constructor(words: number, incarnation: number, seq: number) {
    this.bits = new Uint32Array(words);
    this.incarnation = incarnation;
    this.top = seq;
    this.set(seq);
  }

  has(seq: number): boolean {
    const i = seq % (this.bits.length * 32);
    return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  set(seq: number): void {
    const i = seq % (this.bits.length * 32);
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }

  clear(seq: number): void {
    const i = seq % (this.bits.length * 32);
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }
}

/**
 * Sliding-window replay protection per sender, keyed by (incarnation, seq) as in IPsec
 * (RFC 4303 §3.4.3): a sender's datagrams are accepted once each, in any order within the
 * last `windowBits` sequence numbers below the highest one accepted. A higher incarnation
 * (the sender restarted) opens a new window; an older one is stale.
 *
 * `check` is read-only and cheap: run it before the HMAC. `accept` changes state: run it
 * only after the datagram authenticated, so a forged datagram can neither advance the
 * window nor reset it with a fake new incarnation.
 *
 * Caveat: state lives in memory. After the *receiver* restarts it accepts, once, any
 * datagram of a sender's current or older life that an attacker recorded; the protocol
 * above must tolerate one stale message per sender after a restart.
 */
export class ReplayGuard<K = number> {
  readonly windowBits: number;
  readonly #words: number;
  readonly #windows = new Map<K, Window>();

  constructor(windowBits = 64) {
    if (!Number.isInteger(windowBits) || windowBits < 32 || windowBits % 32 !== 0 || windowBits > 65536) {
      throw new WireError(`replay window of ${windowBits} bits: use a multiple of 32 between 32 and 65536`);
    }
    this.windowBits = windowBits;
    this.#words = windowBits / 32;
  }

  /** Whether (incarnation, seq) from `sender` could be accepted. Changes nothing. */
  check(sender: K, incarnation: number, seq: number): ReplayVerdict {
    const w = this.#windows.get(sender);
    if (w === undefined || laterLife(incarnation, w.incarnation)) return 'fresh';
    if (incarnation !== w.incarnation) return 'stale-incarnation';
    if (seq > w.top) return 'fresh';
    if (w.top - seq >= this.windowBits) return 'stale-seq';
    return w.has(seq) ? 'replay' : 'fresh';
  }

  /**
   * Records an authenticated datagram. The caller must have had 'fresh' from `check` for
   * the same values (otherwise this throws: accepting a stale datagram is a bug).
   */
  accept(sender: K, incarnation: number, seq: number): void {
    const verdict = this.check(sender, incarnation, seq);
    if (verdict !== 'fresh') throw new WireError(`ReplayGuard.accept on a ${verdict} datagram`);
    const w = this.#windows.get(sender);
    if (w === undefined || laterLife(incarnation, w.incarnation)) {
      this.#windows.set(sender, new Window(this.#words, incarnation, seq));
      return;
    }
    if (seq > w.top) {
      const gap = seq - w.top;
      if (gap >= this.windowBits) w.bits.fill(0);
      else for (let s = w.top + 1; s < seq; s++) w.clear(s);
      w.top = seq;
    }
    w.set(seq);
  }

  /** The sender's current life and highest accepted seq, or undefined if never heard. */
  state(sender: K): { incarnation: number; highestSeq: number } | undefined {
    const w = this.#windows.get(sender);
    return w && { incarnation: w.incarnation, highestSeq: w.top };
  }

  /** Forgets a sender (it left the configuration). */
  forget(sender: K): void {
    this.#windows.delete(sender);
  }
}
