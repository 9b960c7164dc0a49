/**
 * `kubectl heartline ...` in the lab, as a user runs it: kubectl (in the control-plane
 * namespace, which reaches the API server and every node's agent endpoints) finds the
 * heartline binary on PATH as kubectl-heartline. The lab's "installation" is a wrapper
 * script in the run's log directory that runs src/cli/main.ts with tsx.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Writes `<dir>/bin/kubectl-heartline` and returns that bin directory. */
export function installPlugin(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const file = join(bin, 'kubectl-heartline');
  writeFileSync(
    file,
    `#!/bin/sh\n# kubectl heartline: the heartline CLI (src/cli/main.ts) run by tsx.\ncd "${ROOT}" || exit 1\nexec "${process.execPath}" --import tsx "${join(ROOT, 'src', 'cli', 'main.ts')}" "$@"\n`,
  );
  chmodSync(file, 0o755);
  return bin;
}

/**
 * Runs `kubectl heartline ARGS --kubeconfig KUBECONFIG` inside `netns`. Resolves with the exit
 * code and output; never throws for a non-zero exit.
 */
export function kubectlHeartline(
  c: { lab: { cp: { ns: string } }; kubeconfig: string; logDir: string },
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const bin = installPlugin(c.logDir);
  const start = performance.now();
  return new Promise((res, rej) => {
    const child = spawn(
      'ip',
      ['netns', 'exec', c.lab.cp.ns, 'kubectl', 'heartline', ...args, '--kubeconfig', c.kubeconfig],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: timeoutMs,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code: code ?? 1, stdout, stderr, ms: performance.now() - start }));
  });
}
