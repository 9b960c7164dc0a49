/**
 * The process-level handler (src/ops/crash.ts) in a real child process: an uncaught
 * exception or an unhandled rejection is logged as one fatal JSON line naming the error,
 * and the process exits with EXIT_BUG, not with Node's default crash.
 */
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { EXIT_BUG } from '../../../src/ops/crash.js';

jest.setTimeout(60_000);

function run(how: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'test/unit/ops/crash-child.ts', how],
      { timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('exitOnBug', () => {
  it.each([
    ['rejection', 'unhandledRejection', 'boom: rejected'],
    ['exception', 'uncaughtException', 'boom: thrown'],
  ])(
    'an unhandled %s (%s): one fatal log line naming the error, then exit EXIT_BUG',
    async (how, kind, message) => {
      const r = await run(how);
      expect(r.code).toBe(EXIT_BUG);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { level: number; kind: string; msg: string; err: { message: string } });
      expect(lines).toEqual([
        expect.objectContaining({
          level: 60,
          kind,
          err: expect.objectContaining({ message }),
          msg: expect.stringContaining('uncaught error (a bug)'),
        }),
      ]);
      expect(r.stderr).toBe('');
    },
  );

  it('a process without failures exits 0', async () => {
    expect(await run('none')).toMatchObject({ code: 0, stdout: '' });
  });
});
