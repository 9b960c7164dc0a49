/**
 * The Heartline controller: watches HAClusters, VirtualIPs, Resources, Nodes and Secrets;
 * while it holds the leader Lease it runs, per HACluster, the observer (and in quorum
 * "witness" the witness voter) on its UDP socket, and level-based reconcilers that turn
 * what it observes into status, Events and finalizer removal.
 *
 * Failure detection and failover happen among the agents; the controller is never on that
 * path. It writes status only when something changed, at most once per object per
 * `statusIntervalMs`, so a steady cluster costs the API server nothing per VIP.
 *
 * Both instances (leader and standby) keep their caches synced, so both are ready and the
 * standby starts reconciling as soon as it acquires the Lease.
 *
 * A few workers (`workers`, default 8) reconcile keys concurrently; the work queue never hands
 * one key to two workers at once, so each object is still reconciled serially.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { formatFieldError, parseVirtualIP } from '../api/index.js';
import type { VirtualIPStatus } from '../api/index.js';
import type {
  ApiObject,
  ApiSource,
  Clock,
  LeaseLock,
  Millis,
  ObjectKey,
  OwnedKind,
  Transport,
} from '../core/ports.js';
import { NotFoundError } from '../core/ports.js';
import {
  addressKey,
  resolveAddressClaims,
  type AddressClaimant,
  type AddressVerdict,
} from '../runtime/address-claims.js';
import {
  AuthSecretError,
  buildClusterConfig,
  ClusterConfigError,
  addressesOfNodes,
  VIP_FINALIZER,
  type ClusterConfig,
} from '../runtime/cluster-config.js';
import { incarnationFromWallClock, laterLife, nextIncarnation } from '../core/incarnation.js';
import { formatMemberPublicKey, generateMemberKey } from '../core/wire/index.js';
import { ObjectCache, objectKey, type CacheChange } from './cache.js';
import { ClusterRuntime } from './cluster-runtime.js';
import {
  decideCluster,
  decideMembership,
  decideVip,
  quorumSummary,
  type ClusterStatus,
  type EventSpec,
  type WitnessAddress,
} from './decide.js';
import { LeaderElector } from '../adapters/k8s/leader-election.js';
import type { ControllerMetrics } from './metrics.js';
import { SharedTransport } from './shared-transport.js';
import { EventRecorder } from './event-recorder.js';
import { StatusWriter } from './status-writer.js';
import { WorkQueue } from './work-queue.js';

export interface ControllerComponents {
  api: ApiSource;
  lease: LeaseLock;
  clock: Clock;
  log: Logger;
  metrics: ControllerMetrics;
  /** The witness socket (shared by every cluster). Closed by `stop`. */
  transport: Transport;
  /** Wall clock for status timestamps. Default `new Date()`. */
  wallNow?: () => Date;
}

export interface ControllerInit {
  /** Watch only this namespace (default: all). */
  namespace?: string;
  /** Where agents reach the witness, published in every HACluster's status. */
  witness: WitnessAddress;
  /**
   * The witness's Ed25519 private key; its public half is published with the address.
   * Default: a new key for this process (it lives in memory only).
   */
  witnessKey?: KeyObject;
  /** Must equal the LeaseLock's lease duration. Default 15 000 ms. */
  leaseDurationMs?: Millis;
  /** Lease renew (and candidate retry) period. Default 2000 ms. */
  renewPeriodMs?: Millis;
  /** Give up leadership after this long without renewing. Default 10 000 ms. */
  renewDeadlineMs?: Millis;
  /** At most one status write per object per this interval. Default 250 ms. */
  statusIntervalMs?: Millis;
  /** Re-reconcile everything this often (level-based safety net). Default 60 000 ms. */
  resyncMs?: Millis;
  /**
   * How long a deleted VirtualIP waits for its holder to release before the finalizer is
   * removed anyway (with a Warning Event). Default per cluster: 2 x deadMs + leaseMs + marginMs.
   */
  releaseTimeoutMs?: Millis;
  /**
   * Reconciles running at once (different objects; one object is never reconciled twice at
   * once). Default 8.
   */
  workers?: number;
}

/** Default number of concurrent reconcile workers. */
export const DEFAULT_WORKERS = 8;

type Kind = 'HACluster' | 'VirtualIP';
const keyOf = (kind: Kind, k: string) => `${kind}|${k}`;
function splitKey(key: string): { kind: Kind; ns: string | undefined; name: string; id: string } {
  const [kind, id = ''] = key.split('|') as [Kind, string];
  const slash = id.indexOf('/');
  return slash < 0
    ? { kind, ns: undefined, name: id, id }
    : { kind, ns: id.slice(0, slash), name: id.slice(slash + 1), id };
}

