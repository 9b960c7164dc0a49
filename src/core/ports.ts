/**
 * Ports: the seams through which the pure core and the roles (agent, controller) reach
 * the outside world. Real adapters live in src/adapters; fakes for tests in test/fakes.
 * Every fake passes the same contract suite as its real adapter.
 */

/** Milliseconds on a monotonic clock. Never wall-clock time. */
export type Millis = number;

/** A handle that stops something started by a port. */
export interface Stoppable {
  stop(): void;
}

/**
 * Time, injected. The real clock is monotonic (performance.now based); the simulated
 * clock can drift in rate and step, so logic must never compare readings of two
 * different members' clocks.
 */
export interface Clock {
  /** Monotonic milliseconds since an arbitrary origin. */
  now(): Millis;
  /** Resolves after `ms` on this clock (or rejects with the signal's reason when aborted). */
  sleep(ms: Millis, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` every `ms` until the returned handle is stopped. Ticks do not overlap. */
  every(ms: Millis, fn: () => void): Stoppable;
  /** Calls `fn` once after `ms`. */
  after(ms: Millis, fn: () => void): Stoppable;
}

/** Where a datagram came from, as the network saw it (not as the sender claims). */
export interface Peer {
  address: string;
  port: number;
}

/**
 * Datagram transport for heartbeats. Unreliable by contract: datagrams may be lost,
 * duplicated, delayed and reordered. `send` never throws for network errors; it
 * reports them through the returned promise's value.
 */
export interface Transport {
  send(to: Peer, datagram: Uint8Array): Promise<boolean>;
  onMessage(handler: (datagram: Uint8Array, from: Peer) => void): void;
  close(): Promise<void>;
}

/** An address Heartline owns on this node. */
export interface OwnedAddress {
  /** CIDR, e.g. 198.18.0.100/24 or 2001:db8::100/64. */
  cidr: string;
  /** Interface name it is bound to. */
  iface: string;
}

/**
 * Kernel addresses. The driver marks every address it adds as Heartline's own, so that
 * `sweep` at start removes stale ones from a previous life and nothing else.
 */
export interface NetworkDriver {
  /** Addresses owned by Heartline, on any interface. */
  list(): Promise<OwnedAddress[]>;
  /**
   * Binds `cidr` on `iface` with a kernel lifetime (whole seconds, rounded up) and a
   * fence deadline `deadlineMs` from now: unless `refresh`ed before, the address is
   * removed at that deadline even if the caller is frozen.
   */
  add(addr: OwnedAddress, lifetimeSec: number, deadlineMs: Millis): Promise<void>;
  /** Extends both the kernel lifetime and the fence deadline. */
  refresh(addr: OwnedAddress, lifetimeSec: number, deadlineMs: Millis): Promise<void>;
  /** Removes the address. Removing an absent address is not an error. */
  remove(addr: OwnedAddress): Promise<void>;
  /** Removes every Heartline-owned address. Returns what it removed. */
  sweep(): Promise<OwnedAddress[]>;
  /** Gratuitous ARP (v4) or unsolicited NA with override (v6), `count` times, `intervalMs` apart. */
  announce(addr: OwnedAddress, count: number, intervalMs: Millis): Promise<void>;
  /** The interface whose connected subnet contains `ip`, like Heartbeat's findif. */
  interfaceFor(ip: string): Promise<string | undefined>;
  /** Whether the link is up (operstate up / carrier). */
  linkUp(iface: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Outcome of a Resource operation or probe. */
export interface RunResult {
  ok: boolean;
  /** Human-readable detail: exit code, HTTP status, error text. */
  detail: string;
  durationMs: Millis;
}

/** Starts, stops and probes a VIP's Resources (exec / lsb / systemd, http / tcp / exec checks). */
export interface ServiceRunner {
  start(name: string, timeoutMs: Millis): Promise<RunResult>;
  stop(name: string, timeoutMs: Millis): Promise<RunResult>;
  status(name: string, timeoutMs: Millis): Promise<RunResult>;
  probe(name: string): Promise<RunResult>;
}
