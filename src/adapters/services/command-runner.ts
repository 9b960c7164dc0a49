import { spawn } from 'node:child_process';
import type { Argv, Clock, Millis } from '../../core/ports.js';

export interface CommandOptions {
  timeoutMs: Millis;
  /** Added to (and overriding) the agent's own environment. */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
}

export interface CommandResult {
  /** Exit code, or null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Set when the program could not be started (e.g. ENOENT). */
  spawnError?: string;
  /** The last bytes of stdout and stderr together, trimmed. */
  output: string;
  durationMs: Millis;
}

/**
 * Runs a command to completion. Never rejects. The command runs without a shell, in its own
 * process group; at the timeout the whole group gets SIGKILL, so children it forked die too.
 */
export interface CommandRunner {
  run(argv: Argv, options: CommandOptions): Promise<CommandResult>;
}

const OUTPUT_TAIL = 512;

/** Sends `signal` to the process group led by `pid`; false if it is already gone. */
export function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** The real CommandRunner: node:child_process spawn, detached into a new process group. */
export class SpawnCommandRunner implements CommandRunner {
  constructor(private readonly components: { clock: Clock }) {}

  run(argv: Argv, options: CommandOptions): Promise<CommandResult> {
    const { clock } = this.components;
    const started = clock.now();
    return new Promise((resolve) => {
      const [file, ...args] = argv;
      if (!file) {
        resolve({
          code: null,
          signal: null,
          timedOut: false,
          spawnError: 'empty command',
          output: '',
          durationMs: 0,
        });
        return;
      }
      let output = '';
      const keep = (chunk: Buffer): void => {
        output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
      };
      let timedOut = false;
      let spawnError: string | undefined;
      const child = spawn(file, args, {
        env: { ...process.env, ...options.env },
        cwd: options.cwd,
        detached: true,
        shell: false,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = clock.after(options.timeoutMs, () => {
        timedOut = true;
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        spawnError = err.code ?? err.message;
      });
      child.on('close', (code, signal) => {
        timer.stop();
        resolve({
          code,
          signal,
          timedOut,
          ...(spawnError !== undefined ? { spawnError } : {}),
          output: output.trim(),
          durationMs: clock.now() - started,
        });
      });
    });
  }
}

/** One line describing how a command ended, for RunResult.detail. */
export function describeExit(r: CommandResult, timeoutMs: Millis): string {
  if (r.spawnError) return `could not run: ${r.spawnError}`;
  if (r.timedOut) return `timed out after ${timeoutMs} ms; process group killed`;
  if (r.signal) return `killed by ${r.signal}`;
  return `exit ${r.code}`;
}
