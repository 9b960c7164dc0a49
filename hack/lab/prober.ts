/**
 * The client's view of a VIP: an HTTP GET to `http://VIP:PORT/` at a fixed rate (100 Hz by
 * default), each on a new TCP connection, expecting the body to be the answering node's
 * name. Runs as a child process inside the client namespace and streams one JSON line per
 * probe to the parent, which maps the child's timestamps onto its own clock (see clock.ts).
 *
 * Standalone (prints JSON lines until SIGTERM or stdin closes):
 *   ip netns exec hl-<id>-client node --import tsx hack/lab/prober.ts --target 198.18.0.100
 */
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { labNow, offsetFrom, type ClockOffset, type SyncExchange } from './clock.js';
import { nsSpawn } from './sh.js';

/** One probe as the client saw it. */
export interface ProbeRecord {
  /** When the probe started (TCP connect issued), on the lab clock (ms). */
  t: number;
  /** Time from start to the reply (ok) or to the failure. */
  ms: number;
  ok: boolean;
  /** Body of a 200 reply: the answering node's name. */
  node?: string;
  /**
   * Why it failed: `connect-timeout`, `timeout`, `http-<status>`, `bad-response`, or a socket
   * error code (ECONNREFUSED, EHOSTUNREACH, ECONNRESET, ...).
   */
  error?: string;
}

export interface ProbeTarget {
  target: string;
  port?: number;
  /** Connect timeout, ms (default 50). */
  connectTimeoutMs?: number;
  /** Total timeout from start to full reply, ms (default 100). */
  timeoutMs?: number;
}

