import { createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { Destination, MemberId, Message } from '../messages.js';
import type { Peer } from '../ports.js';
import { bodySize, decodeBody, encodeBody } from './bodies.js';
import { BadField, Reader, ShortRead, UnknownTag, Writer } from './cursor.js';
import { DropCounters, type DropReason } from './drop-reasons.js';
import { DatagramTooLargeError, WireEncodeError, WireError } from './errors.js';
import type { IdTable } from './id-table.js';
import type { Keyring } from './keyring.js';
import { MemberKeyError, type MemberKeys } from './member-keys.js';
import {
  DEFINED_FLAGS,
  HEADER_SIZE,
  KIND_CODE,
  KIND_OF_CODE,
  MAC_SIZE,
  MAGIC0,
  MAGIC1,
  MAX_DATAGRAM,
  MIN_DATAGRAM,
  OFF_BODY_LEN,
  OFF_CLUSTER,
  OFF_FLAGS,
  OFF_INCARNATION,
  OFF_KEY_ID,
  OFF_KIND,
  OFF_MAGIC,
  OFF_RECEIVER,
  OFF_SENDER,
  OFF_SEQ,
  OFF_VERSION,
  RECEIVER_ALL,
  SIG_SIZE,
  TRAILER_SIZE,
  WIRE_VERSION,
} from './layout.js';
import { ReplayGuard } from './replay-window.js';
import type { SourceBinding } from './source-binding.js';
import { VerifyBudget, type VerifyBudgetInit, type VerifyLane } from './verify-budget.js';
import type { Millis } from '../ports.js';

/** Outcome of `decode`: the message, or why the datagram was dropped. */
export type DecodeResult =
  | {
      ok: true;
      message: Message;
      /** Whom the sender addressed: this member, or '*' (every member). */
      to: Destination;
      /** Key id that authenticated it (for rotation metrics). */
      keyId: number;
    }
  | {
      ok: false;
      reason: DropReason;
      /** The claimed sender, once its tag resolved; not authenticated for any reason up to and including bad-mac. */
      sender?: MemberId;
    };

/** What a codec needs: this member's view of the cluster configuration. */
export interface WireCodecInit {
  /** Tags of the cluster, members and VIPs. */
  ids: IdTable;
  /** This member's id; it must be in `ids`. Encoded messages must come from it. */
  self: MemberId;
  keyring: Keyring;
  /** Where each member may send from. */
  sources: SourceBinding;
  /**
   * This member's own Ed25519 private key: every datagram it encodes carries its signature
   * (docs/adr/0021). It never leaves the member's node.
   */
  signingKey: KeyObject;
  /** Each member's public key: a datagram verifies only with its claimed sender's key. */
  memberKeys: MemberKeys;
  /**
   * Replay window per sender, in sequence numbers (multiple of 32). Default 1024: a sender
   * that numbers unicast datagrams to 63 peers from one counter still gets ~16 datagrams of
   * reordering tolerance.
   */
  windowBits?: number;
  /** Where drops are counted (default: a new DropCounters, see `counters`). */
  counters?: DropCounters;
  /**
   * How many failed signature verifications this receiver pays for, per sender and in total,
   * before it drops datagrams unverified as `rate-limited` (docs/adr/0026). Needs `now`.
   * Omitted: every datagram that passes the HMAC is verified (tests, benchmarks).
   */
  verifyBudget?: VerifyBudgetInit;
  /** The receiver's monotonic clock, for the budget's refill (the Clock port's `now`). */
  now?: () => Millis;
}

/** Bytes the datagram for `m` takes on the wire (header + body + MAC); over MAX_DATAGRAM means `encode` refuses it. */
export function encodedSize(m: Message): number {
  return HEADER_SIZE + bodySize(m) + TRAILER_SIZE;
}

function hmac(key: KeyObject, signed: Uint8Array): Buffer {
  return createHmac('sha256', key).update(signed).digest();
}

/** Signs header + body (`d[0 .. sigOff)`) with `key` and MACs everything before the MAC, in place. */
function seal(d: Uint8Array, sigOff: number, signingKey: KeyObject, macKey: KeyObject): void {
  d.set(sign(null, d.subarray(0, sigOff), signingKey), sigOff);
  const macOff = sigOff + SIG_SIZE;
  d.set(hmac(macKey, d.subarray(0, macOff)).subarray(0, MAC_SIZE), macOff);
}

/**
 * Encodes and signs this member's messages, and authenticates and decodes its peers'.
 * One per member; it holds the replay windows, so every datagram a member receives must go
 * through the same codec.
 *
 * `decode` never throws. It runs every check that costs no cryptography first (sizes,
 * header fields, cluster, sender, destination, source address, key id, sender's public
 * key, replay window), then the cluster HMAC (constant-time compare; cheap, and only
 * members hold the key), then, if the receiver's verification budget allows (`verifyBudget`,
 * docs/adr/0026), the sender's signature (about twenty times the HMAC's cost),
 * then the body, and only when all of that passed does it update the sender's replay
 * window. A dropped datagram changes nothing but `counters`.
 */
export class WireCodec {
  readonly counters: DropCounters;
  #ids: IdTable;
  #self: MemberId;
  #selfTag: number;
  #keyring: Keyring;
  #sources: SourceBinding;
  #memberKeys: MemberKeys;
  readonly #signingKey: KeyObject;
  readonly #replay: ReplayGuard<MemberId>;
  #budget: VerifyBudget | undefined;
  readonly #now: () => Millis;
  readonly #scratch = new Uint8Array(MAX_DATAGRAM);

  constructor(init: WireCodecInit) {
    this.#ids = init.ids;
    this.#self = init.self;
    this.#selfTag = WireCodec.#tagOfSelf(init.ids, init.self);
    this.#keyring = init.keyring;
    this.#sources = init.sources;
    if (init.signingKey.type !== 'private' || init.signingKey.asymmetricKeyType !== 'ed25519') {
      throw new MemberKeyError(`member ${init.self}: the signing key must be an Ed25519 private key`);
    }
    this.#signingKey = init.signingKey;
    this.#memberKeys = init.memberKeys;
    this.#replay = new ReplayGuard<MemberId>(init.windowBits ?? 1024);
    this.counters = init.counters ?? new DropCounters();
    if (init.verifyBudget && !init.now) {
      throw new WireError('WireCodec: a verifyBudget needs the clock (`now`) that refills it');
    }
    this.#now = init.now ?? (() => 0);
    this.#budget = init.verifyBudget && new VerifyBudget(init.verifyBudget, this.#now());
  }

  /**
   * Replaces the verification budget (the heartbeat interval changed), or removes it
   * (undefined). An equal budget is kept with its state.
   */
  setVerifyBudget(init: VerifyBudgetInit | undefined): void {
    if (init === undefined) {
      this.#budget = undefined;
      return;
    }
    const cur = this.#budget?.init;
    if (cur && (Object.keys(init) as Array<keyof VerifyBudgetInit>).every((k) => cur[k] === init[k])) return;
    this.#budget = new VerifyBudget(init, this.#now());
  }

  static #tagOfSelf(ids: IdTable, self: MemberId): number {
    const t = ids.memberTag(self);
    if (t === undefined) {
      throw new WireError(
        `this member "${self}" is not in cluster ${ids.clusterId}'s member list: add its node`,
      );
    }
    return t;
  }

  /** Switches keys atomically (rotation step). Replay windows are kept. */
  setKeyring(keyring: Keyring): void {
    this.#keyring = keyring;
  }

  get keyring(): Keyring {
    return this.#keyring;
  }

  /**
   * Switches to a new configuration (members, VIPs or members' public keys changed). Replay
   * windows of members that remain are kept; those of removed members are forgotten.
   * `memberKeys` omitted: the keys stay.
   */
  reconfigure(ids: IdTable, sources: SourceBinding, memberKeys?: MemberKeys): void {
    const selfTag = WireCodec.#tagOfSelf(ids, this.#self);
    for (const m of this.#ids.members()) {
      if (ids.memberTag(m) !== undefined) continue;
      this.#replay.forget(m);
      this.#budget?.forget(m);
    }
    this.#ids = ids;
    this.#selfTag = selfTag;
    this.#sources = sources;
    if (memberKeys) this.#memberKeys = memberKeys;
  }

  /**
   * The datagram for `m` addressed to `to` ('*' = every member), signed with the active key.
   * Throws WireEncodeError when a field cannot be encoded (message from another member or
   * cluster, id not configured, number out of range) and DatagramTooLargeError when it
   * would exceed MAX_DATAGRAM (1200) bytes.
   */
  encode(m: Message, to: Destination = '*'): Uint8Array {
    if (m.clusterId !== this.#ids.clusterId) {
      throw new WireEncodeError(
        'clusterId',
        `"${m.clusterId}" is not this codec's cluster "${this.#ids.clusterId}"`,
      );
    }
    if (m.from !== this.#self) {
      throw new WireEncodeError(
        'from',
        `"${m.from}" is not this member "${this.#self}": a member signs only its own messages`,
      );
    }
    let receiver = RECEIVER_ALL;
    if (to !== '*') {
      const t = this.#ids.memberTag(to);
      if (t === undefined)
        throw new WireEncodeError('to', `member "${to}" is not in cluster ${this.#ids.clusterId}`);
      receiver = t;
    }
    const size = encodedSize(m);
    if (size > MAX_DATAGRAM) throw new DatagramTooLargeError(m.kind, size, MAX_DATAGRAM);

    const w = new Writer(this.#scratch, m.kind, MAX_DATAGRAM);
    w.u8('magic', MAGIC0);
    w.u8('magic', MAGIC1);
    w.u8('version', WIRE_VERSION);
    w.u8('kind', KIND_CODE[m.kind]);
    w.u8('flags', 0);
    w.u8('keyId', this.#keyring.activeId);
    w.u16('bodyLength', size - HEADER_SIZE - TRAILER_SIZE);
    w.u32('clusterId', this.#ids.clusterTag);
    w.u32('from', this.#selfTag);
    w.u32('to', receiver);
    w.u32('incarnation', m.incarnation);
    w.u32('seq', m.seq);
    encodeBody(m, w, this.#ids);
    if (w.pos !== size - TRAILER_SIZE) throw new WireError(`internal: ${m.kind} body size mismatch`);
    const out = new Uint8Array(size);
    out.set(this.#scratch.subarray(0, w.pos));
    seal(out, w.pos, this.#signingKey, this.#keyring.active);
    return out;
  }

  /**
   * The datagrams for `m` addressed to each member of `tos`, in order: the same bytes as
   * `encode(m, to)` for each, but the body is encoded once and only the receiver tag, the
   * signature and the MAC differ (one signature and one HMAC per addressee). Throws like
   * `encode`, before returning anything.
   */
  encodeEach(m: Message, tos: readonly MemberId[]): Uint8Array[] {
    if (tos.length === 0) return [];
    const tags = tos.map((to) => {
      const t = this.#ids.memberTag(to);
      if (t === undefined)
        throw new WireEncodeError('to', `member "${to}" is not in cluster ${this.#ids.clusterId}`);
      return t;
    });
    const first = this.encode(m, tos[0]!);
    const sigOff = first.length - TRAILER_SIZE;
    const out = [first];
    for (let i = 1; i < tags.length; i++) {
      const d = Uint8Array.from(first);
      new DataView(d.buffer).setUint32(OFF_RECEIVER, tags[i]!);
      seal(d, sigOff, this.#signingKey, this.#keyring.active);
      out.push(d);
    }
    return out;
  }

  /**
   * Authenticates and decodes one datagram received from `from` (the address the network
   * reported). Never throws; reads only `bytes` (a view is fine, bytes around it are never
   * looked at). Counts the outcome in `counters`.
   */
  decode(bytes: Uint8Array, from: Peer): DecodeResult {
    let r: DecodeResult;
    try {
      r = this.#decode(bytes, from);
    } catch {
      r = { ok: false, reason: 'internal-error' };
    }
    if (r.ok) this.counters.accept();
    else this.counters.drop(r.reason);
    return r;
  }

  #decode(bytes: Uint8Array, from: Peer): DecodeResult {
    const len = bytes.byteLength;
    if (len < MIN_DATAGRAM) return { ok: false, reason: 'too-short' };
    if (len > MAX_DATAGRAM) return { ok: false, reason: 'too-long' };
    const v = new DataView(bytes.buffer, bytes.byteOffset, len);
    if (v.getUint8(OFF_MAGIC) !== MAGIC0 || v.getUint8(OFF_MAGIC + 1) !== MAGIC1) {
      return { ok: false, reason: 'bad-magic' };
    }
    if (v.getUint8(OFF_VERSION) !== WIRE_VERSION) return { ok: false, reason: 'bad-version' };
    const kind = KIND_OF_CODE[v.getUint8(OFF_KIND)];
    if (kind === undefined) return { ok: false, reason: 'unknown-kind' };
    if ((v.getUint8(OFF_FLAGS) & ~DEFINED_FLAGS) !== 0) return { ok: false, reason: 'bad-flags' };
    const bodyLen = v.getUint16(OFF_BODY_LEN);
    const sigOff = HEADER_SIZE + bodyLen;
    const macOff = sigOff + SIG_SIZE;
    if (macOff + MAC_SIZE > len) return { ok: false, reason: 'bad-length' };
    if (macOff + MAC_SIZE < len) return { ok: false, reason: 'trailing-bytes' };

    const ids = this.#ids;
    if (v.getUint32(OFF_CLUSTER) !== ids.clusterTag) return { ok: false, reason: 'wrong-cluster' };
    const senderTag = v.getUint32(OFF_SENDER);
    const sender = ids.memberId(senderTag);
    if (sender === undefined) return { ok: false, reason: 'unknown-sender' };
    if (senderTag === this.#selfTag) return { ok: false, reason: 'self-sender', sender };
    const receiver = v.getUint32(OFF_RECEIVER);
    if (receiver !== RECEIVER_ALL && receiver !== this.#selfTag) {
      return { ok: false, reason: 'wrong-destination', sender };
    }
    if (!this.#sources.matches(sender, from)) return { ok: false, reason: 'source-mismatch', sender };
    const keyId = v.getUint8(OFF_KEY_ID);
    const key = this.#keyring.get(keyId);
    if (key === undefined) return { ok: false, reason: 'unknown-key', sender };
    const publicKey = this.#memberKeys.get(sender);
    if (publicKey === undefined) return { ok: false, reason: 'unknown-member-key', sender };
    const incarnation = v.getUint32(OFF_INCARNATION);
    const seq = v.getUint32(OFF_SEQ);
    const verdict = this.#replay.check(sender, incarnation, seq);
    if (verdict !== 'fresh') return { ok: false, reason: verdict, sender };

    const expected = hmac(key, bytes.subarray(0, macOff)).subarray(0, MAC_SIZE);
    if (!timingSafeEqual(expected, bytes.subarray(macOff, macOff + MAC_SIZE))) {
      return { ok: false, reason: 'bad-mac', sender };
    }
    // Only now the signature: a datagram without the cluster key never costs a verification,
    // and only failed verifications spend the budget (a member's own traffic never does).
    const budget = this.#budget;
    let lane: VerifyLane = 'new';
    if (budget) {
      lane = this.#laneOf(sender, incarnation, seq);
      if (!budget.allows(sender, lane, this.#now())) return { ok: false, reason: 'rate-limited', sender };
    }
    if (!verify(null, bytes.subarray(0, sigOff), publicKey, bytes.subarray(sigOff, macOff))) {
      budget?.charge(sender, lane);
      return { ok: false, reason: 'bad-signature', sender };
    }

    let message: Message;
    try {
      const head = { clusterId: ids.clusterId, from: sender, incarnation, seq };
      message = decodeBody(kind, new Reader(v, HEADER_SIZE, sigOff), ids, head);
    } catch (e) {
      if (e instanceof UnknownTag) return { ok: false, reason: 'unknown-tag', sender };
      if (e instanceof ShortRead || e instanceof BadField)
        return { ok: false, reason: 'malformed-body', sender };
      throw e;
    }
    // Authenticated and well-formed: the only state change (besides a failure's budget).
    this.#replay.accept(sender, incarnation, seq);
    return { ok: true, message, to: receiver === RECEIVER_ALL ? '*' : this.#self, keyId };
  }

  /**
   * `current` when (incarnation, seq) continues the sender's authenticated life: the same
   * incarnation, and a number at most one replay window above the highest accepted (the
   * 'fresh' verdict already put it above the window's bottom). Everything else is `new`.
   */
  #laneOf(sender: MemberId, incarnation: number, seq: number): VerifyLane {
    const st = this.#replay.state(sender);
    return st && st.incarnation === incarnation && seq - st.highestSeq <= this.#replay.windowBits
      ? 'current'
      : 'new';
  }
}
