import { createHmac, createPublicKey } from 'node:crypto';
import {
  AckRefusal,
  RETIRED_TAKEOVER_CAUSES,
  TakeoverCause,
  type Message,
} from '../../../../src/core/messages.js';
import { WireCodec, encodedSize } from '../../../../src/core/wire/codec.js';
import { DROP_REASONS } from '../../../../src/core/wire/drop-reasons.js';
import { DatagramTooLargeError, WireEncodeError } from '../../../../src/core/wire/errors.js';
import { IdTable } from '../../../../src/core/wire/id-table.js';
import { Keyring } from '../../../../src/core/wire/keyring.js';
import { generateMemberKey } from '../../../../src/core/wire/member-keys.js';
import { memberKeyOf, memberKeysFor } from '../../../fixtures/member-keys.js';
import {
  HEADER_SIZE,
  KIND_CODE,
  KIND_OF_CODE,
  MAC_SIZE,
  TRAILER_SIZE,
  MAX_DATAGRAM,
  OFF_BODY_LEN,
  OFF_CLUSTER,
  OFF_FLAGS,
  OFF_INCARNATION,
  OFF_KEY_ID,
  OFF_KIND,
  OFF_RECEIVER,
  OFF_SENDER,
  OFF_SEQ,
  OFF_VERSION,
  RETIRED_KIND_CODES,
} from '../../../../src/core/wire/layout.js';
import { SourceBinding } from '../../../../src/core/wire/source-binding.js';
import {
  ALICE,
  BOB,
  CLUSTER,
  KEY_A,
  KEY_B,
  MEMBERS,
  VIPS,
  addressOf,
  codecFor,
  heartbeat,
  ids,
  keyring,
  patchU32,
  resign,
  secret,
  signing,
  sources,
} from './fixtures.js';

const fromAlice = addressOf(ALICE);
const head = { clusterId: CLUSTER, from: ALICE, incarnation: 9, seq: 1 };

describe('WireCodec round trip', () => {
  const messages: Message[] = [
    heartbeat(ALICE, 9, 1, 5),
    { ...heartbeat(ALICE, 9, 2, 1), settling: true },
    { ...heartbeat(ALICE, 9, 3, 1), generation: 0xfffffffe },
    {
      kind: 'takeover',
      ...head,
      generation: 7,
      entries: [
        {
          vip: VIPS[1]!,
          epoch: 8,
          previousHolder: MEMBERS[2]!,
          previousEpoch: 7,
          cause: TakeoverCause.HolderDead,
        },
        { vip: VIPS[2]!, epoch: 1, previousHolder: null, previousEpoch: 0, cause: TakeoverCause.Unheld },
      ],
    },
    {
      kind: 'takeover-ack',
      ...head,
      candidate: MEMBERS[3]!,
      requestIncarnation: 2,
      requestSeq: 77,
      entries: [
        {
          vip: VIPS[1]!,
          epoch: 8,
          granted: false,
          reason: AckRefusal.PromiseActive,
          knownEpoch: 7,
          knownHolder: MEMBERS[2]!,
          promiseRemainingMs: 250,
        },
        {
          vip: VIPS[2]!,
          epoch: 1,
          granted: true,
          reason: AckRefusal.None,
          knownEpoch: 1,
          knownHolder: MEMBERS[3]!,
          promiseRemainingMs: 900,
        },
      ],
    },
    { kind: 'release', ...head, vip: VIPS[9]!, epoch: 3, successor: BOB },
    {
      kind: 'release',
      ...head,
      vip: VIPS[9]!,
      epoch: 3,
      successor: null,
      also: [
        { vip: VIPS[1]!, epoch: 7 },
        { vip: VIPS[2]!, epoch: 0xffff_ffff },
      ],
    },
  ];

  it.each(messages.map((m) => [m.kind, m] as const))(
    '%s decodes to the message that was encoded',
    (_k, m) => {
      const bytes = codecFor(ALICE).encode(m, BOB);
      expect(bytes.length).toBe(encodedSize(m));
      const r = codecFor(BOB).decode(bytes, fromAlice);
      expect(r).toEqual({ ok: true, message: m, to: BOB, keyId: KEY_A.id });
    },
  );

  it('marks broadcast datagrams as addressed to every member', () => {
    const r = codecFor(BOB).decode(codecFor(ALICE).encode(heartbeat(ALICE, 1, 1)), fromAlice);
    expect(r.ok && r.to).toBe('*');
  });

  it('fits a heartbeat echoing all 63 peers in one datagram, holdings included', () => {
    const m = heartbeat(ALICE, 1, 1, 63);
    expect(m.echoes).toHaveLength(63);
    const bytes = codecFor(ALICE).encode(m);
    expect(bytes.length).toBeLessThanOrEqual(MAX_DATAGRAM);
    const r = codecFor(BOB).decode(bytes, fromAlice);
    expect(r.ok && r.message).toEqual(m);
  });

  it('fits 64 echo entries (the brief: echoes for 64 members) in 1200 bytes', () => {
    const m = heartbeat(ALICE, 1, 1, 63);
    m.echoes.push({ member: ALICE, incarnation: 1, seq: 1, holdingsVersion: 0 });
    expect(encodedSize(m)).toBeLessThanOrEqual(MAX_DATAGRAM);
    expect(codecFor(ALICE).encode(m).length).toBe(encodedSize(m));
  });
});