/** How long an HACluster waits for its auth Secret's watch before the Secret is reported unreadable. */
const SECRET_WATCH_WAIT_MS = 10_000;

/** A reconcile that must run again later, not an error (no backoff). */
class Requeue {
  constructor(readonly afterMs: Millis) {}
}

export class Controller {
  private readonly cache: ObjectCache;
  private readonly elector: LeaderElector;
  private readonly shared: SharedTransport;
  private readonly writer: StatusWriter;
  private readonly events: EventRecorder;
  private readonly wallNow: () => Date;
  private queue: WorkQueue | undefined;
  private workers: Promise<void> | undefined;
  private readonly workerCount: number;
  private readonly runtimes = new Map<string, { runtime: ClusterRuntime; fingerprint: string }>();
  private readonly configErrors = new Map<string, string>();
  /** Per HACluster: when the barrier for the next member generation was first seen met. */
  private readonly membershipBarriers = new Map<string, Millis | undefined>();
  private readonly deletingSince = new Map<string, Millis>();
  /** parseVirtualIP of each VIP's spec, by uid and generation (the spec cannot change without both). */
  private readonly parsedVips = new Map<
    string,
    { uid: string | undefined; generation: number | undefined; result: ReturnType<typeof parseVirtualIP> }
  >();
  /**
   * Where each held VIP was bound, as first seen at its current epoch (its spec.address
   * then): a VIP whose spec.address changes while held keeps its old address claimed until
   * it is released or bound again at a new epoch.
   */
  private readonly heldAt = new Map<string, { epoch: number; address: string }>();
  /** VIP ids by address key (spec addresses and `heldAt`); rebuilt when either changes. */
  private addressIndex: Map<string, Set<string>> | undefined;
  private lastIncarnation = 0;
  private resync: { stop(): void } | undefined;
  private stopped = false;
  private readonly running = new AbortController();
  private electorRun: Promise<void> | undefined;
  /** The witness's signing key, and where it listens with its public key (published in status). */
  private readonly witnessKey: KeyObject;
  private readonly witness: WitnessAddress;

  constructor(
    private readonly c: ControllerComponents,
    private readonly init: ControllerInit,
  ) {
    this.wallNow = c.wallNow ?? (() => new Date());
    this.witnessKey = init.witnessKey ?? generateMemberKey();
    this.witness = { ...init.witness, publicKey: formatMemberPublicKey(this.witnessKey) };
    this.workerCount = init.workers ?? DEFAULT_WORKERS;
    if (!Number.isInteger(this.workerCount) || this.workerCount < 1) {
      throw new Error(
        `controller workers: ${String(init.workers)} is not a positive integer; use e.g. ${DEFAULT_WORKERS}`,
      );
    }
    this.shared = new SharedTransport(c.transport);
    this.writer = new StatusWriter(c.api, c.clock, init.statusIntervalMs ?? 250);
    this.events = new EventRecorder({
      api: c.api,
      log: c.log,
      onDropped: () => c.metrics.eventsDropped.inc(),
    });
    this.cache = new ObjectCache(
      c.api,
      (ch) => this.onCacheChange(ch),
      (kind) => c.log.info({ kind }, 'cache synced'),
    );
    this.elector = new LeaderElector(
      { lock: c.lease, clock: c.clock, logger: c.log },
      {
        leaseDurationMs: init.leaseDurationMs ?? 15_000,
        renewDeadlineMs: init.renewDeadlineMs ?? 10_000,
        retryPeriodMs: init.renewPeriodMs ?? 2000,
        onStartedLeading: () => this.startLeading(),
        onStoppedLeading: () => this.stopLeading(),
      },
    );
  }

  get isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** Ready once every watch delivered its initial list (leader and standby alike). */
  ready(): { ready: boolean; reason: string } {
    if (this.stopped) return { ready: false, reason: 'stopping' };
    const pending = [...this.cache.unsyncedKinds(), ...this.cache.unsyncedNamed()];
    if (pending.length > 0)
      return { ready: false, reason: `waiting for the initial list of ${pending.join(', ')}` };
    return { ready: true, reason: this.isLeader ? 'leader' : 'standby' };
  }

  start(): void {
    const ns = this.init.namespace ? { namespace: this.init.namespace } : undefined;
    this.cache.watch('HACluster', ns);
    this.cache.watch('VirtualIP', ns);
    this.cache.watch('Resource', ns);
    // Secrets: only those the HAClusters name, each watched by name (syncSecretWatches).
    this.cache.watch('Node');
    this.electorRun = this.elector.run(this.running.signal);
  }