/** Runs one probe. Never rejects. `now` is the clock to stamp it with. */
export function probeOnce(opts: ProbeTarget, now: () => number = labNow): Promise<ProbeRecord> {
  const port = opts.port ?? 8080;
  const t = now();
  return new Promise((resolve) => {
    let done = false;
    const chunks: Buffer[] = [];
    const sock = connect({ host: opts.target, port, noDelay: true });
    const finish = (r: { ok: true; node: string } | { ok: false; error: string }): void => {
      if (done) return;
      done = true;
      clearTimeout(connectTimer);
      clearTimeout(totalTimer);
      sock.destroy();
      resolve({ t, ms: now() - t, ...r });
    };
    const connectTimer = setTimeout(
      () => finish({ ok: false, error: 'connect-timeout' }),
      opts.connectTimeoutMs ?? 50,
    );
    const totalTimer = setTimeout(() => finish({ ok: false, error: 'timeout' }), opts.timeoutMs ?? 100);
    sock.once('connect', () => {
      clearTimeout(connectTimer);
      sock.write(`GET / HTTP/1.1\r\nHost: ${opts.target}:${port}\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.once('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text);
      const sep = text.indexOf('\r\n\r\n');
      if (!m || sep < 0) return finish({ ok: false, error: 'bad-response' });
      if (m[1] !== '200') return finish({ ok: false, error: `http-${m[1]}` });
      finish({ ok: true, node: text.slice(sep + 4) });
    });
    sock.once('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }));
  });
}

export interface ProberOptions extends ProbeTarget {
  /** Namespace to probe from (the lab's client namespace). */
  ns: string;
  /** Probes per second (default 100). Probes start on a fixed schedule and may overlap. */
  hz?: number;
  /** Called for each record as it arrives (already on the parent's clock). */
  onRecord?: (r: ProbeRecord) => void;
}

/** A running prober child. */
export interface Prober {
  /** Every record so far, on the parent's lab clock, in arrival order (sort by `t` for start order). */
  readonly records: ProbeRecord[];
  /** Offset added to the child's stamps, and its error bound (half the best round trip). */
  readonly clock: ClockOffset;
  /** Pid of the prober process (in the client namespace). */
  readonly pid: number;
  /** Stops probing, waits for in-flight probes to report, and resolves with all records. */
  stop(): Promise<ProbeRecord[]>;
}

const SELF = fileURLToPath(import.meta.url);
/** Repository root: `--import tsx` resolves from the child's working directory. */
const ROOT = resolve(dirname(SELF), '..', '..');

/**
 * Starts a prober child in `opts.ns`. Resolves once the clocks are aligned and the first
 * probe is scheduled; rejects (and kills the child) if that takes longer than 15 s.
 */
export async function startProber(opts: ProberOptions): Promise<Prober> {
  const args = [
    '--import',
    'tsx',
    SELF,
    '--target',
    opts.target,
    '--port',
    String(opts.port ?? 8080),
    '--hz',
    String(opts.hz ?? 100),
    '--connect-timeout',
    String(opts.connectTimeoutMs ?? 50),
    '--timeout',
    String(opts.timeoutMs ?? 100),
  ];
  const child = nsSpawn(opts.ns, process.execPath, args, {
    instrument: true,
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const records: ProbeRecord[] = [];
  const exchanges: SyncExchange[] = [];
  const aligned: { clock?: ClockOffset } = {};
  let syncWaiter: ((e: SyncExchange) => void) | undefined;
  let sentAt = 0;
  let started: (() => void) | undefined;
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));

  createInterface({ input: child.stdout! }).on('line', (line) => {
    const received = labNow();
    let msg: { type?: string } & Record<string, unknown>;
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (msg.type === 'sync' && syncWaiter) {
      syncWaiter({ sent: sentAt, received, child: Number(msg.t) });
    } else if (msg.type === 'started') {
      started?.();
    } else if (msg.type === 'probe' && aligned.clock) {
      const r = msg as unknown as ProbeRecord & { type?: string };
      const rec: ProbeRecord = { t: r.t + aligned.clock.offsetMs, ms: r.ms, ok: r.ok };
      if (r.node !== undefined) rec.node = r.node;
      if (r.error !== undefined) rec.error = r.error;
      records.push(rec);
      opts.onRecord?.(rec);
    }
  });

  const fail = (why: string): Error => {
    child.kill('SIGKILL');
    return new Error(
      `prober in ${opts.ns} for ${opts.target}: ${why}${stderr ? `; stderr: ${stderr.trim()}` : ''}`,
    );
  };
  let dead = false;
  void exited.then(() => (dead = true));
  const within = async <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        exited.then(() => Promise.reject(new Error('exited'))),
        new Promise<T>((_, rej) => (timer = setTimeout(() => rej(new Error('timeout')), ms))),
      ]);
    } catch {
      throw fail(dead ? `exited during ${what}` : `${what} took over ${ms} ms`);
    } finally {
      clearTimeout(timer);
    }
  };

  // Wait for the child to answer at all (tsx startup), then measure the offset.
  for (let i = 0; i < 12; i++) {
    const got = new Promise<SyncExchange>((resolve) => (syncWaiter = resolve));
    sentAt = labNow();
    child.stdin!.write(`sync\n`);
    exchanges.push(await within(got, i === 0 ? 15_000 : 1000, 'clock sync'));
    await new Promise((r) => setTimeout(r, 5));
  }
  const clock = offsetFrom(exchanges.slice(2));
  aligned.clock = clock;
  const go = new Promise<void>((resolve) => (started = resolve));
  child.stdin!.write('start\n');
  await within(go, 2000, 'start');

  const pid = child.pid!;
  return {
    records,
    clock,
    pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin!.end();
        const t = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(t);
      }
      return records;
    },
  };
}

// ---------------------------------------------------------------- child side

function parseArgs(argv: string[]): Required<ProbeTarget> & { hz: number } {
  const num = (flag: string, dflt: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return dflt;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0)
      throw new Error(`prober: ${flag} ${argv[i + 1]} must be a positive number`);
    return v;
  };
  const ti = argv.indexOf('--target');
  const target = ti >= 0 ? argv[ti + 1] : undefined;
  if (!target) throw new Error('prober: --target is required (the VIP to probe, e.g. --target 198.18.0.100)');
  return {
    target,
    port: num('--port', 8080),
    hz: num('--hz', 100),
    connectTimeoutMs: num('--connect-timeout', 50),
    timeoutMs: num('--timeout', 100),
  };
}

/**
 * Child main. Protocol on stdin: `sync` → `{"type":"sync","t":labNow}`; `start` → begins
 * probing and answers `{"type":"started"}`; end of stdin → stops scheduling, waits for
 * in-flight probes, exits. Without a parent (stdin is a TTY or `--now`), starts at once.
 */
function childMain(): void {
  const o = parseArgs(process.argv.slice(2));
  const period = 1000 / o.hz;
  const out = (obj: object): void => {
    process.stdout.write(`${JSON.stringify(obj)}\n`);
  };
  let timer: NodeJS.Timeout | undefined;
  let inflight = 0;
  let stopping = false;
  const maybeExit = (): void => {
    if (stopping && inflight === 0) process.exit(0);
  };
  const start = (): void => {
    if (timer) return;
    const t0 = performance.now();
    let k = 0;
    const tick = (): void => {
      inflight++;
      void probeOnce(o).then((r) => {
        inflight--;
        out({ type: 'probe', ...r });
        maybeExit();
      });
      // Next slot on the fixed grid; if we fell behind (GC, CPU), skip to the next future slot.
      k = Math.max(k + 1, Math.ceil((performance.now() - t0) / period));
      timer = setTimeout(tick, Math.max(0, t0 + k * period - performance.now()));
    };
    tick();
    out({ type: 'started' });
  };
  const stop = (): void => {
    stopping = true;
    if (timer) clearTimeout(timer);
    maybeExit();
  };
  if (process.stdin.isTTY || process.argv.includes('--now')) start();
  createInterface({ input: process.stdin })
    .on('line', (l) => {
      if (l === 'sync') out({ type: 'sync', t: labNow() });
      else if (l === 'start') start();
    })
    .on('close', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    childMain();
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
}
