/**
 * The verification budget (docs/adr/0026) on real Linux, default profile, 3 nodes. A node
 * that is not a member (the client namespace: no label, no agent) with root in its network
 * namespace (IP_TRANSPARENT: it spoofs the holder's source address) and the cluster key (a
 * leaked Secret: the worst a non-member can hold) floods the two other members' UDP 694 with
 * the holder's forged heartbeats: a new life of the holder still holding the VIP, which pass
 * every free check and the cluster HMAC, so each would cost a signature verification. The
 * flood is bounded: RATE datagrams per second for SECONDS, while the client probes the VIP
 * at 100 Hz.
 *
 * Expected, with the budget: nothing moves (the holder keeps the VIP, its own heartbeats are
 * verified in their own lane), no probe is lost, every forged datagram is counted by its
 * receiver as `rate-limited` or `bad-signature`, and the checks paid stay within the budget.
 * The same flood MACed with another key (a node without the Secret) is dropped at the HMAC
 * and spends no budget. Then the key holder's flood against agents restarted without the budget
 * (HEARTLINE_BENCH_NO_VERIFY_BUDGET=1, a benchmark setting): every datagram is verified. The
 * two receivers' agent CPU in both runs and at rest is printed (figures in docs/security.md).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabCluster } from '../../hack/lab/cluster.js';
import { nsRun, signal, sleep } from '../../hack/lab/sh.js';
import { PROFILES } from '../../src/core/timing.js';
import {
  IdTable,
  Keyring,
  MemberKeys,
  SourceBinding,
  WireCodec,
  generateMemberKey,
  verifyBudgetFor,
} from '../../src/core/wire/index.js';
import { OFF_INCARNATION } from '../../src/core/wire/layout.js';
import { WITNESS_ID } from '../../src/runtime/cluster-config.js';
import {
  ROOT,
  agentMetrics,
  agentPids,
  alive,
  droppedCount,
  holderOf,
  holdersAtEnd,
  measure,
  restartAgent,
  steadyHolder,
  waitFor,
} from './helpers/lab-run.js';
import { CLUSTER_ID, VIP, capture, forgedHeartbeat } from './helpers/forge.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

/** Forged datagrams per second, both receivers together (half each), and how long. */
const RATE = 4000;
const SECONDS = 8;
/** Distinct forgeries sent round-robin (each is "fresh": a forgery never advances a window). */
const DISTINCT = 32;
const BUDGET = verifyBudgetFor(PROFILES.default.intervalMs);
/** Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux). */
const HZ = 100;

/** CPU seconds (user + system) `pid` has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5); f[0] is field 3.
  return (Number(f[11]) + Number(f[12])) / HZ;
}

/** Mean CPU share of one core of each receiver's agent while `during` runs. */
async function cpuDuring(
  c: LabCluster,
  nodes: readonly string[],
  during: () => Promise<unknown>,
): Promise<{ shares: Record<string, number>; result: unknown }> {
  const pids = await Promise.all(nodes.map(async (n) => (await agentPids(c, n)).agent));
  const before = await Promise.all(pids.map(cpuSeconds));
  const t0 = performance.now();
  const result = await during();
  const seconds = (performance.now() - t0) / 1000;
  const after = await Promise.all(pids.map(cpuSeconds));
  const shares = Object.fromEntries(nodes.map((n, i) => [n, (after[i]! - before[i]!) / seconds]));
  return { shares, result };
}

const REASONS = ['rate-limited', 'bad-signature', 'bad-mac', 'source-mismatch'] as const;

