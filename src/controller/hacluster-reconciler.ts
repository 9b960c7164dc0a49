/**
 * The HACluster reconciler: per HACluster it runs, while this controller leads, the
 * observer (and in quorum "witness" the witness voter) on the shared UDP socket, keeps
 * their configuration equal to what the objects say, publishes the member set one change
 * at a time, and writes the cluster's status and Events (decideCluster, decideMembership).
 *
 * It also keeps the watches of the auth Secrets the HAClusters name, leader or not, so the
 * standby's cache is as ready as the leader's.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { ApiObject, Millis } from '../core/ports.js';
import { incarnationFromWallClock, laterLife, nextIncarnation } from '../core/incarnation.js';
import {
  AuthSecretError,
  buildClusterConfig,
  ClusterConfigError,
  MEMBER_KEY_ANNOTATION,
  type ClusterConfig,
} from '../runtime/cluster-config.js';
import { objectKey, splitId, type CacheChange } from '../runtime/object-cache.js';
import { AgentNodes } from './agent-nodes.js';
import { ClusterRuntime } from './cluster-runtime.js';
import { decideCluster, type ClusterStatus, type WitnessAddress } from './decide/cluster.js';
import { decideMembership } from './decide/membership.js';
import type { ReconcileResult, Reconciler } from './manager.js';
import { emit, vipsOfCluster, writeStatus, type ReconcileContext } from './reconciler.js';
import type { SharedTransport } from './shared-transport.js';

/** How long an HACluster waits for its auth Secret's watch before the Secret is reported unreadable. */
const SECRET_WATCH_WAIT_MS = 10_000;

export interface HAClusterReconcilerInit {
  /** Where agents reach the witness, with the witness's public key. */
  witness: WitnessAddress;
  witnessKey: KeyObject;
  transport: SharedTransport;
  /** What an observer saw change: members (liveness, generations) or the claims of some VIPs. */
  onObserved: (clusterId: string, change: { vips: string[]; members: boolean }) => void;
  /**
   * Whether the cache watches the agent DaemonSet's pods: then the Nodes they run on are the
   * members of an HACluster with an empty spec.nodeSelector, and a selected Node without one
   * is reported (docs/adr/0024). Without: an empty selector means the Nodes that published a
   * member key.
   */
  agentPods?: boolean;
  /** How long a Node counts as running the agent after its last agent pod went. */
  agentGoneGraceMs?: Millis;
}

/** The running observer of an HACluster, as the VirtualIP reconciler reads it. */
export interface ObservedClusters {
  runtimeOf(clusterId: string): ClusterRuntime | undefined;
  /** Why the HACluster's configuration does not build, if it does not. */
  configErrorOf(clusterId: string): string | undefined;
}

export class HAClusterReconciler implements Reconciler, ObservedClusters {
  readonly kind = 'HACluster' as const;
  private readonly runtimes = new Map<string, { runtime: ClusterRuntime; fingerprint: string }>();
  private readonly configErrors = new Map<string, string>();
  /** Per HACluster: when the barrier for the next member generation was first seen met. */
  private readonly membershipBarriers = new Map<string, Millis | undefined>();
  /** When each auth Secret watch started (`namespace/name`), to stop waiting for one that never syncs. */
  private readonly secretWatchSince = new Map<string, number>();
  private lastIncarnation = 0;
  /** Nodes running the agent, from its pods (only with init.agentPods). */
  private readonly agentNodes: AgentNodes;

  constructor(
    private readonly ctx: ReconcileContext,
    private readonly init: HAClusterReconcilerInit,
  ) {
    this.agentNodes = new AgentNodes(init.agentGoneGraceMs);
  }

  runtimeOf(clusterId: string): ClusterRuntime | undefined {
    return this.runtimes.get(clusterId)?.runtime;
  }

  configErrorOf(clusterId: string): string | undefined {
    return this.configErrors.get(clusterId);
  }

  /** The HAClusters a cache change concerns. */
  onChange(ch: CacheChange): void {
    const { cache, enqueue } = this.ctx;
    const ns = ch.object.metadata.namespace;
    switch (ch.kind) {
      case 'HACluster':
        this.syncSecretWatches();
        enqueue('HACluster', objectKey(ch.object));
        break;
      case 'VirtualIP': {
        // The cluster's configuration (VIP set, epochs) comes from its VIPs.
        const cluster = (ch.object.spec as { clusterRef?: { name?: string } } | undefined)?.clusterRef?.name;
        if (cluster) enqueue('HACluster', `${ns}/${cluster}`);
        break;
      }
      case 'Resource':
      case 'Secret':
        for (const h of cache.list('HACluster', ns)) enqueue('HACluster', objectKey(h));
        break;
      case 'Node':
        if (ch.type === 'resync') break;
        for (const h of cache.list('HACluster')) enqueue('HACluster', objectKey(h));
        break;
      case 'Pod':
        // Which Nodes run the agent (kept leader or not): HAClusters decide their member set
        // again, at once or when the grace period of a Node whose pod went ends (reconcile
        // requeues then).
        if (this.agentNodes.update(cache.list('Pod'), this.ctx.clock.now()))
          for (const h of cache.list('HACluster')) enqueue('HACluster', objectKey(h));
        break;
    }
  }

