import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Argv, Clock, Millis } from '../../core/ports.js';
import { resourceEnv, withIdentity, withLauncher, type Launcher, type ResourceIdentity } from './sandbox.js';

export interface CommandOptions {
  timeoutMs: Millis;
  /** Added to the minimal environment (PATH, LANG); the agent's own is never passed on. */
  env?: Readonly<Record<string, string>>;
  /** Working directory; default "/". */
  cwd?: string;
}

/** Who Resource processes run as. */
export interface SpawnInit {
  /**
   * Run every process as this user and group with no capabilities (through setpriv, see
   * sandbox.ts). null: as this process, with its privileges: only for tests that run
   * unprivileged already.
   */
  identity: ResourceIdentity | null;
  /** setpriv binary; default /usr/bin/setpriv. */
  setpriv?: string;
  /**
   * heartline-netd's launcher: when set, netd starts every process as `launcher.identity`
   * (and `identity`, which the caller sets to the same, is only what the self-check expects).
   */
  launcher?: Launcher;
}

/** The stdio array with the launcher socket passed on at its own number. */
function stdioWithLauncher(stdio: StdioOptions, fd: number): StdioOptions {
  const base = typeof stdio === 'string' ? [stdio, stdio, stdio] : [...stdio];
  while (base.length < fd) base.push('ignore');
  base[fd] = fd;
  return base;
}

/**
 * Starts `argv` as a Resource process: no shell, a new process group (so that the whole group
 * can be killed), the minimal environment, and `init.identity`.
 */
export function spawnResource(
  argv: readonly string[],
  options: { env?: Readonly<Record<string, string>>; cwd?: string; stdio: StdioOptions },
  init: SpawnInit,
): ChildProcess {
  const full = init.launcher
    ? withLauncher(argv, init.launcher)
    : init.identity
      ? withIdentity(argv, init.identity, init.setpriv)
      : [...argv];
  const [file, ...args] = full;
  return spawn(file!, args, {
    env: resourceEnv(options.env),
    cwd: options.cwd ?? '/',
    detached: true,
    shell: false,
    stdio: init.launcher ? stdioWithLauncher(options.stdio, init.launcher.fd) : options.stdio,
  });
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

/** The real CommandRunner: spawnResource, detached into a new process group. */
export class SpawnCommandRunner implements CommandRunner {
  constructor(
    private readonly components: { clock: Clock },
    private readonly init: SpawnInit,
  ) {}

  run(argv: Argv, options: CommandOptions): Promise<CommandResult> {
    const { clock } = this.components;
    const started = clock.now();
    return new Promise((resolve) => {
      if (argv.length === 0) {
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
      const child = spawnResource(argv, { ...options, stdio: ['ignore', 'pipe', 'pipe'] }, this.init);
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const timer = clock.after(options.timeoutMs, () => {
        timedOut = true;
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
        // Whatever still holds the pipes (a process the command left behind in a group that is
        // not the one just killed, e.g. after it exited through the launcher) must not keep
        // this promise open past the timeout.
        child.stdout!.destroy();
        child.stderr!.destroy();
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

/**
 * Runs one process exactly as Resource processes run (spawnResource with `init`) that prints
 * its own /proc/self/status, and returns that text, or why it could not.
 */
export function selfStatusAs(
  init: SpawnInit,
  timeoutMs: Millis,
): Promise<{ ok: true; status: string } | { ok: false; problem: string }> {
  return new Promise((resolve) => {
    // Through the launcher the test process is heartline-netd itself (the image has no cat).
    const child = spawnResource(
      init.launcher ? [init.launcher.binary, '--self-status'] : ['/bin/cat', '/proc/self/status'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
      init,
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-OUTPUT_TAIL)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let spawnError: string | undefined;
    child.on('error', (e: NodeJS.ErrnoException) => (spawnError = e.code ?? e.message));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ ok: true, status: out });
      else
        resolve({
          ok: false,
          problem: `${spawnError ? `could not run: ${spawnError}` : signal ? `killed by ${signal}` : `exit ${code}`}${err.trim() ? `: ${err.trim()}` : ''}`,
        });
    });
  });
}