  /** Stops reconciling, releases the lease (so the standby takes over at once), closes the socket. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.running.abort(new Error('controller stopping'));
    await this.electorRun;
    // Events still queued get a bounded chance to go out before the API clients close.
    let timer: { stop(): void } | undefined;
    await Promise.race([
      this.events.flush(),
      new Promise<void>((resolve) => (timer = this.c.clock.after(2000, resolve))),
    ]);
    timer?.stop();
    this.cache.stop();
    await this.shared.close();
  }

  // ------------------------------------------------------------------------- leadership

  private startLeading(): void {
    if (this.stopped) return;
    this.c.metrics.leader.set(1);
    this.writer.reset();
    const queue = new WorkQueue(this.c.clock);
    this.queue = queue;
    this.workers = Promise.all(Array.from({ length: this.workerCount }, () => this.runWorker(queue))).then(
      () => undefined,
    );
    this.enqueueAll();
    const every = this.init.resyncMs ?? 60_000;
    this.resync = this.c.clock.every(every, () => this.enqueueAll());
  }

  private async stopLeading(): Promise<void> {
    this.c.metrics.leader.set(0);
    this.resync?.stop();
    this.resync = undefined;
    this.queue?.shutDown();
    await this.workers;
    this.queue = undefined;
    this.workers = undefined;
    for (const [id, r] of this.runtimes) {
      await r.runtime.stop();
      this.c.metrics.setQuorum(id, undefined);
    }
    this.runtimes.clear();
    this.deletingSince.clear();
    this.writer.reset();
    this.c.log.info('leader-only work stopped');
  }

  private enqueueAll(): void {
    for (const o of this.cache.list('HACluster')) this.queue?.add(keyOf('HACluster', objectKey(o)));
    for (const o of this.cache.list('VirtualIP')) this.queue?.add(keyOf('VirtualIP', objectKey(o)));
  }

  /**
   * The next life of the observer and witness: the wall-clock seed when it is later (a new
   * controller process), else the life after the last one. Compared as serial numbers, so it
   * survives the uint32 wrap (docs/adr/0015).
   */
  private nextIncarnation(): number {
    const wall = incarnationFromWallClock(this.wallNow().getTime());
    const next = nextIncarnation(this.lastIncarnation);
    this.lastIncarnation = laterLife(wall, next) ? wall : next;
    return this.lastIncarnation;
  }

  // ------------------------------------------------------------------------- events in

  /**
   * Watches exactly the auth Secrets the cached HAClusters name, each by name (RBAC
   * resourceNames authorize that), and stops watching one no HACluster names any more: the
   * controller never lists or watches the other Secrets of a namespace (docs/adr/0021).
   */
  /** When each auth Secret watch started (`namespace/name`), to stop waiting for one that never syncs. */
  private readonly secretWatchSince = new Map<string, number>();

  private syncSecretWatches(): void {
    const wanted = new Set<string>();
    for (const h of this.cache.list('HACluster')) {
      const name = (h.spec as { authSecretRef?: { name?: unknown } } | undefined)?.authSecretRef?.name;
      if (typeof name === 'string' && name !== '') wanted.add(`${h.metadata.namespace ?? 'default'}/${name}`);
    }
    for (const id of this.cache.namedOf('Secret')) {
      if (wanted.has(id)) continue;
      const [ns, name] = id.split('/') as [string, string];
      this.cache.unwatchNamed('Secret', ns, name);
    }
    for (const id of this.secretWatchSince.keys()) if (!wanted.has(id)) this.secretWatchSince.delete(id);
    for (const id of wanted) {
      const [ns, name] = id.split('/') as [string, string];
      if (!this.secretWatchSince.has(id)) this.secretWatchSince.set(id, this.c.clock.now());
      this.cache.watchNamed('Secret', ns, name, () => {
        for (const h of this.cache.list('HACluster', ns)) this.queue?.add(keyOf('HACluster', objectKey(h)));
      });
    }
  }

