/**
 * Scale benchmark: the real controller (its own process) against the real kube-apiserver,
 * with V VirtualIPs and M members whose heartbeats come from a load generator (the real core
 * Member + WireCodec, HMAC-signed, one UDP socket per member, recorded Effects).
 *
 *   npx tsx bench/scale/run.ts [--vips 1000] [--members 100] [--victim-vips 100]
 *                              [--workers 3] [--steady-s 30] [--runtime dist|tsx] [--prefer-all]
 *                              [--interval-ms 200] [--dead-ms 1000] [--receive-buffer BYTES]
 *                              [--out bench/results/scale.json]
 *
 * Everything runs inside one network namespace this run creates (hl-bscale-<hex>) with
 * addresses from 198.18.0.0/15 on its loopback: nothing in the root namespace changes. The
 * run re-executes itself inside the namespace; the outer process bounds the whole run in time
 * and removes the namespace and every process in it at the end, even on failure.
 *
 * Measured: cold start to every VIP held (members' view) and written to status; after the
 * member holding --victim-vips VIPs is SIGKILLed, time until its VIPs are re-bound elsewhere
 * and written to status (from the kill and from the first member's detection); controller and
 * agent RSS / CPU from /proc; apiserver_request_total over a steady window and the storm.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { Member, MemberConfigError } from '../../src/core/member.js';
import { LIMITS } from '../../src/core/messages.js';
import { deriveTiming } from '../../src/core/timing.js';
import {
  HEARTBEAT_ADDRESS_ANNOTATION,
  HEARTBEAT_PORT_ANNOTATION,
  MEMBER_KEY_ANNOTATION,
  WITNESS_ID,
} from '../../src/runtime/cluster-config.js';
import { publicKeyOf } from '../../test/fixtures/member-keys.js';
import { startControlPlane, type ControlPlane } from '../../hack/controlplane/index.js';
import { applyCrds, runKubectl } from '../../hack/controlplane/kubectl.js';
import { deployedNodeOptions, deployedNodeFlags } from '../../hack/lab/node-options.js';
import { onStopSignal } from '../../hack/lab/sh.js';
import type { WorkerReport, WorkerSpec } from './members.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NS_PREFIX = 'hl-bscale-';
const CP_ADDRESS = '198.18.0.1';
const WITNESS_PORT = 694;
const MEMBER_PORT = 694;
const KUBE_NS = 'hl-scale';
const BUILD = path.join(ROOT, 'node_modules/.cache/heartline-scale');
/** argv for node to run a TypeScript entry point of this repo under the chosen runtime. */
function entry(runtime: 'dist' | 'tsx', tsPath: string): string[] {
  return runtime === 'dist'
    ? [path.join(BUILD, tsPath.replace(/\.ts$/, '.js'))]
    : ['--import', 'tsx', path.join(ROOT, tsPath)];
}
const CLUSTER = 'scale';

// ------------------------------------------------------------------------------ options

interface Options {
  vips: number;
  members: number;
  victimVips: number;
  workers: number;
  steadyS: number;
  coldTimeoutS: number;
  stormTimeoutS: number;
  totalTimeoutS: number;
  out: string;
  inside: boolean;
  netns: string;
  /** How the controller and member processes run: compiled JavaScript (as shipped) or tsx. */
  runtime: 'dist' | 'tsx';
  /** Give every VIP an explicit preferred order (no load-spread election), see preferredFor. */
  preferAll: boolean;
  /** HACluster spec.heartbeat.intervalMs / deadMs (the defaults 200 / 1000 if not given). */
  intervalMs: number;
  deadMs: number;
  /** SO_RCVBUF each member's socket asks for (default: the agent's, HEARTBEAT_RECEIVE_BUFFER). */
  receiveBuffer?: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    vips: 1000,
    members: 100,
    victimVips: 100,
    workers: 3,
    steadyS: 30,
    coldTimeoutS: 240,
    stormTimeoutS: 60,
    totalTimeoutS: 900,
    out: path.join(ROOT, 'bench/results/scale.json'),
    inside: false,
    netns: '',
    runtime: 'dist',
    preferAll: false,
    intervalMs: 200,
    deadMs: 1000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (v: string, min: number) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new Error(`${a} ${v}: need an integer >= ${min}`);
      return n;
    };
    switch (a) {
      case '--vips':
        o.vips = int(next(), 1);
        break;
      case '--members':
        o.members = int(next(), 3);
        break;
      case '--victim-vips':
        o.victimVips = int(next(), 1);
        break;
      case '--workers':
        o.workers = int(next(), 1);
        break;
      case '--steady-s':
        o.steadyS = int(next(), 5);
        break;
      case '--receive-buffer':
        o.receiveBuffer = int(next(), 4096);
        break;
      case '--cold-timeout-s':
        o.coldTimeoutS = int(next(), 10);
        break;
      case '--storm-timeout-s':
        o.stormTimeoutS = int(next(), 5);
        break;
      case '--total-timeout-s':
        o.totalTimeoutS = int(next(), 60);
        break;
      case '--out':
        o.out = path.resolve(next());
        break;
      case '--inside':
        o.inside = true;
        break;
      case '--prefer-all':
        o.preferAll = true;
        break;
      case '--interval-ms':
        o.intervalMs = int(next(), 10);
        break;
      case '--dead-ms':
        o.deadMs = int(next(), 30);
        break;
      case '--runtime': {
        const v = next();
        if (v !== 'dist' && v !== 'tsx')
          throw new Error(`--runtime ${v}: use dist (compiled, as shipped) or tsx`);
        o.runtime = v;
        break;
      }
      case '--netns':
        o.netns = next();
        break;
      default:
        throw new Error(`unknown option ${a}; see the header of bench/scale/run.ts`);
    }
  }
  if (o.victimVips > o.vips) throw new Error(`--victim-vips ${o.victimVips} exceeds --vips ${o.vips}`);
  if (o.members > 250 * 4) throw new Error('--members: at most 1000');
  return o;
}

