/**
 * Wire codec throughput: encode+sign and verify+decode of a 64-member heartbeat (63 echoes),
 * plus the cost of the cheap and the expensive drop paths, and what a 64-member and a
 * 100-member cluster at 10 Hz cost one member. Every datagram carries the cluster HMAC and
 * its sender's Ed25519 signature (wire v3, docs/adr/0021); the raw Ed25519 sign and verify
 * are measured alone too. Run: npx tsx bench/codec.ts   (writes bench/results/codec.json)
 */
import { createPublicKey, sign, verify } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Heartbeat } from '../src/core/messages.js';
import {
  IdTable,
  Keyring,
  MemberKeys,
  SourceBinding,
  WireCodec,
  generateMemberKey,
  verifyBudgetFor,
} from '../src/core/wire/index.js';

const MEMBERS = Array.from({ length: 64 }, (_, i) => `node-${String(i).padStart(2, '0')}`);
const VIPS = Array.from({ length: 64 }, (_, i) => `default/vip-${i}`);
const CLUSTER = 'heartline-system/bench';
const RATE_HZ = 10;
const PEERS = MEMBERS.length - 1;
/** The ADR's question: what one member pays in a 100-member cluster (99 peers). */
const PEERS_100 = 99;
const TARGET_PERCENT = 2;

const ids = new IdTable({ clusterId: CLUSTER, members: MEMBERS, vips: VIPS });
const addr = (i: number) => ({ address: `198.18.0.${i + 1}`, port: 694 });
const sources = new SourceBinding(MEMBERS.map((m, i) => [m, [addr(i)]] as const));
const secret = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
const keyring = new Keyring([{ id: 1, secret }], 1);
const privateKeys = new Map(MEMBERS.map((m) => [m, generateMemberKey()] as const));
const memberKeys = new MemberKeys([...privateKeys].map(([m, k]) => [m, createPublicKey(k)] as const));
const signing = (self: string) => ({ signingKey: privateKeys.get(self)!, memberKeys });
const sender = MEMBERS[1]!;
const receiver = MEMBERS[0]!;
const from = addr(1);

function heartbeat(seq: number): Heartbeat {
  return {
    kind: 'heartbeat',
    clusterId: CLUSTER,
    from: sender,
    incarnation: 1,
    seq,
    standby: false,
    witness: false,
    unhealthy: [],
    holdings: {
      version: 4,
      page: 0,
      pages: 1,
      entries: VIPS.slice(0, 6).map((vip, i) => ({ vip, epoch: 100 + i })),
    },
    releases: [],
    echoes: MEMBERS.filter((m) => m !== sender).map((member, i) => ({
      member,
      incarnation: 7,
      seq: 50_000 + i,
      holdingsVersion: i % 5,
    })),
    conflicts: [],
  };
}

/**
 * Runs `op` n times per round after `setup`; returns µs per op of the median round, by CPU
 * time of this process (user + system: what the work costs, even when a loaded machine
 * deschedules us) and by wall-clock time.
 */
function measure(
  rounds: number,
  n: number,
  op: (i: number) => void,
  setup: () => void = () => {},
): { cpu: number; wall: number } {
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < rounds; r++) {
    setup();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) op(i);
    const t1 = performance.now();
    const c1 = process.cpuUsage(c0);
    wall.push(((t1 - t0) * 1000) / n);
    cpu.push((c1.user + c1.system) / n);
  }
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { cpu: med(cpu), wall: med(wall) };
}

const ROUNDS = 15;
const N = 5_000;
const enc = new WireCodec({ ids, self: sender, keyring, sources, ...signing(sender) });

// Encode: build the message outside the timed loop (the protocol builds it anyway).
const msgs = Array.from({ length: N }, (_, i) => heartbeat(i + 1));
for (let i = 0; i < 20_000; i++) enc.encode(msgs[i % N]!, receiver); // warm-up
const encodeUs = measure(ROUNDS, N, (i) => enc.encode(msgs[i % N]!, receiver));

// encodeEach: one body encoding, one signature and one HMAC per addressee; reported per datagram.
const peers = MEMBERS.filter((m) => m !== sender);
const EACH = Math.ceil(N / PEERS);
const eachCall = measure(ROUNDS, EACH, (i) => enc.encodeEach(msgs[i % N]!, peers));
const encodeEachUs = { cpu: eachCall.cpu / PEERS, wall: eachCall.wall / PEERS };

