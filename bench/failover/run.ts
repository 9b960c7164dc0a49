/**
 * Failover benchmark: Heartline (default, fast and tight profiles) and keepalived (advert_int 1 s and
 * 0.1 s) side by side, each in its own lab of 3 node namespaces, all up at once, with trials
 * interleaved round by round (a round runs one trial of every configuration and fault, one
 * at a time), so paired configurations see the same machine load.
 *
 *   npx tsx bench/failover/run.ts [--trials 20] [--configs heartline-fast,keepalived-0.1s]
 *                                 [--faults poweroff,planned,sigkill] [--out bench/results/failover.json]
 *
 * A trial: make sure the VIP is on exactly one node and the client has had 500 ms of good
 * replies from it; inject the fault on that node; watch until `--hold-ms` after the fault
 * (and at least 1 s after the first good reply from another node; at most `--max-wait-ms`);
 * 500 ms after the first good reply from another node, the client's neighbour entry for the VIP
 * is flushed once (a client resolving the VIP afresh: with two holders, both answer its ARP);
 * then recover (power-off: the node boots again — addresses cleared as a power cycle does,
 * links up, HTTP service and daemon started; SIGKILL: the daemon is restarted) and watch until
 * the daemon has rejoined plus `--settle-ms`. The `planned` fault is a planned switchover:
 * Heartline's holder annotated heartline.dev/standby=true, keepalived's stopped gracefully
 * (SIGTERM, priority-0 advertisement); recovery undoes it. Its figure is the client-visible
 * downtime (longest run of failed probes), reported for every fault as `maxOutageMs`.
 * The client probes the VIP at 100 Hz over HTTP (hack/lab/prober.ts) and the sampler reads
 * every node's addresses every 20 ms and on every rtnetlink event (hack/lab/sampler.ts). Results go to the JSON file after every trial.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyze } from '../../hack/lab/analyze.js';
import { VIP_ADDRESS, VIP_CIDR, HTTP_PORT } from '../../hack/lab/cluster.js';
import { labNow } from '../../hack/lab/clock.js';
import { startProber, type Prober } from '../../hack/lab/prober.js';
import { startSampler, type AddressSample } from '../../hack/lab/sampler.js';
import { ip, isInstrument, killNamespace, nsPids, onStopSignal, signal, sleep } from '../../hack/lab/sh.js';
import { delAddress, down, powerOn, type Lab } from '../../hack/lab/topology.js';
import {
  CONFIGS,
  CONFIG_DESCRIPTIONS,
  PAIRS,
  startHeartline,
  startKeepalived,
  type ConfigName,
  type HeartlineConfig,
  type Target,
} from './targets.js';
import { pairedRatio, summarize, summaryRows, table, type TrialResult } from './stats.js';
import { benchArgs } from '../args.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FAULTS = ['poweroff', 'planned', 'sigkill'] as const;
type Fault = (typeof FAULTS)[number];

/** Lab ids start with `--lab-prefix` (default `bf`): two runs at once need different ones. */
const LAB_SUFFIXES: Record<ConfigName, string> = {
  'heartline-default': 'hld',
  'heartline-fast': 'hlf',
  'heartline-tight': 'hlt',
  'keepalived-1s': 'ka1',
  'keepalived-0.1s': 'ka01',
};

// ------------------------------------------------------------------ arguments

