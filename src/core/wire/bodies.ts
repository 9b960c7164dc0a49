import {
  AckRefusal,
  LIMITS,
  RETIRED_TAKEOVER_CAUSES,
  TakeoverCause,
  type Conflict,
  type Echo,
  type HoldingEntry,
  type Heartbeat,
  type Message,
  type Release,
  type AckEntry,
  type TakeoverAck,
  type TakeoverEntry,
  type TakeoverRequest,
} from '../messages.js';
import { BadField, UnknownTag, type Reader, type Writer } from './cursor.js';
import { WireEncodeError } from './errors.js';
import type { IdTable } from './id-table.js';

/*
 * Message bodies, version 3 (3: heartbeats and takeover requests carry the sender's
 * membership generation). Ids are 32-bit tags (IdTable); "member|0" is a nullable member
 * (0 = null; no id ever gets tag 0). Every list is a u8 count followed by fixed-size entries.
 *
 * heartbeat     flags u8 (bit0 standby, bit1 witness, bit2 settling), generation u32
 *               holdings: version u32, page u8, pages u8, count u8, count x {vip u32, epoch u32}
 *               unhealthy: count u8, count x {vip u32}
 *               releases:  count u8, count x {vip u32, epoch u32}
 *               echoes:    count u8, count x {member u32, incarnation u32, seq u32, holdingsVersion u32}
 *               conflicts: count u8, count x {member u32, vip u32, epoch u32, holder member|0}
 * takeover      generation u32, count u8 (>= 1), count x {vip u32, epoch u32, previousHolder member|0,
 *               previousEpoch u32, cause u8 (a retired cause decodes, docs/adr/0033)}
 * takeover-ack  candidate u32, requestIncarnation u32, requestSeq u32,
 *               count u8 (>= 1), count x {vip u32, epoch u32, reason u8 (0 = granted),
 *               knownEpoch u32, knownHolder member|0, promiseRemainingMs u32}
 * release       vip u32, epoch u32, successor member|0
 *               [also: count u8 (1..63), count x {vip u32, epoch u32}]  only with successor 0
 *               (docs/adr/0041: a peer that predates it drops such a Release as malformed-body)
 */

export const HEARTBEAT_FIXED = 1 + 4 + (4 + 1 + 1 + 1) + 1 + 1 + 1 + 1;
export const HOLDING_SIZE = 8;
export const UNHEALTHY_SIZE = 4;
export const RELEASE_SIZE = 8;
export const ECHO_SIZE = 16;
export const CONFLICT_SIZE = 16;
export const TAKEOVER_SIZE = 17;
export const ACK_SIZE = 21;
const FLAG_STANDBY = 0x01;
const FLAG_WITNESS = 0x02;
const FLAG_SETTLING = 0x04;

/** Causes a member sends. */
const CAUSES = new Set<number>(Object.values(TakeoverCause));
/** Causes a member accepts: those it sends, and retired ones an older peer may still send. */
const DECODED_CAUSES = new Set<number>([...CAUSES, ...RETIRED_TAKEOVER_CAUSES]);
const REFUSALS = new Set<number>(Object.values(AckRefusal));

/** Body size in bytes of `m` (no ids are resolved; sizes do not depend on them). */
export function bodySize(m: Message): number {
  switch (m.kind) {
    case 'heartbeat':
      return (
        HEARTBEAT_FIXED +
        m.holdings.entries.length * HOLDING_SIZE +
        m.unhealthy.length * UNHEALTHY_SIZE +
        m.releases.length * RELEASE_SIZE +
        m.echoes.length * ECHO_SIZE +
        m.conflicts.length * CONFLICT_SIZE
      );
    case 'release':
      return 12 + (m.also?.length ? 1 + m.also.length * RELEASE_SIZE : 0);
    case 'takeover':
      return 4 + 1 + m.entries.length * TAKEOVER_SIZE;
    case 'takeover-ack':
      return 13 + m.entries.length * ACK_SIZE;
  }
}

// ---------------------------------------------------------------- encoding

