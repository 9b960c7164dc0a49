/**
 * Fuzzing the decoder. Every input is decoded twice by identically prepared receivers: once
 * from an exact copy, once from a Uint8Array view into a larger buffer whose other bytes are
 * sentinels (or, for truncations, the rest of the real datagram). The two results must be
 * equal (the decoder never reads beyond its view), never 'internal-error' (it never throws),
 * and the reason must be the one the input calls for.
 */
import fc from 'fast-check';
import type { Message } from '../../../../src/core/messages.js';
import type { Peer } from '../../../../src/core/ports.js';
import { WireCodec, type DecodeResult } from '../../../../src/core/wire/codec.js';
import { DatagramTooLargeError } from '../../../../src/core/wire/errors.js';
import { IdTable } from '../../../../src/core/wire/id-table.js';
import { Keyring } from '../../../../src/core/wire/keyring.js';
import {
  HEADER_SIZE,
  KIND_OF_CODE,
  TRAILER_SIZE,
  MAX_DATAGRAM,
  MIN_DATAGRAM,
  OFF_BODY_LEN,
  OFF_CLUSTER,
  OFF_KEY_ID,
  OFF_RECEIVER,
  OFF_SENDER,
  WIRE_VERSION,
} from '../../../../src/core/wire/layout.js';
import {
  ALICE,
  BOB,
  CLUSTER,
  KEY_A,
  MEMBERS,
  VIPS,
  addressOf,
  codecFor,
  heartbeat,
  ids,
  keyring,
  messageArb,
  resign,
  signing,
  sources,
} from './fixtures.js';

const fromAlice = addressOf(ALICE);
const bobTag = ids.memberTag(BOB)!;
const aliceTag = ids.memberTag(ALICE)!;
const alice = codecFor(ALICE);
const SEED = Number(process.env.HL_FUZZ_SEED ?? 20261122);
const runs = (n: number) => ({ numRuns: n, seed: SEED });

let inputs = 0;

type Prime = (bob: WireCodec) => void;