const memberAddress = (i: number) => `198.18.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`;
const vipAddress = (i: number) => `198.18.${10 + Math.floor(i / 250)}.${(i % 250) + 1}/16`;
const memberName = (i: number) => `scale-m-${String(i).padStart(3, '0')}`;
const vipName = (i: number) => `vip-${String(i).padStart(4, '0')}`;
/**
 * preferredNodes of VIP i: the first `victimVips` prefer member 0 (then one other member);
 * with --prefer-all every other VIP prefers two members round-robin (never member 0), so no
 * VIP is placed by the load-spreading election; without it they have no preference.
 */
function preferredFor(i: number, o: Options, members: number): string[] | undefined {
  const other = (k: number) => memberName(1 + (k % (members - 1)));
  if (i < o.victimVips) return o.preferAll ? [memberName(0), other(i)] : [memberName(0)];
  return o.preferAll ? [other(i), other(i + 1)] : undefined;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/).slice(0, 3).map(Number);

function run(
  cmd: string,
  args: string[],
  input?: string,
  timeoutMs = 30_000,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('error', (e) => resolve({ code: 1, out: String(e) }));
    c.on('close', (code) => resolve({ code: code ?? 1, out }));
    c.stdin.on('error', () => {});
    c.stdin.end(input ?? '');
  });
}

// ------------------------------------------------------------------------------ outer: namespace

