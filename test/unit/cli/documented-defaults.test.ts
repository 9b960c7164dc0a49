/**
 * The flags table of docs/controller.md says what `heartline controller` does: every flag the
 * command has is in it, and a literal default there is the code's default (commander's, or
 * DEFAULT_WORKERS for --workers, whose commander default is only the environment variable).
 */
import { readFileSync } from 'node:fs';
import { buildProgram } from '../../../src/cli/program.js';
import { DEFAULT_WORKERS } from '../../../src/controller/controller.js';

/** Rows of the markdown table whose first cell names flags: flag -> default cell. */
function documentedDefaults(file: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[1]?.startsWith('`--')) continue;
    for (const m of cells[1].matchAll(/`(--[a-z0-9-]+)`/g)) rows.set(m[1]!, cells[2] ?? '');
  }
  return rows;
}

describe('docs/controller.md flags table', () => {
  const rows = documentedDefaults('docs/controller.md');
  const controller = buildProgram().commands.find((c) => c.name() === 'controller')!;

  it('lists every flag of heartline controller, and no flag it does not have', () => {
    const flags = controller.options.map((o) => o.long!).sort();
    expect([...rows.keys()].sort()).toEqual(flags);
  });

  it("gives each literal default as the code's", () => {
    const wrong: string[] = [];
    for (const o of controller.options) {
      const doc = rows.get(o.long!) ?? '';
      const literals = [...doc.matchAll(/`([^`]*)`/g)].map((m) => m[1]!).filter((l) => !l.includes('$'));
      // Defaults that come from the environment or the host are documented in words.
      if (o.long === '--workers') {
        if (!literals.includes(String(DEFAULT_WORKERS)))
          wrong.push(`${o.long}: doc "${doc}", code ${DEFAULT_WORKERS}`);
        continue;
      }
      const d: unknown = o.defaultValue;
      if (typeof d !== 'string' || doc.includes('$') || o.long === '--identity') continue;
      if (!literals.includes(d)) wrong.push(`${o.long}: doc "${doc}", code "${d}"`);
    }
    expect(wrong).toEqual([]);
  });
});