/** Fails the property with `msg` (plain checks: jest's expect is too slow for 100k inputs). */
function check(ok: boolean, msg: () => string): void {
  if (!ok) throw new Error(msg());
}
const show = (x: unknown) => JSON.stringify(x);
/** JSON with object keys sorted, so that equal objects built in different key orders compare equal. */
function canon(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
function is<T>(actual: T, expected: T): void {
  check(actual === expected, () => `expected ${show(expected)}, got ${show(actual)}`);
}

const PAD = 7;
const scratch = new Uint8Array(PAD + MAX_DATAGRAM + 1400 + 1400);
const senders = new Map<string, WireCodec>();
function senderCodec(member: string): WireCodec {
  let c = senders.get(member);
  if (c === undefined) senders.set(member, (c = codecFor(member)));
  return c;
}

/** Decodes `bytes` by a fresh receiver (BOB), exactly and embedded in a larger buffer; checks they agree. */
function decodeChecked(
  bytes: Uint8Array,
  opts: { prime?: Prime; from?: Peer; after?: Uint8Array } = {},
): DecodeResult {
  inputs++;
  const from = opts.from ?? fromAlice;
  const fresh = () => {
    const c = codecFor(BOB);
    opts.prime?.(c);
    return c;
  };
  const exact = fresh().decode(Uint8Array.from(bytes), from);
  check(
    exact.ok || exact.reason !== 'internal-error',
    () => `internal-error on ${Buffer.from(bytes).toString('hex')}`,
  );
  const want = show(exact);
  // Sentinels alternate between inputs: zeros, 0xaa, or (for truncations) the real rest of the datagram.
  const fill = inputs % 2 === 0 ? 0x00 : 0xaa;
  scratch.fill(fill, 0, PAD + bytes.length + 1400);
  scratch.set(bytes, PAD);
  if (opts.after) scratch.set(opts.after.subarray(0, 1400), PAD + bytes.length);
  const viewed = fresh().decode(scratch.subarray(PAD, PAD + bytes.length), from);
  check(show(viewed) === want, () => `result depends on bytes outside the view: ${show(viewed)} vs ${want}`);
  // Anything accepted is exactly the canonical encoding of what it decoded to.
  if (exact.ok) {
    const again = senderCodec(exact.message.from).encode(exact.message, exact.to);
    check(Buffer.from(again).equals(Buffer.from(bytes)), () => 'accepted a non-canonical datagram');
  }
  return exact;
}
const reasonOf = (r: DecodeResult) => (r.ok ? 'ok' : r.reason);

const toArb = fc.constantFrom<'*' | string>('*', BOB);
const validDatagram = fc
  .tuple(messageArb(ALICE), toArb)
  .map(([m, to]) => ({ m, to, bytes: alice.encode(m, to) }));

describe('wire fuzzing', () => {
  let before = 0;
  const perTest: string[] = [];
  beforeEach(() => {
    before = inputs;
  });
  afterEach(() => {
    perTest.push(`${expect.getState().currentTestName}: ${inputs - before}`);
  });
  afterAll(() => {
    if (process.env.HL_FUZZ_VERBOSE) console.log(perTest.join('\n'));
    // The brief: at least 100,000 inputs per CI run.
    expect(inputs).toBeGreaterThanOrEqual(100_000);
    console.log(`wire fuzz: ${inputs} inputs decoded (seed ${SEED})`);
  });

  it('round-trips arbitrary valid messages of every kind', () => {
    fc.assert(
      fc.property(validDatagram, ({ m, to, bytes }) => {
        check(bytes.length <= MAX_DATAGRAM, () => `${bytes.length} bytes`);
        const r = decodeChecked(bytes);
        is(canon(r), canon({ ok: true, message: m, to, keyId: KEY_A.id }));
      }),
      runs(8_000),
    );
  });

  it('drops random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1400 }), (bytes) => {
        const r = decodeChecked(bytes);
        is(r.ok, false);
        if (bytes.length < MIN_DATAGRAM) is(reasonOf(r), 'too-short');
        else if (bytes.length > MAX_DATAGRAM) is(reasonOf(r), 'too-long');
      }),
      runs(15_000),
    );
  });

  it('drops random bytes behind a plausible header (magic, version, kind, cluster, sender, length right)', () => {
    // Kinds 1..5: a retired code (2, docs/adr/0033) is dropped before the MAC as unknown-kind.
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: MIN_DATAGRAM, maxLength: MAX_DATAGRAM }),
        fc.integer({ min: 1, max: 5 }),
        (bytes, kind) => {
          const d = Uint8Array.from(bytes);
          const v = new DataView(d.buffer);
          d.set([0x48, 0x4c, WIRE_VERSION, kind, 0, KEY_A.id]);
          v.setUint16(OFF_BODY_LEN, d.length - MIN_DATAGRAM);
          v.setUint32(OFF_CLUSTER, ids.clusterTag);
          v.setUint32(OFF_SENDER, aliceTag);
          v.setUint32(OFF_RECEIVER, bobTag);
          is(reasonOf(decodeChecked(d)), KIND_OF_CODE[kind] ? 'bad-mac' : 'unknown-kind');
        },
      ),
      runs(10_000),
    );
  });

  it('drops every truncation of valid datagrams, whatever follows the view', () => {
    fc.assert(
      fc.property(validDatagram, ({ bytes }) => {
        for (let n = 0; n < bytes.length; n++) {
          const r = decodeChecked(bytes.subarray(0, n), { after: bytes.subarray(n) });
          is(reasonOf(r), n < MIN_DATAGRAM ? 'too-short' : 'bad-length');
        }
      }),
      runs(200),
    );
  });

  it('drops lying body-length fields', () => {
    fc.assert(
      fc.property(validDatagram, fc.integer({ min: 0, max: 0xffff }), ({ bytes }, lie) => {
        const truth = bytes.length - MIN_DATAGRAM;
        fc.pre(lie !== truth);
        const d = Uint8Array.from(bytes);
        new DataView(d.buffer).setUint16(OFF_BODY_LEN, lie);
        is(reasonOf(decodeChecked(d)), lie > truth ? 'bad-length' : 'trailing-bytes');
      }),
      runs(10_000),
    );
  });

  it('drops authenticated heartbeats whose list counts lie (a sender bug cannot make us over-read)', () => {
    // Offsets of the five u8 counts in a heartbeat body built by `heartbeat()` with k echoes.
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 63 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 255 }),
        (k, which, lie) => {
          const m = heartbeat(ALICE, 1, 1, k);
          const counts = [11, 20, 21, 22, 23 + 16 * k].map((o) => HEADER_SIZE + o);
          const truth = [1, 0, 0, k, 0][which]!;
          fc.pre(lie !== truth);
          const d = alice.encode(m, BOB);
          d[counts[which]!] = lie;
          const r = decodeChecked(resign(d));
          check(['malformed-body', 'unknown-tag'].includes(reasonOf(r)), () => reasonOf(r));
        },
      ),
      runs(8_000),
    );
  });

  it('drops oversized datagrams, and encode refuses to build them', () => {
    fc.assert(
      fc.property(validDatagram, fc.integer({ min: 1, max: 400 }), ({ bytes }, extra) => {
        const d = new Uint8Array(MAX_DATAGRAM + extra);
        d.set(bytes);
        is(reasonOf(decodeChecked(d)), 'too-long');
      }),
      runs(2_000),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), (extra) => {
        const m = heartbeat(ALICE, 1, 1, 63);
        // 63 echoes + 8 conflicts is exactly 1200 bytes; one more entry does not fit.
        m.conflicts = Array.from({ length: extra + 8 }, (_, i) => ({
          member: MEMBERS[i % 64]!,
          vip: VIPS[i % 200]!,
          epoch: i,
          holder: null,
        }));
        expect(() => alice.encode(m)).toThrow(DatagramTooLargeError);
      }),
      runs(500),
    );
  });

  it('drops valid-looking datagrams signed with a key we do not hold the secret of', () => {
    fc.assert(
      fc.property(validDatagram, fc.uint8Array({ minLength: 32, maxLength: 64 }), ({ m, to }, secret) => {
        const forger = new WireCodec({
          ids,
          self: ALICE,
          keyring: new Keyring([{ id: KEY_A.id, secret }], KEY_A.id),
          sources,
          ...signing(ALICE),
        });
        is(reasonOf(decodeChecked(forger.encode(m, to))), 'bad-mac');
      }),
      runs(3_000),
    );
  });

  it('drops replays, in any delivery order with duplicates', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 40 }),
        fc.nat(),
        (seqs, salt) => {
          const bob = codecFor(BOB);
          const accepted = new Set<number>();
          let top = 0;
          for (const seq of [...seqs, ...seqs.slice(0, 1 + (salt % seqs.length))]) {
            inputs++;
            const r = bob.decode(alice.encode(heartbeat(ALICE, 3, seq, 1), BOB), fromAlice);
            if (top - seq >= 1024) is(reasonOf(r), 'stale-seq');
            else if (accepted.has(seq)) is(reasonOf(r), 'replay');
            else {
              is(reasonOf(r), 'ok');
              accepted.add(seq);
              top = Math.max(top, seq);
            }
          }
        },
      ),
      runs(1_500),
    );
  });

  it('drops stale incarnations and seqs below the window before checking the MAC', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffff_ffff }),
        fc.integer({ min: 1024, max: 0xffff_fffe }),
        fc.boolean(),
        fc.boolean(),
        (inc, seq, olderLife, breakMac) => {
          const prime: Prime = (bob) => {
            const r = bob.decode(alice.encode(heartbeat(ALICE, inc, seq, 1), BOB), fromAlice);
            is(r.ok, true);
          };
          const stale = olderLife
            ? alice.encode(heartbeat(ALICE, inc - 1, seq + 1, 1), BOB)
            : alice.encode(heartbeat(ALICE, inc, seq - 1024, 1), BOB);
          if (breakMac) stale[stale.length - 1]! ^= 0x01;
          const r = decodeChecked(stale, { prime });
          is(reasonOf(r), olderLife ? 'stale-incarnation' : 'stale-seq');
        },
      ),
      runs(3_000),
    );
  });

  it('drops datagrams of another cluster, even one with the same members and keys', () => {
    const otherIds = new IdTable({ clusterId: `${CLUSTER}-2`, members: MEMBERS, vips: VIPS });
    const other = new WireCodec({ ids: otherIds, self: ALICE, keyring, sources, ...signing(ALICE) });
    fc.assert(
      fc.property(validDatagram, ({ m, to }) => {
        const bytes = other.encode({ ...m, clusterId: `${CLUSTER}-2` }, to);
        is(reasonOf(decodeChecked(bytes)), 'wrong-cluster');
      }),
      runs(2_000),
    );
  });

  it('drops every single bit flip of a valid datagram, for the reason of the field it hit', () => {
    fc.assert(
      fc.property(validDatagram, fc.nat(), fc.integer({ min: 0, max: 7 }), ({ bytes }, at, bit) => {
        const off = at % bytes.length;
        const d = Uint8Array.from(bytes);
        d[off]! ^= 1 << bit;
        const v = new DataView(d.buffer);
        let expected: string;
        if (off < 2) expected = 'bad-magic';
        else if (off === 2) expected = 'bad-version';
        else if (off === 3) expected = KIND_OF_CODE[d[3]!] ? 'bad-mac' : 'unknown-kind';
        else if (off === 4) expected = 'bad-flags';
        else if (off === OFF_KEY_ID) expected = keyring.get(d[5]!) ? 'bad-mac' : 'unknown-key';
        else if (off < 8)
          expected = v.getUint16(6) > bytes.length - MIN_DATAGRAM ? 'bad-length' : 'trailing-bytes';
        else if (off < 12) expected = 'wrong-cluster';
        else if (off < 16) {
          const who = ids.memberId(v.getUint32(OFF_SENDER));
          expected = who === undefined ? 'unknown-sender' : who === BOB ? 'self-sender' : 'source-mismatch';
        } else if (off < 20) {
          const to = v.getUint32(OFF_RECEIVER);
          expected = to === 0 || to === bobTag ? 'bad-mac' : 'wrong-destination';
        } else expected = 'bad-mac';
        is(reasonOf(decodeChecked(d)), expected);
      }),
      runs(12_000),
    );
  });

  const mutation = fc.oneof(
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
  );
  function mutate(bytes: Uint8Array, ms: { op: 'set' | 'insert' | 'delete'; at: number; value: number }[]) {
    const a = [...bytes];
    for (const { op, at, value } of ms) {
      const i = a.length === 0 ? 0 : at % (a.length + (op === 'insert' ? 1 : 0));
      if (op === 'set' && a.length > 0) a[i] = value;
      else if (op === 'insert') a.splice(i, 0, value);
      else if (op === 'delete') a.splice(i, 1);
    }
    return Uint8Array.from(a);
  }

  it('never accepts a mutated datagram that was not re-signed', () => {
    fc.assert(
      fc.property(validDatagram, fc.array(mutation, { minLength: 1, maxLength: 6 }), ({ bytes }, ms) => {
        const d = mutate(bytes, ms);
        const r = decodeChecked(d);
        if (!Buffer.from(d).equals(Buffer.from(bytes))) is(r.ok, false);
      }),
      runs(8_000),
    );
  });

  it('copes with mutated bodies that were re-signed (a buggy or hostile key holder)', () => {
    fc.assert(
      fc.property(validDatagram, fc.array(mutation, { minLength: 1, maxLength: 4 }), ({ bytes }, ms) => {
        const body = mutate(bytes.subarray(HEADER_SIZE, bytes.length - TRAILER_SIZE), ms);
        fc.pre(body.length <= MAX_DATAGRAM - MIN_DATAGRAM);
        const d = new Uint8Array(MIN_DATAGRAM + body.length);
        d.set(bytes.subarray(0, HEADER_SIZE));
        d.set(body, HEADER_SIZE);
        new DataView(d.buffer).setUint16(OFF_BODY_LEN, body.length);
        const r = decodeChecked(resign(d));
        // Either rejected as a body problem, or it is the canonical encoding of some message.
        if (!r.ok) check(['malformed-body', 'unknown-tag'].includes(r.reason), () => reasonOf(r));
      }),
      runs(8_000),
    );
  });
});

// Keep the type import used when the file is compiled on its own.
export type { Message };
