/**
 * Process helpers for the lab: run `ip` and friends, enter namespaces, find and signal the
 * processes living in a namespace. Every command is logged on failure with its full argv.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, readdir, readlink, stat } from 'node:fs/promises';

/** A command that exited non-zero. `stderr` is kept so callers can tell "already exists" apart. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | string | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')} failed (${String(code)}): ${stderr.trim()}`);
    this.name = 'CommandError';
  }
}

/** Runs `cmd args...`, resolves with stdout; rejects with a CommandError carrying stderr. */
export function run(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code ?? null;
        reject(new CommandError([cmd, ...args], code, String(stderr || err.message)));
      } else resolve(String(stdout));
    });
  });
}

/** `ip args...` (root namespace tool; pass `-n NS` to act inside a namespace). */
export function ip(...args: string[]): Promise<string> {
  return run('ip', args);
}

/** Runs `cmd args...` inside network namespace `ns` and resolves with its stdout. */
export function nsRun(ns: string, cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
}

/**
 * Environment marker for lab instruments (sampler, prober). `powerOff` spares processes that
 * carry it, so measuring a node does not die with the node.
 */
export const INSTRUMENT_ENV = 'HEARTLINE_LAB_INSTRUMENT';

/**
 * Spawns `cmd args...` inside namespace `ns` (via `ip netns exec`). The child is a plain
 * ChildProcess; kill it with `child.kill()`. With `instrument: true` the process is marked so
 * that `powerOff` spares it.
 */
export function nsSpawn(
  ns: string,
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions & { instrument?: boolean } = {},
): ChildProcess {
  const { instrument, ...spawnOpts } = opts;
  const env = { ...process.env, ...(spawnOpts.env ?? {}) };
  if (instrument) env[INSTRUMENT_ENV] = '1';
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'pipe', ...spawnOpts, env });
}

/**
 * Appends a child's stdout and stderr to the log file `path`, and closes the file once both have
 * ended. (Two `pipe`s into one file with the default `end: true` end the file when the first
 * stream ends; the other stream's last lines then throw "write after end".) Write errors on the
 * log are ignored: a log must never fail the run it records.
 */
export function logTo(child: ChildProcess, path: string): void {
  const out = createWriteStream(path, { flags: 'a' });
  out.on('error', () => undefined);
  const streams = [child.stdout, child.stderr].filter((s) => s !== null);
  let open = streams.length;
  if (open === 0) out.end();
  for (const s of streams) {
    s.pipe(out, { end: false });
    s.once('close', () => {
      if (--open === 0) out.end();
    });
  }
  child.once('error', (err) => {
    if (!out.writableEnded) out.write(`spawn failed: ${String(err)}\n`);
  });
}

/** Names of all network namespaces known to `ip netns` (first word of each line). */
export async function netnsList(): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

/**
 * Pids of processes whose network namespace is `ns`. Reads /proc directly (what `ip netns
 * pids` does) so it can be called often without a fork. Zombies have no namespace and are
 * not listed.
 */
export async function nsPids(ns: string): Promise<number[]> {
  let target: { dev: number; ino: number };
  try {
    const s = await stat(`/run/netns/${ns}`);
    target = { dev: s.dev, ino: s.ino };
  } catch {
    return [];
  }
  const want = `net:[${target.ino}]`;
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readlink(`/proc/${entry}/ns/net`)) === want) pids.push(Number(entry));
    } catch {
      // exited or a kernel thread
    }
  }
  return pids;
}

/** Whether process `pid` was started with the instrument marker in its environment. */
export async function isInstrument(pid: number): Promise<boolean> {
  try {
    const env = await readFile(`/proc/${pid}/environ`, 'latin1');
    return env.split('\0').includes(`${INSTRUMENT_ENV}=1`);
  } catch {
    return false;
  }
}

/** Sends `signal` to `pid`, ignoring "no such process". */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * SIGKILLs every process in `ns` (except instruments when `spareInstruments`), freezing them
 * first with SIGSTOP so none can fork or react while the rest are killed, and repeats until
 * the namespace holds no such process (at most `timeoutMs`). Returns the pids killed.
 */
export async function killNamespace(
  ns: string,
  spareInstruments: boolean,
  timeoutMs = 3000,
): Promise<number[]> {
  const killed = new Set<number>();
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let pids = await nsPids(ns);
    pids = pids.filter((p) => p !== process.pid);
    if (spareInstruments) {
      const keep = await Promise.all(pids.map(isInstrument));
      pids = pids.filter((_, i) => !keep[i]);
    }
    if (pids.length === 0) return [...killed];
    if (performance.now() > deadline) {
      throw new Error(`namespace ${ns}: processes ${pids.join(',')} survived SIGKILL for ${timeoutMs} ms`);
    }
    for (const p of pids) signal(p, 'SIGSTOP');
    for (const p of pids) {
      signal(p, 'SIGKILL');
      killed.add(p);
    }
    await sleep(10);
  }
}

/**
 * Calls `stop` on the first SIGINT or SIGTERM and ignores later ones: a second signal (npx
 * forwards the terminal's, a second Ctrl-C) must not kill the process halfway through its
 * teardown and leave namespaces behind. `stop` ends the process itself.
 */
export function onStopSignal(stop: (sig: NodeJS.Signals) => void): void {
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) {
        process.stderr.write(`${sig}: still tearing down\n`);
        return;
      }
      stopping = true;
      stop(sig);
    });
  }
}
