/**
 * Prints test/e2e/results/failover.json as the Markdown table in docs/e2e.md:
 *
 *   npx tsx test/e2e/helpers/results-table.ts
 */
import { readFileSync } from 'node:fs';
import { RESULTS_FILE, type ScenarioSummary } from './lab-run.js';

const doc = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as { scenarios: Record<string, ScenarioSummary> };
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