  private onCacheChange(ch: CacheChange): void {
    if (ch.kind === 'HACluster') this.syncSecretWatches();
    const q = this.queue;
    if (!q) return;
    const ns = ch.object.metadata.namespace;
    switch (ch.kind) {
      case 'HACluster':
        q.add(keyOf('HACluster', objectKey(ch.object)));
        for (const v of this.vipsOfCluster(ns ?? '', ch.object.metadata.name))
          q.add(keyOf('VirtualIP', objectKey(v)));
        break;
      case 'VirtualIP': {
        q.add(keyOf('VirtualIP', objectKey(ch.object)));
        // Its address may free, take or share another VIP's address: those decide again.
        if (
          specAddressOf(ch.object) !== specAddressOf(ch.old) ||
          ch.type === 'deleted' ||
          ch.type === 'added'
        )
          this.addressIndex = undefined;
        for (const a of [specAddressOf(ch.object), specAddressOf(ch.old)])
          if (a) this.enqueueSharing(a, objectKey(ch.object));
        // The cluster's configuration (VIP set, epochs) comes from its VIPs.
        const cluster = (ch.object.spec as { clusterRef?: { name?: string } } | undefined)?.clusterRef?.name;
        if (cluster) q.add(keyOf('HACluster', `${ns}/${cluster}`));
        break;
      }
      case 'Resource':
      case 'Secret':
        for (const h of this.cache.list('HACluster', ns)) q.add(keyOf('HACluster', objectKey(h)));
        break;
      case 'Node': {
        if (ch.type === 'resync') break;
        for (const h of this.cache.list('HACluster')) q.add(keyOf('HACluster', objectKey(h)));
        // A VIP equal to a Node address is refused: VIPs on an address that came or went decide again.
        const before = new Set(addressesOfNodes(ch.old ? [ch.old] : []).map((a) => addressKey(a.address)));
        const after = new Set(
          addressesOfNodes(ch.type === 'deleted' ? [] : [ch.object]).map((a) => addressKey(a.address)),
        );
        for (const k of [...before, ...after]) {
          if (before.has(k) && after.has(k)) continue;
          for (const id of this.addressIndexOf().get(k) ?? []) q.add(keyOf('VirtualIP', id));
        }
        break;
      }
    }
  }

  private onObserved(clusterId: string, change: { vips: string[]; members: boolean }): void {
    const q = this.queue;
    if (!q) return;
    if (change.members) {
      q.add(keyOf('HACluster', clusterId));
      const slash = clusterId.indexOf('/');
      for (const v of this.vipsOfCluster(clusterId.slice(0, slash), clusterId.slice(slash + 1)))
        q.add(keyOf('VirtualIP', objectKey(v)));
    }
    for (const vip of change.vips) q.add(keyOf('VirtualIP', vip));
    // status.summary.vips counts the held VIPs (coalesced by the StatusWriter).
    if (change.vips.length > 0 && !change.members) q.add(keyOf('HACluster', clusterId));
  }

  /** Queues every VIP (but `except`) whose address, or address it may still hold, is `address`'s. */
  private enqueueSharing(address: string, except: string): void {
    for (const id of this.addressIndexOf().get(addressKey(address)) ?? [])
      if (id !== except) this.queue?.add(keyOf('VirtualIP', id));
  }

  private addressIndexOf(): Map<string, Set<string>> {
    if (this.addressIndex) return this.addressIndex;
    const index = new Map<string, Set<string>>();
    const put = (address: string, id: string) => {
      const k = addressKey(address);
      const ids = index.get(k);
      if (ids) ids.add(id);
      else index.set(k, new Set([id]));
    };
    for (const o of this.cache.list('VirtualIP')) {
      const a = specAddressOf(o);
      if (a) put(a, objectKey(o));
    }
    for (const [id, h] of this.heldAt) put(h.address, id);
    this.addressIndex = index;
    return index;
  }

  /** The VIP as the address rule sees it: held per observation or status, and where it may still be bound. */
  private claimantOf(id: string): AddressClaimant | undefined {
    const o = this.cache.get('VirtualIP', id);
    if (!o) return undefined;
    const parsed = this.parseVip(id, o);
    if (!parsed.ok) return undefined;
    const vip = parsed.value;
    const clusterId = `${o.metadata.namespace ?? 'default'}/${vip.spec.clusterRef.name}`;
    const claimed = this.runtimes.get(clusterId)?.runtime.observation().claims.get(id)?.length ?? 0;
    const ns = o.metadata.namespace;
    const base = this.writer.base<VirtualIPStatus>(
      'VirtualIP',
      { ...(ns !== undefined ? { namespace: ns } : {}), name: o.metadata.name },
      o.status,
    );
    const held = this.heldAt.get(id);
    return {
      id,
      address: vip.spec.address,
      created: typeof o.metadata.creationTimestamp === 'string' ? o.metadata.creationTimestamp : undefined,
      held: claimed > 0 || Boolean(base?.holder),
      ...(held ? { heldAddress: held.address } : {}),
    };
  }

