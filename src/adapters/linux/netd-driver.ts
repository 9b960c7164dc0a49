import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Millis, NetworkDriver, OwnedAddress } from '../../core/ports.js';
import { silentLogger } from '../../ops/log.js';
import { resolveNetdBinary } from './netd-binary.js';
import {
  absoluteDeadline,
  formatRequest,
  helloOwnerMode,
  hostOf,
  isSafeToken,
  NETD_OWNER_MODES,
  NETD_PROTOCOL_VERSION,
  parseAddressPairs,
  parseLine,
  type NetdOp,
  type NetdOwnerMode,
  type NetdOwnerModeChoice,
} from './netd-protocol.js';

/** A NetworkDriver operation that failed; names the operation, the address or interface, and why. */
export class NetdError extends Error {
  override readonly name = 'NetdError';
  constructor(
    /** The port operation: add, refresh, remove, list, sweep, announce, interfaceFor, linkUp, start. */
    readonly op: string,
    /** The address (CIDR / IP) or interface the operation was about, if any. */
    readonly target: string | undefined,
    /** What heartline-netd (or the pipe to it) reported. */
    readonly detail: string,
  ) {
    super(`heartline-netd ${op}${target ? ` ${target}` : ''}: ${detail}`);
  }
}

export interface NetdNetworkDriverInit {
  /**
   * Talk to an already running heartline-netd over this inherited file descriptor instead of
   * starting one: the agent was started by `heartline-netd --exec heartline agent ...`, which
   * sets HEARTLINE_NETD_FD (see docs/fence.md: how to run it in a container).
   */
  attachFd?: number;
  /** heartline-netd executable. Default: $HEARTLINE_NETD, else native/build/heartline-netd (built if missing). */
  binary?: string;
  /** Run heartline-netd in this network namespace (`ip netns exec NAME`), as the lab and tests do. */
  netns?: string;
  /**
   * `--owner-mode` of the heartline-netd started (docs/fence.md "Kernels"): how it marks its
   * addresses. Default: $HEARTLINE_NETD_OWNER_MODE, else `auto`. Ignored with `attachFd` (the
   * running netd was started with its own flags).
   */
  ownerMode?: NetdOwnerModeChoice;
  /** How long to wait for each reply. Default 2000 ms. */
  requestTimeoutMs?: Millis;
  /**
   * CLOCK_MONOTONIC now, ns, from which a fence deadline counts. Default `process.hrtime.bigint`
   * (libuv's hrtime is CLOCK_MONOTONIC on Linux, as netd's fence); tests inject a late one.
   */
  monotonicNs?: () => bigint;
  logger?: Logger;
  /** The fence removed an address at its deadline (the agent did not refresh it in time). */
  onExpired?: (addr: OwnedAddress) => void;
  /** heartline-netd exited without `close()`: the fence is gone, only kernel lifetimes remain. */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

interface LinkEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: string;
}

/** The link to heartline-netd: a child process's pipes, or an inherited socket. */
interface NetdLink {
  input: Writable;
  output: Readable;
  stderr?: Readable;
  pid: number | undefined;
  /** Resolves when heartline-netd has gone (exited, or closed the socket). */
  gone: Promise<LinkEnd>;
  kill(): void;
}

interface Pending {
  op: string;
  target: string | undefined;
  resolve: (fields: string[]) => void;
  reject: (err: NetdError) => void;
  timer: NodeJS.Timeout;
}

/**
 * The Linux NetworkDriver: a heartline-netd child process that owns the addresses (rtnetlink;
 * a kernel mark, IFA_PROTO 0x48 or on kernels before 5.18 a prefix-route metric, tells them
 * apart as Heartline's: see `ownerMode`), announces them (gratuitous ARP / unsolicited NA),
 * and fences them: it removes an address at its deadline unless refreshed, and removes all of
 * them when this process dies (EOF on its stdin) or on `close()`. Requests are serialized by
 * the child; each has a timeout. After the child exits every call rejects with NetdError.
 */