async function outer(o: Options, argv: string[]): Promise<number> {
  const ns = `${NS_PREFIX}${randomBytes(3).toString('hex')}`;
  const must = async (args: string[], input?: string) => {
    const r = await run('ip', args, input);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.out}`);
  };
  let child: ChildProcess | undefined;
  let code = 1;
  const onSignal = (sig: NodeJS.Signals) => child?.kill(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (o.runtime === 'dist') {
      console.error(`scale: compiling src and the load generator (tsc -p bench/scale/tsconfig.build.json)`);
      const r = await run(
        process.execPath,
        [
          path.join(ROOT, 'node_modules/typescript/bin/tsc'),
          '-p',
          path.join(ROOT, 'bench/scale/tsconfig.build.json'),
        ],
        undefined,
        300_000,
      );
      if (r.code !== 0) throw new Error(`tsc: ${r.out}`);
    }
    await must(['netns', 'add', ns]);
    await must(['-n', ns, 'link', 'set', 'lo', 'up']);
    const addrs = [CP_ADDRESS, ...Array.from({ length: o.members }, (_, i) => memberAddress(i))];
    await must(['-n', ns, '-batch', '-'], addrs.map((a) => `addr add ${a}/32 dev lo`).join('\n') + '\n');
    child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        ...argv,
        '--inside',
        '--netns',
        ns,
      ],
      {
        stdio: 'inherit',
        cwd: ROOT,
      },
    );
    const c = child;
    const timer = setTimeout(() => {
      console.error(`scale: run exceeded ${o.totalTimeoutS} s; stopping it`);
      c.kill('SIGTERM');
      setTimeout(() => c.kill('SIGKILL'), 30_000).unref();
    }, o.totalTimeoutS * 1000);
    code = await new Promise<number>((resolve) => c.on('exit', (x, sig) => resolve(x ?? (sig ? 1 : 0))));
    clearTimeout(timer);
  } finally {
    // Whatever is left in the namespace (a crashed inner run) goes with it.
    const pids = (await run('ip', ['netns', 'pids', ns])).out
      .split(/\s+/)
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (pids.length) await sleep(300);
    await run('ip', ['netns', 'del', ns]);
  }
  return code;
}

// ------------------------------------------------------------------------------ /proc and metrics

function sumDrops(all: Iterable<Record<string, number>>): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const d of all) for (const [k, n] of Object.entries(d)) sum[k] = (sum[k] ?? 0) + n;
  return sum;
}

/**
 * This network namespace's UDP counters since it was created (/proc/net/snmp, the `Udp:`
 * header and value lines): InDatagrams, InErrors, RcvbufErrors (a socket's receive buffer was
 * full), SndbufErrors, ...
 */
function udpCounters(): Record<string, number> | undefined {
  try {
    const rows = readFileSync('/proc/net/snmp', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('Udp: '))
      .map((l) => l.split(/\s+/).slice(1));
    if (rows.length < 2) return undefined;
    const [names, values] = rows as [string[], string[]];
    return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
  } catch {
    return undefined;
  }
}

interface ProcSample {
  at: number;
  cpuTicks: number;
  rssKb: number;
}
const CLK_TCK = 100;
function procSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuTicks = Number(fields[11]) + Number(fields[12]); // utime, stime
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { at: Date.now(), cpuTicks, rssKb };
  } catch {
    return undefined;
  }
}

/** Samples RSS of named processes every 250 ms; CPU is taken from the first and last samples of a window. */
class ProcWatch {
  private samples = new Map<string, ProcSample[]>();
  private timer: NodeJS.Timeout;
  constructor(private readonly pids: Map<string, number>) {
    this.timer = setInterval(() => this.tick(), 250);
    this.tick();
  }
  tick(): void {
    for (const [name, pid] of this.pids) {
      const s = procSample(pid);
      if (!s) continue;
      const list = this.samples.get(name) ?? [];
      list.push(s);
      this.samples.set(name, list);
    }
  }
  window(
    from: number,
    to: number,
  ): Record<string, { cpuPercent: number; rssMbAvg: number; rssMbMax: number }> {
    const out: Record<string, { cpuPercent: number; rssMbAvg: number; rssMbMax: number }> = {};
    for (const [name, list] of this.samples) {
      const w = list.filter((s) => s.at >= from - 300 && s.at <= to + 300);
      if (w.length < 2) continue;
      const first = w[0]!;
      const last = w[w.length - 1]!;
      const seconds = (last.at - first.at) / 1000;
      out[name] = {
        cpuPercent: round1(((last.cpuTicks - first.cpuTicks) / CLK_TCK / seconds) * 100),
        rssMbAvg: round1(w.reduce((a, s) => a + s.rssKb, 0) / w.length / 1024),
        rssMbMax: round1(Math.max(...w.map((s) => s.rssKb)) / 1024),
      };
    }
    return out;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}
const round1 = (x: number) => Math.round(x * 10) / 10;

interface ApiSnapshot {
  at: number;
  counts: Map<string, number>;
  /** apiserver_request_duration_seconds _sum and _count by verb. */
  latency: Map<string, { sum: number; count: number }>;
}

/** apiserver_request_total, summed by "VERB resource[/subresource]", and request latency by verb. */
async function apiRequests(kubeconfig: string): Promise<ApiSnapshot> {
  const r = await runKubectl(kubeconfig, ['get', '--raw', '/metrics'], { timeoutMs: 30_000 });
  const at = Date.now();
  if (r.code !== 0) throw new Error(`kubectl get --raw /metrics: ${r.stderr}`);
  const counts = new Map<string, number>();
  const latency = new Map<string, { sum: number; count: number }>();
  for (const line of r.stdout.split('\n')) {
    const lat = /^apiserver_request_duration_seconds_(sum|count)\{(.*)\} (\S+)$/.exec(line);
    if (lat) {
      const verb = /verb="([^"]*)"/.exec(lat[2]!)?.[1] ?? '';
      if (verb === 'WATCH') continue;
      const e = latency.get(verb) ?? { sum: 0, count: 0 };
      e[lat[1] as 'sum' | 'count'] += Number(lat[3]);
      latency.set(verb, e);
      continue;
    }
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const res = labels.resource
      ? `${labels.resource}${labels.subresource ? '/' + labels.subresource : ''}`
      : '(non-resource)';
    const key = `${labels.verb} ${res}`;
    counts.set(key, (counts.get(key) ?? 0) + value);
  }
  return { at, counts, latency };
}

function requestRate(a: ApiSnapshot, b: ApiSnapshot) {
  const seconds = (b.at - a.at) / 1000;
  const byVerbResource: Record<string, { requests: number; perSecond: number }> = {};
  let total = 0;
  for (const [k, v] of b.counts) {
    const d = v - (a.counts.get(k) ?? 0);
    if (d <= 0) continue;
    total += d;
    byVerbResource[k] = { requests: d, perSecond: Math.round((d / seconds) * 100) / 100 };
  }
  // Our own metrics scrape (one GET /metrics at the end of the window) is in "(non-resource)".
  const meanLatencyMsByVerb: Record<string, number> = {};
  for (const [verb, e] of b.latency) {
    const p = a.latency.get(verb) ?? { sum: 0, count: 0 };
    if (e.count > p.count) meanLatencyMsByVerb[verb] = round1(((e.sum - p.sum) / (e.count - p.count)) * 1000);
  }
  return {
    seconds: round1(seconds),
    total,
    perSecond: Math.round((total / seconds) * 100) / 100,
    byVerbResource,
    meanLatencyMsByVerb,
  };
}

// ------------------------------------------------------------------------------ inner run

interface Worker {
  name: string;
  members: string[];
  child: ChildProcess;
  pid: number;
  ready: Promise<void>;
}

async function inner(o: Options): Promise<number> {
  const log = pino({ level: process.env.HEARTLINE_LOG_LEVEL ?? 'warn' });
  const clock = new SystemClock();
  const started = new Date();
  const result: Record<string, unknown> = {
    benchmark: 'scale',
    startedAt: started.toISOString(),
    command: `npx tsx bench/scale/run.ts --vips ${o.vips} --members ${o.members} --victim-vips ${o.victimVips} --workers ${o.workers} --steady-s ${o.steadyS} --runtime ${o.runtime}${o.preferAll ? ' --prefer-all' : ''} --interval-ms ${o.intervalMs} --dead-ms ${o.deadMs}`,
    heartbeat: { intervalMs: o.intervalMs, deadMs: o.deadMs },
    runtime:
      o.runtime === 'dist'
        ? 'node on compiled JavaScript (tsc), as shipped'
        : 'node --import tsx (TypeScript transpiled at load)',
    requested: { vips: o.vips, members: o.members },
    nodeOptions: { controller: deployedNodeOptions('controller'), agent: deployedNodeOptions('agent') },
    host: { cpus: (await import('node:os')).cpus().length, node: process.version, loadavgStart: loadavg() },
    netns: o.netns,
  };
  // The core's own bound on members: check it with the real Member before starting anything.
  let members = o.members;
  try {
    const ids = Array.from({ length: members }, (_, i) => memberName(i));
    new Member(
      {},
      {
        clusterId: 'x/y',
        self: ids[0]!,
        incarnation: 1,
        members: ids,
        witness: WITNESS_ID,
        quorum: 'majority',
        timing: deriveTiming({ intervalMs: o.intervalMs, deadMs: o.deadMs }),
        vips: [],
      },
    );
  } catch (err) {
    if (!(err instanceof MemberConfigError)) throw err;
    const fallback = LIMITS.maxMembers - 1; // the controller's witness id counts as a member
    result.memberLimit = {
      error: `${err.name}: ${err.message}`,
      where: 'src/core/member.ts (Member constructor: LIMITS.maxMembers in src/core/messages.ts)',
      ranWith: fallback,
    };
    console.error(
      `scale: the core refuses ${members} members (${err.message}); running with ${fallback} instead`,
    );
    members = fallback;
  }
  result.ran = { vips: o.vips, members, victimVips: o.victimVips };
  const children: ChildProcess[] = [];
  let cp: ControlPlane | undefined;
  let watchStop: (() => void) | undefined;
  let procs: ProcWatch | undefined;
  let api: K8sApiSource | undefined;
  const runDir = path.join(tmpdir(), `hl-scale-${process.pid}`);
  mkdirSync(runDir, { recursive: true });
  let exitCode = 0;
  const stopAll = async () => {
    procs?.stop();
    watchStop?.();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    const deadline = Date.now() + 5000;
    while (children.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline)
      await sleep(100);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await api?.close().catch(() => {});
    await cp?.stop();
  };
  onStopSignal(() => void stopAll().finally(() => process.exit(1)));
  try {
    // -------------------------------------------------------------- control plane and objects
    const t = Date.now();
    cp = await startControlPlane({
      bindAddress: CP_ADDRESS,
      log: { info: () => {}, warn: (o2, m) => log.warn(o2, m), error: (o2, m) => log.error(o2, m) },
    });
    const kubeconfig = cp.kubeconfigPath;
    await applyCrds(kubeconfig, path.join(ROOT, 'crds'));
    const docs: object[] = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: KUBE_NS } },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'auth', namespace: KUBE_NS },
        data: { '1': randomBytes(32).toString('base64') },
      },
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: CLUSTER, namespace: KUBE_NS },
        spec: {
          nodeSelector: { 'heartline.dev/bench': 'scale' },
          authSecretRef: { name: 'auth', activeKeyId: '1' },
          quorum: 'majority',
          heartbeat: {
            intervalMs: o.intervalMs,
            deadMs: o.deadMs,
            warnMs: Math.round(o.deadMs / 2),
            initDeadMs: Math.max(2 * o.deadMs, 2000),
          },
        },
      },
      ...Array.from({ length: members }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: memberName(i),
          labels: { 'heartline.dev/bench': 'scale' },
          annotations: {
            [HEARTBEAT_ADDRESS_ANNOTATION]: memberAddress(i),
            [HEARTBEAT_PORT_ANNOTATION]: String(MEMBER_PORT),
            [MEMBER_KEY_ANNOTATION]: publicKeyOf(memberName(i)),
          },
        },
      })),
      ...Array.from({ length: o.vips }, (_, i) => ({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'VirtualIP',
        metadata: { name: vipName(i), namespace: KUBE_NS },
        spec: {
          clusterRef: { name: CLUSTER },
          address: vipAddress(i),
          ...(preferredFor(i, o, members) ? { preferredNodes: preferredFor(i, o, members) } : {}),
        },
      })),
    ];
    const created = await runKubectl(kubeconfig, ['create', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }),
      timeoutMs: 300_000,
    });
    if (created.code !== 0) throw new Error(`kubectl create: ${created.stderr}`);
    result.setupMs = Date.now() - t;
    console.error(`scale: control plane and ${docs.length} objects ready in ${result.setupMs} ms`);

    // -------------------------------------------------------------- status watch (one LIST + one WATCH)
    api = new K8sApiSource(
      { kubeConfig: loadKubeConfig(kubeconfig), clock, logger: log },
      { identity: 'scale-bench' },
    );
    const statusHolder = new Map<string, string>();
    const statusChanges: Array<{ at: number; vip: string; holder: string }> = [];
    let clusterStatus: { witness?: { address: string; port: number } } = {};
    const w1 = api.watch(
      'VirtualIP',
      (e) => {
        if (e.type === 'synced' || e.type === 'deleted') return;
        const name = e.object.metadata.name;
        const holder = (e.object.status as { holder?: string } | undefined)?.holder ?? '';
        if ((statusHolder.get(name) ?? '') !== holder) {
          statusHolder.set(name, holder);
          statusChanges.push({ at: Date.now(), vip: name, holder });
        }
      },
      { namespace: KUBE_NS },
    );
    const w2 = api.watch(
      'HACluster',
      (e) => {
        if (e.type !== 'synced' && e.type !== 'deleted')
          clusterStatus = (e.object.status ?? {}) as typeof clusterStatus;
      },
      { namespace: KUBE_NS },
    );
    watchStop = () => {
      w1.stop();
      w2.stop();
    };

    // -------------------------------------------------------------- controller (own process)
    const mc0 = await apiRequests(kubeconfig);
    const t0 = Date.now();
    const ctlLog = openSync(path.join(runDir, 'controller.log'), 'w');
    const controller = spawn(
      process.execPath,
      [
        // HL_SCALE_PROFILE=1: a V8 CPU profile of the controller, written on its (graceful) exit.
        ...(process.env.HL_SCALE_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${runDir}`] : []),
        // The heap flags the controller is deployed with (deploy/base: NODE_OPTIONS), then
        // HL_SCALE_CONTROLLER_FLAGS: extra node flags (e.g. a heap snapshot signal).
        ...deployedNodeFlags('controller'),
        ...(process.env.HL_SCALE_CONTROLLER_FLAGS ?? '').split(' ').filter(Boolean),
        ...entry(o.runtime, 'src/cli/main.ts'),
        'controller',
        '--kubeconfig',
        kubeconfig,
        '--namespace',
        KUBE_NS,
        '--lease-namespace',
        KUBE_NS,
        '--witness-listen',
        `${CP_ADDRESS}:${WITNESS_PORT}`,
        '--metrics-listen',
        `${CP_ADDRESS}:9695`,
        // Scraped below with a plain fetch, inside the benchmark's own namespace.
        '--metrics-insecure-serving-no-auth',
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', ctlLog, ctlLog],
        env: { ...process.env, HEARTLINE_LOG_LEVEL: process.env.HL_SCALE_CONTROLLER_LOG ?? 'info' },
      },
    );
    closeSync(ctlLog);
    children.push(controller);
    const pids = new Map<string, number>([['controller', controller.pid!]]);
    const apiserverPid = await pidOf('kube-apiserver', o.netns);
    const etcdPid = await pidOf('etcd', o.netns);
    if (apiserverPid) pids.set('kube-apiserver', apiserverPid);
    if (etcdPid) pids.set('etcd', etcdPid);
    procs = new ProcWatch(pids);
    result.controllerLog = path.join(runDir, 'controller.log');

    // The controller's own view of its memory (prom-client's default metrics on --metrics-listen).
    const controllerMemory = async () => {
      try {
        const text = await (await fetch(`http://${CP_ADDRESS}:9695/metrics`)).text();
        const g = (name: string) => {
          const m = new RegExp(`^heartline_controller_${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
          return m ? Math.round((Number(m[1]) / 1048576) * 10) / 10 : undefined;
        };
        return {
          rssMb: g('process_resident_memory_bytes'),
          heapUsedMb: g('nodejs_heap_size_used_bytes'),
          heapTotalMb: g('nodejs_heap_size_total_bytes'),
          externalMb: g('nodejs_external_memory_bytes'),
        };
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err) };
      }
    };
    const until = async <T>(what: string, fn: () => T | undefined | false, timeoutMs: number): Promise<T> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = fn();
        if (v) return v;
        if (controller.exitCode !== null)
          throw new Error(`controller exited (${controller.exitCode}); see ${result.controllerLog}`);
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(50);
      }
    };
    await until('HACluster status.witness', () => clusterStatus.witness, 60_000);
    const tWitness = Date.now();

    // -------------------------------------------------------------- load generator
    const holders = new Map<string, { member: string; epoch: number; at: number }>();
    const dead: Array<{ member: string; peer: string; at: number }> = [];
    const unbindReasons = new Map<string, number>();
    let binds = 0;
    let unbinds = 0;
    let datagramsSent = 0;
    let datagramsReceived = 0;
    const datagramsByKind: Record<string, number> = {};
    let sendFailed = 0;
    const memory = new Map<string, Omit<Extract<WorkerReport, { type: 'memory' }>, 'type'>>();
    /** Each process's cumulative codec drops, by reason. */
    const drops = new Map<string, Record<string, number>>();
    const candidacies: Record<string, number> = {};
    const abandons: Record<string, number> = {};
    const onReport = (r: WorkerReport, wname: string) => {
      if (r.type === 'memory') {
        const { type: _type, ...m } = r;
        memory.set(wname, m);
        return;
      }
      if (r.type === 'error') {
        console.error(`scale: worker ${wname}: ${r.message}`);
        result.workerError = r.message;
        return;
      }
      if (r.type !== 'events') return;
      drops.set(wname, r.drops);
      for (const [k, n] of Object.entries(r.candidacies)) candidacies[k] = (candidacies[k] ?? 0) + n;
      for (const [k, n] of Object.entries(r.abandons)) abandons[k] = (abandons[k] ?? 0) + n;
      datagramsSent += r.sent;
      datagramsReceived += r.received;
      for (const [k, n] of Object.entries(r.sentByKind)) datagramsByKind[k] = (datagramsByKind[k] ?? 0) + n;
      sendFailed += r.sendFailed;
      for (const [member, vip, epoch, at] of r.binds) {
        binds++;
        const cur = holders.get(vip);
        if (!cur || epoch >= cur.epoch) holders.set(vip, { member, epoch, at });
      }
      for (const [member, vip, epoch, reason] of r.unbinds) {
        unbinds++;
        unbindReasons.set(reason, (unbindReasons.get(reason) ?? 0) + 1);
        const cur = holders.get(vip);
        if (cur && cur.member === member && cur.epoch === epoch) holders.delete(vip);
      }
      for (const [member, peer, at] of r.dead) dead.push({ member, peer, at });
    };
    const all = Array.from({ length: members }, (_, i) => ({
      id: memberName(i),
      address: memberAddress(i),
      port: MEMBER_PORT,
    }));
    const groups: Array<{ name: string; members: typeof all }> = [
      { name: 'victim', members: all.slice(0, 1) },
    ];
    const rest = all.slice(1);
    const per = Math.ceil(rest.length / o.workers);
    for (let g = 0; g < o.workers; g++)
      groups.push({ name: `loadgen-${g}`, members: rest.slice(g * per, (g + 1) * per) });
    const workers: Worker[] = groups
      .filter((g) => g.members.length > 0)
      .map((g) => {
        const spec: WorkerSpec = {
          kubeconfig,
          namespace: KUBE_NS,
          cluster: CLUSTER,
          members: g.members,
          ...(o.receiveBuffer ? { receiveBuffer: o.receiveBuffer } : {}),
        };
        // HL_SCALE_PROFILE=1: V8 CPU profiles of the load generator processes too.
        const prof = process.env.HL_SCALE_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${runDir}`] : [];
        // Members run with the agent's deployed heap flags: the victim's RSS is an agent's.
        const flags = [...deployedNodeFlags('agent'), ...prof];
        const child = spawn(process.execPath, [...flags, ...entry(o.runtime, 'bench/scale/members.ts')], {
          cwd: ROOT,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          env: { ...process.env, HL_SCALE_WORKER: JSON.stringify(spec) },
        });
        children.push(child);
        const ready = new Promise<void>((resolve, reject) => {
          child.on('message', (m: WorkerReport) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'error') reject(new Error(`worker ${g.name}: ${m.message}`));
            onReport(m, g.name);
          });
          child.on('exit', (c) => reject(new Error(`worker ${g.name} exited (${c})`)));
        });
        pids.set(g.name, child.pid!);
        return { name: g.name, members: g.members.map((m) => m.id), child, pid: child.pid!, ready };
      });
    await Promise.all(workers.map((w) => w.ready));
    const tMembers = Date.now();
    console.error(`scale: controller and ${members} members running (${workers.length} processes)`);

    // -------------------------------------------------------------- cold start
    const cold: Record<string, unknown> = { controllerToWitnessPublishedMs: tWitness - t0 };
    result.coldStart = cold;
    const progress: Array<{
      s: number;
      heldMembers: number;
      heldStatus: number;
      sent: number;
      received: number;
      rcvbufErrors?: number;
    }> = [];
    cold.progress = progress;
    const sampleProgress = () =>
      progress.push({
        s: round1((Date.now() - t0) / 1000),
        heldMembers: holders.size,
        heldStatus: [...statusHolder.values()].filter(Boolean).length,
        sent: datagramsSent,
        received: datagramsReceived,
        rcvbufErrors: udpCounters()?.RcvbufErrors,
      });
    const progressTimer = setInterval(sampleProgress, 10_000);
    const allHeldAt = () => (holders.size >= o.vips ? Date.now() : undefined);
    const allStatusAt = () => {
      let n = 0;
      for (const h of statusHolder.values()) if (h) n++;
      return n >= o.vips ? Date.now() : undefined;
    };
    try {
      const tHeld = await until('every VIP held (members)', allHeldAt, o.coldTimeoutS * 1000);
      cold.allHeldMembersMs = { fromControllerStart: tHeld - t0, fromMembersStart: tHeld - tMembers };
      const tStatus = await until(
        'every VIP holder in status',
        allStatusAt,
        o.coldTimeoutS * 1000 - (tHeld - tMembers),
      );
      cold.allHeldStatusMs = { fromControllerStart: tStatus - t0, fromMembersStart: tStatus - tMembers };
    } catch (err) {
      cold.error = (err as Error).message;
      cold.heldMembers = holders.size;
      cold.heldStatus = [...statusHolder.values()].filter(Boolean).length;
    }
    clearInterval(progressTimer);
    sampleProgress();
    const mc1 = await apiRequests(kubeconfig);
    cold.apiRequests = requestRate(mc0, mc1);
    cold.processes = procs.window(t0, mc1.at);
    console.error(`scale: cold start ${JSON.stringify(cold)}`);

    // -------------------------------------------------------------- settle, then steady window
    const settleDeadline = Date.now() + 60_000;
    for (;;) {
      const lastChange = statusChanges.at(-1)?.at ?? 0;
      if (Date.now() - lastChange >= 5000 || Date.now() > settleDeadline) break;
      await sleep(250);
    }
    const churnBefore = { binds, unbinds, statusChanges: statusChanges.length };
    const m0 = await apiRequests(kubeconfig);
    const s0 = Date.now();
    const sent0 = datagramsSent;
    const received0 = datagramsReceived;
    const churn0 = { binds, unbinds };
    await sleep(o.steadyS * 1000);
    const m1 = await apiRequests(kubeconfig);
    const s1 = Date.now();
    result.steady = {
      windowS: round1((s1 - s0) / 1000),
      apiRequests: requestRate(m0, m1),
      processes: procs.window(s0, s1),
      churnInWindow: {
        binds: binds - churnBefore.binds,
        unbinds: unbinds - churnBefore.unbinds,
        statusChanges: statusChanges.length - churnBefore.statusChanges,
      },
      datagramsSentPerS: Math.round((datagramsSent - sent0) / ((s1 - s0) / 1000)),
      datagramsReceivedPerS: Math.round((datagramsReceived - received0) / ((s1 - s0) / 1000)),
      perMember: perMemberFigures(
        procs.window(s0, s1),
        workers.map((w) => ({ name: w.name, members: w.members.length })),
        {
          seconds: (s1 - s0) / 1000,
          sent: datagramsSent - sent0,
          received: datagramsReceived - received0,
          binds: binds - churn0.binds,
          unbinds: unbinds - churn0.unbinds,
        },
      ),
      heldMembers: holders.size,
      heldStatus: [...statusHolder.values()].filter(Boolean).length,
      memory: {
        controller: await controllerMemory(),
        ...Object.fromEntries(memory),
      },
    };
    console.error(`scale: steady ${JSON.stringify(result.steady)}`);

    // -------------------------------------------------------------- storm: SIGKILL the victim
    const victim = workers.find((w) => w.name === 'victim')!;
    const victimId = victim.members[0]!;
    const victimVips = [...holders].filter(([, h]) => h.member === victimId).map(([v]) => v);
    const victimProc = procs.window(s0, s1).victim;
    const tKill = Date.now();
    victim.child.kill('SIGKILL');
    pids.delete('victim');
    const storm: Record<string, unknown> = {
      victim: victimId,
      victimHeld: victimVips.length,
      victimProcess: victimProc,
    };
    result.storm = storm;
    const victimVipNames = victimVips.map((v) => v.slice(v.indexOf('/') + 1));
    const reassigned = () =>
      victimVips.length > 0 &&
      victimVips.every(
        (v) => (holders.get(v)?.member ?? victimId) !== victimId && (holders.get(v)?.at ?? 0) > tKill,
      )
        ? Date.now()
        : undefined;
    const statusMoved = () =>
      victimVipNames.every((v) => {
        const h = statusHolder.get(v);
        return h && h !== victimId;
      })
        ? Date.now()
        : undefined;
    const mk0 = await apiRequests(kubeconfig);
    try {
      const detect = await until(
        'a member to declare the victim dead',
        () => dead.find((d) => d.peer === victimId && d.at >= tKill),
        o.stormTimeoutS * 1000,
      );
      const tDetect = detect.at;
      storm.detectionMs = tDetect - tKill;
      await until('the victim VIPs re-bound (members)', reassigned, o.stormTimeoutS * 1000);
      const lastBind = Math.max(...victimVips.map((v) => holders.get(v)!.at));
      const firstBind = Math.min(...victimVips.map((v) => holders.get(v)!.at));
      storm.membersReboundMs = {
        fromKill: lastBind - tKill,
        fromDetection: lastBind - tDetect,
        firstFromDetection: firstBind - tDetect,
      };
      await until('the victim VIPs moved in status', statusMoved, o.stormTimeoutS * 1000);
      const lastStatus = Math.max(
        ...statusChanges.filter((c) => victimVipNames.includes(c.vip) && c.at > tKill).map((c) => c.at),
      );
      storm.statusWrittenMs = {
        fromKill: lastStatus - tKill,
        fromDetection: lastStatus - tDetect,
        afterMembers: lastStatus - lastBind,
      };
      const newHolders = new Map<string, number>();
      for (const v of victimVips)
        newHolders.set(holders.get(v)!.member, (newHolders.get(holders.get(v)!.member) ?? 0) + 1);
      storm.spreadOver = newHolders.size;
    } catch (err) {
      storm.error = (err as Error).message;
      storm.stillUnmoved = victimVips.filter((v) => (holders.get(v)?.member ?? victimId) === victimId).length;
    }
    await sleep(1000);
    const mk1 = await apiRequests(kubeconfig);
    const tEnd = Date.now();
    storm.windowS = round1((tEnd - tKill) / 1000);
    storm.apiRequests = requestRate(mk0, mk1);
    storm.processes = procs.window(tKill, tEnd);
    storm.unbindReasons = Object.fromEntries(unbindReasons);
    console.error(`scale: storm ${JSON.stringify(storm)}`);
    result.totals = {
      binds,
      unbinds,
      datagramsSent,
      datagramsReceived,
      datagramsByKind,
      sendFailed,
      statusChanges: statusChanges.length,
      // Where the datagrams sent and not received went: dropped by a receiver's codec (by
      // reason), or by the kernel (receive buffer full: RcvbufErrors) in this namespace.
      codecDrops: sumDrops(drops.values()),
      candidacies,
      abandons: Object.fromEntries(Object.entries(abandons).sort((a, b) => b[1] - a[1])),
      kernelUdp: udpCounters(),
    };
    result.loadgen = { processes: workers.map((w) => ({ name: w.name, members: w.members.length })) };
  } catch (err) {
    exitCode = 1;
    result.error = err instanceof Error ? err.message : String(err);
    console.error(`scale: failed: ${result.error}`);
  } finally {
    result.host = { ...(result.host as object), loadavgEnd: loadavg() };
    result.finishedAt = new Date().toISOString();
    await stopAll();
  }
  mkdirSync(path.dirname(o.out), { recursive: true });
  writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n');
  printTable(result);
  console.error(`scale: wrote ${o.out}`);
  return exitCode;
}