  /** Stops every observer and witness: they run only while leading. */
  async stopLeading(): Promise<void> {
    for (const [id, r] of this.runtimes) {
      await r.runtime.stop();
      this.ctx.metrics.setQuorum(id, undefined);
    }
    this.runtimes.clear();
  }

  /**
   * Watches exactly the auth Secrets the cached HAClusters name, each by name (RBAC
   * resourceNames authorize that), and stops watching one no HACluster names any more: the
   * controller never lists or watches the other Secrets of a namespace (docs/adr/0021).
   */
  private syncSecretWatches(): void {
    const { cache, clock, enqueue } = this.ctx;
    const wanted = new Set<string>();
    for (const h of cache.list('HACluster')) {
      const name = (h.spec as { authSecretRef?: { name?: unknown } } | undefined)?.authSecretRef?.name;
      if (typeof name === 'string' && name !== '') wanted.add(`${h.metadata.namespace ?? 'default'}/${name}`);
    }
    for (const id of cache.namedOf('Secret')) {
      if (wanted.has(id)) continue;
      const [ns, name] = id.split('/') as [string, string];
      cache.unwatchNamed('Secret', ns, name);
    }
    for (const id of this.secretWatchSince.keys()) if (!wanted.has(id)) this.secretWatchSince.delete(id);
    for (const id of wanted) {
      const [ns, name] = id.split('/') as [string, string];
      if (!this.secretWatchSince.has(id)) this.secretWatchSince.set(id, clock.now());
      cache.watchNamed('Secret', ns, name, () => {
        for (const h of cache.list('HACluster', ns)) enqueue('HACluster', objectKey(h));
      });
    }
  }

  /**
   * The next life of the observer and witness: the wall-clock seed when it is later (a new
   * controller process), else the life after the last one. Compared as serial numbers, so it
   * survives the uint32 wrap (docs/adr/0015).
   */
  private nextIncarnation(): number {
    const wall = incarnationFromWallClock(this.ctx.wallNow().getTime());
    const next = nextIncarnation(this.lastIncarnation);
    this.lastIncarnation = laterLife(wall, next) ? wall : next;
    return this.lastIncarnation;
  }

  /**
   * The Nodes that run the agent, for buildClusterConfig (docs/adr/0024): from the agent pods
   * when the controller watches them; without that, for an empty selector only, the Nodes
   * that published a member key (their agent ran there).
   */
  private agentNodesFor(cluster: ApiObject): { agentNodes?: ReadonlySet<string> } {
    const { cache, clock } = this.ctx;
    if (this.init.agentPods) {
      // Unknown until the pod watch delivered its first list: an empty set now would read as
      // "no Node runs the agent" and start removing members.
      if (cache.unsyncedKinds().includes('Pod')) return {};
      return { agentNodes: this.agentNodes.nodes(clock.now()) };
    }
    const sel = (cluster.spec as { nodeSelector?: Record<string, string> } | undefined)?.nodeSelector;
    if (sel && Object.keys(sel).length > 0) return {};
    return {
      agentNodes: new Set(
        cache
          .list('Node')
          .filter((n) => n.metadata.annotations?.[MEMBER_KEY_ANNOTATION] !== undefined)
          .map((n) => n.metadata.name),
      ),
    };
  }

