/**
 * npm run sim -- --seed N --schedules K [--profile default|fast|tight] [--trace] [--members M] [--max-vips V] [--workers W] [--duplicates P] [--membership P] [--replayer random|always|never] [--moves [P]] [--fence-budget MS] [--fence-delay MS]
 * Runs K seeded schedules from seed N, checks S1, S2 and L1 at every step, prints failover
 * times. Exit code 1 if an invariant breaks; the failure names the seed and shows a trace.
 * `--workers W` splits the seeds into W contiguous ranges run by W child processes.
 */
import { fork } from 'node:child_process';
import { Command } from 'commander';
import { PROFILES, type ProfileName } from '../../src/core/timing.js';
import { describeFailure, percentile, runMany, runOne } from './run.js';
import { failbackScenario, makeScenario, type FailbackShape } from './schedule.js';
import type { Scenario } from './world.js';

const cmd = new Command()
  .option('--seed <n>', 'first seed', '1')
  .option('--schedules <k>', 'number of schedules', '100')
  .option('--profile <p>', 'timing profile: default (200/1000), fast (100/300) or tight (50/160)', 'default')
  .option('--members <m>', 'members per cluster (default: random 2..9)')
  .option('--max-vips <v>', 'VIPs per cluster at most (random 1..v)', '50')
  .option(
    '--faults <kinds>',
    'only these fault kinds, comma-separated (crash,stop,pause,partition,oneway,flap,net,step,standby,unhealthy,move)',
  )
  .option('--single-crash', 'one fault only: crash one member (no restart) to measure clean failover time')
  .option(
    '--graceful-stop',
    'one fault only: stop one member gracefully (Member.stop, no restart) to measure handover time',
  )
  .option('--duplicates <p>', 'chance (0..1) that a schedule has VirtualIPs sharing an address', '0')
  .option(
    '--moves [p]',
    'operator moves (heartline.dev/move-to): static targets and move/clear events during faults, in every schedule or in a fraction p (0..1) of them',
  )
  .option(
    '--membership <p>',
    'chance (0..1) that a schedule changes the member set (add, remove, relabel; late learners)',
    '0.25',
  )
  .option(
    '--replayer <mode>',
    'replaying adversary (plays recorded datagrams back to restarted members): random (40 % of schedules), always or never',
    'random',
  )
  .option(
    '--failback <shape>',
    'one fault only, autoFailback on: the member every VIP prefers crashes and restarts at the heal (crash) or is cut off until the heal (partition)',
  )
  .option(
    '--fence-budget <ms>',
    "fence delay budget the members' margin accounts for (default: the profile's, Timing.fenceDelayMs)",
  )
  .option('--fence-delay <ms>', 'largest fence delay injected (default: the budget)')
  .option('--workers <w>', 'child processes to split the schedules across', '1')
  .option('--worker-child', 'internal: run as a worker and report to the parent')
  .option('--trace', 'print every event of each schedule')
  .parse(process.argv);
const o = cmd.opts<{
  seed: string;
  schedules: string;
  profile: string;
  members?: string;
  maxVips: string;
  faults?: string;
  singleCrash?: boolean;
  gracefulStop?: boolean;
  replayer: string;
  failback?: string;
  workers: string;
  duplicates: string;
  moves?: boolean | string;
  membership: string;
  fenceBudget?: string;
  fenceDelay?: string;
  workerChild?: boolean;
  trace?: boolean;
}>();
if (!(o.profile in PROFILES)) {
  console.error(`--profile: unknown profile "${o.profile}"; use default, fast or tight`);
  process.exit(2);
}
const profile = o.profile as ProfileName;
if (!['random', 'always', 'never'].includes(o.replayer)) {
  console.error(`--replayer: unknown mode "${o.replayer}"; use random, always or never`);
  process.exit(2);
}
if (typeof o.moves === 'string' && !(Number(o.moves) >= 0 && Number(o.moves) <= 1)) {
  console.error(
    `--moves: "${o.moves}" is not a fraction; give one from 0 to 1, or no value for every schedule`,
  );
  process.exit(2);
}
const seed = Number(o.seed);
const k = Number(o.schedules);
const workers = Number(o.workers);
if (!Number.isInteger(seed) || !Number.isInteger(k) || k < 1 || !Number.isInteger(workers) || workers < 1) {
  console.error('--seed, --schedules and --workers take integers (--schedules and --workers at least 1)');
  process.exit(2);
}
const opts = {
  profile,
  maxVips: Number(o.maxVips),
  duplicateAddresses: Number(o.duplicates),
  ...(o.moves === true ? { moves: true } : o.moves !== undefined ? { moves: Number(o.moves) } : {}),
  membershipChanges: Number(o.membership),
  ...(o.members ? { members: Number(o.members) } : {}),
  ...(o.faults ? { faultKinds: o.faults.split(',') } : {}),
  ...(o.replayer === 'random' ? {} : { replayer: o.replayer === 'always' }),
  ...(o.fenceBudget !== undefined ? { fenceBudgetMs: Number(o.fenceBudget) } : {}),
  ...(o.fenceDelay !== undefined ? { injectFenceDelayMs: Number(o.fenceDelay) } : {}),
};