const argv = process.argv.slice(2);
const { opt, positive: num } = benchArgs(argv);
function list<T extends string>(flag: string, all: readonly T[]): T[] {
  const raw = opt(flag, all.join(','));
  const got = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const g of got) {
    if (!all.includes(g as T))
      throw new Error(`${flag}: unknown "${g}": use one or more of ${all.join(', ')}`);
  }
  return got as T[];
}
if (argv.includes('--help')) {
  process.stdout.write(
    'npx tsx bench/failover/run.ts [--trials 20] [--configs a,b] [--faults poweroff,planned,sigkill] [--out FILE]\n' +
      `  configs: ${CONFIGS.join(', ')}\n  faults: ${FAULTS.join(', ')}\n` +
      '  --hold-ms 4000 (fault window at least)  --max-wait-ms 12000  --settle-ms 2000\n' +
      '  --lab-prefix bf (lab ids: <prefix>hld, <prefix>hlf, <prefix>ka1, <prefix>ka01)\n' +
      "  --raw (keep each trial's probes and address samples around the move in the results file)\n",
  );
  process.exit(0);
}
const trials = num('--trials', 20);
const configs = list('--configs', CONFIGS);
const faults = list('--faults', FAULTS);
const outFile = resolve(opt('--out', resolve(ROOT, 'bench/results/failover.json')));
const holdMs = num('--hold-ms', 4000);
const maxWaitMs = num('--max-wait-ms', 12_000);
const settleMs = num('--settle-ms', 2000);
/** Keep each trial's probes and address samples around the move (for a timeline, not the table). */
const keepRaw = argv.includes('--raw');
const labPrefix = opt('--lab-prefix', 'bf');
if (!/^[a-z][a-z0-9]{0,3}$/.test(labPrefix))
  throw new Error(
    `--lab-prefix must be 1-4 lower-case letters or digits (a letter first), got "${labPrefix}"`,
  );
const LAB_IDS = Object.fromEntries(
  Object.entries(LAB_SUFFIXES).map(([c, s]) => [c, labPrefix + s]),
) as Record<ConfigName, string>;

const say = (m: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const load = () => os.loadavg().map((x) => Number(x.toFixed(2)));

// ------------------------------------------------------------------ machine

/** stdout and stderr of `cmd args` (keepalived prints its version on stderr). */
function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}
/**
 * Which code ran: the git commit and uncommitted files under src/native/hack/lab, or, for a
 * `git archive` export (see docs/benchmarks.md), the commit written to its .source-commit.
 */
function source(): { commit: string; dirtySrc: string[]; export?: string } {
  if (existsSync(resolve(ROOT, '.git'))) {
    return {
      commit: sh('git', ['-C', ROOT, 'rev-parse', 'HEAD']),
      dirtySrc: sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'native', 'hack/lab'])
        .split('\n')
        .filter(Boolean),
    };
  }
  const marker = resolve(ROOT, '.source-commit');
  const commit = existsSync(marker) ? readFileSync(marker, 'utf8').trim() : 'unknown';
  return { commit, dirtySrc: [], export: ROOT };
}

function machine() {
  return {
    nproc: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    keepalived: sh('keepalived', ['--version']).split('\n')[0] ?? 'unknown',
    git: source(),
  };
}

// ------------------------------------------------------------------ per-lab instruments

interface Bench {
  target: Target;
  prober: Prober;
  paused: boolean;
}

function pauseProber(b: Bench): void {
  if (!b.paused) signal(b.prober.pid, 'SIGSTOP');
  b.paused = true;
}
function resumeProber(b: Bench): void {
  if (b.paused) signal(b.prober.pid, 'SIGCONT');
  b.paused = false;
}

/** Holders now, from the latest sample of each node. */
function holdersNow(samples: readonly AddressSample[], nodes: readonly string[]): string[] | undefined {
  const seen = new Map<string, AddressSample>();
  for (let i = samples.length - 1; i >= 0 && seen.size < nodes.length; i--) {
    const s = samples[i]!;
    if (!seen.has(s.node)) seen.set(s.node, s);
  }
  if (seen.size < nodes.length) return undefined;
  return [...seen.values()]
    .filter((s) => s.live.includes(VIP_ADDRESS))
    .map((s) => s.node)
    .sort();
}

/**
 * Waits until exactly one node holds the VIP, every daemon runs, and the last 500 ms of
 * probes all got good replies from that node. Returns it, or undefined after `timeoutMs`.
 */
async function stableHolder(
  b: Bench,
  samples: readonly AddressSample[],
  timeoutMs: number,
): Promise<string | undefined> {
  const nodes = b.target.lab.nodes.map((n) => n.name);
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const now = labNow();
    const recent = [];
    for (let i = b.prober.records.length - 1; i >= 0; i--) {
      const r = b.prober.records[i]!;
      if (r.t < now - 700) break;
      if (r.t < now - 200) recent.push(r);
    }
    const holders = holdersNow(samples, nodes);
    const node = recent[0]?.node;
    const ok =
      recent.length >= 40 &&
      recent.every((r) => r.ok && r.node === node) &&
      holders?.length === 1 &&
      holders[0] === node;
    if (ok) {
      let daemons = true;
      for (const n of nodes) daemons &&= await b.target.daemonRunning(n);
      if (daemons) return node;
    }
    await sleep(100);
  }
  return undefined;
}