// Decode: every round a fresh receiver, so the same N datagrams are all accepted again.
const datagrams = Array.from({ length: N }, (_, i) => enc.encode(heartbeat(i + 1), receiver));
const size = datagrams[0]!.length;
let dec = new WireCodec({ ids, self: receiver, keyring, sources, ...signing(receiver) });
const fresh = () => {
  dec = new WireCodec({ ids, self: receiver, keyring, sources, ...signing(receiver) });
};
for (let w = 0; w < 4; w++) {
  fresh();
  for (const d of datagrams) dec.decode(d, from);
}
const decodeUs = measure(
  ROUNDS,
  N,
  (i) => {
    const r = dec.decode(datagrams[i]!, from);
    if (!r.ok) throw new Error(`bench: datagram dropped: ${r.reason}`);
  },
  fresh,
);

// Drop paths: a replay (dropped before the HMAC) and a forgery (dropped by the HMAC).
const replayed = datagrams[N - 1]!;
const replayUs = measure(ROUNDS, N, () => dec.decode(replayed, from));
const forged = Uint8Array.from(enc.encode(heartbeat(N + 10), receiver));
forged[forged.length - 1]! ^= 1;
const badMacUs = measure(ROUNDS, N, () => dec.decode(forged, from));
// A holder of the cluster key speaking for `sender` with its own member key: the MAC passes,
// the signature does not (the datagram a non-member node with the Secret can forge).
const impostor = new WireCodec({
  ids,
  self: sender,
  keyring,
  sources,
  signingKey: privateKeys.get(MEMBERS[5]!)!,
  memberKeys,
});
const impersonated = impostor.encode(heartbeat(N + 20), receiver);
const badSigUs = measure(ROUNDS, N, () => dec.decode(impersonated, from));
// The verification budget (ADR 0026) spent: a key holder's forgery dropped after the HMAC,
// before the signature.
let budgetNow = 0;
const limited = new WireCodec({
  ids,
  self: receiver,
  keyring,
  sources,
  ...signing(receiver),
  verifyBudget: { perSenderPerSecond: 1, perSenderBurst: 1, totalPerSecond: 1, totalBurst: 1 },
  now: () => budgetNow,
});
limited.decode(impersonated, from); // spends the one token
const rateLimitedUs = measure(ROUNDS, N, () => limited.decode(impersonated, from));
if (limited.counters.get('rate-limited') === 0) throw new Error('bench: rate-limited path not hit');
// Accepted datagrams through a receiver with the default budget: successes spend nothing.
let decB = new WireCodec({
  ids,
  self: receiver,
  keyring,
  sources,
  ...signing(receiver),
  verifyBudget: verifyBudgetFor(100),
  now: () => ++budgetNow,
});
const decodeBudgetUs = measure(
  ROUNDS,
  N,
  (i) => {
    const r = decB.decode(datagrams[i]!, from);
    if (!r.ok) throw new Error(`bench: datagram dropped with the budget: ${r.reason}`);
  },
  () => {
    decB = new WireCodec({
      ids,
      self: receiver,
      keyring,
      sources,
      ...signing(receiver),
      verifyBudget: verifyBudgetFor(100),
      now: () => ++budgetNow,
    });
  },
);
if (
  dec.counters.get('bad-mac') === 0 ||
  dec.counters.get('replay') === 0 ||
  dec.counters.get('bad-signature') === 0
)
  throw new Error('bench: drop paths not hit');
// Ed25519 alone, over the signed part of the datagram (header + body).
const signed = datagrams[0]!.subarray(0, size - 80);
const sig = sign(null, signed, privateKeys.get(sender)!);
const pub = memberKeys.get(sender)!;
const signUs = measure(ROUNDS, N, () => sign(null, signed, privateKeys.get(sender)!));
const verifyUs = measure(ROUNDS, N, () => verify(null, signed, pub, sig));

