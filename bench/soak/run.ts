/**
 * Starvation and soak (bench, not CI): Heartline labs of 3 nodes, one per profile, all up at
 * once, while busy loops saturate every core and (optionally) a memory hog keeps rewriting its
 * pages; no fault is injected, so every holder change is a spurious failover. The client
 * probes the first VIP at 100 Hz; the sampler reads every node's addresses every 20 ms and on
 * every rtnetlink event. Measured per profile: time with two holders (any VIP), time with
 * none, spurious failovers (holder changes seen on the nodes, and epoch growth in status),
 * client outages, lost probes, and how late netd's fence fired (its log).
 *
 *   starvation (issue 16): npx tsx bench/soak/run.ts --minutes 10 --busy 4 --mem-mb 1024 --vips 1
 *   soak (issue 16):       npx tsx bench/soak/run.ts --minutes 60 --busy 4 --vips 20
 *   smoke check:           npx tsx bench/soak/run.ts --minutes 0.5 --busy 1 --vips 2 --out /tmp/soak-smoke.json
 *
 * Options: --profiles default,fast  --minutes N  --busy N (busy loops; default 2 per core)
 * --mem-mb N (memory hog, 0 = none)  --vips N (1..20)  --settle-s N (after start, before the
 * load)  --out FILE (default bench/results/soak-<minutes>m-<busy>b.json). Needs root (network
 * namespaces, like the lab); everything it creates is torn down on exit, SIGINT and SIGTERM.
 * A run on a shared machine disturbs everyone else's timings: run it on a quiet machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  atLeast,
  countProbes,
  holderTimeline,
  nobody,
  outages,
  provenOverlap,
  totalMs,
} from '../../hack/lab/analyze.js';
import { labNow } from '../../hack/lab/clock.js';
import { HTTP_PORT, startLabCluster, VIP_ADDRESS, type LabCluster } from '../../hack/lab/cluster.js';
import { startProber, type Prober } from '../../hack/lab/prober.js';
import { startSampler, type AddressSample, type Sampler } from '../../hack/lab/sampler.js';
import { onStopSignal, sleep } from '../../hack/lab/sh.js';
import type { ProfileName } from '../../src/core/timing.js';
import { benchArgs } from '../args.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Lab ids, one per profile (distinct from every e2e and benchmark lab). */
const LAB_IDS: Record<ProfileName, string> = { default: 'bsoakd', fast: 'bsoakf', tight: 'bsoakt' };

const { opt, num } = benchArgs();
const profiles = opt('--profiles', 'default,fast')
  .split(',')
  .map((p) => p.trim()) as ProfileName[];
for (const p of profiles)
  if (!(p in LAB_IDS)) throw new Error(`--profiles: unknown profile "${p}"; use default, fast and/or tight`);
const minutes = num('--minutes', 10, 0.1);
const busy = num('--busy', 2 * os.availableParallelism(), 0);
const memMb = num('--mem-mb', 0, 0);
const vips = num('--vips', 1, 1);
if (vips > 20) throw new Error('--vips: at most 20 (the lab VIPs are 198.18.0.100-119)');
const settleS = num('--settle-s', 10, 0);
const out = resolve(opt('--out', join(ROOT, 'bench', 'results', `soak-${minutes}m-${busy}b.json`)));

const log = (m: string) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** One profile's lab, client and sampler. */
interface Run {
  profile: ProfileName;
  cluster: LabCluster;
  prober: Prober;
  sampler: Sampler;
  epochsBefore: Map<string, number>;
  logsBefore: Map<string, number>;
}

const vipNames = Array.from({ length: vips }, (_, i) => (i === 0 ? 'web' : `vip-${i}`));
const vipAddress = (i: number) => `198.18.0.${100 + i}`;

async function epochs(c: LabCluster): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const name of vipNames) m.set(name, Number((await c.vipStatus(name)).epoch ?? 0));
  return m;
}

