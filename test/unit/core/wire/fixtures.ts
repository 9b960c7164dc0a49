import { createHmac, sign } from 'node:crypto';
import fc from 'fast-check';
import {
  AckRefusal,
  LIMITS,
  TakeoverCause,
  type Heartbeat,
  type Message,
} from '../../../../src/core/messages.js';
import type { Peer } from '../../../../src/core/ports.js';
import { IdTable } from '../../../../src/core/wire/id-table.js';
import { Keyring, type KeyringKey } from '../../../../src/core/wire/keyring.js';
import { SourceBinding } from '../../../../src/core/wire/source-binding.js';
import { WireCodec } from '../../../../src/core/wire/codec.js';
import { MAC_SIZE, TRAILER_SIZE } from '../../../../src/core/wire/layout.js';
import { memberKeyOf, memberKeysFor } from '../../../fixtures/member-keys.js';

export const CLUSTER = 'heartline-system/lab';
export const MEMBERS = Array.from({ length: 64 }, (_, i) => `node-${String(i).padStart(2, '0')}`);
export const VIPS = Array.from({ length: 200 }, (_, i) => `default/vip-${i}`);
export const PORT = 694;

/** Member i sends from 198.18.0.(i+1):694. */
export function addressOf(member: string): Peer {
  const i = MEMBERS.indexOf(member);
  if (i < 0) throw new Error(`fixture: unknown member ${member}`);
  return { address: `198.18.0.${i + 1}`, port: PORT };
}

export function secret(fill: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (fill * 31 + i * 7) & 0xff);
}
export const KEY_A: KeyringKey = { id: 7, secret: secret(1) };
export const KEY_B: KeyringKey = { id: 8, secret: secret(2) };

export const ids = new IdTable({ clusterId: CLUSTER, members: MEMBERS, vips: VIPS });
export const sources = new SourceBinding(MEMBERS.map((m) => [m, [addressOf(m)]] as const));
export const keyring = new Keyring([KEY_A, KEY_B], KEY_A.id);
/** Every member's public key (deterministic test keys, test/fixtures/member-keys.ts). */
export const memberKeys = memberKeysFor(MEMBERS);

/** What a codec for `self` signs and verifies with: its own test key, every member's public key. */
export function signing(self: string): {
  signingKey: ReturnType<typeof memberKeyOf>;
  memberKeys: typeof memberKeys;
} {
  return { signingKey: memberKeyOf(self), memberKeys };
}

/** A codec for `self` with the shared fixture configuration. */
export function codecFor(self: string, ring: Keyring = keyring): WireCodec {
  return new WireCodec({ ids, self, keyring: ring, sources, ...signing(self) });
}

export const ALICE = MEMBERS[1]!;
export const BOB = MEMBERS[0]!;

/** A heartbeat from `from` with `echoes` echoes (one per other member, in order). */
export function heartbeat(from: string, incarnation: number, seq: number, echoes = 3): Heartbeat {
  return {
    kind: 'heartbeat',
    clusterId: CLUSTER,
    from,
    incarnation,
    seq,
    standby: false,
    witness: false,
    unhealthy: [],
    holdings: { version: 3, page: 0, pages: 1, entries: [{ vip: VIPS[0]!, epoch: 12 }] },
    releases: [],
    echoes: MEMBERS.filter((m) => m !== from)
      .slice(0, echoes)
      .map((member, i) => ({ member, incarnation: 5, seq: 1000 + i, holdingsVersion: i })),
    conflicts: [],
  };
}

// ---------------------------------------------------------------- arbitraries

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const memberArb = fc.constantFrom(...MEMBERS);
const vipArb = fc.constantFrom(...VIPS);
const memberOrNull = fc.option(memberArb, { nil: null });
const entry = fc.record({ vip: vipArb, epoch: u32 });

/** Header fields for a message from `from`. */
function head(from: string) {
  return fc.record({ clusterId: fc.constant(CLUSTER), from: fc.constant(from), incarnation: u32, seq: u32 });
}

