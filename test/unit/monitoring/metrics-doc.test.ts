/**
 * docs/metrics.md lists exactly the metric families the agent and the controller register,
 * each with its real type and labels.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registeredFamilies } from './families.js';

const DOC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'metrics.md');

interface Row {
  name: string;
  type: string;
  labels: string[];
  meaning: string;
}

/** Table rows whose first cell is a metric name in backticks. */
function documented(): Row[] {
  const rows: Row[] = [];
  for (const line of readFileSync(DOC, 'utf8').split('\n')) {
    const m = /^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|([^|]*)\|([^|]*)\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    const labels = [...m[3]!.matchAll(/`([a-z_][a-z0-9_]*)`/g)].map((l) => l[1]!);
    rows.push({ name: m[1]!, type: m[2]!.trim(), labels, meaning: m[4]!.trim() });
  }
  return rows;
}

describe('docs/metrics.md', () => {
  it('has one row per registered family (agent and controller), with its type and labels', async () => {
    const rows = documented();
    const names = rows.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    const families = await registeredFamilies();
    expect([...names].sort()).toEqual(families.map((f) => f.name).sort());
    for (const f of families) {
      const row = rows.find((r) => r.name === f.name)!;
      expect({ name: f.name, type: row.type, labels: [...row.labels].sort() }).toEqual({
        name: f.name,
        type: f.type,
        labels: [...f.labels].sort(),
      });
      expect(row.meaning.length).toBeGreaterThan(10);
    }
  });
});