export class NetdNetworkDriver implements NetworkDriver {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stdoutBuf = '';
  private stderrBuf = '';
  private lastStderr = '';
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private mode: NetdOwnerMode | undefined;
  private closing = false;
  private readonly exitPromise: Promise<void>;
  private readonly log: Logger;
  private readonly timeoutMs: Millis;

  private constructor(
    private readonly link: NetdLink,
    private readonly init: NetdNetworkDriverInit,
  ) {
    this.log = (init.logger ?? silentLogger()).child({ component: 'netd', netns: init.netns });
    this.timeoutMs = init.requestTimeoutMs ?? 2000;
    this.exitPromise = link.gone.then(({ code, signal, error }) => {
      if (error) this.lastStderr ||= error;
      this.onChildExit(code, signal);
    });
    link.input.on('error', (err) => this.log.debug({ err }, 'netd input error'));
    link.output.setEncoding('utf8').on('data', (chunk: string) => this.onStdout(chunk));
    link.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.onStderr(chunk));
  }

  /**
   * Starts heartline-netd (or, with `attachFd`, attaches to the one that started this process)
   * and checks that it speaks this protocol version.
   */
  static async start(init: NetdNetworkDriverInit = {}): Promise<NetdNetworkDriver> {
    const driver = new NetdNetworkDriver(
      init.attachFd !== undefined ? attachLink(init.attachFd) : await spawnLink(init),
      init,
    );
    try {
      const hello = await driver.request('HELLO', 'start', undefined, []);
      if (hello[0] !== 'heartline-netd' || Number(hello[1]) !== NETD_PROTOCOL_VERSION)
        throw new NetdError(
          'start',
          undefined,
          `speaks '${hello.join(' ')}', expected heartline-netd protocol ${NETD_PROTOCOL_VERSION}: rebuild it with make -C native`,
        );
      driver.mode = helloOwnerMode(hello);
    } catch (err) {
      driver.link.kill();
      throw err;
    }
    driver.log.info(
      { netdPid: driver.pid, attached: init.attachFd !== undefined, ownerMode: driver.mode ?? 'unknown' },
      'heartline-netd ready',
    );
    return driver;
  }

  /**
   * `start`, attaching to the heartline-netd named by $HEARTLINE_NETD_FD when the agent runs
   * under `heartline-netd --exec`, else starting one as a child.
   */
  static fromEnvironment(init: Omit<NetdNetworkDriverInit, 'attachFd'> = {}): Promise<NetdNetworkDriver> {
    const fd = process.env.HEARTLINE_NETD_FD;
    if (fd === undefined || fd === '') return NetdNetworkDriver.start(init);
    if (!/^\d+$/.test(fd))
      return Promise.reject(
        new NetdError('start', undefined, `HEARTLINE_NETD_FD=${fd} is not a file descriptor number`),
      );
    return NetdNetworkDriver.start({ ...init, attachFd: Number(fd) });
  }

  /** Process id of heartline-netd (the same process when run through `ip netns exec`). */
  get pid(): number | undefined {
    return this.link.pid;
  }

  /**
   * How heartline-netd recognises its addresses on this kernel (reported in its HELLO):
   * `proto` (IFA_PROTO, Linux >= 5.18) or `fallback` (prefix-route metric mark, 5.4-5.17 or
   * forced). Undefined from a heartline-netd too old to report it.
   */
  get ownerMode(): NetdOwnerMode | undefined {
    return this.mode;
  }

  /** Whether heartline-netd is still running. */
  get alive(): boolean {
    return this.exited === undefined;
  }

  private monotonicNs(): bigint {
    return (this.init.monotonicNs ?? process.hrtime.bigint)();
  }

  async list(): Promise<OwnedAddress[]> {
    return parseAddressPairs(await this.request('LIST', 'list', undefined, []));
  }

  async add(addr: OwnedAddress, lifetimeSec: number, deadlineMs: Millis): Promise<void> {
    await this.request('ADD', 'add', addr.cidr, [
      addr.iface,
      addr.cidr,
      lifetime(lifetimeSec, 'add', addr.cidr),
      deadline(deadlineMs, 'add', addr.cidr, this.monotonicNs()),
    ]);
  }

  async refresh(addr: OwnedAddress, lifetimeSec: number, deadlineMs: Millis): Promise<void> {
    await this.request('RENEW', 'refresh', addr.cidr, [
      addr.cidr,
      lifetime(lifetimeSec, 'refresh', addr.cidr),
      deadline(deadlineMs, 'refresh', addr.cidr, this.monotonicNs()),
    ]);
  }

  async remove(addr: OwnedAddress): Promise<void> {
    await this.request('DEL', 'remove', addr.cidr, [addr.cidr]);
  }

  async sweep(): Promise<OwnedAddress[]> {
    return parseAddressPairs(await this.request('SWEEP', 'sweep', undefined, []));
  }

  async announce(addr: OwnedAddress, count: number, intervalMs: Millis): Promise<void> {
    if (!Number.isInteger(count) || count < 1 || count > 100)
      throw new NetdError('announce', addr.cidr, `count must be an integer in 1..100, got ${count}`);
    await this.request('ANNOUNCE', 'announce', addr.cidr, [
      addr.iface,
      hostOf(addr.cidr),
      count,
      Math.max(0, Math.round(intervalMs)),
    ]);
  }

  async interfaceFor(ip: string): Promise<string | undefined> {
    const fields = await this.request('IFACE', 'interfaceFor', ip, [hostOf(ip)]);
    return fields[0];
  }

  async linkUp(iface: string): Promise<boolean> {
    const fields = await this.request('LINK', 'linkUp', iface, [iface]);
    return fields[0] === 'up';
  }

  /**
   * Ends the pipe: heartline-netd removes every Heartline address and exits (when attached, it
   * sweeps and closes the socket, then waits for this process to exit).
   */
  async close(): Promise<void> {
    if (this.exited) return;
    this.closing = true;
    this.link.input.end();
    const timer = setTimeout(() => {
      this.log.warn({ pid: this.link.pid }, 'heartline-netd did not exit after close, killing it');
      this.link.kill();
    }, 5000);
    await this.exitPromise;
    clearTimeout(timer);
  }

  private request(
    op: NetdOp,
    portOp: string,
    target: string | undefined,
    args: (string | number)[],
  ): Promise<string[]> {
    if (this.exited || this.closing)
      return Promise.reject(
        new NetdError(portOp, target, this.closing ? 'driver is closed' : this.deathDetail()),
      );
    const id = this.nextId++;
    let line: string;
    try {
      line = formatRequest(op, id, args);
    } catch (err) {
      return Promise.reject(new NetdError(portOp, target, (err as Error).message));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new NetdError(portOp, target, `no reply within ${this.timeoutMs} ms (heartline-netd stuck?)`));
      }, this.timeoutMs);
      this.pending.set(id, { op: portOp, target, resolve, reject, timer });
      this.link.input.write(line);
    });
  }

  private onStdout(chunk: string): void {
    this.stdoutBuf += chunk;
    let nl: number;
    while ((nl = this.stdoutBuf.indexOf('\n')) >= 0) {
      const line = this.stdoutBuf.slice(0, nl);
      this.stdoutBuf = this.stdoutBuf.slice(nl + 1);
      this.onLine(line);
    }
  }

  private onLine(text: string): void {
    const line = parseLine(text);
    if (line.kind === 'expired') {
      this.log.warn({ addr: line.addr, lateMs: line.lateMs }, 'fence removed an address at its deadline');
      this.init.onExpired?.(line.addr);
      return;
    }
    if (line.kind === 'garbage' || line.id === undefined) {
      this.log.error({ line: text }, 'unexpected line from heartline-netd');
      return;
    }
    const p = this.pending.get(line.id);
    if (!p) {
      this.log.warn({ line: text }, 'late reply from heartline-netd (request timed out)');
      return;
    }
    this.pending.delete(line.id);
    clearTimeout(p.timer);
    if (line.kind === 'ok') p.resolve(line.fields);
    else p.reject(new NetdError(p.op, p.target, line.message));
  }

  private onStderr(chunk: string): void {
    this.stderrBuf += chunk;
    let nl: number;
    while ((nl = this.stderrBuf.indexOf('\n')) >= 0) {
      const line = this.stderrBuf.slice(0, nl).replace(/^heartline-netd: /, '');
      this.stderrBuf = this.stderrBuf.slice(nl + 1);
      this.lastStderr = line;
      if (line.startsWith('fence:')) this.log.warn({ netd: line }, 'heartline-netd fence');
      else this.log.info({ netd: line }, 'heartline-netd');
    }
  }

  private onChildExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = { code, signal };
    this.failAll(this.deathDetail());
    if (!this.closing) {
      this.log.error(
        { code, signal, last: this.lastStderr },
        'heartline-netd exited: only kernel lifetimes fence now',
      );
      this.init.onExit?.(code, signal);
    }
  }

  private deathDetail(): string {
    const how = this.exited?.signal
      ? `exited with signal ${this.exited.signal}`
      : this.exited?.code != null
        ? `exited with code ${this.exited.code}`
        : 'closed the connection';
    return `heartline-netd is not running (${how}${this.lastStderr ? `; last said: ${this.lastStderr}` : ''})`;
  }

  private failAll(detail: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new NetdError(p.op, p.target, detail));
    }
  }
}