/** What a worker reports: the summary's numbers and its failures, already described. */
interface Part {
  schedules: number;
  events: number;
  failovers: number[];
  handovers: number[];
  backstopOverlaps: number[];
  fenceLateMaxMs: number;
  converge: number[];
  faultKinds: Record<string, number>;
  plannedMoves: number;
  failures: Array<{ seed: number; hard: boolean; text: string }>;
  /** CPU time of the runs (user + system), ms. */
  cpuMs: number;
}

if (o.failback !== undefined && o.failback !== 'crash' && o.failback !== 'partition') {
  console.error(`--failback: unknown shape "${o.failback}"; use crash or partition`);
  process.exit(2);
}
const failback = o.failback ? failbackScenario(o.failback as FailbackShape) : undefined;
const mutate = failback
  ? (sc: Scenario) => void failback(sc)
  : o.singleCrash
    ? (sc: Scenario) => {
        const node = sc.members[sc.seed % sc.members.length] as string;
        sc.faults = [
          { at: sc.healAt - 3 * sc.timing.deadMs, kind: 'crash', node, fenceKilled: false, restartAt: null },
        ];
      }
    : o.gracefulStop
      ? (sc: Scenario) => {
          const node = sc.members[sc.seed % sc.members.length] as string;
          sc.faults = [{ at: sc.healAt - 3 * sc.timing.deadMs, kind: 'stop', node, restartAt: null }];
        }
      : undefined;

if (o.trace) {
  for (let s = seed; s < seed + k; s++) {
    console.log(`=== seed ${s}`);
    const { result } = runOne(s, opts, {
      trace: true,
      traceSink: (l) => console.log(l),
      ...(mutate ? { mutate } : {}),
    });
    console.log(
      result.violations.length
        ? result.violations.map((v) => `${v.invariant}: ${v.message}`).join('\n')
        : 'ok',
    );
  }
  process.exit(0);
}

function runPart(first: number, count: number): Part {
  const c0 = process.cpuUsage();
  const s = runMany(first, count, opts, mutate);
  const c = process.cpuUsage(c0);
  return {
    cpuMs: (c.user + c.system) / 1000,
    schedules: s.schedules,
    events: s.events,
    failovers: s.failovers,
    handovers: s.handovers,
    backstopOverlaps: s.backstopOverlaps,
    fenceLateMaxMs: s.fenceLateMaxMs,
    converge: s.converge,
    faultKinds: s.faultKinds,
    plannedMoves: s.plannedMoves,
    failures: s.failures.map((f) => ({
      seed: f.seed,
      hard: f.result.violations.some((v) => v.invariant !== 'BACKSTOP'),
      text: describeFailure(f, profile).replace(
        /^reproduce: .*$/m,
        `reproduce: npm run sim -- --seed ${f.seed} --schedules 1 ${scheduleArgs().join(' ')} --trace`,
      ),
    })),
  };
}

/** The options that shape a schedule, as given (for the reproduce line). */
function scheduleArgs(): string[] {
  const skip = ['--seed', '--schedules', '--workers'];
  return process.argv
    .slice(2)
    .filter((a, i, all) => !skip.includes(a) && !skip.includes(all[i - 1] ?? '') && a !== '--worker-child');
}