export function heartbeatArb(from: string): fc.Arbitrary<Message> {
  return fc
    .record({
      h: head(from),
      standby: fc.boolean(),
      witness: fc.boolean(),
      settling: fc.boolean(),
      unhealthy: fc.array(vipArb, { maxLength: LIMITS.unhealthyPerHeartbeat }),
      pages: fc.integer({ min: 1, max: 255 }),
      pageSeed: fc.nat(),
      version: u32,
      entries: fc.array(entry, { maxLength: LIMITS.holdingsPerPage }),
      releases: fc.array(entry, { maxLength: LIMITS.releasesPerHeartbeat }),
      echoes: fc.array(fc.record({ member: memberArb, incarnation: u32, seq: u32, holdingsVersion: u32 }), {
        maxLength: LIMITS.echoesPerHeartbeat,
      }),
      conflicts: fc.array(fc.record({ member: memberArb, vip: vipArb, epoch: u32, holder: memberOrNull }), {
        maxLength: LIMITS.conflictsPerHeartbeat,
      }),
    })
    .map((x): Message => ({
      kind: 'heartbeat',
      ...x.h,
      standby: x.standby,
      witness: x.witness,
      ...(x.settling ? { settling: true } : {}),
      unhealthy: x.unhealthy,
      holdings: { version: x.version, page: x.pageSeed % x.pages, pages: x.pages, entries: x.entries },
      releases: x.releases,
      echoes: x.echoes,
      conflicts: x.conflicts,
    }));
}

/** Any valid message from `from`, every kind. */
export function messageArb(from: string): fc.Arbitrary<Message> {
  const causes = Object.values(TakeoverCause);
  const refusals = Object.values(AckRefusal);
  return fc.oneof(
    heartbeatArb(from),
    fc
      .record({
        h: head(from),
        entries: fc.array(
          fc.record({
            vip: vipArb,
            epoch: u32,
            previousHolder: memberOrNull,
            previousEpoch: u32,
            cause: fc.constantFrom(...causes),
          }),
          { minLength: 1, maxLength: LIMITS.takeoversPerMessage },
        ),
      })
      .map(({ h, entries }): Message => ({ kind: 'takeover', ...h, entries })),
    fc
      .record({
        h: head(from),
        candidate: memberArb,
        requestIncarnation: u32,
        requestSeq: u32,
        entries: fc.array(
          fc
            .record({
              vip: vipArb,
              epoch: u32,
              reason: fc.constantFrom(...refusals),
              knownEpoch: u32,
              knownHolder: memberOrNull,
              promiseRemainingMs: u32,
            })
            .map((x) => ({ ...x, granted: x.reason === AckRefusal.None })),
          { minLength: 1, maxLength: LIMITS.takeoversPerMessage },
        ),
      })
      .map(({ h, ...x }): Message => ({ kind: 'takeover-ack', ...h, ...x })),
    fc
      .record({ h: head(from), vip: vipArb, epoch: u32, successor: memberOrNull })
      .map(({ h, ...x }): Message => ({ kind: 'release', ...h, ...x })),
    // A batched release (docs/adr/0041): no successor, 1..63 more entries.
    fc
      .record({
        h: head(from),
        vip: vipArb,
        epoch: u32,
        also: fc.array(entry, { minLength: 1, maxLength: LIMITS.releasesPerMessage - 1 }),
      })
      .map(({ h, ...x }): Message => ({ kind: 'release', ...h, ...x, successor: null })),
  );
}

/**
 * Recomputes the signature (with `signer`'s member key, default ALICE) and the MAC (with
 * `key`) of a (modified) datagram, as a sender holding both would.
 */
export function resign(datagram: Uint8Array, key: KeyringKey = KEY_A, signer: string = ALICE): Uint8Array {
  const out = Uint8Array.from(datagram);
  const sigOff = out.length - TRAILER_SIZE;
  out.set(sign(null, out.subarray(0, sigOff), memberKeyOf(signer)), sigOff);
  const macOff = out.length - MAC_SIZE;
  const mac = createHmac('sha256', Buffer.from(key.secret)).update(out.subarray(0, macOff)).digest();
  out.set(mac.subarray(0, MAC_SIZE), macOff);
  return out;
}

/** Writes a u32 big-endian at `off` of a copy. */
export function patchU32(datagram: Uint8Array, off: number, value: number): Uint8Array {
  const out = Uint8Array.from(datagram);
  new DataView(out.buffer).setUint32(off, value);
  return out;
}