  private clusterConfig(obj: ApiObject): { config?: ClusterConfig; error?: string; authSecret?: boolean } {
    const { cache } = this.ctx;
    const ns = obj.metadata.namespace ?? 'default';
    const authRef = (obj.spec as { authSecretRef?: { name?: string } } | undefined)?.authSecretRef?.name;
    try {
      const config = buildClusterConfig({
        cluster: obj,
        vips: cache.list('VirtualIP', ns),
        resources: cache.list('Resource', ns),
        nodes: cache.list('Node'),
        secret: authRef ? cache.get('Secret', `${ns}/${authRef}`) : undefined,
        witness: this.init.witness,
        membership: (obj.status as ClusterStatus | undefined)?.membership ?? null,
        ...this.agentNodesFor(obj),
      });
      return { config };
    } catch (err) {
      if (err instanceof AuthSecretError && authRef && !cache.namedSynced('Secret', ns, authRef)) {
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

  /** Starts the observer (and witness) of a cluster whose configuration builds for the first time. */
  private startRuntime(id: string, config: ClusterConfig, fingerprint: string, log: Logger): ClusterRuntime {
    const { ctx } = this;
    const rt = new ClusterRuntime(
      {
        clock: ctx.clock,
        transport: this.init.transport.view(),
        log: ctx.log.child({ component: 'cluster', cluster: id }),
        onChange: (change) => this.init.onObserved(id, change),
      },
      { config, incarnation: () => this.nextIncarnation(), signingKey: this.init.witnessKey },
    );
    rt.start();
    this.runtimes.set(id, { runtime: rt, fingerprint });
    log.info(
      { members: config.members.map((m) => m.id), quorum: config.quorum, voting: rt.voting },
      'observing cluster',
    );
    const { ns, name } = splitId(id);
    for (const v of vipsOfCluster(ctx.cache, ns ?? '', name)) ctx.enqueue('VirtualIP', objectKey(v));
    return rt;
  }

  async reconcile(id: string, log: Logger): Promise<ReconcileResult> {
    const { ctx } = this;
    const { ns, name } = splitId(id);
    const obj = ctx.cache.get('HACluster', id);
    const existing = this.runtimes.get(id);
    if (!obj) {
      if (existing) {
        await existing.runtime.stop();
        this.runtimes.delete(id);
        ctx.metrics.setQuorum(id, undefined);
        log.info('HACluster gone: observer and witness stopped');
      }
      ctx.writer.forget('HACluster', { namespace: ns, name });
      return {};
    }
    const authRef = (obj.spec as { authSecretRef?: { name?: unknown } } | undefined)?.authSecretRef?.name;
    const secretNs = obj.metadata.namespace ?? 'default';
    if (
      typeof authRef === 'string' &&
      authRef !== '' &&
      !ctx.cache.namedSynced('Secret', secretNs, authRef)
    ) {
      // Its Secret's watch has not delivered yet: "not found" now would be a false alarm. The
      // watch's first delivery queues this HACluster again; one that never delivers (RBAC
      // does not name the Secret) is reported after SECRET_WATCH_WAIT_MS.
      const since = this.secretWatchSince.get(`${secretNs}/${authRef}`) ?? ctx.clock.now();
      const left = since + SECRET_WATCH_WAIT_MS - ctx.clock.now();
      if (left > 0) {
        log.debug({ secret: authRef }, 'waiting for the auth Secret watch');
        return { requeueAfterMs: left };
      }
    }
    const built = this.clusterConfig(obj);
    let { config, error } = built;
    const running = this.runtimes.get(id);
    const fingerprint = config ? fingerprintOf(config) : '';
    if (config && running && running.fingerprint !== fingerprint) {
      try {
        running.runtime.reconfigure(config);
        running.fingerprint = fingerprint;
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
        log.warn({ problem: error, running: Boolean(running) }, 'cluster configuration invalid');
      this.configErrors.set(id, error);
    } else this.configErrors.delete(id);

    let runtime = running?.runtime;
    if (config) {
      runtime ??= this.startRuntime(id, config, fingerprint, log);
      if (config.problems.length > 0)
        log.debug({ problems: config.problems }, 'cluster configuration problems');
    }
    const objKey = { namespace: ns, name };
    const base = ctx.writer.base<ClusterStatus>('HACluster', objKey, obj.status);
    const obs = runtime?.observation();
    const decision = decideCluster({
      name: id,
      generation: obj.metadata.generation,
      base,
      config: config ?? runtime?.configuration,
      configError: error,
      authSecretError: built.authSecret ? error : undefined,
      obs,
      witness: this.init.witness,
      now: ctx.clock.now(),
      wallNow: ctx.wallNow(),
    });
    ctx.metrics.setQuorum(id, decision.quorum, (config ?? runtime?.configuration)?.timing.deadMs);
    const published = (obj.status as ClusterStatus | undefined)?.membership;
    let retryInMs: Millis | undefined;
    const current = runtime?.configuration;
    if (config?.candidates && current && obs) {
      // Membership changes one member at a time, behind the barrier (decideMembership). Not
      // while the candidates are unknown (an empty selector before the pod watch synced).
      const t = current.timing;
      const md = decideMembership({
        published,
        candidates: config.candidates,
        advertised: new Map(obs.members.map((m) => [m.id, m.generation ?? 0])),
        witnessVotes: current.quorum === 'witness',
        now: ctx.clock.now(),
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
    const w = await writeStatus(ctx, 'HACluster', objKey, obj, decision.status);
    if (w.requeueAfterMs !== undefined) return { requeueAfterMs: w.requeueAfterMs };
    if (w.written) {
      log.debug({ quorum: decision.status.quorum }, 'HACluster status written');
      emit(ctx, obj, 'HACluster', decision.events, log);
    }
    // A Node whose agent pod went stops counting at the end of its grace period: look again then.
    const graceEnds = this.init.agentPods ? this.agentNodes.nextChangeInMs(ctx.clock.now()) : undefined;
    if (graceEnds !== undefined) retryInMs = Math.min(retryInMs ?? Infinity, graceEnds + 1);
    return retryInMs !== undefined ? { requeueAfterMs: retryInMs } : {};
  }
}

function fingerprintOf(c: ClusterConfig): string {
  return JSON.stringify({
    ...c,
    keys: c.keys.map((k) => [k.id, Buffer.from(k.secret).toString('base64')]),
    standby: [...c.standby].sort(),
    problems: undefined,
  });
}