function member(ids: IdTable, field: string, id: string): number {
  const t = ids.memberTag(id);
  if (t === undefined) {
    throw new WireEncodeError(field, `member "${id}" is not in cluster ${ids.clusterId}'s configuration`);
  }
  return t;
}
function memberOrNull(ids: IdTable, field: string, id: string | null): number {
  return id === null ? 0 : member(ids, field, id);
}
function vip(ids: IdTable, field: string, id: string): number {
  const t = ids.vipTag(id);
  if (t === undefined) {
    throw new WireEncodeError(field, `VIP "${id}" is not in cluster ${ids.clusterId}'s configuration`);
  }
  return t;
}
function count(w: Writer, field: string, n: number): void {
  if (n > 255) throw new WireEncodeError(field, `${n} entries; at most 255 fit the u8 count (page the list)`);
  w.u8(field, n);
}

function encodeHeartbeat(m: Heartbeat, w: Writer, ids: IdTable): void {
  w.u8(
    'flags',
    (m.standby ? FLAG_STANDBY : 0) | (m.witness ? FLAG_WITNESS : 0) | (m.settling ? FLAG_SETTLING : 0),
  );
  w.u32('generation', m.generation ?? 0);
  const h = m.holdings;
  if (!(h.pages >= 1 && h.page < h.pages)) {
    throw new WireEncodeError(
      'holdings.page',
      `page ${h.page} of ${h.pages}: need 0 <= page < pages, pages >= 1`,
    );
  }
  w.u32('holdings.version', h.version);
  w.u8('holdings.page', h.page);
  w.u8('holdings.pages', h.pages);
  count(w, 'holdings.entries', h.entries.length);
  for (const e of h.entries) {
    w.u32('holdings.entries.vip', vip(ids, 'holdings.entries.vip', e.vip));
    w.u32('holdings.entries.epoch', e.epoch);
  }
  count(w, 'unhealthy', m.unhealthy.length);
  for (const v of m.unhealthy) w.u32('unhealthy', vip(ids, 'unhealthy', v));
  count(w, 'releases', m.releases.length);
  for (const e of m.releases) {
    w.u32('releases.vip', vip(ids, 'releases.vip', e.vip));
    w.u32('releases.epoch', e.epoch);
  }
  count(w, 'echoes', m.echoes.length);
  for (const e of m.echoes) {
    w.u32('echoes.member', member(ids, 'echoes.member', e.member));
    w.u32('echoes.incarnation', e.incarnation);
    w.u32('echoes.seq', e.seq);
    w.u32('echoes.holdingsVersion', e.holdingsVersion);
  }
  count(w, 'conflicts', m.conflicts.length);
  for (const c of m.conflicts) {
    w.u32('conflicts.member', member(ids, 'conflicts.member', c.member));
    w.u32('conflicts.vip', vip(ids, 'conflicts.vip', c.vip));
    w.u32('conflicts.epoch', c.epoch);
    w.u32('conflicts.holder', memberOrNull(ids, 'conflicts.holder', c.holder));
  }
}

function entryCount(field: string, n: number): void {
  if (n < 1 || n > LIMITS.takeoversPerMessage) {
    throw new WireEncodeError(
      field,
      `${n} entries; a takeover request or ack carries 1..${LIMITS.takeoversPerMessage}`,
    );
  }
}

function encodeTakeoverEntry(e: TakeoverEntry, f: string, w: Writer, ids: IdTable): void {
  if (!CAUSES.has(e.cause))
    throw new WireEncodeError(`${f}.cause`, `${e.cause} is not a TakeoverCause a member sends`);
  w.u32(`${f}.vip`, vip(ids, `${f}.vip`, e.vip));
  w.u32(`${f}.epoch`, e.epoch);
  w.u32(`${f}.previousHolder`, memberOrNull(ids, `${f}.previousHolder`, e.previousHolder));
  w.u32(`${f}.previousEpoch`, e.previousEpoch);
  w.u8(`${f}.cause`, e.cause);
}