describe('WireCodec.encodeEach', () => {
  it('gives, for each addressee, exactly the bytes encode would', () => {
    const alice = codecFor(ALICE);
    const m = heartbeat(ALICE, 4, 44, 63);
    const peers = MEMBERS.filter((x) => x !== ALICE);
    const each = alice.encodeEach(m, peers);
    expect(each).toHaveLength(63);
    each.forEach((d, i) => expect(Buffer.from(d).equals(Buffer.from(alice.encode(m, peers[i]!)))).toBe(true));
    const r = codecFor(peers[5]!).decode(each[5]!, fromAlice);
    expect(r).toMatchObject({ ok: true, to: peers[5] });
    expect(codecFor(peers[5]!).decode(each[6]!, fromAlice)).toMatchObject({
      ok: false,
      reason: 'wrong-destination',
    });
  });

  it('throws before returning anything when an addressee is unknown', () => {
    expect(() => codecFor(ALICE).encodeEach(heartbeat(ALICE, 1, 1), [BOB, 'node-99'])).toThrow(
      /member "node-99"/,
    );
    expect(codecFor(ALICE).encodeEach(heartbeat(ALICE, 1, 1), [])).toEqual([]);
  });
});

describe('WireCodec.encode refuses what it cannot send', () => {
  const alice = codecFor(ALICE);

  it('throws DatagramTooLargeError above 1200 bytes and says by how much', () => {
    const m = heartbeat(ALICE, 1, 1, 63);
    m.unhealthy = VIPS.slice(0, 40);
    expect(encodedSize(m)).toBeGreaterThan(MAX_DATAGRAM);
    expect(() => alice.encode(m)).toThrow(DatagramTooLargeError);
    expect(() => alice.encode(m)).toThrow(`needs ${encodedSize(m)} bytes`);
  });

  it('refuses to sign for another member or cluster, or name unknown ids', () => {
    expect(() => alice.encode(heartbeat(BOB, 1, 1))).toThrow(WireEncodeError);
    expect(() => alice.encode({ ...heartbeat(ALICE, 1, 1), clusterId: 'other/cluster' })).toThrow(
      /clusterId/,
    );
    expect(() =>
      alice.encode({ kind: 'release', ...head, vip: 'default/nope', epoch: 1, successor: null }),
    ).toThrow(/VIP "default\/nope"/);
    expect(() => alice.encode(heartbeat(ALICE, 1, 1), 'node-99')).toThrow(/member "node-99"/);
  });

  it('refuses numbers out of range and contradictory acks', () => {
    expect(() => alice.encode(heartbeat(ALICE, 2 ** 32, 1))).toThrow(/incarnation/);
    expect(() => alice.encode(heartbeat(ALICE, 1, -1))).toThrow(/seq/);
    expect(() => alice.encode(heartbeat(ALICE, 1, 1.5))).toThrow(/seq/);
    expect(() => alice.encode(heartbeat(ALICE, NaN, 1))).toThrow(/incarnation: NaN is not an integer/);
    const pages = heartbeat(ALICE, 1, 1);
    pages.holdings = { ...pages.holdings, page: 0, pages: 256 };
    expect(() => alice.encode(pages)).toThrow(/holdings\.pages: 256 is not an integer in 0\.\.255/);
    const page = heartbeat(ALICE, 1, 1);
    page.holdings = { ...page.holdings, page: 2, pages: 2 };
    expect(() => alice.encode(page)).toThrow(/need 0 <= page < pages/);
    const entry = {
      vip: VIPS[0]!,
      epoch: 1,
      granted: true,
      reason: AckRefusal.StaleEpoch,
      knownEpoch: 1,
      knownHolder: null,
      promiseRemainingMs: 0,
    };
    const ack: Message = {
      kind: 'takeover-ack',
      ...head,
      candidate: BOB,
      requestIncarnation: 1,
      requestSeq: 1,
      entries: [{ ...entry, granted: false, reason: AckRefusal.OtherCandidate }, entry],
    };
    expect(() => alice.encode(ack)).toThrow(/entries\[1\]\.granted: granted=true contradicts reason=3/);
    expect(() => alice.encode({ ...ack, entries: [] })).toThrow(/entries: 0 entries; .* 1\.\.32/);
    const many = Array.from({ length: 33 }, () => ({ ...entry, granted: false }));
    expect(() => alice.encode({ ...ack, entries: many })).toThrow(/entries: 33 entries/);
  });
});

