import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logTo } from '../../../hack/lab/sh.js';

/** Resolves once the child has exited and both of its pipes have closed. */
const closed = (child: ReturnType<typeof spawn>): Promise<void> =>
  new Promise((resolve) => child.once('close', () => resolve()));

describe('logTo (a lab process log: stdout and stderr into one file)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'heartline-logto-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  // The e2e failure this guards: a process closed stdout, then wrote its last lines to stderr.
  // With two default pipes the first end closed the file and the late write threw
  // "write after end" in the test process (CI, membership-change.test.ts).
  it('keeps the file open until both streams have ended, and loses no line', async () => {
    const log = join(dir, 'p.log');
    const child = spawn('sh', ['-c', 'echo out; exec 1>&-; sleep 0.1; echo late >&2; echo last >&2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const errors: unknown[] = [];
    const onError = (e: unknown): number => errors.push(e);
    process.on('uncaughtException', onError);
    try {
      logTo(child, log);
      await closed(child);
      await new Promise((r) => setTimeout(r, 50)); // the file stream's own flush and close
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(errors).toEqual([]);
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toEqual(['out', 'late', 'last']);
  });

  it('appends to an existing log and records a spawn failure instead of throwing', async () => {
    const log = join(dir, 'p.log');
    const first = spawn('sh', ['-c', 'echo one'], { stdio: ['ignore', 'pipe', 'pipe'] });
    logTo(first, log);
    await closed(first);
    await new Promise((r) => setTimeout(r, 50));
    const missing = spawn(join(dir, 'no-such-binary'), [], { stdio: ['ignore', 'pipe', 'pipe'] });
    logTo(missing, log);
    await closed(missing);
    await new Promise((r) => setTimeout(r, 50));
    const text = readFileSync(log, 'utf8');
    expect(text).toMatch(/^one\n/);
    expect(text).toMatch(/spawn failed: .*ENOENT/);
  });
});
