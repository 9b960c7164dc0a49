/**
 * Prints a results file as the Markdown table in docs/e2e.md: the recorded run
 * (test/e2e/results/failover.json) by default, or the file given, e.g. the last local run:
 *
 *   npx tsx test/e2e/helpers/results-table.ts [test/e2e/results/latest.json]
 */
import { readFileSync } from 'node:fs';
import { RECORDED_RESULTS_FILE, type ScenarioSummary } from './lab-run.js';

const doc = JSON.parse(readFileSync(process.argv[2] ?? RECORDED_RESULTS_FILE, 'utf8')) as {
  scenarios: Record<string, ScenarioSummary>;
};
const rows = Object.values(doc.scenarios).sort((a, b) => a.at.localeCompare(b.at));
const ms = (x: number | null) => (x === null ? '–' : `${x}`);
process.stdout.write(
  '| scenario | profile | failover ms | dual-holder ms | no-holder ms | lost probes | max outage ms | move | run at (UTC) |\n' +
    '|---|---|--:|--:|--:|--:|--:|---|---|\n',
);
for (const s of rows) {
  process.stdout.write(
    `| ${s.scenario}${s.note ? ` (${s.note})` : ''} | ${s.profile} | ${ms(s.failoverMs)} | ${s.dualHolderMs} | ${s.noHolderMs} | ${s.lostProbes}/${s.probes} | ${s.maxOutageMs} | ${s.from ?? ''}→${s.to ?? '(none)'} | ${s.at.slice(0, 19).replace('T', ' ')} |\n`,
  );
}