describe('WireCodec.decode drop reasons', () => {
  const good = codecFor(ALICE).encode(heartbeat(ALICE, 9, 100), BOB);
  const drop = (bytes: Uint8Array, from = fromAlice, bob: WireCodec = codecFor(BOB)) => {
    const r = bob.decode(bytes, from);
    return r.ok ? 'ok' : r.reason;
  };
  const patch8 = (off: number, v: number) => {
    const out = Uint8Array.from(good);
    out[off] = v;
    return out;
  };

  it('drops by size before anything else', () => {
    expect(drop(new Uint8Array(0))).toBe('too-short');
    expect(drop(good.subarray(0, HEADER_SIZE + 15))).toBe('too-short');
    expect(drop(new Uint8Array(1201))).toBe('too-long');
  });

  it('drops bad header fields', () => {
    expect(drop(patch8(0, 0x00))).toBe('bad-magic');
    expect(drop(patch8(OFF_VERSION, 1))).toBe('bad-version'); // version 1: one VIP per takeover
    expect(drop(patch8(OFF_VERSION, 2))).toBe('bad-version'); // version 2: no member signature, no generation
    expect(drop(patch8(OFF_VERSION, 4))).toBe('bad-version');
    expect(drop(patch8(OFF_KIND, 0))).toBe('unknown-kind');
    expect(drop(patch8(OFF_KIND, 6))).toBe('unknown-kind');
    expect(drop(patch8(OFF_FLAGS, 0x80))).toBe('bad-flags');
  });

  it('drops a body length that claims more than was received, and trailing bytes (CVE-2006-3121, Heartbleed)', () => {
    const lying = Uint8Array.from(good);
    new DataView(lying.buffer).setUint16(OFF_BODY_LEN, 0xffff);
    expect(drop(lying)).toBe('bad-length');
    expect(drop(good.subarray(0, good.length - 1))).toBe('bad-length');
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    expect(drop(longer)).toBe('trailing-bytes');
  });

  it('drops datagrams for other clusters, from strangers, from itself, for other members', () => {
    expect(drop(patch32(OFF_CLUSTER, 0x12345678))).toBe('wrong-cluster');
    expect(drop(patch32(OFF_SENDER, 0x12345678))).toBe('unknown-sender');
    expect(drop(patch32(OFF_SENDER, ids.memberTag(BOB)!), addressOf(BOB))).toBe('self-sender');
    expect(drop(patch32(OFF_RECEIVER, ids.memberTag(MEMBERS[5]!)!))).toBe('wrong-destination');
    expect(drop(good, { address: '198.18.0.99', port: 694 })).toBe('source-mismatch');
    expect(drop(good, { ...fromAlice, port: 695 })).toBe('source-mismatch');
    expect(drop(good, { address: `::ffff:${fromAlice.address}`, port: 694 })).toBe('ok');
  });

  function patch32(off: number, v: number) {
    return patchU32(good, off, v);
  }

  it('drops unknown keys and bad MACs', () => {
    expect(drop(patch8(OFF_KEY_ID, 9))).toBe('unknown-key');
    expect(drop(patch8(OFF_KEY_ID, KEY_B.id))).toBe('bad-mac');
    const flipped = Uint8Array.from(good);
    flipped[flipped.length - 1]! ^= 1;
    expect(drop(flipped)).toBe('bad-mac');
    expect(drop(resign(good, { id: KEY_A.id, secret: secret(3) }))).toBe('bad-mac');
  });

  it("drops a datagram with the cluster key but not the claimed sender's member key (docs/adr/0021)", () => {
    // A holder of the cluster key (another member, or a node that read the Secret) signs as
    // ALICE with its own member key: the MAC verifies, the signature does not.
    expect(drop(resign(good, KEY_A, MEMBERS[5]!))).toBe('bad-signature');
    // A fresh key nobody published.
    const stranger = new WireCodec({
      ids,
      self: ALICE,
      keyring,
      sources,
      signingKey: generateMemberKey(),
      memberKeys: signing(ALICE).memberKeys,
    });
    expect(drop(stranger.encode(heartbeat(ALICE, 9, 101), BOB))).toBe('bad-signature');
    // A flipped signature bit (the MAC recomputed over it).
    const flipped = Uint8Array.from(good);
    flipped[flipped.length - TRAILER_SIZE]! ^= 1;
    const remac = Uint8Array.from(flipped);
    const macOff = remac.length - MAC_SIZE;
    remac.set(
      createHmac('sha256', Buffer.from(KEY_A.secret))
        .update(remac.subarray(0, macOff))
        .digest()
        .subarray(0, MAC_SIZE),
      macOff,
    );
    expect(drop(remac)).toBe('bad-signature');
    // Without the cluster key the signature is never checked: bad-mac, the cheap drop.
    expect(drop(resign(good, { id: KEY_A.id, secret: secret(3) }, MEMBERS[5]!))).toBe('bad-mac');
  });

  it('drops a sender whose public key is not configured, before any cryptography', () => {
    const bob = new WireCodec({
      ids,
      self: BOB,
      keyring,
      sources,
      ...signing(BOB),
      memberKeys: memberKeysFor(MEMBERS.filter((m) => m !== ALICE)),
    });
    expect(bob.decode(good, fromAlice)).toEqual({ ok: false, reason: 'unknown-member-key', sender: ALICE });
    // Published later (reconfigure with the key): accepted.
    bob.reconfigure(ids, sources, memberKeysFor(MEMBERS));
    expect(bob.decode(good, fromAlice)).toMatchObject({ ok: true });
  });

  it('refuses a signing key that is not an Ed25519 private key', () => {
    expect(
      () =>
        new WireCodec({
          ids,
          self: ALICE,
          keyring,
          sources,
          memberKeys: signing(ALICE).memberKeys,
          signingKey: createPublicKey(memberKeyOf(ALICE)),
        }),
    ).toThrow(/signing key must be an Ed25519 private key/);
  });

  it('drops authenticated datagrams with malformed bodies or unknown tags', () => {
    // flags byte of the heartbeat body: an undefined bit.
    const badFlags = Uint8Array.from(good);
    badFlags[HEADER_SIZE] = 0x80;
    expect(drop(resign(badFlags))).toBe('malformed-body');
    // holdings.page >= pages
    const badPage = Uint8Array.from(good);
    badPage[HEADER_SIZE + 4 + 5] = 1;
    badPage[HEADER_SIZE + 4 + 6] = 1;
    expect(drop(resign(badPage))).toBe('malformed-body');
    // holdings count claims more entries than the body holds.
    const lyingCount = Uint8Array.from(good);
    lyingCount[HEADER_SIZE + 4 + 7] = 200;
    expect(drop(resign(lyingCount))).toBe('malformed-body');
    // first holding's VIP tag unknown.
    expect(drop(resign(patchU32(good, HEADER_SIZE + 4 + 8, 0xdeadbeef)))).toBe('unknown-tag');
    // first echo's member tag unknown (holdings 1 entry, unhealthy 0, releases 0, echoes count, first echo).
    const echoOff = HEADER_SIZE + 4 + 8 + 8 + 1 + 1 + 1;
    expect(drop(resign(patchU32(good, echoOff, 0xdeadbeef)))).toBe('unknown-tag');
    // takeover with an undefined cause
    const tk = codecFor(ALICE).encode({
      kind: 'takeover',
      ...head,
      entries: [
        { vip: VIPS[0]!, epoch: 2, previousHolder: null, previousEpoch: 1, cause: TakeoverCause.Renew },
      ],
    });
    const badCause = Uint8Array.from(tk);
    badCause[HEADER_SIZE + 4 + 1 + 16] = 0;
    expect(drop(resign(badCause))).toBe('malformed-body');
    // a takeover list with no entry
    const empty = Uint8Array.from(tk);
    empty[HEADER_SIZE + 4] = 0;
    expect(drop(resign(empty))).toBe('malformed-body');
    // a batched release (docs/adr/0041): an empty `also` list, a successor with `also`, a count
    // beyond the entries, an unknown VIP tag among them
    const batch = codecFor(ALICE).encode({
      kind: 'release',
      ...head,
      vip: VIPS[0]!,
      epoch: 2,
      successor: null,
      also: [{ vip: VIPS[1]!, epoch: 3 }],
    });
    const alsoOff = HEADER_SIZE + 12;
    const noneAlso = Uint8Array.from(batch);
    noneAlso[alsoOff] = 0;
    expect(drop(resign(noneAlso))).toBe('malformed-body');
    expect(drop(resign(patchU32(batch, HEADER_SIZE + 8, ids.memberTag(BOB)!)))).toBe('malformed-body');
    const overCount = Uint8Array.from(batch);
    overCount[alsoOff] = 2;
    expect(drop(resign(overCount))).toBe('malformed-body');
    expect(drop(resign(patchU32(batch, alsoOff + 1, 0xdeadbeef)))).toBe('unknown-tag');
  });

  it('refuses to encode a batched release with a successor or more than 63 extra VIPs', () => {
    const alice = codecFor(ALICE);
    const also = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ vip: VIPS[i % VIPS.length]!, epoch: i }));
    const base = { kind: 'release' as const, ...head, vip: VIPS[0]!, epoch: 1 };
    expect(() => alice.encode({ ...base, successor: BOB, also: also(1) })).toThrow(/also.*successor/);
    expect(() => alice.encode({ ...base, successor: null, also: also(64) })).toThrow(/also.*at most 63/);
    expect(alice.encode({ ...base, successor: null, also: also(63) }).length).toBeLessThanOrEqual(
      MAX_DATAGRAM,
    );
  });

  it('drops and counts a datagram of a retired kind (an Assignment, docs/adr/0033), even signed and well formed', () => {
    // What an older peer would send: kind 2 with an Assignment body (vip, holder, epoch: 12 bytes,
    // the size of a release's), signed and MACed with the cluster's keys.
    const release = codecFor(ALICE).encode({
      kind: 'release',
      ...head,
      seq: 5,
      vip: VIPS[3]!,
      epoch: 4,
      successor: null,
    });
    const assignment = Uint8Array.from(release);
    assignment[OFF_KIND] = 2;
    const body = new DataView(assignment.buffer, HEADER_SIZE, 12);
    body.setUint32(0, ids.vipTag(VIPS[3]!)!);
    body.setUint32(4, ids.memberTag(MEMBERS[5]!)!);
    body.setUint32(8, 5);
    const bob = codecFor(BOB);
    expect(bob.decode(resign(assignment), fromAlice)).toEqual({ ok: false, reason: 'unknown-kind' });
    expect(bob.counters.get('unknown-kind')).toBe(1);
    expect(bob.counters.dropped).toBe(1);
    expect(bob.counters.accepted).toBe(0);
    // Dropped before the MAC: the sender's replay window did not move, its seq 5 is still fresh.
    expect(bob.decode(release, fromAlice).ok).toBe(true);
  });

  it('never gives a retired kind code to a kind, and decodes retired takeover causes', () => {
    for (const code of Object.keys(RETIRED_KIND_CODES).map(Number)) {
      expect(Object.values(KIND_CODE)).not.toContain(code);
      expect(KIND_OF_CODE[code]).toBeUndefined();
    }
    for (const cause of RETIRED_TAKEOVER_CAUSES) expect(Object.values(TakeoverCause)).not.toContain(cause);
    // A takeover request from an older peer with cause 4 (Assigned) decodes; we never send one.
    const entry = {
      vip: VIPS[0]!,
      epoch: 2,
      previousHolder: null,
      previousEpoch: 1,
      cause: TakeoverCause.Renew,
    };
    const tk = codecFor(ALICE).encode({ kind: 'takeover', ...head, entries: [entry] });
    const old = Uint8Array.from(tk);
    old[HEADER_SIZE + 4 + 1 + 16] = 4;
    const r = codecFor(BOB).decode(resign(old), fromAlice);
    expect(r.ok && r.message.kind === 'takeover' && r.message.entries[0]?.cause).toBe(4);
    expect(() =>
      codecFor(ALICE).encode({ kind: 'takeover', ...head, entries: [{ ...entry, cause: 4 }] }),
    ).toThrow(/entries\[0\]\.cause: 4 is not a TakeoverCause a member sends/);
  });

  it('counts every drop by reason, and accepted datagrams', () => {
    const bob = codecFor(BOB);
    bob.decode(good, fromAlice);
    bob.decode(good, fromAlice);
    bob.decode(new Uint8Array(3), fromAlice);
    expect(bob.counters.accepted).toBe(1);
    expect(bob.counters.get('replay')).toBe(1);
    expect(bob.counters.get('too-short')).toBe(1);
    expect(bob.counters.dropped).toBe(2);
    expect(Object.keys(bob.counters.snapshot())).toEqual([...DROP_REASONS]);
  });
});