  /** The address rule's verdict for VIP `id` (address-claims.ts), over every VIP and Node this controller sees. */
  private addressVerdictOf(id: string): AddressVerdict {
    const self = this.claimantOf(id);
    if (!self) return { ok: true };
    const index = this.addressIndexOf();
    const ids = new Set<string>([id]);
    for (const a of [self.address, self.heldAddress])
      if (a !== undefined) for (const other of index.get(addressKey(a)) ?? []) ids.add(other);
    const claimants = [...ids].flatMap((x) => (x === id ? [self] : (this.claimantOf(x) ?? [])));
    return resolveAddressClaims(claimants, addressesOfNodes(this.cache.list('Node'))).get(id) ?? { ok: true };
  }

  /** Records where a held VIP is bound (see `heldAt`); true if that changed. */
  private noteHeld(id: string, status: VirtualIPStatus, address: string): boolean {
    const prev = this.heldAt.get(id);
    if (!status.holder) {
      if (!prev) return false;
      this.heldAt.delete(id);
    } else {
      const epoch = status.epoch ?? 0;
      if (prev && prev.epoch === epoch) return false;
      this.heldAt.set(id, { epoch, address });
      if (prev && addressKey(prev.address) === addressKey(address)) return false;
    }
    this.addressIndex = undefined;
    return true;
  }

  private vipsOfCluster(ns: string, name: string): ApiObject[] {
    return this.cache
      .list('VirtualIP', ns)
      .filter((v) => (v.spec as { clusterRef?: { name?: string } } | undefined)?.clusterRef?.name === name);
  }

  // ------------------------------------------------------------------------- reconcile loop

