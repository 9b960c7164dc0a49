/**
 * The flags tables of the docs say what `heartline controller` (docs/controller.md) and
 * `heartline agent` (docs/deploy.md, "The agent's flags") do: every flag the command has is in
 * its table, and a literal default there is the code's default (commander's, or
 * DEFAULT_WORKERS for --workers, whose commander default is only the environment variable).
 */
import { readFileSync } from 'node:fs';
import { buildProgram } from '../../../src/cli/program.js';
import { DEFAULT_WORKERS } from '../../../src/controller/controller.js';

/**
 * Rows of the first markdown table after `heading` (the whole file when undefined) whose
 * first cell names flags: flag -> default cell.
 */
function documentedDefaults(file: string, heading?: string): Map<string, string> {
  const rows = new Map<string, string>();
  let lines = readFileSync(file, 'utf8').split('\n');
  if (heading !== undefined) {
    const at = lines.indexOf(heading);
    if (at < 0) throw new Error(`${file}: no heading "${heading}"`);
    lines = lines.slice(at + 1);
    const table = lines.findIndex((l) => l.startsWith('|'));
    const end = lines.findIndex((l, i) => i > table && !l.startsWith('|'));
    lines = lines.slice(table, end < 0 ? undefined : end);
  }
  for (const line of lines) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[1]?.startsWith('`--')) continue;
    for (const m of cells[1].matchAll(/`(--[a-z0-9-]+)`/g)) rows.set(m[1]!, cells[2] ?? '');
  }
  return rows;
}

describe.each([
  { command: 'controller', file: 'docs/controller.md', heading: undefined },
  { command: 'agent', file: 'docs/deploy.md', heading: "### The agent's flags" },
])('documented defaults: heartline $command in $file', ({ command, file, heading }) => {
  const rows = documentedDefaults(file, heading);
  const cmd = buildProgram().commands.find((c) => c.name() === command)!;

  it(`lists every flag of heartline ${command}, and no flag it does not have`, () => {
    const flags = cmd.options.map((o) => o.long!).sort();
    expect([...rows.keys()].sort()).toEqual(flags);
  });

  it("gives each literal default as the code's", () => {
    const wrong: string[] = [];
    for (const o of cmd.options) {
      const doc = rows.get(o.long!) ?? '';
      const literals = [...doc.matchAll(/`([^`]*)`/g)].map((m) => m[1]!).filter((l) => !l.includes('$'));
      // Defaults that come from the environment or the host are documented in words.
      if (o.long === '--workers') {
        if (!literals.includes(String(DEFAULT_WORKERS)))
          wrong.push(`${o.long}: doc "${doc}", code ${DEFAULT_WORKERS}`);
        continue;
      }
      const d: unknown = o.defaultValue;
      if ((typeof d !== 'string' && typeof d !== 'number') || doc.includes('$') || o.long === '--identity')
        continue;
      if (!literals.includes(String(d))) wrong.push(`${o.long}: doc "${doc}", code "${String(d)}"`);
    }
    expect(wrong).toEqual([]);
  });
});
