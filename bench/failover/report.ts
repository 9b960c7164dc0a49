/**
 * Prints the failover benchmark's tables as Markdown (for docs/benchmarks.md) from a results
 * file written by run.ts.
 *
 *   npx tsx bench/failover/report.ts [bench/results/failover.json]
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { mdTable, pairedRatio, percentile, summarize, summaryRows, type TrialResult } from './stats.js';
import { PAIRS } from './targets.js';

const file = resolve(process.argv[2] ?? 'bench/results/failover.json');
const r = JSON.parse(readFileSync(file, 'utf8')) as {
  meta: { params: { configs: string[]; faults: string[] } };
  trials: TrialResult[];
};
const { configs, faults } = r.meta.params;
const ss = faults.flatMap((f) => configs.map((c) => summarize(r.trials, c, f)));
const { head, rows } = summaryRows(ss);
const out: string[] = [mdTable(head, rows), ''];

const ratioRows: string[][] = [];
for (const [a, b] of PAIRS) {
  if (!configs.includes(a) || !configs.includes(b)) continue;
  for (const f of faults) {
    const p = pairedRatio(r.trials, f, a, b);
    ratioRows.push([
      `${a} / ${b}`,
      f,
      String(p.pairs),
      p.medianOfRatios.toFixed(2),
      p.ratioOfMedians.toFixed(2),
      `${p.numeratorFaster}/${p.pairs}`,
    ]);
  }
}
out.push(
  mdTable(
    ['ratio (paired by round)', 'fault', 'pairs', 'median of ratios', 'ratio of medians', 'first faster'],
    ratioRows,
  ),
  '',
);

// Recovery: what happened when the faulted node / daemon came back.
const recRows: string[][] = [];
for (const f of faults) {
  for (const c of configs) {
    const ts = r.trials.filter((t) => t.config === c && t.fault === f && !t.skipped);
    if (!ts.length) continue;
    const lost = ts.map((t) => t.recovery.lostProbes).sort((x, y) => x - y);
    const left = ts.filter((t) => t.recovery.vipLeftOnDeadNode).length;
    recRows.push([
      c,
      f,
      String(ts.length),
      f === 'poweroff' ? `${left}/${ts.length}` : 'n/a',
      `${Math.max(...ts.map((t) => t.recovery.dualHolderMs))}; ${ts.filter((t) => t.recovery.dualHolderMs > 0).length}/${ts.length}`,
      `${percentile(lost, 0.5)} / ${lost.at(-1)}`,
      `${ts.filter((t) => t.recovery.holdersAfter.length === 1 && t.recovery.holdersAfter[0] === t.from).length}/${ts.length}`,
      `${ts.filter((t) => t.recovery.holdersAfter.length !== 1).length}/${ts.length}`,
      `${ts.filter((t) => t.oldNodeRepliesAfterFailover > 0).length}/${ts.length} (${ts.reduce((a, t) => a + t.oldNodeRepliesAfterFailover, 0)})`,
    ]);
  }
}
out.push(
  mdTable(
    [
      'configuration',
      'fault',
      'n',
      'VIP still on dead node at power-on',
      'recovery two-holder ms (max; trials)',
      'recovery lost probes p50 / max',
      'VIP back on old node',
      'not exactly one holder at end',
      'trials with replies from old node after failover (replies)',
    ],
    recRows,
  ),
);
const flushed = r.trials.filter((t) => t.clientNeighbourFlushed);
if (flushed.length) {
  out.push(
    '',
    `Trials where the client reached no one for 15 s before the fault and its neighbour entry was flushed (${flushed.length}):`,
    ...flushed.map((t) => `- round ${t.round} ${t.config} ${t.fault}${t.skipped ? ' (then skipped)' : ''}`),
  );
}
const skipped = r.trials.filter((t) => t.skipped);
if (skipped.length) {
  out.push(
    '',
    `Skipped trials (${skipped.length}):`,
    ...skipped.map((t) => `- round ${t.round} ${t.config} ${t.fault}: ${t.skipped}`),
  );
}
process.stdout.write(`${out.join('\n')}\n`);
