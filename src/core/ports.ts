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
  /**
   * Calls `fn` every `ms` until the returned handle is stopped. Ticks do not overlap: when
   * `fn` returns a promise, the next tick waits for it to settle, and ticks missed while it
   * ran are skipped rather than bunched. A throwing or rejecting `fn` does not stop the
   * ticks; the adapter reports the error.
   */
  every(ms: Millis, fn: () => unknown): Stoppable;
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
  /** Where this transport receives datagrams (the bound address and port). */
  address(): Peer;
  /** Resolves `false` (never rejects) when the datagram could not be handed to the network. */
  send(to: Peer, datagram: Uint8Array): Promise<boolean>;
  /** Adds a handler; every handler sees every datagram. The bytes are the handler's own copy. */
  onMessage(handler: (datagram: Uint8Array, from: Peer) => void): void;
  /** Stops receiving; later sends resolve `false`. Idempotent. */
  close(): Promise<void>;
}

/** A multicast heartbeat link as a transport joins it. */
export interface MulticastLink {
  /** IPv4 group, e.g. 239.192.0.94. */
  group: string;
  /** Interface to send on and join the group on; absent: the interface holding `defaultAddress`. */
  interface?: string;
}

/** A multicast link a transport joined: the interface and the local address it sends from. */
export interface JoinedGroup {
  group: string;
  interface: string;
  address: string;
}

/**
 * A Transport that also carries IPv4 multicast links. A datagram sent to a joined group's
 * address (at the receivers' port) leaves on that link's interface, from the interface's
 * address, with TTL 1 and without a local copy; every transport that joined the group on
 * that network and listens on that port receives it. A datagram to a group this transport
 * has not joined resolves false (it is never sent out of a default interface).
 */
export interface MulticastTransport extends Transport {
  /**
   * Makes the joined links exactly `links`: joins the new ones, leaves the others. Rejects,
   * changing nothing, when a link cannot be joined (no such interface, no IPv4 address on
   * it, `defaultAddress` on no interface); the message names the group and the interface.
   */
  setMulticast(links: readonly MulticastLink[], defaultAddress?: string): Promise<JoinedGroup[]>;
}

