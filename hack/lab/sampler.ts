/**
 * Which VIPs each node has bound on a live link, over time: the ground truth for "two
 * holders" and "no holder".
 *
 * Method, per node namespace: one long-lived `ip -n NS -j -force -batch -` process answers an
 * `addr show` written to its stdin with one JSON line (measured ≈0.4 ms round trip, no fork
 * per sample), polled every `intervalMs` (20 ms); and one `ip -n NS monitor address link`
 * process whose every line (an address or link change, delivered by rtnetlink) triggers an
 * immediate extra poll. So a change is seen within about a millisecond of the kernel making
 * it, and the periodic poll is a safety net if an event is lost. Samples are stamped with
 * the parent's lab clock at the moment the poll was written (see clock.ts).
 *
 * Snapshot on change: when a node's sample shows a different set of VIPs than its previous
 * one, every other node is polled at once. Their polls are written after that reply came
 * back, so they read the other nodes' state *after* the change was read: a real overlap (the
 * new holder bound while the old one still is) shows as a sample of the old holder, bound,
 * stamped after the new holder's read, which analyze.ts's `provenOverlap` counts. Without it
 * the old holder's last bound sample could be up to a poll period old and the overlap would
 * rest only on the order in which two `ip monitor` lines reached this process.
 *
 * Both helper processes live in the node's namespace and carry the instrument marker, so
 * `powerOff` spares them; `down` kills them with the lab.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { labNow } from './clock.js';
import { INSTRUMENT_ENV } from './sh.js';
import { VIP_FIRST, VIP_LAST } from './topology.js';

/** What one node had at one instant. */
export interface AddressSample {
  /** Lab clock (ms) when the state was read (poll written to `ip`). */
  t: number;
  /** Node name (`n1`). */
  node: string;
  /** VIP addresses (no prefix length) bound on interfaces that are up with carrier. */
  live: string[];
  /** VIP addresses bound on interfaces that are down or without carrier. */
  dead: string[];
  /** How long the poll took (write to JSON line received), ms: the sample's timing uncertainty. */
  lat: number;
}

export interface SamplerOptions {
  /** Nodes to watch: name and namespace (a Lab's `nodes` fit). */
  nodes: ReadonlyArray<{ name: string; ns: string }>;
  /** Poll period, ms (default 20). */
  intervalMs?: number;
  /** Which addresses count as VIPs (default: the lab's VIP range 198.18.0.100-199). */
  isVip?: (ip: string) => boolean;
  /** Also poll on rtnetlink change events (default true). */
  events?: boolean;
  /** Poll every other node when one node's VIPs change (default true; see the header). */
  snapshotOnChange?: boolean;
}

export interface SamplerStats {
  polls: number;
  events: number;
  /** Polls of every node caused by a change on one. */
  snapshots: number;
  /** Poll round trip, ms. */
  latP50: number;
  latP99: number;
  latMax: number;
}

export interface Sampler {
  /** All samples so far, in time order per node. */
  readonly samples: AddressSample[];
  stats(): SamplerStats;
  /** Stops polling, kills the helper processes, resolves with all samples. */
  stop(): Promise<AddressSample[]>;
}