function runChild(first: number, count: number): Promise<Part> {
  const args = process.argv
    .slice(2)
    .filter(
      (a, i, all) =>
        !['--seed', '--schedules', '--workers'].includes(a) &&
        !['--seed', '--schedules', '--workers'].includes(all[i - 1] ?? ''),
    );
  args.push('--seed', String(first), '--schedules', String(count), '--worker-child');
  return new Promise((resolve, reject) => {
    const child = fork(process.argv[1] as string, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let part: Part | undefined;
    child.on('message', (m) => {
      part = m as Part;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (part) resolve(part);
      else
        reject(
          new Error(
            `worker for seeds ${first}..${first + count - 1} exited with code ${code} without a result`,
          ),
        );
    });
  });
}

if (o.workerChild) {
  const part = runPart(seed, k);
  process.send?.(part, () => process.exit(0));
} else {
  const t0 = performance.now();
  let parts: Part[];
  if (workers <= 1) {
    parts = [runPart(seed, k)];
  } else {
    const n = Math.min(workers, k);
    const ranges: Array<[number, number]> = [];
    for (let i = 0, start = seed; i < n; i++) {
      const count = Math.floor(k / n) + (i < k % n ? 1 : 0);
      ranges.push([start, count]);
      start += count;
    }
    parts = await Promise.all(ranges.map(([f, c]) => runChild(f, c)));
  }
  const ms = performance.now() - t0;
  const all = <K extends 'failovers' | 'handovers' | 'backstopOverlaps' | 'converge'>(key: K) =>
    parts.flatMap((p) => p[key]);
  const faultKinds: Record<string, number> = {};
  for (const p of parts)
    for (const [kind, v] of Object.entries(p.faultKinds)) faultKinds[kind] = (faultKinds[kind] ?? 0) + v;
  const failures = parts.flatMap((p) => p.failures);
  const schedules = parts.reduce((a, p) => a + p.schedules, 0);
  const events = parts.reduce((a, p) => a + p.events, 0);
  const cpuMs = parts.reduce((a, p) => a + p.cpuMs, 0);
  const fmt = (xs: number[]) =>
    xs.length
      ? `n=${xs.length} p50=${percentile(xs, 50).toFixed(0)}ms p90=${percentile(xs, 90).toFixed(0)}ms p99=${percentile(xs, 99).toFixed(0)}ms max=${Math.max(...xs).toFixed(0)}ms`
      : 'n=0';
  console.log(
    `profile ${profile}: ${schedules} schedules (seeds ${seed}..${seed + k - 1}), ${events} events, ${(ms / 1000).toFixed(1)}s wall, ${parts.length} process(es), ${(cpuMs / schedules).toFixed(1)} ms CPU per schedule`,
  );
  console.log(
    `faults: ${Object.entries(faultKinds)
      .map(([kind, v]) => `${kind}=${v}`)
      .join(' ')}`,
  );
  console.log(`crash failover (holder crash -> other member bound):  ${fmt(all('failovers'))}`);
  console.log(`graceful-stop handover (stop -> other bound):         ${fmt(all('handovers'))}`);
  console.log(`convergence after heal (all usable VIPs held):       ${fmt(all('converge'))}`);
  console.log(`kernel-backstop overlaps (agent+fence killed):       ${fmt(all('backstopOverlaps'))}`);
  const t = makeScenario(seed, opts);
  console.log(
    `fence delay: budget ${t.timing.fenceDelayMs}ms in the margin (lease ${t.timing.leaseMs}ms, margin ${t.timing.marginMs}ms), injected up to ${t.fenceDelayMs ?? 0}ms, largest drawn ${Math.max(...parts.map((p) => p.fenceLateMaxMs)).toFixed(1)}ms`,
  );
  console.log(
    `planned moves after the heal, each checked one move:  n=${parts.reduce((a, p) => a + p.plannedMoves, 0)}`,
  );
  if (failures.length) {
    failures.sort((a, b) => a.seed - b.seed);
    const hard = failures.filter((f) => f.hard);
    console.log(
      `\n${failures.length} failing schedule(s): ${failures
        .map((f) => f.seed)
        .slice(0, 20)
        .join(', ')}\n`,
    );
    console.log((hard[0] ?? (failures[0] as (typeof failures)[number])).text);
    process.exit(1);
  }
  console.log('S1, S2, L1, PLANNED, HELD, STATUS: no violation');
}