async function vipOnLink(ns: string): Promise<boolean> {
  const out = await ip('-n', ns, '-o', '-4', 'addr', 'show', 'dev', 'eth0').catch(() => '');
  return out.includes(` ${VIP_ADDRESS}/`);
}

/**
 * topology.powerOff with the fault time taken when it bites: the node's processes are listed
 * first, then (fault time) frozen, the switch port goes down, they are killed and the node's
 * link goes down. Returns the fault time (lab clock).
 */
async function powerOffAt(lab: Lab, name: string): Promise<number> {
  const h = lab.nodes.find((n) => n.name === name)!;
  const victims: number[] = [];
  for (const p of await nsPids(h.ns)) if (p !== process.pid && !(await isInstrument(p))) victims.push(p);
  const at = labNow();
  for (const p of victims) signal(p, 'SIGSTOP');
  await ip('-n', lab.sw, 'link', 'set', h.port, 'down');
  for (const p of victims) signal(p, 'SIGKILL');
  await killNamespace(h.ns, true);
  await ip('-n', h.ns, 'link', 'set', 'eth0', 'down');
  return at;
}

async function linkIsDown(lab: Lab, name: string): Promise<boolean> {
  const h = lab.nodes.find((n) => n.name === name)!;
  const out = await ip('-n', h.ns, '-o', 'link', 'show', 'dev', 'eth0').catch(() => '');
  return !/state UP/.test(out);
}

/** The client forgets the VIP's MAC address and resolves it afresh on its next probe. */
function flushClientNeighbour(t: Target): Promise<unknown> {
  return ip('-n', t.lab.client.ns, 'neigh', 'flush', 'to', VIP_ADDRESS).catch(() => undefined);
}