  private async runWorker(queue: WorkQueue): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const { kind, ns, name } = splitKey(key);
      const log = this.c.log.child({ reconcile: kind, namespace: ns, name });
      const started = this.c.clock.now();
      let result = 'success';
      try {
        if (kind === 'HACluster') await this.reconcileCluster(key, log);
        else await this.reconcileVip(key, log);
        queue.forget(key);
      } catch (err) {
        if (err instanceof Requeue) {
          result = 'requeue';
          queue.forget(key);
          queue.addAfter(key, err.afterMs);
        } else {
          result = 'error';
          const delay = queue.addRateLimited(key);
          log.warn(
            { err, retryInMs: delay, retries: queue.retries(key) },
            'reconcile failed; retrying with backoff',
          );
        }
      } finally {
        queue.done(key);
        this.c.metrics.reconcileDuration.observe({ kind, result }, (this.c.clock.now() - started) / 1000);
      }
    }
  }

  /** Queues the Events of a decision; they are sent off the reconcile path (EventRecorder). */
  private emit(regarding: ApiObject, kind: OwnedKind, events: EventSpec[], log: Logger): void {
    for (const e of events) {
      log.info({ event: e.reason, type: e.type, note: e.note }, 'event');
      this.events.record(
        { regarding: { ...regarding, kind }, type: e.type, reason: e.reason, note: e.note, action: e.action },
        log,
      );
    }
  }

  /** Resolves once the Events queued so far have been sent (or failed). */
  flushEvents(): Promise<void> {
    return this.events.flush();
  }

  private async writeStatus(
    kind: OwnedKind,
    key: ObjectKey,
    obj: ApiObject,
    desired: unknown,
  ): Promise<boolean> {
    const r = await this.writer.write(kind, key, obj.status, desired);
    if (r.outcome === 'deferred') {
      this.c.metrics.statusWritesDeferred.inc({ kind });
      throw new Requeue(r.retryInMs);
    }
    return r.outcome === 'written';
  }

  private clusterConfig(obj: ApiObject): { config?: ClusterConfig; error?: string; authSecret?: boolean } {
    const ns = obj.metadata.namespace ?? 'default';
    const authRef = (obj.spec as { authSecretRef?: { name?: string } } | undefined)?.authSecretRef?.name;
    try {
      const config = buildClusterConfig({
        cluster: obj,
        vips: this.cache.list('VirtualIP', ns),
        resources: this.cache.list('Resource', ns),
        nodes: this.cache.list('Node'),
        secret: authRef ? this.cache.get('Secret', `${ns}/${authRef}`) : undefined,
        witness: this.witness,
        membership: (obj.status as ClusterStatus | undefined)?.membership ?? null,
      });
      return { config };
    } catch (err) {
      if (err instanceof AuthSecretError && authRef && !this.cache.namedSynced('Secret', ns, authRef)) {
        return {
          error: `${err.message} (the controller cannot read it: if it exists, grant the heartline-controller ServiceAccount get, list and watch on secrets with resourceNames [${authRef}] in namespace ${ns})`,
          authSecret: true,
        };
      }
      if (err instanceof AuthSecretError) return { error: err.message, authSecret: true };
      if (err instanceof ClusterConfigError || err instanceof Error) return { error: err.message };
      throw err;
    }
  }

  private async reconcileCluster(key: string, log: Logger): Promise<void> {
    const { id, ns, name } = splitKey(key);
    const obj = this.cache.get('HACluster', id);
    const existing = this.runtimes.get(id);
    if (!obj) {
      if (existing) {
        await existing.runtime.stop();
        this.runtimes.delete(id);
        this.c.metrics.setQuorum(id, undefined);
        log.info('HACluster gone: observer and witness stopped');
      }
      this.writer.forget('HACluster', { namespace: ns, name });
      return;
    }
    const authRef = (obj.spec as { authSecretRef?: { name?: unknown } } | undefined)?.authSecretRef?.name;
    const secretNs = obj.metadata.namespace ?? 'default';
    if (
      typeof authRef === 'string' &&
      authRef !== '' &&
      !this.cache.namedSynced('Secret', secretNs, authRef)
    ) {
      // Its Secret's watch has not delivered yet: "not found" now would be a false alarm. The
      // watch's first delivery queues this HACluster again; one that never delivers (RBAC
      // does not name the Secret) is reported after SECRET_WATCH_WAIT_MS.
      const since = this.secretWatchSince.get(`${secretNs}/${authRef}`) ?? this.c.clock.now();
      const left = since + SECRET_WATCH_WAIT_MS - this.c.clock.now();
      if (left > 0) {
        log.debug({ secret: authRef }, 'waiting for the auth Secret watch');
        throw new Requeue(left);
      }
    }
    const built = this.clusterConfig(obj);
    let { config, error } = built;
    let runtime = this.runtimes.get(id);
    const fingerprint = config ? fingerprintOf(config) : '';
    if (config && runtime && runtime.fingerprint !== fingerprint) {
      try {
        runtime.runtime.reconfigure(config);
        runtime.fingerprint = fingerprint;
        log.info(
          { members: config.members.map((m) => m.id), vips: config.vips.length },
          'cluster configuration applied',
        );
      } catch (err) {
        // Throws before changing anything: the running configuration stays.
        error = `cannot apply the configuration: ${(err as Error).message}`;
        config = undefined;
      }
    }
    if (error !== undefined) {
      // The observer and witness keep the configuration they run (keys included): stopping
      // them would take the witness's vote away, and a two-node cluster would lose quorum
      // and drop its VIPs over a bad edit. The agents keep theirs the same way.
      if (this.configErrors.get(id) !== error)
        log.warn({ problem: error, running: Boolean(runtime) }, 'cluster configuration invalid');
      this.configErrors.set(id, error);
    } else this.configErrors.delete(id);

    if (config) {
      if (!runtime) {
        const rt = new ClusterRuntime(
          {
            clock: this.c.clock,
            transport: this.shared.view(),
            log: this.c.log.child({ component: 'cluster', cluster: id }),
            onChange: (change) => this.onObserved(id, change),
          },
          { config, incarnation: () => this.nextIncarnation(), signingKey: this.witnessKey },
        );
        rt.start();
        runtime = { runtime: rt, fingerprint };
        this.runtimes.set(id, runtime);
        log.info(
          { members: config.members.map((m) => m.id), quorum: config.quorum, voting: rt.voting },
          'observing cluster',
        );
        for (const v of this.vipsOfCluster(ns ?? '', name)) this.queue?.add(keyOf('VirtualIP', objectKey(v)));
      }
      if (config.problems.length > 0)
        log.debug({ problems: config.problems }, 'cluster configuration problems');
    }
    const objKey = { namespace: ns, name };
    const base = this.writer.base<ClusterStatus>('HACluster', objKey, obj.status);
    const decision = decideCluster({
      name: id,
      generation: obj.metadata.generation,
      base,
      config: config ?? runtime?.runtime.configuration,
      configError: error,
      authSecretError: built.authSecret ? error : undefined,
      obs: runtime?.runtime.observation(),
      witness: this.witness,
      now: this.c.clock.now(),
      wallNow: this.wallNow(),
    });
    this.c.metrics.setQuorum(id, decision.quorum);
    const published = (obj.status as ClusterStatus | undefined)?.membership;
    let retryInMs: Millis | undefined;
    const running = runtime?.runtime.configuration;
    const obs = runtime?.runtime.observation();
    if (config && running && obs) {
      // Membership changes one member at a time, behind the barrier (decideMembership).
      const t = running.timing;
      const md = decideMembership({
        published,
        labelled: config.labelled ?? [],
        advertised: new Map(obs.members.map((m) => [m.id, m.generation ?? 0])),
        witnessVotes: running.quorum === 'witness',
        now: this.c.clock.now(),
        barrierSince: this.membershipBarriers.get(id),
        waitMs: Math.ceil((t.leaseMs + t.marginMs) * (1 + t.driftRate)) + t.intervalMs,
        pollMs: t.intervalMs,
      });
      this.membershipBarriers.set(id, md.barrierSince);
      retryInMs = md.retryInMs;
      if (md.membership) decision.status.membership = md.membership;
      if (md.membership && md.membership.generation !== published?.generation) {
        log.info(
          { generation: md.membership.generation, members: md.membership.members, reason: md.reason },
          'publishing member set',
        );
        // An Event for each change; the first set (a new cluster, or an upgrade) is only logged.
        if (published)
          decision.events.push({
            type: 'Normal',
            reason: 'MembershipChanged',
            note: `generation ${md.membership.generation}: ${md.reason} (members ${md.membership.members.join(', ')})`,
            action: 'Reconfigure',
          });
      } else if (md.retryInMs !== undefined) log.debug({ reason: md.reason }, 'member set change pending');
    } else if (published) decision.status.membership = published;
    if (await this.writeStatus('HACluster', objKey, obj, decision.status)) {
      log.debug({ quorum: decision.status.quorum }, 'HACluster status written');
      this.emit(obj, 'HACluster', decision.events, log);
    }
    if (retryInMs !== undefined) throw new Requeue(retryInMs);
  }

  private async reconcileVip(key: string, log: Logger): Promise<void> {
    const { id, ns, name } = splitKey(key);
    const objKey = { namespace: ns, name };
    const obj = this.cache.get('VirtualIP', id);
    if (!obj) {
      this.writer.forget('VirtualIP', objKey);
      this.deletingSince.delete(id);
      this.parsedVips.delete(id);
      const held = this.heldAt.get(id);
      if (held && this.heldAt.delete(id)) {
        this.addressIndex = undefined;
        this.enqueueSharing(held.address, id);
      }
      this.c.metrics.setHolder(id, undefined);
      return;
    }
    const deleting = Boolean(obj.metadata.deletionTimestamp);
    const finalizers = obj.metadata.finalizers ?? [];
    if (!deleting && !finalizers.includes(VIP_FINALIZER)) {
      try {
        await this.c.api.addFinalizer('VirtualIP', objKey, VIP_FINALIZER);
        log.debug('finalizer added');
      } catch (err) {
        if (err instanceof NotFoundError) return;
        throw err;
      }
    }
    const parsed = this.parseVip(id, obj);
    const clusterName = (obj.spec as { clusterRef?: { name?: string } } | undefined)?.clusterRef?.name ?? '';
    const clusterId = `${ns ?? 'default'}/${clusterName}`;
    const clusterObj = this.cache.get('HACluster', clusterId);
    const runtime = this.runtimes.get(clusterId);
    const address = parsed.ok
      ? parsed.value.spec.address
      : String((obj.spec as { address?: unknown } | undefined)?.address ?? name);
    let cluster: Parameters<typeof decideVip>[0]['cluster'];
    if (!clusterObj) {
      cluster = {
        ok: false,
        reason: 'ClusterNotFound',
        message: `spec.clusterRef.name: HACluster "${clusterName}" not found in namespace ${ns ?? 'default'}; create it or fix clusterRef`,
      };
    } else if (!parsed.ok) {
      cluster = {
        ok: false,
        reason: 'InvalidVirtualIP',
        message: `VirtualIP ${id}: ${parsed.errors.map(formatFieldError).join('; ')}`,
      };
    } else if (!runtime) {
      const err = this.configErrors.get(clusterId);
      cluster = err
        ? { ok: false, reason: 'InvalidCluster', message: err }
        : { ok: false, reason: 'NotObserved', message: `HACluster ${clusterId} not observed yet` };
      if (!err) this.queue?.add(keyOf('HACluster', clusterId));
    } else {
      const obs = runtime.runtime.observation();
      const config = runtime.runtime.configuration;
      cluster = { ok: true, config, obs, quorum: quorumSummary(config, obs) };
    }

    if (deleting) {
      await this.finalizeDeleted(id, objKey, obj, cluster, address, log);
      return;
    }
    this.deletingSince.delete(id);

    const base = this.writer.base<VirtualIPStatus>('VirtualIP', objKey, obj.status);
    const decision = decideVip({
      id,
      address,
      generation: obj.metadata.generation,
      deleting,
      base,
      cluster,
      now: this.c.clock.now(),
      wallNow: this.wallNow(),
      addressVerdict: this.addressVerdictOf(id),
    });
    this.c.metrics.setHolder(id, decision.status.holder);
    // Where it is bound, and whether another VIP waiting for this address may go ahead now.
    const heldBefore = this.heldAt.get(id);
    const heldMoved = this.noteHeld(id, decision.status, address);
    if (await this.writeStatus('VirtualIP', objKey, obj, decision.status)) {
      log.debug(
        { holder: decision.status.holder, epoch: decision.status.epoch, phase: decision.status.phase },
        'VirtualIP status written',
      );
      if (decision.failover) this.c.metrics.failovers.inc({ reason: decision.failover.reason });
      this.emit(obj, 'VirtualIP', decision.events, log);
    }
    if (heldMoved || decision.status.holder !== base?.holder) {
      this.enqueueSharing(address, id);
      if (heldBefore) this.enqueueSharing(heldBefore.address, id);
    }
  }

  /**
   * The VIP's spec, validated. Status writes change the object (and its resourceVersion) but not
   * its generation, so a pass over every VIP does not re-run the schema for each one.
   */
  private parseVip(id: string, obj: ApiObject): ReturnType<typeof parseVirtualIP> {
    const { uid, generation } = obj.metadata;
    const hit = this.parsedVips.get(id);
    if (hit && hit.uid === uid && hit.generation === generation && generation !== undefined)
      return hit.result;
    const result = parseVirtualIP({ ...obj, status: undefined });
    this.parsedVips.set(id, { uid, generation, result });
    return result;
  }

  /** A deleted VIP keeps the finalizer until no member reports holding it, or a bounded timeout. */
  private async finalizeDeleted(
    id: string,
    objKey: ObjectKey,
    obj: ApiObject,
    cluster: Parameters<typeof decideVip>[0]['cluster'],
    address: string,
    log: Logger,
  ): Promise<void> {
    if (!(obj.metadata.finalizers ?? []).includes(VIP_FINALIZER)) return;
    const now = this.c.clock.now();
    const since = this.deletingSince.get(id) ?? now;
    this.deletingSince.set(id, since);
    let released = false;
    let why = '';
    if (!cluster.ok && cluster.reason === 'ClusterNotFound') {
      released = true;
      why = 'its HACluster does not exist, so no member can hold it';
    } else if (cluster.ok && cluster.obs.settled && !cluster.obs.claims.has(id)) {
      released = true;
      why = 'no member reports holding it';
    }
    const timing = cluster.ok ? cluster.config.timing : undefined;
    const timeout =
      this.init.releaseTimeoutMs ?? (timing ? 2 * timing.deadMs + timing.leaseMs + timing.marginMs : 5000);
    const timedOut = !released && now - since >= timeout;
    if (!released && !timedOut) throw new Requeue(Math.min(250, since + timeout - now));
    const events: EventSpec[] = released
      ? [
          {
            type: 'Normal',
            reason: 'Released',
            note: `${address} released everywhere (${why}); finalizer ${VIP_FINALIZER} removed`,
            action: 'Finalize',
          },
        ]
      : [
          {
            type: 'Warning',
            reason: 'ReleaseTimeout',
            note: `${address}: still claimed by ${cluster.ok ? (cluster.obs.claims.get(id) ?? []).join(', ') || 'an unobserved member' : 'an unknown member'} ${Math.round(now - since)} ms after deletion; finalizer ${VIP_FINALIZER} removed anyway (the holder's lease and the kernel address lifetime bound how long it stays bound)`,
            action: 'Finalize',
          },
        ];
    try {
      await this.c.api.removeFinalizer('VirtualIP', objKey, VIP_FINALIZER);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    log.info({ released, waitedMs: Math.round(now - since) }, 'finalizer removed');
    this.deletingSince.delete(id);
    this.c.metrics.setHolder(id, undefined);
    this.emit(obj, 'VirtualIP', events, log);
  }
}

function specAddressOf(o: ApiObject | undefined): string | undefined {
  const a = (o?.spec as { address?: unknown } | undefined)?.address;
  return typeof a === 'string' ? a : undefined;
}

function fingerprintOf(c: ClusterConfig): string {
  return JSON.stringify({
    ...c,
    keys: c.keys.map((k) => [k.id, Buffer.from(k.secret).toString('base64')]),
    standby: [...c.standby].sort(),
    problems: undefined,
  });
}