// Heartbeats carry the same content for every peer (echoes for all of them), so the agent
// encodes each heartbeat once, addressed to '*', and sends those bytes to every peer (or
// multicasts them). Messages for one member (takeover acks) are encoded per addressee.
type Stat = 'cpu' | 'wall';
const cost = (stat: Stat, peers = PEERS) => {
  const mode = (encodes: number, encUs: number) => {
    const cpuMicros = encodes * encUs + RATE_HZ * peers * decodeUs[stat];
    return { encodes, decodes: RATE_HZ * peers, cpuMicros, corePercent: cpuMicros / 10_000 };
  };
  return {
    shared: mode(RATE_HZ, encodeUs[stat]),
    encodeEach: mode(RATE_HZ * peers, encodeEachUs[stat]),
    perPeer: mode(RATE_HZ * peers, encodeUs[stat]),
  };
};
const byCpu = cost('cpu');
const byWall = cost('wall');
const byCpu100 = cost('cpu', PEERS_100);
const load = loadavg().map((x) => Number(x.toFixed(2)));
const cpu = cpus()[0]?.model ?? 'unknown';

const ops: [string, { cpu: number; wall: number }][] = [
  ['encode+sign (64-member heartbeat)', encodeUs],
  ['encodeEach to 63 peers, per datagram', encodeEachUs],
  ['verify+decode (accepted)', decodeUs],
  ['drop: replay (before HMAC)', replayUs],
  ['drop: bad-mac (HMAC computed)', badMacUs],
  ['drop: bad-signature (HMAC + Ed25519 verify)', badSigUs],
  ['drop: rate-limited (HMAC, budget spent; ADR 0026)', rateLimitedUs],
  ['verify+decode (accepted) with the verify budget', decodeBudgetUs],
  ['Ed25519 sign alone (header + body)', signUs],
  ['Ed25519 verify alone (header + body)', verifyUs],
];
const rate = (us: number) => Math.round(1e6 / us).toLocaleString('en');
console.log(
  `wire codec benchmark — ${cpu} x${cpus().length}, load average ${load.join(' ')}, node ${process.version}, ` +
    `one core, datagram ${size} bytes, ${ROUNDS} rounds of ${N}`,
);
console.log('');
console.log('| operation | CPU µs/op | messages/s per core | wall µs/op |');
console.log('|---|---:|---:|---:|');
for (const [name, t] of ops) {
  console.log(`| ${name} | ${t.cpu.toFixed(2)} | ${rate(t.cpu)} | ${t.wall.toFixed(2)} |`);
}
console.log('');
console.log(
  `64 members at ${RATE_HZ} Hz, per member per second (sends to ${PEERS} peers, receives from ${PEERS}):`,
);
console.log('');
console.log('| mode | encodes/s | decodes/s | % of one core (CPU time) | % (wall time) |');
console.log('|---|---:|---:|---:|---:|');
const labels = {
  shared: "heartbeat encoded once to '*', same bytes to every peer",
  encodeEach: 'addressed to each peer with encodeEach (body once, signature and HMAC per peer)',
  perPeer: 'addressed to each peer with encode (worst case)',
} as const;
for (const mode of ['shared', 'encodeEach', 'perPeer'] as const) {
  console.log(
    `| ${labels[mode]} | ${byCpu[mode].encodes} | ${byCpu[mode].decodes} | ${byCpu[mode].corePercent.toFixed(2)} | ` +
      `${byWall[mode].corePercent.toFixed(2)} |`,
  );
}
console.log('');
console.log(
  `100 members at ${RATE_HZ} Hz (${PEERS_100} peers), shared heartbeat: ${byCpu100.shared.corePercent.toFixed(2)} % of one core (CPU time); encodeEach: ${byCpu100.encodeEach.corePercent.toFixed(2)} %`,
);
const met = byCpu.shared.corePercent < TARGET_PERCENT;
console.log('');
console.log(
  `target < ${TARGET_PERCENT} % of one core (shared encoding, CPU time): ${met ? 'met' : 'NOT met'}`,
);

const out = {
  benchmark: 'wire-codec',
  date: new Date().toISOString(),
  node: process.version,
  cpu,
  cores: cpus().length,
  loadAverage: load,
  datagramBytes: size,
  members: MEMBERS.length,
  rateHz: RATE_HZ,
  rounds: ROUNDS,
  opsPerRound: N,
  /** Median round; cpu = process CPU time (user + system), wall = elapsed time. */
  microsPerOp: Object.fromEntries(ops.map(([k, v]) => [k, v])),
  perMemberPerSecond: { cpuTime: byCpu, wallTime: byWall, cpuTime100Members: byCpu100 },
  targetPercent: TARGET_PERCENT,
  met,
};
const file = join(dirname(fileURLToPath(import.meta.url)), 'results', 'codec.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${file}`);