async function trial(b: Bench, fault: Fault, round: number): Promise<TrialResult> {
  const t = b.target;
  const nodes = t.lab.nodes.map((n) => n.name);
  const sampler = await startSampler({ nodes: t.lab.nodes });
  /** The node a planned move was made on and not yet undone (undone in `finally` if a step threw). */
  let planned: string | undefined;
  resumeProber(b);
  try {
    await sleep(800);
    let from = await stableHolder(b, sampler.samples, 15_000);
    const base: Base = { config: t.config, fault, round, load1: load()[0]! };
    if (!from && holdersNow(sampler.samples, nodes)?.length === 1) {
      // One holder, but the client does not reach it: its neighbour entry still names the node
      // that held the VIP before (keepalived after SIGKILL: the restarted daemon removed the
      // address the client had resolved to it, and no refresh GARP says where it went). Not
      // what this trial measures: the client resolves afresh, as a restarted client would.
      await flushClientNeighbour(t);
      base.clientNeighbourFlushed = true;
      from = await stableHolder(b, sampler.samples, 15_000);
    }
    if (!from) {
      const h = holdersNow(sampler.samples, nodes);
      return skip(base, `no stable single holder within 15 s (holders ${JSON.stringify(h)})`);
    }
    let faultAt: number;
    if (fault === 'poweroff') faultAt = await powerOffAt(t.lab, from);
    else if (fault === 'planned') {
      faultAt = labNow();
      planned = from;
      await t.planMove(from);
    } else {
      faultAt = labNow();
      await t.killDaemon(from);
    }

    // Fault window: until holdMs after the fault and 1 s after another node first answered.
    let moved: number | undefined;
    let arpFlushAt: number | undefined;
    let scanned = 0;
    for (;;) {
      const now = labNow();
      const recs = b.prober.records;
      for (; moved === undefined && scanned < recs.length; scanned++) {
        const r = recs[scanned]!;
        if (r.ok && r.node !== from && r.t + r.ms >= faultAt) moved = r.t + r.ms;
      }
      // A client that resolves the VIP afresh after the failover (its neighbour entry expired,
      // or it is new): with two holders both nodes answer its ARP request.
      if (moved !== undefined && arpFlushAt === undefined && now >= moved + 500) {
        arpFlushAt = labNow();
        await flushClientNeighbour(t);
      }
      if (now >= faultAt + maxWaitMs) break;
      if (moved !== undefined && now >= Math.max(faultAt + holdMs, moved + 1000)) break;
      await sleep(20);
    }
    const recoverAt = labNow();
    const host = t.lab.nodes.find((n) => n.name === from)!;
    let vipLeftOnDeadNode: boolean | undefined;
    let action: string;
    if (fault === 'poweroff') {
      // A power cycle loses every address: clear what the dead node still had on its down link.
      vipLeftOnDeadNode = await vipOnLink(host.ns);
      if (vipLeftOnDeadNode) await delAddress(t.lab, from, VIP_CIDR);
      await powerOn(t.lab, from);
      await t.startHttp(from);
      action = 'power-on (addresses cleared as by a power cycle), HTTP service and daemon started';
    } else if (fault === 'sigkill') {
      action = 'daemon restarted';
    } else {
      action = t.planMoveAction;
      await t.undoPlanMove(from);
      planned = undefined;
    }
    if (fault !== 'planned') {
      const started = performance.now();
      await t.startDaemon(from);
      await t.waitJoined(from, started, 60_000);
    }
    await sleep(settleMs);
    const end = labNow();
    await sleep(150); // let in-flight probes report before the prober is frozen
    pauseProber(b);

    const samples = (await sampler.stop()).filter((s) => s.t <= end);
    const probes = b.prober.records.filter((p) => p.t >= faultAt - 1000 && p.t < end);
    const fw = analyze({
      probes: probes.filter((p) => p.t < recoverAt),
      samples,
      vip: VIP_ADDRESS,
      faultAt,
      from,
      window: { from: faultAt, to: recoverAt },
    });
    const rw = analyze({
      probes: probes.filter((p) => p.t >= recoverAt),
      samples,
      vip: VIP_ADDRESS,
      faultAt: recoverAt,
      window: { from: recoverAt, to: end },
    });
    const firstMoved =
      fw.failover.failoverMs !== undefined ? faultAt + fw.failover.failoverMs : Number.POSITIVE_INFINITY;
    const oldReplies = probes.filter(
      (p) => p.t < recoverAt && p.ok && p.node === from && p.t + p.ms > firstMoved,
    ).length;
    const res: TrialResult = {
      ...base,
      faultAt,
      from,
      dualHolderMs: Math.round(fw.dualHolderProvenMs),
      dualHolderSampledMs: Math.round(fw.dualHolderMs),
      noHolderMs: Math.round(fw.noHolderMs),
      lostProbes: fw.probesAfterFault.lost,
      okProbes: fw.probesAfterFault.ok,
      maxOutageMs: Math.round(fw.maxOutageAfterFaultMs),
      probeErrors: fw.probesAfterFault.byError,
      oldNodeRepliesAfterFailover: oldReplies,
      faultWindowMs: Math.round(recoverAt - faultAt),
      ...(arpFlushAt !== undefined ? { arpFlushMs: Math.round(arpFlushAt - faultAt) } : {}),
      recovery: {
        action,
        ...(vipLeftOnDeadNode !== undefined ? { vipLeftOnDeadNode } : {}),
        dualHolderMs: Math.round(rw.dualHolderProvenMs),
        dualHolderSampledMs: Math.round(rw.dualHolderMs),
        noHolderMs: Math.round(rw.noHolderMs),
        lostProbes: rw.probes.lost,
        holdersAfter: rw.timeline.at(-1)?.holders ?? [],
        windowMs: Math.round(end - recoverAt),
      },
    };
    if (keepRaw) {
      const near = (t: number) =>
        t >= faultAt - 100 && t <= (Number.isFinite(firstMoved) ? firstMoved : faultAt) + 200;
      (res as TrialResult & { raw?: unknown }).raw = {
        probes: probes.filter((p) => near(p.t) && p.t < recoverAt).sort((a, b) => a.t - b.t),
        samples: samples.filter((x) => near(x.t)),
      };
    }
    if (fw.failover.to !== undefined) res.to = fw.failover.to;
    if (fw.failover.failoverMs !== undefined) res.failoverMs = Number(fw.failover.failoverMs.toFixed(1));
    if (fw.failover.firstReplyMs !== undefined)
      res.firstReplyMs = Number(fw.failover.firstReplyMs.toFixed(1));
    // Keep memory flat over a long run.
    b.prober.records.splice(0, b.prober.records.length);
    return res;
  } finally {
    if (planned)
      await t
        .undoPlanMove(planned)
        .catch((e: unknown) => say(`  undo of the planned move failed: ${String(e)}`));
    pauseProber(b);
    await sampler.stop().catch(() => undefined);
  }
}