/** Busy loops (one process each, default priority) and the memory hog. Root namespace: CPU and memory only. */
function startLoad(): ChildProcess[] {
  const kids: ChildProcess[] = [];
  for (let i = 0; i < busy; i++)
    kids.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  if (memMb > 0) {
    // Allocates memMb in 16 MB blocks and rewrites one page of every 4 KB each second: the
    // pages stay resident and dirty, so the kernel must reclaim elsewhere (netd is mlocked).
    const hog = `const b=[];for(let i=0;i<${Math.ceil(memMb / 16)};i++)b.push(Buffer.alloc(16<<20,1));let k=0;setInterval(()=>{k++;for(const x of b)for(let o=0;o<x.length;o+=4096)x[o]=k;},1000);`;
    kids.push(
      spawn(process.execPath, [`--max-old-space-size=${Math.max(64, memMb)}`, '-e', hog], {
        stdio: 'ignore',
      }),
    );
  }
  return kids;
}

/** Single-holder changes of one VIP over the samples: with no fault injected, each is spurious. */
function holderChanges(samples: readonly AddressSample[], vip: string): number {
  let last: string | undefined;
  let changes = 0;
  for (const seg of holderTimeline(samples, vip)) {
    if (seg.holders.length !== 1) continue;
    const h = seg.holders[0];
    if (last !== undefined && h !== last) changes++;
    last = h;
  }
  return changes;
}

/** Sizes of the lab's log files now (they are appended to across runs). */
function logSizes(logDir: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of readdirSync(logDir).filter((n) => n.endsWith('.log')))
    m.set(f, statSync(join(logDir, f)).size);
  return m;
}

/**
 * "fence: removed ... at its deadline (X ms late)" lines of every netd in the lab's logs,
 * written after `since` (logSizes at the start of the load).
 */
function fenceLateness(
  logDir: string,
  since: Map<string, number>,
): { fired: number; maxLateMs: number | null } {
  let fired = 0;
  let max: number | null = null;
  for (const f of readdirSync(logDir).filter((n) => n.endsWith('.log'))) {
    const text = readFileSync(join(logDir, f))
      .subarray(since.get(f) ?? 0)
      .toString('utf8');
    for (const m of text.matchAll(/at its deadline \((\d+(?:\.\d+)?) ms late\)/g)) {
      fired++;
      max = Math.max(max ?? 0, Number(m[1]));
    }
  }
  return { fired, maxLateMs: max };
}

let stopping = false;