describe('WireCodec replay protection', () => {
  const alice = codecFor(ALICE);
  const at = (inc: number, seq: number) => alice.encode(heartbeat(ALICE, inc, seq), BOB);
  const reason = (bob: WireCodec, bytes: Uint8Array) => {
    const r = bob.decode(bytes, fromAlice);
    return r.ok ? 'ok' : r.reason;
  };

  it('accepts each (incarnation, seq) once, in any order within the window', () => {
    const bob = codecFor(BOB);
    expect(reason(bob, at(1, 10))).toBe('ok');
    expect(reason(bob, at(1, 8))).toBe('ok');
    expect(reason(bob, at(1, 10))).toBe('replay');
    expect(reason(bob, at(1, 8))).toBe('replay');
    expect(reason(bob, at(1, 9))).toBe('ok');
    expect(reason(bob, at(1, 2000))).toBe('ok');
    expect(reason(bob, at(1, 2000 - 1024))).toBe('stale-seq');
    expect(reason(bob, at(1, 2000 - 1023))).toBe('ok');
  });

  it('checks staleness before the MAC: a stale datagram with a broken MAC is counted stale, not bad-mac', () => {
    const bob = codecFor(BOB);
    const d = at(1, 10);
    expect(reason(bob, d)).toBe('ok');
    const broken = Uint8Array.from(d);
    broken[broken.length - 1]! ^= 0xff;
    expect(reason(bob, broken)).toBe('replay');
    expect(reason(bob, at(2, 1))).toBe('ok');
    const old = Uint8Array.from(at(1, 11));
    old[old.length - 1]! ^= 0xff;
    expect(reason(bob, old)).toBe('stale-incarnation');
    expect(bob.counters.get('bad-mac')).toBe(0);
  });

  it('moves the window only after the MAC verified: a forged higher seq or incarnation changes nothing', () => {
    const bob = codecFor(BOB);
    expect(reason(bob, at(5, 100))).toBe('ok');
    const forger = { id: KEY_A.id, secret: secret(42) };
    expect(reason(bob, resign(at(5, 100_000), forger))).toBe('bad-mac');
    expect(reason(bob, resign(at(6, 1), forger))).toBe('bad-mac');
    // Had either forgery moved the window, these genuine datagrams would now be stale.
    expect(reason(bob, at(5, 99))).toBe('ok');
    expect(reason(bob, at(5, 101))).toBe('ok');
  });

  it('opens a new window for a higher incarnation (a restart), and only once it authenticated', () => {
    const bob = codecFor(BOB);
    expect(reason(bob, at(5, 100_000))).toBe('ok');
    expect(reason(bob, at(6, 1))).toBe('ok');
    expect(reason(bob, at(6, 2))).toBe('ok');
    expect(reason(bob, at(5, 100_001))).toBe('stale-incarnation');
  });

  it('does not move the window for an authenticated datagram whose body is malformed', () => {
    const bob = codecFor(BOB);
    const d = Uint8Array.from(at(1, 50));
    d[HEADER_SIZE] = 0x80;
    expect(reason(bob, resign(d))).toBe('malformed-body');
    expect(reason(bob, at(1, 50))).toBe('ok');
  });
});