async function counts(c: LabCluster, node: string): Promise<Record<(typeof REASONS)[number], number>> {
  const text = await agentMetrics(c, node);
  return Object.fromEntries(REASONS.map((r) => [r, droppedCount(text, r)])) as Record<
    (typeof REASONS)[number],
    number
  >;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

labDescribe('UDP 694 flood from a non-member node (default profile, 3 nodes)', () => {
  const cluster = withLabCluster({ id: 'e2eflood', nodes: 3, profile: 'default' });

  it("a non-member with the cluster key floods the holder's forged heartbeats at 4,000/s for 8 s: nothing moves, no probe lost, drops counted, checks within the budget; agent CPU with and without the budget", async () => {
    const c = cluster();
    const holder = await steadyHolder(c);
    const others = c.lab.nodes.filter((n) => n.name !== holder).map((n) => n.name);
    const h = c.lab.nodes.find((n) => n.name === holder)!;
    const { epoch } = await holderOf(c);
    expect(epoch).toBeGreaterThan(0);
    const real = Buffer.from(await capture(c, holder, others[0]!), 'hex');
    const incarnation = real.readUInt32BE(OFF_INCARNATION);
    const forger = new WireCodec({
      ids: new IdTable({
        clusterId: CLUSTER_ID,
        members: [...c.lab.nodes.map((n) => n.name), WITNESS_ID],
        vips: [VIP],
      }),
      self: holder,
      keyring: new Keyring([{ id: 1, secret: c.authKeys.get(1)! }], 1),
      sources: new SourceBinding([]),
      signingKey: generateMemberKey(),
      memberKeys: new MemberKeys([]),
    });
    const datagrams = Array.from({ length: DISTINCT }, (_, i) =>
      Buffer.from(forger.encode(forgedHeartbeat(holder, (incarnation + 1) >>> 0, i + 1, epoch!))).toString(
        'hex',
      ),
    ).flatMap((hex) =>
      others.map((o) => ({
        hex,
        to: c.lab.nodes.find((n) => n.name === o)!.ip,
        port: 694,
        from: h.ip,
        fromPort: 694,
      })),
    );
    await nsRun(c.lab.client.ns, 'sysctl', [
      '-q',
      '-w',
      'net.ipv4.conf.all.arp_announce=2',
      'net.ipv4.conf.eth0.arp_announce=2',
    ]);
    // The same forgeries MACed with a key that is not the cluster's: what a node without the
    // Secret can send.
    const noKey = new WireCodec({
      ids: new IdTable({
        clusterId: CLUSTER_ID,
        members: [...c.lab.nodes.map((n) => n.name), WITNESS_ID],
        vips: [VIP],
      }),
      self: holder,
      keyring: new Keyring([{ id: 1, secret: new Uint8Array(randomBytes(32)) }], 1),
      sources: new SourceBinding([]),
      signingKey: generateMemberKey(),
      memberKeys: new MemberKeys([]),
    });
    const noKeyDatagrams = datagrams.map((d, i) => ({
      ...d,
      hex: Buffer.from(
        noKey.encode(forgedHeartbeat(holder, (incarnation + 1) >>> 0, (i >> 1) + 1, epoch!)),
      ).toString('hex'),
    }));
    const flood = async (list = datagrams) =>
      Number(
        (
          await nsRun(
            c.lab.client.ns,
            'python3',
            [
              join(ROOT, 'test/e2e/helpers/udp-flood.py'),
              JSON.stringify({ datagrams: list, rate: RATE, seconds: SECONDS }),
            ],
            (SECONDS + 20) * 1000,
          )
        ).trim(),
      );

    const rest = await cpuDuring(c, others, () => sleep(SECONDS * 1000));

    // With the budget (the default).
    const before = new Map(await Promise.all(others.map(async (o) => [o, await counts(c, o)] as const)));
    let limited: Record<string, number> = {};
    let sent = 0;
    const m = await measure(c, {
      scenario: 'udp-flood-forged-holder',
      profile: 'default',
      observeMs: 2000,
      note: `a non-member with the cluster key floods the holder's forged heartbeats at ${RATE}/s for ${SECONDS} s (ADR 0026)`,
      fault: async () => {
        const r = await cpuDuring(c, others, flood);
        limited = r.shares;
        sent = r.result as number;
      },
    });
    expect(sent).toBeGreaterThan(0.95 * RATE * SECONDS);
    expect(m.summary.failoverMs).toBeNull();
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.lostProbes).toBe(0);
    expect(holdersAtEnd(m.samples)).toEqual([holder]);
    let counted = 0;
    for (const o of others) {
      const after = await counts(c, o);
      const d = Object.fromEntries(REASONS.map((r) => [r, after[r] - before.get(o)![r]]));
      process.stdout.write(`[e2e] drops counted by ${o} (budget on): ${JSON.stringify(d)}\n`);
      counted += d['rate-limited']! + d['bad-signature']!;
      expect(d['rate-limited']).toBeGreaterThan(0);
      // The checks paid: the new-life lane of one sender, burst plus rate for the flood's time.
      const seconds = SECONDS + 3;
      expect(d['bad-signature']).toBeLessThanOrEqual(
        BUDGET.perSenderBurst + BUDGET.perSenderPerSecond * seconds,
      );
      expect(d['bad-mac']).toBe(0);
      expect(d['source-mismatch']).toBe(0);
    }
    // Every datagram sent reached an agent and was counted (a full socket buffer would lose some).
    expect(counted).toBeGreaterThan(0.99 * sent);
    expect(counted).toBeLessThanOrEqual(sent);

    // The flood without the cluster key: dropped at the HMAC, the budget untouched.
    const before1 = new Map(await Promise.all(others.map(async (o) => [o, await counts(c, o)] as const)));
    let withoutKey: Record<string, number> = {};
    let sentNoKey = 0;
    const m1 = await measure(c, {
      scenario: 'udp-flood-no-key',
      profile: 'default',
      observeMs: 2000,
      note: `the same flood MACed with a key that is not the cluster's`,
      fault: async () => {
        const r = await cpuDuring(c, others, () => flood(noKeyDatagrams));
        withoutKey = r.shares;
        sentNoKey = r.result as number;
      },
    });
    expect(m1.summary.failoverMs).toBeNull();
    expect(m1.summary.lostProbes).toBe(0);
    let countedNoKey = 0;
    for (const o of others) {
      const after = await counts(c, o);
      const d = Object.fromEntries(REASONS.map((r) => [r, after[r] - before1.get(o)![r]]));
      process.stdout.write(`[e2e] drops counted by ${o} (no cluster key): ${JSON.stringify(d)}\n`);
      countedNoKey += d['bad-mac']!;
      expect(d['rate-limited']).toBe(0);
      expect(d['bad-signature']).toBe(0);
    }
    expect(countedNoKey).toBeGreaterThan(0.99 * sentNoKey);

    // The same flood against agents without the budget (a benchmark setting).
    process.env.HEARTLINE_BENCH_NO_VERIFY_BUDGET = '1';
    try {
      for (const o of others) {
        const { netd, agent } = await agentPids(c, o);
        signal(agent, 'SIGTERM');
        await waitFor(
          `heartline-netd (pid ${netd}) on ${o} to exit`,
          async () => !(await alive(netd)),
          15_000,
        );
        await restartAgent(c, o);
      }
    } finally {
      delete process.env.HEARTLINE_BENCH_NO_VERIFY_BUDGET;
    }
    await steadyHolder(c);
    const before2 = new Map(await Promise.all(others.map(async (o) => [o, await counts(c, o)] as const)));
    let unlimited: Record<string, number> = {};
    const m2 = await measure(c, {
      scenario: 'udp-flood-forged-holder-no-budget',
      profile: 'default',
      observeMs: 2000,
      note: `the same flood, agents without the verification budget (HEARTLINE_BENCH_NO_VERIFY_BUDGET=1)`,
      fault: async () => {
        const r = await cpuDuring(c, others, flood);
        unlimited = r.shares;
      },
    });
    for (const o of others) {
      const after = await counts(c, o);
      const d = Object.fromEntries(REASONS.map((r) => [r, after[r] - before2.get(o)![r]]));
      process.stdout.write(`[e2e] drops counted by ${o} (budget off): ${JSON.stringify(d)}\n`);
      expect(d['rate-limited']).toBe(0);
    }
    expect(m2.summary.dualHolderMs).toBe(0);
    process.stdout.write(
      `[e2e] agent CPU of one core, per receiver (${others.join(', ')}): at rest ${others.map((o) => pct(rest.shares[o]!)).join(' / ')}; ` +
        `flood ${RATE / 2}/s each with the budget ${others.map((o) => pct(limited[o]!)).join(' / ')}; ` +
        `without the cluster key ${others.map((o) => pct(withoutKey[o]!)).join(' / ')}; ` +
        `without ${others.map((o) => pct(unlimited[o]!)).join(' / ')}; without-budget run: failover ${m2.summary.failoverMs ?? 'none'}, lost probes ${m2.summary.lostProbes}\n`,
    );
    // Put the receivers back to the default for any later test of this file.
    for (const o of others) {
      const { netd, agent } = await agentPids(c, o);
      signal(agent, 'SIGTERM');
      await waitFor(`heartline-netd (pid ${netd}) on ${o} to exit`, async () => !(await alive(netd)), 15_000);
      await restartAgent(c, o);
    }
  }, 300_000);
});