type Base = Pick<TrialResult, 'config' | 'fault' | 'round' | 'load1' | 'clientNeighbourFlushed'>;

function skip(base: Base, why: string): TrialResult {
  return {
    ...base,
    faultAt: labNow(),
    from: '',
    dualHolderMs: 0,
    noHolderMs: 0,
    lostProbes: 0,
    okProbes: 0,
    oldNodeRepliesAfterFailover: 0,
    faultWindowMs: 0,
    recovery: {
      action: 'none',
      dualHolderMs: 0,
      noHolderMs: 0,
      lostProbes: 0,
      holdersAfter: [],
      windowMs: 0,
    },
    skipped: why,
  };
}

/** After a skipped trial: make sure every node's HTTP service and daemon run again. */
/** Repairs done between trials (reported in the results file). */
const repairs: Array<{ at: string; config: string; round: number; what: string }> = [];

async function repair(b: Bench, round: number): Promise<void> {
  if (b.target.unstick) {
    const n = await b.target.unstick().catch((e: unknown) => {
      say(`  repair failed: ${String(e)}`);
      return undefined;
    });
    if (n) {
      const what = `no node had the VIP bound while VirtualIP status named ${n} holder: restarted the agent on ${n}`;
      say(`  repair: ${what}`);
      repairs.push({ at: new Date().toISOString(), config: b.target.config, round, what });
    }
  }
  for (const n of b.target.lab.nodes) {
    if (await linkIsDown(b.target.lab, n.name)) {
      say(`  repair: powering ${n.name} of ${b.target.config} on (addresses cleared, HTTP service started)`);
      if (await vipOnLink(n.ns)) await delAddress(b.target.lab, n.name, VIP_CIDR).catch(() => undefined);
      await powerOn(b.target.lab, n.name);
      await b.target.startHttp(n.name).catch((e: unknown) => say(`  repair failed: ${String(e)}`));
    }
    if (!(await b.target.daemonRunning(n.name))) {
      say(`  repair: starting the daemon on ${n.name} of ${b.target.config}`);
      const started = performance.now();
      await b.target.startDaemon(n.name).catch((e: unknown) => say(`  repair failed: ${String(e)}`));
      await b.target.waitJoined(n.name, started, 60_000).catch(() => undefined);
    }
  }
}

// ------------------------------------------------------------------ report

function report(results: readonly TrialResult[]): string {
  const ss = [];
  for (const f of faults) for (const c of configs) ss.push(summarize(results, c, f));
  const { head, rows } = summaryRows(ss);
  const out = [table(head, rows)];
  for (const [a, b] of PAIRS) {
    if (!configs.includes(a) || !configs.includes(b)) continue;
    for (const f of faults) {
      const r = pairedRatio(results, f, a, b);
      out.push(
        `${f}: ${a} / ${b} over ${r.pairs} paired rounds: median of ratios ${r.medianOfRatios.toFixed(2)}, ratio of medians ${r.ratioOfMedians.toFixed(2)}, ${a} faster in ${r.numeratorFaster}/${r.pairs}`,
      );
    }
  }
  return out.join('\n');
}

// ------------------------------------------------------------------ main

const benches: Bench[] = [];
let stopping = false;
let tornDown: Promise<void> | undefined;
function teardown(): Promise<void> {
  tornDown ??= (async () => {
    for (const b of benches) {
      resumeProber(b);
      await b.prober.stop().catch(() => undefined);
      await b.target.stop().catch((e: unknown) => say(`teardown of ${b.target.config}: ${String(e)}`));
    }
    // Whatever a failed stop left behind (namespaces are found by name).
    for (const c of configs)
      await down(LAB_IDS[c]).catch((e: unknown) => say(`down ${LAB_IDS[c]}: ${String(e)}`));
  })();
  return tornDown;
}
onStopSignal((sig) => {
  stopping = true;
  say(`${sig}: stopping after tearing the labs down`);
  void teardown().then(() => process.exit(130));
});