describe('WireCodec configuration', () => {
  it('keeps replay windows across reconfiguration for members that remain', () => {
    const bob = codecFor(BOB);
    const d = codecFor(ALICE).encode(heartbeat(ALICE, 1, 1), BOB);
    expect(bob.decode(d, fromAlice).ok).toBe(true);
    const ids2 = new IdTable({ clusterId: CLUSTER, members: [...MEMBERS, 'node-new'], vips: VIPS });
    bob.reconfigure(ids2, sources);
    expect(bob.decode(d, fromAlice)).toEqual({ ok: false, reason: 'replay', sender: ALICE });
  });

  it('drops a member that was removed from the configuration as unknown-sender', () => {
    const bob = codecFor(BOB);
    const ids2 = new IdTable({ clusterId: CLUSTER, members: MEMBERS.filter((m) => m !== ALICE), vips: VIPS });
    bob.reconfigure(ids2, new SourceBinding([]));
    const d = codecFor(ALICE).encode(heartbeat(ALICE, 1, 1, 0), BOB);
    expect(bob.decode(d, fromAlice)).toEqual({ ok: false, reason: 'unknown-sender' });
  });

  it('refuses to build a codec for a member that is not configured', () => {
    expect(() => new WireCodec({ ids, self: 'node-99', keyring, sources, ...signing(ALICE) })).toThrow(
      /"node-99" is not in cluster/,
    );
  });

  it('uses the active key and accepts any key of the ring', () => {
    const ring = new Keyring([KEY_A, KEY_B], KEY_B.id);
    const d = codecFor(ALICE, ring).encode(heartbeat(ALICE, 1, 1), BOB);
    expect(d[OFF_KEY_ID]).toBe(KEY_B.id);
    expect(codecFor(BOB).decode(d, fromAlice)).toMatchObject({ ok: true, keyId: KEY_B.id });
  });

  it('binds the header fields into the MAC', () => {
    // Same datagram, every header field patched to another valid value and not re-signed.
    const d = codecFor(ALICE).encode(heartbeat(ALICE, 3, 3), BOB);
    for (const off of [OFF_INCARNATION, OFF_SEQ]) {
      expect(codecFor(BOB).decode(patchU32(d, off, 4), fromAlice)).toMatchObject({
        ok: false,
        reason: 'bad-mac',
      });
    }
    expect(codecFor(BOB).decode(patchU32(d, OFF_RECEIVER, 0), fromAlice)).toMatchObject({
      reason: 'bad-mac',
    });
    const kind = Uint8Array.from(d);
    kind[OFF_KIND] = KIND_CODE.release;
    expect(codecFor(BOB).decode(kind, fromAlice)).toMatchObject({ reason: 'bad-mac' });
  });
});