function ipToInt(a: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (!m) return undefined;
  return m.slice(1).reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** Whether `ip` lies in the lab's VIP range (198.18.0.100 - 198.18.0.199). */
export function inVipRange(ipAddr: string): boolean {
  const v = ipToInt(ipAddr);
  return v !== undefined && v >= ipToInt(VIP_FIRST)! && v <= ipToInt(VIP_LAST)!;
}

interface IpLink {
  ifname: string;
  flags?: string[];
  operstate?: string;
  addr_info?: Array<{ family: string; local: string }>;
}

/** Splits `ip -j addr show` output into VIPs on live and on dead links. Pure. */
export function classify(
  links: readonly IpLink[],
  isVip: (ip: string) => boolean,
): { live: string[]; dead: string[] } {
  const live: string[] = [];
  const dead: string[] = [];
  for (const l of links) {
    const flags = l.flags ?? [];
    const up =
      flags.includes('UP') &&
      flags.includes('LOWER_UP') &&
      !flags.includes('NO-CARRIER') &&
      (l.operstate === 'UP' || l.operstate === 'UNKNOWN');
    for (const a of l.addr_info ?? []) {
      if (isVip(a.local)) (up ? live : dead).push(a.local);
    }
  }
  return { live: live.sort(), dead: dead.sort() };
}

class NodeWatch {
  private readonly batch: ChildProcess;
  private readonly monitor: ChildProcess | undefined;
  private sentAt: number | undefined;
  private dirty = false;
  private lastLive: string | undefined;
  stopped = false;
  polls = 0;
  events = 0;
  readonly lats: number[] = [];
  firstSample: Promise<void>;
  private gotFirst!: () => void;

  constructor(
    readonly name: string,
    readonly ns: string,
    private readonly isVip: (ip: string) => boolean,
    private readonly emit: (s: AddressSample) => void,
    events: boolean,
    private readonly onChange: (w: NodeWatch) => void = () => undefined,
  ) {
    this.firstSample = new Promise((r) => (this.gotFirst = r));
    const env = { ...process.env, [INSTRUMENT_ENV]: '1' };
    this.batch = spawn('ip', ['-n', ns, '-j', '-force', '-batch', '-'], {
      env,
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.batch.stdin!.on('error', () => undefined);
    createInterface({ input: this.batch.stdout! }).on('line', (line) => this.onReply(line));
    if (events) {
      this.monitor = spawn('ip', ['-n', ns, 'monitor', 'address', 'link'], {
        env,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      createInterface({ input: this.monitor.stdout! }).on('line', () => {
        this.events++;
        this.poll();
      });
    }
  }

  /** Writes one `addr show`, unless one is in flight (then another follows it at once). */
  poll(): void {
    if (this.stopped) return;
    if (this.sentAt !== undefined) {
      this.dirty = true;
      return;
    }
    this.sentAt = labNow();
    this.polls++;
    this.batch.stdin!.write('addr show\n');
  }

  private onReply(line: string): void {
    const t = this.sentAt;
    this.sentAt = undefined;
    if (t === undefined) return;
    let links: IpLink[];
    try {
      links = JSON.parse(line) as IpLink[];
    } catch {
      return;
    }
    const lat = labNow() - t;
    this.lats.push(lat);
    const sample = { t, node: this.name, ...classify(links, this.isVip), lat };
    this.emit(sample);
    this.gotFirst();
    const live = sample.live.join(',');
    const changed = this.lastLive !== undefined && live !== this.lastLive;
    this.lastLive = live;
    if (this.dirty) {
      this.dirty = false;
      this.poll();
    }
    if (changed) this.onChange(this);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const procs = [this.batch, this.monitor].filter((p): p is ChildProcess => p !== undefined);
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          }),
      ),
    );
  }
}

function pct(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Starts watching `opts.nodes`; resolves once every node has produced its first sample (or rejects after 5 s). */
export async function startSampler(opts: SamplerOptions): Promise<Sampler> {
  const samples: AddressSample[] = [];
  const isVip = opts.isVip ?? inVipRange;
  let snapshots = 0;
  const snapshot = (changed: NodeWatch): void => {
    snapshots++;
    for (const w of watches) if (w !== changed) w.poll();
  };
  const watches: NodeWatch[] = opts.nodes.map(
    (n) =>
      new NodeWatch(
        n.name,
        n.ns,
        isVip,
        (s) => samples.push(s),
        opts.events ?? true,
        (opts.snapshotOnChange ?? true) ? snapshot : undefined,
      ),
  );
  const timer = setInterval(() => {
    for (const w of watches) w.poll();
  }, opts.intervalMs ?? 20);
  for (const w of watches) w.poll();
  let to: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(watches.map((w) => w.firstSample)),
      new Promise((_, rej) => {
        to = setTimeout(() => {
          const missing = watches.filter((w) => w.polls > 0 && w.lats.length === 0).map((w) => w.ns);
          rej(
            new Error(
              `sampler: no answer from ip in ${missing.join(', ')} within 5 s: does the namespace exist?`,
            ),
          );
        }, 5000);
      }),
    ]);
  } catch (err) {
    clearInterval(timer);
    await Promise.all(watches.map((w) => w.stop()));
    throw err;
  } finally {
    clearTimeout(to);
  }
  return {
    samples,
    stats() {
      const lats = watches.flatMap((w) => w.lats).sort((a, b) => a - b);
      return {
        polls: watches.reduce((a, w) => a + w.polls, 0),
        events: watches.reduce((a, w) => a + w.events, 0),
        snapshots,
        latP50: pct(lats, 0.5),
        latP99: pct(lats, 0.99),
        latMax: lats.at(-1) ?? NaN,
      };
    },
    async stop() {
      clearInterval(timer);
      await Promise.all(watches.map((w) => w.stop()));
      return samples;
    },
  };
}