/** The process named `name` inside our network namespace (other sessions run their own apiservers). */
async function pidOf(name: string, netns: string): Promise<number | undefined> {
  const r = await run('ip', ['netns', 'pids', netns]);
  for (const p of r.out.split(/\s+/).filter((x) => /^\d+$/.test(x))) {
    try {
      // comm is cut to 15 characters (e.g. "kube-apiserver-" for a versioned binary name).
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim().startsWith(name)) return Number(p);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/**
 * The load generator per member over the steady window: CPU time (ms of CPU per second, from
 * /proc utime+stime, so it counts CPU used, not wall time), datagrams sent and received per
 * second, and RSS: the processes' RSS above one bare member process (the victim's, which runs
 * one member), divided by the members they run. The scale curve in docs/benchmarks.md.
 */
function perMemberFigures(
  procs: Record<string, { cpuPercent: number; rssMbAvg: number; rssMbMax: number }>,
  groups: Array<{ name: string; members: number }>,
  w: { seconds: number; sent: number; received: number; binds: number; unbinds: number },
) {
  let cpu = 0;
  let members = 0;
  let rss = 0;
  let loadgenMembers = 0;
  const victimRss = procs.victim?.rssMbAvg;
  for (const g of groups) {
    const p = procs[g.name];
    if (!p) continue;
    cpu += p.cpuPercent * 10; // % of a core -> ms of CPU per second
    members += g.members;
    if (g.name !== 'victim') {
      rss += p.rssMbAvg - (victimRss ?? 0);
      loadgenMembers += g.members - 1;
    }
  }
  return {
    members,
    cpuMsPerS: round1(cpu / members),
    datagramsSentPerS: round1(w.sent / w.seconds / members),
    datagramsReceivedPerS: round1(w.received / w.seconds / members),
    rssMbPerMember: victimRss !== undefined && loadgenMembers > 0 ? round1(rss / loadgenMembers) : undefined,
    churn: { binds: w.binds, unbinds: w.unbinds },
  };
}

/** A nested field of a result object, or undefined. */
function g(o: unknown, ...keys: string[]): unknown {
  return keys.reduce<unknown>(
    (x, k) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined),
    o,
  );
}

function printTable(r: Record<string, unknown>): void {
  const rows: Array<[string, string, string]> = [];
  const ms = (x: unknown) => (typeof x === 'number' ? `${x} ms` : 'n/a');
  const str = (x: unknown) => (x === undefined ? 'n/a' : String(x));
  const limit = g(r, 'memberLimit', 'error');
  rows.push([
    'size',
    `${str(g(r, 'ran', 'vips'))} VIPs, ${str(g(r, 'ran', 'members'))} members`,
    limit ? `requested ${str(g(r, 'requested', 'members'))}: ${str(limit)}` : '',
  ]);
  rows.push([
    'cold start: all held (members)',
    ms(g(r, 'coldStart', 'allHeldMembersMs', 'fromControllerStart')),
    str(g(r, 'coldStart', 'error') ?? ''),
  ]);
  rows.push([
    'cold start: all in status',
    ms(g(r, 'coldStart', 'allHeldStatusMs', 'fromControllerStart')),
    '',
  ]);
  rows.push(['storm: victim held', str(g(r, 'storm', 'victimHeld')), '']);
  rows.push([
    'storm: detection after kill',
    ms(g(r, 'storm', 'detectionMs')),
    `deadMs ${String(g(r, 'heartbeat', 'deadMs') ?? 1000)}`,
  ]);
  rows.push([
    'storm: re-bound from detection',
    ms(g(r, 'storm', 'membersReboundMs', 'fromDetection')),
    'target <= 1000 ms',
  ]);
  rows.push(['storm: re-bound from kill', ms(g(r, 'storm', 'membersReboundMs', 'fromKill')), '']);
  rows.push([
    'storm: status from kill',
    ms(g(r, 'storm', 'statusWrittenMs', 'fromKill')),
    str(g(r, 'storm', 'error') ?? ''),
  ]);
  const sc = g(r, 'steady', 'processes', 'controller');
  rows.push([
    'controller RSS steady / storm max',
    sc
      ? `${str(g(sc, 'rssMbAvg'))} / ${str(g(r, 'storm', 'processes', 'controller', 'rssMbMax'))} MB`
      : 'n/a',
    'target <= 150 MB',
  ]);
  rows.push([
    'controller CPU steady / storm',
    sc
      ? `${str(g(sc, 'cpuPercent'))} / ${str(g(r, 'storm', 'processes', 'controller', 'cpuPercent'))} %`
      : 'n/a',
    '',
  ]);
  const v = g(r, 'storm', 'victimProcess');
  rows.push(['agent RSS (victim process)', v ? `${str(g(v, 'rssMbAvg'))} MB` : 'n/a', 'target <= 100 MB']);
  rows.push([
    'API requests/s steady',
    str(g(r, 'steady', 'apiRequests', 'perSecond')),
    'target: none per VIP',
  ]);
  rows.push(['API requests/s storm', str(g(r, 'storm', 'apiRequests', 'perSecond')), '']);
  const w = Math.max(...rows.map((x) => x[0].length));
  const w2 = Math.max(...rows.map((x) => x[1].length));
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w)}  ${b.padEnd(w2)}  ${c}`);
}

const opts = parseArgs(process.argv.slice(2));
const argv = process.argv.slice(2);
(opts.inside ? inner(opts) : outer(opts, argv)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`scale: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