function encodeAckEntry(e: AckEntry, f: string, w: Writer, ids: IdTable): void {
  if (!REFUSALS.has(e.reason)) throw new WireEncodeError(`${f}.reason`, `${e.reason} is not an AckRefusal`);
  if (e.granted !== (e.reason === AckRefusal.None)) {
    throw new WireEncodeError(
      `${f}.granted`,
      `granted=${e.granted} contradicts reason=${e.reason}: a grant has reason None (0), a refusal a non-zero reason`,
    );
  }
  w.u32(`${f}.vip`, vip(ids, `${f}.vip`, e.vip));
  w.u32(`${f}.epoch`, e.epoch);
  w.u8(`${f}.reason`, e.reason);
  w.u32(`${f}.knownEpoch`, e.knownEpoch);
  w.u32(`${f}.knownHolder`, memberOrNull(ids, `${f}.knownHolder`, e.knownHolder));
  w.u32(`${f}.promiseRemainingMs`, e.promiseRemainingMs);
}

/** Writes the body of `m`. Throws WireEncodeError / DatagramTooLargeError. */
export function encodeBody(m: Message, w: Writer, ids: IdTable): void {
  switch (m.kind) {
    case 'heartbeat':
      return encodeHeartbeat(m, w, ids);
    case 'takeover':
      entryCount('entries', m.entries.length);
      w.u32('generation', m.generation ?? 0);
      w.u8('entries.length', m.entries.length);
      m.entries.forEach((e, i) => encodeTakeoverEntry(e, `entries[${i}]`, w, ids));
      return;
    case 'takeover-ack':
      entryCount('entries', m.entries.length);
      w.u32('candidate', member(ids, 'candidate', m.candidate));
      w.u32('requestIncarnation', m.requestIncarnation);
      w.u32('requestSeq', m.requestSeq);
      w.u8('entries.length', m.entries.length);
      m.entries.forEach((e, i) => encodeAckEntry(e, `entries[${i}]`, w, ids));
      return;
    case 'release':
      w.u32('vip', vip(ids, 'vip', m.vip));
      w.u32('epoch', m.epoch);
      w.u32('successor', memberOrNull(ids, 'successor', m.successor));
      if (m.also?.length) {
        if (m.successor !== null)
          throw new WireEncodeError('also', 'a Release with a successor releases one VIP only');
        if (m.also.length > LIMITS.releasesPerMessage - 1)
          throw new WireEncodeError('also', `at most ${LIMITS.releasesPerMessage - 1} more VIPs per Release`);
        w.u8('also.length', m.also.length);
        m.also.forEach((e, i) => {
          w.u32(`also[${i}].vip`, vip(ids, `also[${i}].vip`, e.vip));
          w.u32(`also[${i}].epoch`, e.epoch);
        });
      }
      return;
  }
}

// ---------------------------------------------------------------- decoding

function rMember(r: Reader, ids: IdTable): string {
  const id = ids.memberId(r.u32());
  if (id === undefined) throw new UnknownTag();
  return id;
}
function rMemberOrNull(r: Reader, ids: IdTable): string | null {
  const t = r.u32();
  if (t === 0) return null;
  const id = ids.memberId(t);
  if (id === undefined) throw new UnknownTag();
  return id;
}
function rVip(r: Reader, ids: IdTable): string {
  const id = ids.vipId(r.u32());
  if (id === undefined) throw new UnknownTag();
  return id;
}

type Head = { clusterId: string; from: string; incarnation: number; seq: number };

