/**
 * npm run sim -- --seed N --schedules K [--profile default|fast] [--trace] [--members M] [--max-vips V]
 * Runs K seeded schedules from seed N, checks S1, S2 and L1 at every step, prints failover
 * times. Exit code 1 if an invariant breaks; the failure names the seed and shows a trace.
 */
import { Command } from 'commander';
import type { ProfileName } from '../../src/core/timing.js';
import { describeFailure, percentile, runMany, runOne } from './run.js';

const cmd = new Command()
  .option('--seed <n>', 'first seed', '1')
  .option('--schedules <k>', 'number of schedules', '100')
  .option('--profile <p>', 'timing profile: default (200/1000) or fast (100/300)', 'default')
  .option('--members <m>', 'members per cluster (default: random 2..9)')
  .option('--max-vips <v>', 'VIPs per cluster at most (random 1..v)', '50')
  .option('--faults <kinds>', 'only these fault kinds, comma-separated (crash,stop,pause,partition,oneway,flap,net,step,standby,unhealthy,assign)')
  .option('--single-crash', 'one fault only: crash one member (no restart) to measure clean failover time')
  .option('--graceful-stop', 'one fault only: stop one member gracefully (Member.stop, no restart) to measure handover time')
  .option('--trace', 'print every event of each schedule')
  .parse(process.argv);
const o = cmd.opts<{ seed: string; schedules: string; profile: string; members?: string; maxVips: string; faults?: string; singleCrash?: boolean; gracefulStop?: boolean; trace?: boolean }>();
if (o.profile !== 'default' && o.profile !== 'fast') {
  console.error(`--profile: unknown profile "${o.profile}"; use default or fast`);
  process.exit(2);
}
const profile = o.profile as ProfileName;
const seed = Number(o.seed);
const k = Number(o.schedules);
const opts = {
  profile,
  maxVips: Number(o.maxVips),
  ...(o.members ? { members: Number(o.members) } : {}),
  ...(o.faults ? { faultKinds: o.faults.split(',') } : {}),
};

if (o.trace) {
  for (let s = seed; s < seed + k; s++) {
    console.log(`=== seed ${s}`);
    const { result } = runOne(s, opts, { trace: true, traceSink: (l) => console.log(l) });
    console.log(result.violations.length ? result.violations.map((v) => `${v.invariant}: ${v.message}`).join('\n') : 'ok');
  }
  process.exit(0);
}

const t0 = performance.now();
const s = runMany(
  seed,
  k,
  opts,
  o.singleCrash
    ? (sc) => {
        const node = sc.members[sc.seed % sc.members.length] as string;
        sc.faults = [{ at: sc.healAt - 3 * sc.timing.deadMs, kind: 'crash', node, fenceKilled: false, restartAt: null }];
      }
    : o.gracefulStop
      ? (sc) => {
          const node = sc.members[sc.seed % sc.members.length] as string;
          sc.faults = [{ at: sc.healAt - 3 * sc.timing.deadMs, kind: 'stop', node, restartAt: null }];
        }
      : undefined,
);
const ms = performance.now() - t0;
const fmt = (xs: number[]) =>
  xs.length ? `n=${xs.length} p50=${percentile(xs, 50).toFixed(0)}ms p90=${percentile(xs, 90).toFixed(0)}ms p99=${percentile(xs, 99).toFixed(0)}ms max=${Math.max(...xs).toFixed(0)}ms` : 'n=0';
console.log(`profile ${profile}: ${s.schedules} schedules (seeds ${seed}..${seed + k - 1}), ${s.events} events, ${(ms / 1000).toFixed(1)}s`);
console.log(`faults: ${Object.entries(s.faultKinds).map(([k, v]) => `${k}=${v}`).join(' ')}`);
console.log(`crash failover (holder crash -> other member bound):  ${fmt(s.failovers)}`);
console.log(`graceful-stop handover (stop -> other bound):         ${fmt(s.handovers)}`);
console.log(`convergence after heal (all usable VIPs held):       ${fmt(s.converge)}`);
console.log(`kernel-backstop overlaps (agent+fence killed):       ${fmt(s.backstopOverlaps)}`);
const hard = s.failures.filter((f) => f.result.violations.some((v) => v.invariant !== 'BACKSTOP'));
if (s.failures.length) {
  console.log(`\n${s.failures.length} failing schedule(s): ${s.failures.map((f) => f.seed).slice(0, 20).join(', ')}\n`);
  console.log(describeFailure(hard[0] ?? (s.failures[0] as (typeof s.failures)[number]), profile));
  process.exit(1);
}
console.log('S1, S2, L1: no violation');
