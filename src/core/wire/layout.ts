import type { MessageKind } from '../messages.js';

/**
 * Heartline wire format, version 3 (2: takeover requests and acks carry lists of VIPs; 3: each
 * datagram is signed by its sender's own key, docs/adr/0021, and heartbeats and takeover
 * requests carry the membership generation, docs/adr/0015). Every field is big-endian. See
 * docs/wire.md.
 *
 *  0      2     3     4     5      6          8              12             16             20
 *  +------+-----+-----+-----+------+----------+--------------+--------------+--------------+
 *  |magic |ver  |kind |flags|keyId | bodyLen  | clusterTag   | senderTag    | receiverTag  |
 *  | "HL" | =1  |     | =0  |      | u16      | u32          | u32          | u32 (0 = all)|
 *  +------+-----+-----+-----+------+----------+--------------+--------------+--------------+
 *  20             24             28
 *  +--------------+--------------+--------------------+----------------+-----------+
 *  | incarnation  | seq          | body (bodyLen)     | signature 64 B | MAC 16 B  |
 *  | u32          | u32          | per kind           |                |           |
 *  +--------------+--------------+--------------------+----------------+-----------+
 *
 * signature = Ed25519 by the sender's member key over bytes 0 .. 28+bodyLen (header and body).
 * MAC = first 16 bytes of HMAC-SHA256(key[keyId], bytes 0 .. 28+bodyLen+64), i.e. over the
 * whole datagram except the MAC itself (RFC 4868's HMAC-SHA-256-128, as IPsec uses).
 */

export const MAGIC0 = 0x48; // 'H'
export const MAGIC1 = 0x4c; // 'L'
/**
 * 3 since every datagram carries its sender's signature (docs/adr/0021) and heartbeats and
 * takeover requests carry the sender's membership generation (docs/adr/0015); 2 had lists in
 * takeover requests and acks (version 1 had one VIP per message).
 */
export const WIRE_VERSION = 3;

/** Largest datagram we send or accept: fits any IPv6 path (MTU 1280) without fragmentation. */
export const MAX_DATAGRAM = 1200;
export const HEADER_SIZE = 28;
export const MAC_SIZE = 16;
/** Ed25519 signature by the sender's member key, between the body and the MAC. */
export const SIG_SIZE = 64;
/** What follows the body: signature, then MAC. */
export const TRAILER_SIZE = SIG_SIZE + MAC_SIZE;
export const MIN_DATAGRAM = HEADER_SIZE + TRAILER_SIZE;

export const OFF_MAGIC = 0;
export const OFF_VERSION = 2;
export const OFF_KIND = 3;
export const OFF_FLAGS = 4;
export const OFF_KEY_ID = 5;
export const OFF_BODY_LEN = 6;
export const OFF_CLUSTER = 8;
export const OFF_SENDER = 12;
export const OFF_RECEIVER = 16;
export const OFF_INCARNATION = 20;
export const OFF_SEQ = 24;

/** Flag bits defined by version 1: none. Any set bit is dropped as `bad-flags`. */
export const DEFINED_FLAGS = 0x00;

/** Receiver tag meaning "every member" (multicast / broadcast, or a message for all peers). */
export const RECEIVER_ALL = 0;

/** Wire codes of message kinds. Codes are never reused (see {@link RETIRED_KIND_CODES}). */
export const KIND_CODE = {
  heartbeat: 1,
  takeover: 3,
  'takeover-ack': 4,
  release: 5,
} as const satisfies Record<MessageKind, number>;

/**
 * Codes of kinds no member sends any more, never to be given to a new kind. A datagram of one
 * is dropped before the MAC like any code this version does not know (`unknown-kind`).
 * 2 was the controller's Assignment (removed, docs/adr/0033).
 */
export const RETIRED_KIND_CODES: Readonly<Record<number, string>> = { 2: 'assignment' };

/** Message kind of a wire code, or undefined for a code this version does not know. */
export const KIND_OF_CODE: readonly (MessageKind | undefined)[] = (() => {
  const out: (MessageKind | undefined)[] = new Array<MessageKind | undefined>(256).fill(undefined);
  for (const [k, c] of Object.entries(KIND_CODE)) out[c] = k as MessageKind;
  return out;
})();