async function main(): Promise<void> {
  const runs: Run[] = [];
  let load: ChildProcess[] = [];
  const teardown = async () => {
    for (const k of load) k.kill('SIGKILL');
    load = [];
    for (const r of runs.splice(0)) {
      // A run is torn down even if it never got its prober or sampler (a start that failed).
      const { prober, sampler } = r as Partial<Run>;
      await prober?.stop().catch(() => undefined);
      await sampler?.stop().catch(() => undefined);
      await r.cluster.stop().catch((err: unknown) => log(`${r.profile}: stop failed: ${String(err)}`));
    }
  };
  onStopSignal((sig) => {
    stopping = true;
    log(`${sig}: tearing down`);
    void teardown().then(() => process.exit(130));
  });
  try {
    for (const profile of profiles) {
      const id = LAB_IDS[profile];
      const cluster = await startLabCluster({
        id,
        nodes: 3,
        profile,
        logDir: `/tmp/heartline-bench-${id}`,
        extraVips: vips - 1,
        log: (m) => log(`[${profile}] ${m}`),
      });
      const partial: Partial<Run> = { profile, cluster };
      runs.push(partial as Run); // torn down even if the rest fails
      // A profile that cannot settle on this machine is still soaked and reported (its
      // spurious failovers are the finding); the run does not stop for it.
      const settleBy = performance.now() + 120_000; // for all of the lab's VIPs together
      for (const name of vipNames) {
        const ok = await cluster
          .waitForHolder(name, Math.max(1000, settleBy - performance.now()))
          .then(() => true)
          .catch((err: unknown) => {
            log(`${profile}: ${String(err)}; soaking it anyway`);
            return false;
          });
        if (!ok) break;
      }
      partial.sampler = await startSampler({ nodes: cluster.lab.nodes });
      partial.prober = await startProber({ ns: cluster.lab.client.ns, target: VIP_ADDRESS, port: HTTP_PORT });
    }
    log(`labs up (${profiles.join(', ')}), ${vips} VIP(s) each; settling ${settleS} s`);
    await sleep(settleS * 1000);
    for (const r of runs) {
      r.epochsBefore = await epochs(r.cluster);
      r.logsBefore = logSizes(r.cluster.logDir);
    }
    const load1Before = os.loadavg()[0]!;
    const startedAt = labNow();
    load = startLoad();
    log(`load on: ${busy} busy loop(s)${memMb ? `, memory hog ${memMb} MB` : ''}; running ${minutes} min`);
    const endAt = startedAt + minutes * 60_000;
    const loads: number[] = [];
    while (!stopping && labNow() < endAt) {
      await sleep(Math.min(10_000, Math.max(0, endAt - labNow())));
      loads.push(os.loadavg()[0]!);
    }
    for (const k of load) k.kill('SIGKILL');
    load = [];
    const stoppedAt = labNow();
    await sleep(2000);
    const results = [];
    for (const r of runs) {
      const probes = await r.prober.stop();
      const samples = await r.sampler.stop();
      const window = { from: startedAt, to: stoppedAt };
      const inWindow = probes.filter((p) => p.t >= startedAt && p.t <= stoppedAt);
      const after = await epochs(r.cluster);
      const perVip = vipNames.map((name, i) => {
        const timeline = holderTimeline(samples, vipAddress(i), window);
        return {
          name,
          dualHolderMs: Math.round(totalMs(provenOverlap(samples, vipAddress(i), window))),
          dualHolderSampledMs: Math.round(totalMs(atLeast(timeline, 2))),
          noHolderMs: Math.round(totalMs(nobody(timeline))),
          holderChanges: holderChanges(
            samples.filter((s) => s.t >= startedAt && s.t <= stoppedAt),
            vipAddress(i),
          ),
          epochGrowth: (after.get(name) ?? 0) - (r.epochsBefore.get(name) ?? 0),
        };
      });
      const outs = outages(inWindow);
      results.push({
        profile: r.profile,
        dualHolderMs: perVip.reduce((a, v) => a + v.dualHolderMs, 0),
        dualHolderSampledMs: perVip.reduce((a, v) => a + v.dualHolderSampledMs, 0),
        noHolderMs: perVip.reduce((a, v) => a + v.noHolderMs, 0),
        spuriousFailovers: perVip.reduce((a, v) => a + v.holderChanges, 0),
        epochGrowth: perVip.reduce((a, v) => a + v.epochGrowth, 0),
        probes: countProbes(inWindow),
        clientOutages: outs.length,
        longestOutageMs: Math.round(Math.max(0, ...outs.map((o) => o.to - o.from))),
        fence: fenceLateness(r.cluster.logDir, r.logsBefore),
        sampler: r.sampler.stats(),
        perVip,
      });
    }
    const report = {
      startedAt: new Date(startedAt).toISOString(), // the lab clock counts from the epoch
      minutes,
      busyLoops: busy,
      memHogMb: memMb,
      vips,
      cores: os.availableParallelism(),
      load1: { before: load1Before, min: Math.min(...loads), max: Math.max(...loads) },
      results,
    };
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${out}`);
    console.log(
      '| profile | minutes | busy loops | memory hog | VIPs | two holders, proven (as sampled), ms | no holder (ms) | spurious failovers (holder changes / epochs) | client outages, longest | lost probes | fence fired, latest |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const x of results)
      console.log(
        `| ${x.profile} | ${minutes} | ${busy} | ${memMb ? `${memMb} MB` : 'none'} | ${vips} | ${x.dualHolderMs} (${x.dualHolderSampledMs}) | ${x.noHolderMs} | ${x.spuriousFailovers} / ${x.epochGrowth} | ${x.clientOutages}, ${x.longestOutageMs} ms | ${x.probes.lost} of ${x.probes.sent} | ${x.fence.fired}, ${x.fence.maxLateMs ?? '-'} ms |`,
      );
  } finally {
    await teardown();
  }
}

// After SIGINT/SIGTERM the signal handler tears down and exits; a request of main's that the
// teardown cut short must not end the process first (that would leak the labs).
await main().catch((err: unknown) => {
  if (!stopping) throw err;
  return new Promise<never>(() => undefined);
});
