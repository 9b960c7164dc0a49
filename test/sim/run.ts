/** Runs many seeded schedules and summarises them. */
import type { ProfileName } from '../../src/core/timing.js';
import { makeScenario, type ScheduleOptions } from './schedule.js';
import { World, type RunResult, type Scenario } from './world.js';

export interface Summary {
  schedules: number;
  events: number;
  failures: Array<{ seed: number; result: RunResult; scenario: Scenario }>;
  failovers: number[];
  handovers: number[];
  backstopOverlaps: number[];
  /** Largest fence delay injected in any schedule (real ms). */
  fenceLateMaxMs: number;
  converge: number[];
  faultKinds: Record<string, number>;
  /** Planned moves after the heal followed by the PLANNED check. */
  plannedMoves: number;
}

export function runOne(
  seed: number,
  o: ScheduleOptions,
  opts: { trace?: boolean; traceSink?: (l: string) => void; mutate?: (s: Scenario) => void } = {},
) {
  const scenario = makeScenario(seed, o);
  opts.mutate?.(scenario);
  const result = new World(scenario, opts).run();
  return { scenario, result };
}

export function runMany(
  firstSeed: number,
  count: number,
  o: ScheduleOptions,
  mutate?: (s: Scenario) => void,
): Summary {
  const s: Summary = {
    schedules: 0,
    events: 0,
    failures: [],
    failovers: [],
    handovers: [],
    backstopOverlaps: [],
    fenceLateMaxMs: 0,
    converge: [],
    faultKinds: {},
    plannedMoves: 0,
  };
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const { scenario, result } = runOne(seed, o, mutate ? { mutate } : {});
    s.schedules++;
    s.events += result.events;
    s.plannedMoves += result.plannedMoves;
    for (const f of scenario.faults) s.faultKinds[f.kind] = (s.faultKinds[f.kind] ?? 0) + 1;
    if (scenario.replayer) s.faultKinds['replayer'] = (s.faultKinds['replayer'] ?? 0) + 1;
    for (const c of scenario.membership?.changes ?? [])
      s.faultKinds[`member-${c.op}`] = (s.faultKinds[`member-${c.op}`] ?? 0) + 1;
    s.failovers.push(...result.failovers);
    s.handovers.push(...result.handovers);
    s.backstopOverlaps.push(...result.backstopOverlaps);
    s.fenceLateMaxMs = Math.max(s.fenceLateMaxMs, result.fenceLateMaxMs);
    if (result.convergeMs !== null) s.converge.push(result.convergeMs);
    if (result.violations.some((v) => v.invariant !== 'BACKSTOP' || result.violations.length > 0)) {
      if (result.violations.length > 0) s.failures.push({ seed, result, scenario });
    }
  }
  return s;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const a = [...xs].sort((x, y) => x - y);
  return a[Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1))] as number;
}

export function describeFailure(
  f: { seed: number; result: RunResult; scenario: Scenario },
  profile: ProfileName,
): string {
  const v = f.result.violations[0];
  const sc = f.scenario;
  return [
    `seed ${f.seed} (profile ${profile}) violates ${v?.invariant} at t=${v?.at.toFixed(1)}ms: ${v?.message}`,
    `cluster: ${sc.members.join(',')}${sc.witness ? ' + witness ctl' : ''}, quorum ${sc.quorum}, ${sc.vips.length} VIPs, autoFailback ${sc.autoFailback}`,
    `reproduce: npm run sim -- --seed ${f.seed} --schedules 1 --profile ${profile} --trace`,
    'last events:',
    ...f.result.trace.slice(-60),
  ].join('\n');
}
