/**
 * Provisioning latency (issue 16 item 6): time from `kubectl apply` of a new VirtualIP to the
 * client's first good reply from it, and where that time goes. One Heartline lab of 3 nodes
 * (hack/lab/cluster.ts: real kube-apiserver + etcd, the controller, agents under netd, the
 * HTTP service on every node answering on any address), one profile.
 *
 *   npx tsx bench/provision/run.ts [--trials 50] [--profile default] [--hz 200]
 *                                  [--out bench/results/provision.json]
 *
 * A trial: a prober in the client namespace starts probing the new address over HTTP (`--hz`,
 * each probe a new TCP connection, hack/lab/prober.ts); t0; `kubectl apply -f -` of a new
 * VirtualIP `prov-<k>` (address 198.18.0.101-119 in turn, no preferred nodes: the election
 * places it) with the lab's kubeconfig, in the control-plane namespace. Stamped on the lab
 * clock (hack/lab/clock.ts), from:
 *   - apply:    kubectl returned;
 *   - api:      a `kubectl get -w` started at the beginning saw the object (the API server's
 *               watch delivered it: an upper bound on when it was stored);
 *   - seen:     each agent logged `VIPs configured` with it (its watch, the 10 ms rebuild
 *               debounce, the configuration rebuilt);
 *   - elect:    the winner logged `asking for takeover` (its election chose itself);
 *   - added:    rtnetlink reported the address on the winner's eth0 (`ip -tshort monitor
 *               address` in each node namespace, stamped by `ip`); also `bound`, when the
 *               sampler (hack/lab/sampler.ts) first saw it, a few ms later under load;
 *   - garp:     the first gratuitous ARP for the address reached the client's eth0
 *               (bench/provision/arp-watch.py, an AF_PACKET socket);
 *   - reply:    the first good HTTP reply arrived (probe start + its duration; a probe
 *               waits up to 1 s for its reply, so this is the earliest arrival);
 *   - status:   the `get -w` saw status.holder set (the controller's status write; not on
 *               the client's path).
 * Then the VirtualIP is deleted (`kubectl delete --wait`), the bench waits until no node has
 * the address, flushes the client's neighbour entry for it and goes on. Agent log times
 * (pino, wall clock, 1 ms resolution) and ARP times are put on the lab clock with the
 * offset between the two clocks read at each trial. Needs root (network namespaces);
 * everything it creates is torn down on exit, SIGINT and SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HTTP_PORT, LAB_NAMESPACE, startLabCluster, type LabCluster } from '../../hack/lab/cluster.js';
import { labNow } from '../../hack/lab/clock.js';
import { startProber, type Prober } from '../../hack/lab/prober.js';
import { startSampler, type AddressSample, type Sampler } from '../../hack/lab/sampler.js';
import { ip, onStopSignal, sleep } from '../../hack/lab/sh.js';
import type { ProfileName } from '../../src/core/timing.js';
import { mdTable, percentile } from '../failover/stats.js';
import { benchArgs } from '../args.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** This benchmark's lab id (distinct from every e2e and benchmark lab). */
const LAB_ID = 'bprov';

const { opt, num } = benchArgs();
const trials = num('--trials', 50, 1);
const profile = opt('--profile', 'default') as ProfileName;
if (!['default', 'fast', 'tight'].includes(profile))
  throw new Error(`--profile: unknown profile "${profile}"; use default, fast or tight`);
const hz = num('--hz', 200, 100);
const out = resolve(opt('--out', join(ROOT, 'bench', 'results', 'provision.json')));
/** How long a trial may take from apply to the first good reply before it counts as failed. */
const TRIAL_TIMEOUT_MS = 15_000;