/** Whether `t` can carry multicast links. */
export function isMulticastTransport(t: Transport): t is MulticastTransport {
  return typeof (t as Partial<MulticastTransport>).setMulticast === 'function';
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
 *
 * Calls take effect in the order they are made, even when the caller does not wait for one
 * to settle before making the next: `add` then `announce` without awaiting the add announces
 * the address the add bound (or fails if the add failed).
 */
export interface NetworkDriver {
  /** Addresses owned by Heartline, on any interface. */
  list(): Promise<OwnedAddress[]>;
  /**
   * Binds `cidr` on `iface` with a kernel lifetime (whole seconds, rounded up) and a
   * fence deadline `deadlineMs` from now: unless `refresh`ed before, the address is
   * removed at that deadline even if the caller is frozen. Adding an address already
   * Heartline's on the same interface refreshes it; rejects if the address is on `iface`
   * but not Heartline's (an operator's), or the interface does not exist.
   */
  add(addr: OwnedAddress, lifetimeSec: number, deadlineMs: Millis): Promise<void>;
  /**
   * Extends both the kernel lifetime and the fence deadline. Rejects, and never re-creates
   * the address, if it is no longer bound (its deadline passed, or it was removed): a late
   * refresh must not resurrect a fenced VIP.
   */
  refresh(addr: OwnedAddress, lifetimeSec: number, deadlineMs: Millis): Promise<void>;
  /** Removes the address (and stops its announcements). Removing an absent address is not an error. */
  remove(addr: OwnedAddress): Promise<void>;
  /** Removes every Heartline-owned address. Returns what it removed. */
  sweep(): Promise<OwnedAddress[]>;
  /**
   * Gratuitous ARP (v4) or unsolicited NA with override (v6), `count` times, `intervalMs`
   * apart. Resolves once the first one is sent; the rest follow in the background and stop
   * if the address is removed. Rejects unless this driver bound the address on `iface`.
   */
  announce(addr: OwnedAddress, count: number, intervalMs: Millis): Promise<void>;
  /**
   * The interface whose connected subnet contains `ip` (longest prefix), like Heartbeat's
   * findif. Only the node's own addresses define subnets, never Heartline's.
   */
  interfaceFor(ip: string): Promise<string | undefined>;
  /** Whether the link is up (admin up and carrier). Rejects for an unknown interface. */
  linkUp(iface: string): Promise<boolean>;
  /** Removes every Heartline-owned address; later calls reject. */
  close(): Promise<void>;
}

/** Outcome of a Resource operation or probe. */
export interface RunResult {
  ok: boolean;
  /** Human-readable detail: exit code, HTTP status, error text. */
  detail: string;
  durationMs: Millis;
}

/** A command line run without a shell: argv[0] is the program. */
export type Argv = readonly string[];

/**
 * How to run a Resource of kind exec. With `daemon: true`, `start` is a long-running
 * process (a server) that the runner keeps as a child: `start` succeeds once the process
 * has been spawned and is still alive after a short settle period; `status` without a
 * status command is "that child is alive"; `stop` runs the stop command if there is one
 * and then, if the child is still alive, signals its whole process group (SIGTERM, then
 * SIGKILL at the timeout). Without `daemon`, `start` must exit 0 within its timeout.
 */
export interface ExecServiceSpec {
  start: Argv;
  stop?: Argv;
  status?: Argv;
  daemon?: boolean;
  env?: Readonly<Record<string, string>>;
  cwd?: string;
}

/** A Resource's health check; exactly one of http, tcp, exec. */
export interface HealthCheckSpec {
  /**
   * GET on host:port/path. `scheme: 'https'` verifies the certificate chain and that it names
   * `host`, unless `insecureSkipTLSVerify`. Default expectStatus: any 2xx.
   */
  http?: {
    host: string;
    port: number;
    path?: string;
    expectStatus?: number;
    scheme?: 'http' | 'https';
    insecureSkipTLSVerify?: boolean;
  };
  tcp?: { host: string; port: number };
  exec?: { command: Argv; env?: Readonly<Record<string, string>> };
  timeoutMs: Millis;
}

/**
 * What the ServiceRunner needs from a Resource (the agent maps the Resource object onto
 * this). `name` identifies it (namespace/name) in results and keys the runner's daemons.
 */
export type ServiceSpec = {
  name: string;
  healthCheck?: HealthCheckSpec;
} & (
  | { kind: 'exec'; exec: ExecServiceSpec }
  | { kind: 'lsb'; lsb: { script: string } }
  | { kind: 'systemd'; systemd: { unit: string } }
);

/**
 * Starts, stops and probes a VIP's Resources (exec / lsb / systemd, http / tcp / exec
 * checks). Never rejects: failures, timeouts and missing programs are `ok: false` with a
 * detail that names the Resource. `start` and `stop` are idempotent for daemons and LSB
 * scripts (LSB requires it of the script); a plain exec command runs each time.
 * `status` is ok when the service runs. `probe` runs the health check, or `status` when
 * the Resource has none.
 */
export interface ServiceRunner {
  start(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult>;
  stop(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult>;
  status(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult>;
  probe(spec: ServiceSpec): Promise<RunResult>;
  /** Stops every daemon this runner started (process group SIGTERM then SIGKILL). */
  close(): Promise<void>;
}

/** The Kubernetes kinds Heartline reads. The first three are its CRDs (heartline.dev/v1alpha1). */
export type ApiKind =
  | 'HACluster'
  | 'VirtualIP'
  | 'Resource'
  | 'AddressPool'
  | 'Node'
  | 'Secret'
  | 'Service'
  | 'EndpointSlice'
  | 'Pod';
/** Kinds Heartline writes status and finalizers on (Service: status.loadBalancer and conditions). */
export type OwnedKind = 'HACluster' | 'VirtualIP' | 'Resource' | 'AddressPool' | 'Service';

/** The part of an object's metadata Heartline uses. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string | Date;
  [key: string]: unknown;
}

/** A Kubernetes object as plain JSON. `spec`/`status`/`data` are validated by src/api, not here. */
export interface ApiObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  [key: string]: unknown;
}

/** Namespace (absent for cluster-scoped kinds such as Node) and name. */
export interface ObjectKey {
  namespace?: string;
  name: string;
}

/**
 * What a watch reports. `synced` comes once the initial list is delivered (and again after
 * every restart following an error); `resync` re-delivers every cached object periodically
 * so level-based reconcilers recover from missed work.
 */
export type WatchEvent =
  { type: 'added' | 'updated' | 'deleted' | 'resync'; object: ApiObject } | { type: 'synced' };

export interface WatchOptions {
  /** Only this namespace (default: all). */
  namespace?: string;
  labelSelector?: string;
  /** e.g. `metadata.name=node-a` so an agent watches only its own Node. */
  fieldSelector?: string;
}

/** A Kubernetes Event about an object. */
export interface ApiEvent {
  regarding: ApiObject;
  type: 'Normal' | 'Warning';
  /** UpperCamelCase machine-readable reason, e.g. `Failover`. */
  reason: string;
  /** What happened and why, for people. */
  note: string;
  /** What the reporter did, e.g. `Bind`. */
  action: string;
}

/** Thrown by ApiSource writes when the object changed since the expected resourceVersion. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
  constructor(
    readonly kind: ApiKind,
    readonly key: ObjectKey,
    detail: string,
  ) {
    super(
      `${kind} ${key.namespace ? key.namespace + '/' : ''}${key.name}: conflict: ${detail}; re-read the object and retry`,
    );
  }
}

/** Thrown by ApiSource writes when the object does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  constructor(
    readonly kind: ApiKind,
    readonly key: ObjectKey,
  ) {
    super(`${kind} ${key.namespace ? key.namespace + '/' : ''}${key.name} not found`);
  }
}

/**
 * Desired state in, status and Events out. Watches restart themselves after errors (with
 * backoff) and relist after a 410; `get` and `list` read the API server (not a cache).
 * Writes are minimal: `patchStatus` sends only the difference and nothing when there is
 * none.
 */
export interface ApiSource {
  watch(kind: ApiKind, handler: (event: WatchEvent) => void, options?: WatchOptions): Stoppable;
  get(kind: ApiKind, key: ObjectKey): Promise<ApiObject | undefined>;
  list(kind: ApiKind, options?: WatchOptions): Promise<ApiObject[]>;
  /**
   * Makes the object's status equal `status` with a JSON Patch of the difference. With
   * `expectResourceVersion`, fails with ConflictError if the object changed since.
   * Returns the object after the write, `changed: false` when nothing needed writing.
   * Throws NotFoundError when the object is gone.
   */
  patchStatus(
    kind: OwnedKind,
    key: ObjectKey,
    status: unknown,
    options?: { expectResourceVersion?: string },
  ): Promise<{ object: ApiObject; changed: boolean }>;
  /** Adds `finalizer` unless present; returns whether it wrote. */
  addFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean>;
  /** Removes `finalizer` if present (the object may then disappear); returns whether it wrote. */
  removeFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean>;
  /** Records an Event. Failures are reported by rejection; callers usually log and go on. */
  event(event: ApiEvent): Promise<void>;
  close(): Promise<void>;
}

/** One RFC 6902 operation. */
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'test';
  path: string;
  value?: unknown;
}

/**
 * Creates, patches and deletes whole objects: what the Service reconciler needs to make the
 * VirtualIP of each LoadBalancer address (docs/adr/0028). A separate port from ApiSource,
 * which only reads and writes status, so the components that never create objects (agents)
 * cannot.
 */
export interface ObjectWriter {
  /** Creates `object`; ConflictError when one of that name exists. Returns the stored object. */
  create(kind: OwnedKind, object: ApiObject): Promise<ApiObject>;
  /** Applies a JSON Patch to the object (not its status); NotFoundError, ConflictError on a failed test. */
  patch(kind: OwnedKind, key: ObjectKey, ops: JsonPatchOp[]): Promise<ApiObject>;
  /**
   * Deletes the object (finalizers still hold it); with `uid`, only that incarnation. Returns
   * false when it was already gone.
   */
  delete(kind: OwnedKind, key: ObjectKey, options?: { uid?: string }): Promise<boolean>;
}

/** The state of a leader lease as last read. */
export interface LeaseRecord {
  /** Empty when released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  leaseTransitions: number;
}

/**
 * A single leader lease (coordination.k8s.io Lease for the controller). Expiry is judged on
 * the local monotonic clock from when this candidate last saw the record change (as
 * client-go does), never by comparing wall clocks across machines.
 */
export interface LeaseLock {
  readonly identity: string;
  /**
   * One attempt to acquire (if free, released or expired) or renew (if ours). Resolves true
   * when we hold the lease after the call; false when someone else holds it or the write lost
   * a race. Rejects only on transport / API errors.
   */
  tryAcquireOrRenew(): Promise<boolean>;
  /** Gives the lease up if we hold it, so a standby can take over without waiting for expiry. */
  release(): Promise<void>;
  /** Current record, or undefined when no lease exists yet. */
  read(): Promise<LeaseRecord | undefined>;
}