function lifetime(sec: number, op: string, cidr: string): number {
  const s = Math.ceil(sec);
  if (!(s >= 1 && s <= 86400)) throw new NetdError(op, cidr, `lifetimeSec must be in (0, 86400], got ${sec}`);
  return s;
}

/**
 * The deadline as heartline-netd reads it: absolute on CLOCK_MONOTONIC, counted from `nowNs`
 * (read when the request is formatted, just before it is written), so the time the line
 * waits in the pipe and for netd to be scheduled does not move the fence later.
 */
function deadline(ms: Millis, op: string, cidr: string, nowNs: bigint): string {
  try {
    return absoluteDeadline(nowNs, ms);
  } catch (err) {
    throw new NetdError(op, cidr, (err as Error).message);
  }
}

async function spawnLink(init: NetdNetworkDriverInit): Promise<NetdLink> {
  const binary = await resolveNetdBinary(init.binary);
  if (init.netns !== undefined && !isSafeToken(init.netns))
    throw new NetdError('start', init.netns, 'netns must be a namespace name without spaces');
  if (init.ownerMode !== undefined && !(NETD_OWNER_MODES as readonly string[]).includes(init.ownerMode))
    throw new NetdError(
      'start',
      undefined,
      `ownerMode must be one of ${NETD_OWNER_MODES.join(', ')}, got ${JSON.stringify(init.ownerMode)}`,
    );
  const flags = init.ownerMode ? [`--owner-mode=${init.ownerMode}`] : [];
  const [cmd, args] = init.netns ? ['ip', ['netns', 'exec', init.netns, binary, ...flags]] : [binary, flags];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const gone = new Promise<LinkEnd>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // spawn failures (ENOENT) emit 'error' and maybe no 'exit'
    child.once('error', (err) => resolve({ code: child.exitCode ?? 127, signal: null, error: err.message }));
  });
  return {
    input: child.stdin,
    output: child.stdout,
    stderr: child.stderr,
    pid: child.pid,
    gone,
    kill: () => child.kill('SIGKILL'),
  };
}

function attachLink(fd: number): NetdLink {
  const socket = new Socket({ fd, readable: true, writable: true });
  const gone = new Promise<LinkEnd>((resolve) => {
    socket.once('close', () => resolve({ code: null, signal: null }));
  });
  socket.on('error', () => undefined); // surfaces as 'close'
  return { input: socket, output: socket, pid: process.ppid, gone, kill: () => socket.destroy() };
}