const log = (m: string) =>
  process.stderr.write(`[provision ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** The stages' instants of one trial, ms after t0 (the apply call started). */
interface Trial {
  k: number;
  name: string;
  address: string;
  /** Node that bound the address. */
  holder?: string;
  applyMs: number;
  apiMs?: number;
  /** Per node: when its agent logged the VIP configured. */
  seenMs: Record<string, number>;
  /** Nodes that asked for takeover (normally one). */
  candidates: string[];
  electMs?: number;
  boundMs?: number;
  /** The address added on the holder, as `ip monitor` read it from rtnetlink. */
  addedMs?: number;
  /** The agent's `VIP bound` log (after netd's add returned). */
  boundLogMs?: number;
  garpMs?: number;
  replyMs?: number;
  statusMs?: number;
  /** One-minute load average at the end of the trial. */
  load1?: number;
  /** Probes that failed before the first good reply. */
  failedProbes: number;
  /** Of those started after the GARP: how many, by error. */
  failedAfterGarp: Record<string, number>;
  /** ARP frames from the address seen by the client until the first good reply (ms after t0, op). */
  arp: Array<[number, number]>;
  error?: string;
}

/** Wall clock (Date.now, pino, python's time.time) minus the lab clock, now. */
const wallOffset = () => Date.now() - labNow();

/** `kubectl get virtualips -w` in the control-plane namespace: when each name and its holder were first seen. */
function startWatch(c: LabCluster): {
  child: ChildProcess;
  seen: Map<string, number>;
  held: Map<string, number>;
} {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      c.lab.cp.ns,
      'kubectl',
      '--kubeconfig',
      c.kubeconfig,
      'get',
      'virtualips',
      '-n',
      LAB_NAMESPACE,
      '-w',
      '-o',
      'jsonpath={.metadata.name}{" "}{.status.holder}{"\\n"}',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const seen = new Map<string, number>();
  const held = new Map<string, number>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const t = labNow();
    const [name, holder] = line.trim().split(' ');
    if (!name) return;
    if (!seen.has(name)) seen.set(name, t);
    if (holder && !held.has(name)) held.set(name, t);
  });
  return { child, seen, held };
}

/** The ARP watcher in the client namespace: every ARP frame sent from a 198.18.0.x address. */
async function startArpWatch(
  c: LabCluster,
): Promise<{ child: ChildProcess; frames: Array<{ t: number; op: number; sip: string; tip: string }> }> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      c.lab.client.ns,
      'python3',
      '-u',
      join(ROOT, 'bench', 'provision', 'arp-watch.py'),
      'eth0',
      '198.18.0.1',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const frames: Array<{ t: number; op: number; sip: string; tip: string }> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((res, rej) => {
    const to = setTimeout(() => rej(new Error(`arp-watch did not start in 10 s: ${stderr.trim()}`)), 10_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { ready?: boolean; t: number; op: number; sip: string; tip: string };
      if (m.ready) {
        clearTimeout(to);
        res();
        return;
      }
      frames.push({ ...m, t: m.t - wallOffset() });
    });
    child.once('exit', () => rej(new Error(`arp-watch exited: ${stderr.trim()}`)));
  });
  await ready;
  return { child, frames };
}

/** An address added to or removed from a node, as rtnetlink reported it. */
interface AddrEvent {
  t: number;
  node: string;
  address: string;
  deleted: boolean;
}

/**
 * `ip -tshort monitor address` in every node namespace: the time each address change was
 * read from rtnetlink, stamped by `ip` itself (a small C process, so closer to the kernel's
 * change than the sampler's stamp, which is taken in this process after the event line arrived).
 */
function startAddrMonitor(c: LabCluster): { children: ChildProcess[]; events: AddrEvent[] } {
  const events: AddrEvent[] = [];
  const children = c.lab.nodes.map((n) => {
    const child = spawn('ip', ['-tshort', '-n', n.ns, 'monitor', 'address'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      // [2026-12-07T14:36:46.123456]Deleted 2: eth0    inet 198.18.0.101/24 ... (local time)
      const m =
        /^\[(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d{6})\]\s*(Deleted)?.*\binet (\d+\.\d+\.\d+\.\d+)\//.exec(
          line,
        );
      if (!m) return;
      const [y, mo, d, h, mi, sec, us] = m.slice(1, 8).map(Number) as [
        number,
        number,
        number,
        number,
        number,
        number,
        number,
      ];
      const wall = new Date(y, mo - 1, d, h, mi, sec).getTime() + us / 1000;
      events.push({ t: wall - wallOffset(), node: n.name, address: m[9]!, deleted: m[8] !== undefined });
    });
    return child;
  });
  return { children, events };
}

/** Sizes of the agents' log files now (they are appended to). */
function logSizes(logDir: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of readdirSync(logDir).filter((n) => /^agent-.*\.log$/.test(n)))
    m.set(f, statSync(join(logDir, f)).size);
  return m;
}

interface AgentLine {
  node: string;
  t: number;
  msg: string;
  vip?: string;
  added?: string[];
}

/** The agents' JSON log lines written since `since`, times on the lab clock. */
function agentLines(logDir: string, since: Map<string, number>): AgentLine[] {
  const off = wallOffset();
  const lines: AgentLine[] = [];
  for (const [f, size] of since) {
    const node = f.replace(/^agent-/, '').replace(/\.log$/, '');
    const text = readFileSync(join(logDir, f)).subarray(size).toString('utf8');
    for (const l of text.split('\n')) {
      if (!l.startsWith('{')) continue;
      try {
        const j = JSON.parse(l) as { time: string; msg: string; vip?: string; added?: string[] };
        lines.push({ node, t: Date.parse(j.time) - off, msg: j.msg, vip: j.vip, added: j.added });
      } catch {
        // a line cut by the read: the next trial's read starts after it anyway
      }
    }
  }
  return lines;
}

function vipObject(name: string, address: string): string {
  return JSON.stringify({
    apiVersion: 'heartline.dev/v1alpha1',
    kind: 'VirtualIP',
    metadata: { name, namespace: LAB_NAMESPACE },
    spec: { clusterRef: { name: 'lab' }, address: `${address}/24` },
  });
}

/** The newest sample of every node: who has `address` bound on a live link now. */
function holdersNow(samples: readonly AddressSample[], address: string): string[] {
  const last = new Map<string, AddressSample>();
  for (const s of samples) last.set(s.node, s);
  return [...last.values()].filter((s) => s.live.includes(address)).map((s) => s.node);
}

async function runTrial(
  c: LabCluster,
  k: number,
  sampler: Sampler,
  watch: ReturnType<typeof startWatch>,
  arp: Awaited<ReturnType<typeof startArpWatch>>,
  mon: ReturnType<typeof startAddrMonitor>,
): Promise<Trial> {
  const name = `prov-${k}`;
  const address = `198.18.0.${101 + ((k - 1) % 19)}`;
  const vipId = `${LAB_NAMESPACE}/${name}`;
  // A reply counts at its arrival: a probe waits up to 1 s for it (a server scheduled late is
  // late, not down), so the first good reply is the earliest arrival, not the first fast one.
  const prober: Prober = await startProber({
    ns: c.lab.client.ns,
    target: address,
    port: HTTP_PORT,
    hz,
    connectTimeoutMs: 100,
    timeoutMs: 1000,
  });
  await sleep(200);
  const sizes = logSizes(c.logDir);
  const t0 = labNow();
  const trial: Trial = {
    k,
    name,
    address,
    applyMs: NaN,
    seenMs: {},
    candidates: [],
    failedProbes: 0,
    failedAfterGarp: {},
    arp: [],
  };
  try {
    await c.kubectl(['apply', '-f', '-'], vipObject(name, address));
    trial.applyMs = labNow() - t0;
    const end = t0 + TRIAL_TIMEOUT_MS;
    let first: number | undefined;
    while (labNow() < end) {
      const ok = prober.records.filter((r) => r.ok && r.t + r.ms >= t0).map((r) => r.t + r.ms);
      if (ok.length) {
        first = Math.min(...ok);
        break;
      }
      await sleep(20);
    }
    await sleep(300); // the last log lines, the status write
    await prober.stop();
    if (first === undefined) trial.error = `no good reply within ${TRIAL_TIMEOUT_MS} ms`;
    else {
      trial.replyMs = first - t0;
      trial.failedProbes = prober.records.filter((r) => !r.ok && r.t >= t0 && r.t < first).length;
    }
    const rel = (t: number | undefined) => (t === undefined ? undefined : t - t0);
    trial.apiMs = rel(watch.seen.get(name));
    trial.statusMs = rel(watch.held.get(name));
    const boundAt = sampler.samples.find((s) => s.t >= t0 && s.live.includes(address));
    trial.holder = boundAt?.node;
    trial.boundMs = rel(boundAt?.t);
    const added = mon.events.find((e) => e.t >= t0 - 5 && e.address === address && !e.deleted);
    trial.addedMs = rel(added?.t);
    trial.holder ??= added?.node;
    trial.arp = arp.frames
      .filter((f) => f.t >= t0 && f.sip === address && (first === undefined || f.t <= first))
      .map((f) => [Math.round(f.t - t0), f.op]);
    trial.garpMs = rel(
      arp.frames.find((f) => f.t >= t0 && f.op === 1 && f.sip === address && f.tip === address)?.t,
    );
    if (first !== undefined && trial.garpMs !== undefined)
      for (const r of prober.records)
        if (!r.ok && r.t >= t0 + trial.garpMs && r.t < first)
          trial.failedAfterGarp[r.error ?? '?'] = (trial.failedAfterGarp[r.error ?? '?'] ?? 0) + 1;
    for (const l of agentLines(c.logDir, sizes)) {
      if (l.msg === 'VIPs configured' && l.added?.includes(vipId) && trial.seenMs[l.node] === undefined)
        trial.seenMs[l.node] = l.t - t0;
      if (l.msg === 'asking for takeover' && l.vip === vipId) {
        if (!trial.candidates.includes(l.node)) trial.candidates.push(l.node);
        if (l.node === trial.holder && trial.electMs === undefined) trial.electMs = l.t - t0;
      }
      if (l.msg === 'VIP bound' && l.vip === vipId && trial.boundLogMs === undefined)
        trial.boundLogMs = l.t - t0;
    }
  } finally {
    await prober.stop();
    // Delete and wait until no node has the address; the client forgets its neighbour entry.
    await c.kubectl(['delete', 'virtualip', name, '-n', LAB_NAMESPACE, '--wait=true', '--timeout=30s']);
    const gone = labNow() + 10_000;
    while (holdersNow(sampler.samples, address).length > 0 && labNow() < gone) await sleep(20);
    await ip('-n', c.lab.client.ns, 'neigh', 'flush', 'to', address).catch(() => undefined);
  }
  return trial;
}

/** Stage durations of a trial along the holder's path (undefined where a mark is missing). */
function stages(t: Trial): Record<string, number | undefined> {
  const seen = t.holder ? t.seenMs[t.holder] : undefined;
  // Both stamps come after the change (the sampler's poll, ip's read of the event): the earlier is nearer.
  const marks = [t.addedMs, t.boundMs].filter((x): x is number => x !== undefined);
  const bound = marks.length ? Math.min(...marks) : undefined;
  const d = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : b - a;
  return {
    total: t.replyMs,
    'kubectl apply returned': t.applyMs,
    'api (t0 to the bench watch saw it)': t.apiMs,
    'agent watch (to holder agent configured)': d(t.apiMs, seen),
    'election (configured to asking for takeover)': d(seen, t.electMs),
    'takeover + bind (to address on eth0)': d(t.electMs, bound),
    'announce (address to GARP at the client)': d(bound, t.garpMs),
    'client (GARP to first good reply)': d(t.garpMs, t.replyMs),
    'holder agent configured (from t0)': seen,
    'status.holder seen (from t0)': t.statusMs,
  };
}

async function main(): Promise<void> {
  let cluster: LabCluster | undefined;
  let sampler: Sampler | undefined;
  let watch: ReturnType<typeof startWatch> | undefined;
  let arp: Awaited<ReturnType<typeof startArpWatch>> | undefined;
  let mon: ReturnType<typeof startAddrMonitor> | undefined;
  const teardown = async () => {
    for (const ch of mon?.children ?? []) ch.kill('SIGKILL');
    watch?.child.kill('SIGKILL');
    arp?.child.kill('SIGKILL');
    await sampler?.stop().catch(() => undefined);
    const c = cluster;
    cluster = undefined;
    await c?.stop().catch((err: unknown) => log(`stop failed: ${String(err)}`));
  };
  onStopSignal((sig) => {
    log(`${sig}: tearing down`);
    void teardown().then(() => process.exit(130));
  });
  try {
    const load1Before = os.loadavg()[0]!;
    cluster = await startLabCluster({
      id: LAB_ID,
      nodes: 3,
      profile,
      logDir: `/tmp/heartline-bench-${LAB_ID}`,
      log: (m) => log(m),
    });
    await cluster.waitForHolder('web', 60_000);
    sampler = await startSampler({ nodes: cluster.lab.nodes });
    watch = startWatch(cluster);
    arp = await startArpWatch(cluster);
    mon = startAddrMonitor(cluster);
    await sleep(3000); // settled: every agent past initDead, web bound and reported
    const results: Trial[] = [];
    const loads: number[] = [];
    for (let k = 1; k <= trials; k++) {
      const t = await runTrial(cluster, k, sampler, watch, arp, mon);
      t.load1 = os.loadavg()[0]!;
      results.push(t);
      loads.push(t.load1);
      const s = stages(t);
      log(
        `trial ${k}: ${t.error ?? `reply ${t.replyMs?.toFixed(0)} ms`} (apply ${t.applyMs.toFixed(0)}, api ${t.apiMs?.toFixed(0)}, seen ${s['holder agent configured (from t0)']?.toFixed(0)}, elect ${t.electMs?.toFixed(0)}, added ${t.addedMs?.toFixed(0)} (sampled ${t.boundMs?.toFixed(0)}) on ${t.holder}, garp ${t.garpMs?.toFixed(0)}; candidates ${t.candidates.join(',')})`,
      );
      await sleep(300);
    }
    const rows = Object.keys(stages(results[0]!)).map((stage) => {
      const xs = results
        .map((t) => stages(t)[stage])
        .filter((x): x is number => x !== undefined && Number.isFinite(x))
        .sort((a, b) => a - b);
      return {
        stage,
        n: xs.length,
        p50: percentile(xs, 0.5),
        p95: percentile(xs, 0.95),
        p99: percentile(xs, 0.99),
        max: xs.at(-1) ?? NaN,
      };
    });
    const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).stdout.trim();
    const report = {
      date: new Date().toISOString(),
      commit,
      profile,
      trials,
      probeHz: hz,
      cores: os.availableParallelism(),
      load1: { before: load1Before, min: Math.min(...loads), max: Math.max(...loads) },
      failed: results.filter((t) => t.error).length,
      multipleCandidates: results.filter((t) => t.candidates.length > 1).length,
      summary: rows,
      results,
    };
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${out}`);
    const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
    console.log(
      mdTable(
        ['stage (ms)', 'n', 'p50', 'p95', 'p99', 'max'],
        rows.map((r) => [r.stage, String(r.n), f0(r.p50), f0(r.p95), f0(r.p99), f0(r.max)]),
      ),
    );
  } finally {
    await teardown();
  }
}

await main();