const meta = {
  benchmark: 'failover',
  startedAt: new Date().toISOString(),
  endedAt: '',
  loadStart: load(),
  loadEnd: [] as number[],
  /** False until every round ran (an interrupted run keeps the trials done so far). */
  complete: false,
  machine: machine(),
  command: `npx tsx bench/failover/run.ts ${argv.join(' ')}`.trim(),
  params: {
    trials,
    configs,
    faults,
    holdMs,
    maxWaitMs,
    settleMs,
    proberHz: 100,
    probeTimeoutMs: 100,
    connectTimeoutMs: 50,
    samplerMs: 20,
    vip: VIP_CIDR,
    port: HTTP_PORT,
    nodes: 3,
  },
  configs: Object.fromEntries(configs.map((c) => [c, CONFIG_DESCRIPTIONS[c]])),
};
const results: TrialResult[] = [];
function save(complete = false): void {
  mkdirSync(dirname(outFile), { recursive: true });
  // Written after every trial, so an interrupted run still leaves its trials and end load.
  meta.loadEnd = load();
  meta.endedAt = new Date().toISOString();
  meta.complete = complete;
  const ss = [];
  for (const f of faults) for (const c of configs) ss.push(summarize(results, c, f));
  const ratios = PAIRS.filter(([a, b]) => configs.includes(a) && configs.includes(b)).flatMap(([a, b]) =>
    faults.map((f) => pairedRatio(results, f, a, b)),
  );
  writeFileSync(
    outFile,
    `${JSON.stringify({ meta, summary: ss, ratios, repairs, trials: results }, null, 2)}\n`,
  );
}

try {
  say(
    `failover benchmark: ${configs.join(', ')} x ${faults.join(', ')} x ${trials} trials; load ${meta.loadStart.join(' ')}`,
  );
  if (meta.machine.git.dirtySrc.length)
    say(`note: uncommitted changes under src/native/hack/lab: ${meta.machine.git.dirtySrc.length} files`);
  for (const c of configs) {
    const id = LAB_IDS[c];
    const target = c.startsWith('heartline')
      ? await startHeartline(c as HeartlineConfig, id, say)
      : await startKeepalived(c as 'keepalived-1s' | 'keepalived-0.1s', id, say);
    const prober = await startProber({ ns: target.lab.client.ns, target: VIP_ADDRESS, port: HTTP_PORT });
    const b: Bench = { target, prober, paused: false };
    benches.push(b);
    pauseProber(b);
  }
  for (let round = 0; round < trials && !stopping; round++) {
    // Rotate the order every round so no configuration always runs right after another.
    const order = benches.map((_, i) => benches[(i + round) % benches.length]!);
    for (const fault of faults) {
      for (const b of order) {
        if (stopping) break;
        let r: TrialResult;
        try {
          r = await trial(b, fault, round);
        } catch (err) {
          r = skip(
            { config: b.target.config, fault, round, load1: load()[0]! },
            `error: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        results.push(r);
        if (r.skipped) {
          say(`round ${round} ${b.target.config} ${fault}: SKIPPED ${r.skipped}`);
          await repair(b, round);
        } else {
          say(
            `round ${round} ${b.target.config} ${fault}: ${r.from}->${r.to ?? 'none'} failover ${r.failoverMs?.toFixed(0) ?? '-'} ms, dual ${r.dualHolderMs} ms, none ${r.noHolderMs} ms, lost ${r.lostProbes}, old-node replies ${r.oldNodeRepliesAfterFailover}; recovery dual ${r.recovery.dualHolderMs} ms lost ${r.recovery.lostProbes} holders ${r.recovery.holdersAfter.join(',')}; load ${r.load1}${r.clientNeighbourFlushed ? ' (client neighbour entry flushed before the fault)' : ''}`,
          );
        }
        save();
      }
    }
  }
  save(!stopping);
  process.stdout.write(
    `\n${report(results)}\n\nload average start ${meta.loadStart.join(' ')}, end ${meta.loadEnd.join(' ')}; results in ${outFile}\n`,
  );
} catch (err) {
  process.stderr.write(`failover benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await teardown();
}