function decodeHeartbeat(r: Reader, ids: IdTable, head: Head): Heartbeat {
  const flags = r.u8();
  if ((flags & ~(FLAG_STANDBY | FLAG_WITNESS | FLAG_SETTLING)) !== 0) throw new BadField();
  const generation = r.u32();
  const version = r.u32();
  const page = r.u8();
  const pages = r.u8();
  if (pages < 1 || page >= pages) throw new BadField();
  const entries: HoldingEntry[] = [];
  for (let n = r.count(1, HOLDING_SIZE); n > 0; n--) entries.push({ vip: rVip(r, ids), epoch: r.u32() });
  const unhealthy: string[] = [];
  for (let n = r.count(1, UNHEALTHY_SIZE); n > 0; n--) unhealthy.push(rVip(r, ids));
  const releases: HoldingEntry[] = [];
  for (let n = r.count(1, RELEASE_SIZE); n > 0; n--) releases.push({ vip: rVip(r, ids), epoch: r.u32() });
  const echoes: Echo[] = [];
  for (let n = r.count(1, ECHO_SIZE); n > 0; n--) {
    echoes.push({ member: rMember(r, ids), incarnation: r.u32(), seq: r.u32(), holdingsVersion: r.u32() });
  }
  const conflicts: Conflict[] = [];
  for (let n = r.count(1, CONFLICT_SIZE); n > 0; n--) {
    conflicts.push({
      member: rMember(r, ids),
      vip: rVip(r, ids),
      epoch: r.u32(),
      holder: rMemberOrNull(r, ids),
    });
  }
  return {
    kind: 'heartbeat',
    ...head,
    standby: (flags & FLAG_STANDBY) !== 0,
    witness: (flags & FLAG_WITNESS) !== 0,
    ...((flags & FLAG_SETTLING) !== 0 ? { settling: true } : {}),
    ...(generation !== 0 ? { generation } : {}),
    unhealthy,
    holdings: { version, page, pages, entries },
    releases,
    echoes,
    conflicts,
  };
}

/**
 * Reads the body of a `kind` message; the reader spans exactly the body. Throws ShortRead,
 * BadField or UnknownTag (the codec maps them to drop reasons); never reads past the reader.
 */
export function decodeBody(kind: Message['kind'], r: Reader, ids: IdTable, head: Head): Message {
  let m: Message;
  switch (kind) {
    case 'heartbeat':
      m = decodeHeartbeat(r, ids, head);
      break;
    case 'takeover': {
      const generation = r.u32();
      const entries: TakeoverEntry[] = [];
      const n = r.count(1, TAKEOVER_SIZE);
      if (n < 1 || n > LIMITS.takeoversPerMessage) throw new BadField();
      for (let i = 0; i < n; i++) {
        const v = rVip(r, ids);
        const epoch = r.u32();
        const previousHolder = rMemberOrNull(r, ids);
        const previousEpoch = r.u32();
        const cause = r.u8();
        if (!DECODED_CAUSES.has(cause)) throw new BadField();
        entries.push({
          vip: v,
          epoch,
          previousHolder,
          previousEpoch,
          cause: cause as TakeoverEntry['cause'],
        });
      }
      m = { kind, ...head, ...(generation !== 0 ? { generation } : {}), entries } satisfies TakeoverRequest;
      break;
    }
    case 'takeover-ack': {
      const candidate = rMember(r, ids);
      const requestIncarnation = r.u32();
      const requestSeq = r.u32();
      const entries: AckEntry[] = [];
      const n = r.count(1, ACK_SIZE);
      if (n < 1 || n > LIMITS.takeoversPerMessage) throw new BadField();
      for (let i = 0; i < n; i++) {
        const v = rVip(r, ids);
        const epoch = r.u32();
        const reason = r.u8();
        if (!REFUSALS.has(reason)) throw new BadField();
        entries.push({
          vip: v,
          epoch,
          granted: reason === AckRefusal.None,
          reason: reason as AckRefusal,
          knownEpoch: r.u32(),
          knownHolder: rMemberOrNull(r, ids),
          promiseRemainingMs: r.u32(),
        });
      }
      m = { kind, ...head, candidate, requestIncarnation, requestSeq, entries } satisfies TakeoverAck;
      break;
    }
    case 'release': {
      const release: Release = {
        kind,
        ...head,
        vip: rVip(r, ids),
        epoch: r.u32(),
        successor: rMemberOrNull(r, ids),
      };
      if (r.remaining > 0) {
        if (release.successor !== null) throw new BadField();
        const n = r.count(1, RELEASE_SIZE);
        if (n < 1 || n > LIMITS.releasesPerMessage - 1) throw new BadField();
        const also: HoldingEntry[] = [];
        for (let i = 0; i < n; i++) also.push({ vip: rVip(r, ids), epoch: r.u32() });
        release.also = also;
      }
      m = release;
      break;
    }
  }
  r.done();
  return m;
}
