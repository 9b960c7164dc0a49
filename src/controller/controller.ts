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
 *
 * The shape is controller-runtime's: this file wires a Manager (manager.ts: cache, leader
 * election, queue, workers) to one reconciler per kind (hacluster-reconciler.ts,
 * virtualip-reconciler.ts), whose decisions are pure (decide/).
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { ApiSource, Clock, LeaseLock, Millis, ObjectWriter, Transport } from '../core/ports.js';
import { formatMemberPublicKey, generateMemberKey } from '../core/wire/index.js';
import type { CacheChange } from '../runtime/object-cache.js';
import type { WitnessAddress } from './decide/cluster.js';
import { EventRecorder } from './event-recorder.js';
import { HAClusterReconciler } from './hacluster-reconciler.js';
import { DEFAULT_WORKERS, Manager } from './manager.js';
import type { ControllerMetrics } from './metrics.js';
import type { ReconcileContext } from './reconciler.js';
import { SharedTransport } from './shared-transport.js';
import { StatusWriter } from './status-writer.js';
import { AddressPoolReconciler } from './addresspool-reconciler.js';
import { ServiceReconciler } from './service-reconciler.js';
import { VirtualIPReconciler } from './virtualip-reconciler.js';

export { DEFAULT_WORKERS } from './manager.js';

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
  /**
   * Creates and deletes the VirtualIPs of LoadBalancer Services. Without it (or with
   * `loadBalancers: false`) Services are not watched and get no addresses.
   */
  objects?: ObjectWriter;
}

export interface ControllerInit {
  /** Watch only this namespace (default: all). */
  namespace?: string;
  /**
   * The agent DaemonSet's pods (their namespace and label selector): the Nodes they run on are
   * the members of an HACluster with an empty spec.nodeSelector, and a selected Node without
   * one is reported (docs/adr/0024). Absent (a controller outside the cluster, the process
   * lab): an empty selector means the Nodes that published a member key.
   */
  agentPods?: { namespace: string; labelSelector: string };
  /** How long a Node counts as running the agent after its last agent pod went. Default AGENT_GONE_GRACE_MS. */
  agentGoneGraceMs?: Millis;
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
  /**
   * Serve Services of type LoadBalancer from AddressPools (service-reconciler.ts). Default
   * true when an ObjectWriter is given. Services are watched in every namespace.
   */
  loadBalancers?: boolean;
}

export class Controller {
  private readonly manager: Manager;
  private readonly shared: SharedTransport;
  private readonly writer: StatusWriter;
  private readonly events: EventRecorder;
  private readonly clusters: HAClusterReconciler;
  private readonly vips: VirtualIPReconciler;
  private readonly services: ServiceReconciler | undefined;
  private readonly pools: AddressPoolReconciler | undefined;
  private stopping = false;

