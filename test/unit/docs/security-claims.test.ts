/**
 * docs/security.md names a test for every claim. This keeps the names true: every test file
 * the page names exists, and every quoted test name in a "test(s)" column is found (up to an
 * ellipsis, which the page uses to shorten long names) in a file under test/.
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const PAGE = readFileSync('docs/security.md', 'utf8');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|mjs|py)$/.test(n) ? [p] : [];
  });
}
const TEST_FILES = files('test');
const TEST_TEXT = TEST_FILES.map((f) => readFileSync(f, 'utf8')).join('\n');

/** The last cell of every table row whose header's last column is "test" or "tests". */
function testCells(): string[] {
  const cells: string[] = [];
  let inTestTable = false;
  for (const line of PAGE.split('\n')) {
    if (!line.startsWith('|')) {
      inTestTable = false;
      continue;
    }
    const parts = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    const last = parts.at(-1) ?? '';
    if (/^tests?$/.test(last)) {
      inTestTable = true;
      continue;
    }
    if (inTestTable && !/^-+$/.test(last)) cells.push(last);
  }
  return cells;
}

describe('docs/security.md', () => {
  const cells = testCells();

  it('has claim tables with a test for every claim', () => {
    expect(cells.length).toBeGreaterThan(25);
    for (const c of cells) expect(c).not.toBe('');
  });

  it('names test files that exist', () => {
    const paths = [...PAGE.matchAll(/`?(test\/[\w/.-]+\.(?:ts|py))`?/g)].map((m) => m[1]!);
    expect(paths.length).toBeGreaterThan(10);
    const missing = [...new Set(paths)].filter((p) => !existsSync(p));
    expect(missing).toEqual([]);
    // Short names (`deploy.test.ts`) refer to a file under test/.
    const short = [...PAGE.matchAll(/`([\w-]+\.test\.ts)`/g)].map((m) => m[1]!);
    const unknown = [...new Set(short)].filter((n) => !TEST_FILES.some((f) => f.endsWith(`/${n}`)));
    expect(unknown).toEqual([]);
  });

  it('quotes test names that are found in the tests', () => {
    const names = cells.flatMap((c) => [...c.matchAll(/"([^"]{8,})"/g)].map((m) => m[1]!));
    expect(names.length).toBeGreaterThan(25);
    const notFound = names
      .map((n) => n.split('…')[0]!.replace(/\\"/g, '"').trim())
      .filter((n) => n.length >= 8 && !TEST_TEXT.includes(n));
    expect(notFound).toEqual([]);
  });
});