  constructor(
    private readonly c: ControllerComponents,
    private readonly init: ControllerInit,
  ) {
    const wallNow = c.wallNow ?? (() => new Date());
    const witnessKey = init.witnessKey ?? generateMemberKey();
    const witness = { ...init.witness, publicKey: formatMemberPublicKey(witnessKey) };
    this.shared = new SharedTransport(c.transport);
    this.writer = new StatusWriter(c.api, c.clock, init.statusIntervalMs ?? 250);
    this.events = new EventRecorder({
      api: c.api,
      log: c.log,
      onDropped: () => c.metrics.eventsDropped.inc(),
      // Status first: no Event starts while urgent status writes (moved VIPs) wait.
      clock: c.clock,
      holdWhile: () => this.manager.urgentBacklog() > 0,
    });
    this.manager = new Manager(
      { api: c.api, lease: c.lease, clock: c.clock, log: c.log, metrics: c.metrics },
      {
        leaseDurationMs: init.leaseDurationMs ?? 15_000,
        renewDeadlineMs: init.renewDeadlineMs ?? 10_000,
        renewPeriodMs: init.renewPeriodMs ?? 2000,
        resyncMs: init.resyncMs ?? 60_000,
        workers: init.workers ?? DEFAULT_WORKERS,
        onChange: (ch) => this.onCacheChange(ch),
        onStartedLeading: () => this.writer.reset(),
        onStoppedLeading: () => this.writer.reset(),
        onStopping: () => this.flushEventsBounded(),
      },
    );
    const ctx: ReconcileContext = {
      api: c.api,
      clock: c.clock,
      log: c.log,
      metrics: c.metrics,
      cache: this.manager.cache,
      writer: this.writer,
      events: this.events,
      wallNow,
      enqueue: (kind, id, urgent) => this.manager.enqueue(kind, id, urgent),
    };
    this.clusters = new HAClusterReconciler(ctx, {
      witness,
      witnessKey,
      transport: this.shared,
      ...(init.agentPods ? { agentPods: true } : {}),
      ...(init.agentGoneGraceMs !== undefined ? { agentGoneGraceMs: init.agentGoneGraceMs } : {}),
      onObserved: (id, change) => {
        // Members changed, or held VIPs did (status.summary.vips counts them; the StatusWriter
        // coalesces the writes). A member's liveness is news (MemberDead): urgent, ahead of the
        // sweep over the cluster's VIPs that the same change queues.
        if (change.members || change.vips.length > 0) this.manager.enqueue('HACluster', id, change.members);
        this.vips.onObserved(id, change);
      },
    });
    this.vips = new VirtualIPReconciler(
      ctx,
      this.clusters,
      init.releaseTimeoutMs !== undefined ? { releaseTimeoutMs: init.releaseTimeoutMs } : {},
    );
    this.manager.register(this.clusters);
    this.manager.register(this.vips);
    if (c.objects && init.loadBalancers !== false) {
      this.services = new ServiceReconciler(ctx, c.objects);
      this.pools = new AddressPoolReconciler(ctx, this.services);
      this.manager.register(this.services);
      this.manager.register(this.pools);
    }
  }

  get isLeader(): boolean {
    return this.manager.isLeader;
  }

  /** Ready once every watch delivered its initial list (leader and standby alike). */
  ready(): { ready: boolean; reason: string } {
    return this.manager.ready();
  }

  /** Liveness (the /healthz probe): leader election turns and no reconcile is stuck (Manager.liveness). */
  liveness(): { healthy: boolean; reason: string } {
    return this.manager.liveness();
  }

  start(): void {
    const ns = this.init.namespace ? { namespace: this.init.namespace } : undefined;
    const { cache } = this.manager;
    cache.watch('HACluster', ns);
    cache.watch('VirtualIP', ns);
    cache.watch('Resource', ns);
    // Secrets: only those the HAClusters name, each watched by name (HAClusterReconciler).
    cache.watch('Node');
    if (this.init.agentPods) cache.watch('Pod', this.init.agentPods);
    if (this.services) {
      cache.watch('AddressPool', ns);
      cache.watch('Service');
      cache.watch('EndpointSlice');
    }
    this.manager.start();
  }

  /** Stops reconciling, releases the lease (so the standby takes over at once), closes the socket. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.manager.stop();
    await this.shared.close();
  }

  /** Resolves once the Events queued so far have been sent (or failed). */
  flushEvents(): Promise<void> {
    return this.events.flush();
  }

  /** Events still queued get a bounded chance to go out before the API clients close. */
  private async flushEventsBounded(): Promise<void> {
    let timer: { stop(): void } | undefined;
    await Promise.race([
      this.events.flush(),
      new Promise<void>((resolve) => (timer = this.c.clock.after(2000, resolve))),
    ]);
    timer?.stop();
  }

  /** Each change to the reconciler of its own kind first, then to the other's. */
  private onCacheChange(ch: CacheChange): void {
    if (ch.kind === 'VirtualIP') {
      this.vips.onChange(ch);
      this.clusters.onChange(ch);
    } else {
      this.clusters.onChange(ch);
      this.vips.onChange(ch);
    }
    this.services?.onChange(ch);
    this.pools?.onChange(ch);
  }
}
