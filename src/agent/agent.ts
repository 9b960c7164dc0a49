/**
 * The node agent: one per node (DaemonSet, hostNetwork). It watches its HACluster, the
 * cluster's VirtualIPs and Resources, the Nodes and the auth Secret; runs a core Member on
 * UDP heartbeats; binds, announces, renews and releases VIPs through the NetworkDriver
 * (heartline-netd: fence and kernel lifetimes); starts, probes and stops Resources.
 *
 * Kubernetes is read for desired state only: once running, failure detection and failover
 * happen between agents over UDP, and an API server outage changes nothing.
 *
 * Size: the agent's wiring (watches, configuration, member, executor, health, links, member
 * key) in one place; each job it wires is its own file.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type {
  ApiKind,
  ApiObject,
  ApiSource,
  Clock,
  NetworkDriver,
  ServiceRunner,
  Stoppable,
  Transport,
  Peer,
} from '../core/ports.js';
import { isMulticastTransport } from '../core/ports.js';
import type { MemberEvent } from '../core/member.js';
import { DropCounters, formatMemberPublicKey, generateMemberKey } from '../core/wire/index.js';
import {
  AuthSecretError,
  buildClusterConfig,
  ClusterConfigError,
  MEMBER_KEY_ANNOTATION,
  selectsNode,
  type ClusterConfig,
  type VipConfig,
  resourceIdOf,
} from '../runtime/cluster-config.js';
import { ObjectCache } from '../runtime/object-cache.js';
import { incarnationFromWallClock } from '../core/incarnation.js';
import { MemberHost } from '../runtime/member-host.js';
import { VipExecutor, type ExecutorEvent } from './executor.js';
import { HealthMonitor } from './health.js';
import { AgentMetrics, FAILOVER_REASONS } from './metrics.js';
import { ResourceStatusReporter } from './resource-status.js';
import { preciseNow } from '../ops/log.js';
import { prewarmHandoff } from '../runtime/prewarm.js';

export interface AgentComponents {
  clock: Clock;
  api: ApiSource;
  driver: NetworkDriver;
  runner: ServiceRunner;
  log: Logger;
  /**
   * Opens the heartbeat socket on `port` (the HACluster's transport.port). For multicast
   * links it must be a MulticastTransport (UdpTransport on the unspecified address).
   */
  openTransport: (port: number) => Promise<Transport>;
  /**
   * Datagrams the kernel dropped on the socket bound to `local` (receive buffer full), for
   * the drop metric; undefined when unknown. Default: none known.
   */
  socketDrops?: (local: Peer) => number | undefined;
  /** Every configuration the agent accepts, e.g. to update the health-check targets. */
  onConfig?: (config: ClusterConfig) => void;
  /**
   * Writes this node's public member key (`ed25519:<base64>`) to its Node's annotation
   * heartline.dev/member-key (a merge patch of that one annotation). Rejects on failure.
   */
  publishMemberKey: (publicKey: string) => Promise<void>;
}

export interface AgentInit {
  /** This node's name (the member id). */
  node: string;
  /**
   * Run a planned handover on throwaway state before the first member starts, so that the
   * first real one is not slowed by compiling its code (runtime/prewarm.ts). Default true;
   * unit tests with many agents turn it off.
   */
  prewarm?: boolean;
  namespace: string;
  /** HACluster name. */
  cluster: string;
  /**
   * Incarnation of this life, strictly later than every previous life of this member: from
   * the persisted counter (agent-run, docs/adr/0015). Default: the wall clock, which grows
   * across restarts only while the clock does.
   */
  incarnation?: number;
  /** A durable incarnation for each later life within this process (membership change). */
  nextIncarnation?: () => number;
  /** How long an unhealthy mark keeps a VIP away from this node. */
  unhealthyCooldownMs?: number;
  /** How often bound VIPs' links are checked (default: the heartbeat interval). */
  linkCheckMs?: number;
  /**
   * This node's Ed25519 member key (docs/adr/0021), kept on the node (agent-run: a file in
   * the state directory). Default: a new key for this process.
   */
  memberKey?: KeyObject;
  /**
   * Limit the signature checks that fail per sender and in total (docs/adr/0026). Default
   * true; false only to measure what the limit saves.
   */
  verifyBudget?: boolean;
}

export class Agent {
  readonly metrics: AgentMetrics;
  private readonly counters = new DropCounters();
  /** The watched objects (HACluster, VirtualIPs, Resources, Nodes, and the auth Secret by name). */
  private readonly objects: ObjectCache;
  private readonly watches: Stoppable[] = [];
  /** The auth Secret watched by name (ensureSecretWatch). */
  private secretName: string | undefined;
  /** The VIPs of `indexed` (the configuration last looked up) by id. */
  private vipIndex = new Map<string, VipConfig>();
  private indexed: ClusterConfig | undefined;
  private rebuildTimer: Stoppable | undefined;
  /** The handover prewarm ran (once per process). */
  private prewarmed = false;
  private linkTimer: Stoppable | undefined;
  private host: MemberHost | undefined;
  private transport: Transport | undefined;
  /** The multicast links (and own address) the transport last joined, to join only on change. */
  private joinedLinks = '';
  private executor: VipExecutor;
  private health: HealthMonitor;
  private config: ClusterConfig | undefined;
  private lastProblem = '';
  private starting = false;
  /** The HACluster does not select this node: nothing to do here (ready, no Secret). */
  private idle = false;
  /** Leaving the member set (see leave): no new member until it is done. */
  private leaving = false;
  private stopped = false;
  private lastTickAt: number;
  private readonly log: Logger;
  private readonly resourceStatus: ResourceStatusReporter;
  private readonly memberKey: KeyObject;
  /** The text form of memberKey's public half, as the Node annotation carries it. */
  readonly publicKey: string;
  private publishing = false;
  private publishRetry: Stoppable | undefined;
  /** Candidacies running, for the failover-duration metric: when each started and why. */
  private readonly candidacies = new Map<string, { at: number; reason: string }>();

  constructor(
    private readonly c: AgentComponents,
    private readonly init: AgentInit,
  ) {
    this.log = c.log.child({ component: 'agent', node: init.node });
    this.memberKey = init.memberKey ?? generateMemberKey();
    this.publicKey = formatMemberPublicKey(this.memberKey);
    this.metrics = new AgentMetrics(
      () => this.counters,
      () => {
        const host = this.host;
        if (!host) return undefined;
        return { view: () => host.view(), quorumSize: () => host.quorumSize, now: () => c.clock.now() };
      },
      () => (this.transport && c.socketDrops ? c.socketDrops(this.transport.address()) : undefined),
    );
    this.lastTickAt = c.clock.now();
    this.objects = new ObjectCache(
      c.api,
      (ch) => this.onChange(ch.kind),
      (kind) => this.onChange(kind),
    );
    this.resourceStatus = new ResourceStatusReporter({ api: c.api, log: this.log }, init.node);
    this.health = new HealthMonitor(
      {
        clock: c.clock,
        runner: c.runner,
        log: this.log,
        onChange: (unhealthy) => this.host?.setLocal({ unhealthy }),
        onProbe: (vip, resource, r, failures) => {
          this.metrics.resourceOps.inc({
            vip,
            resource,
            operation: 'check',
            result: r.ok ? 'success' : 'failure',
          });
          this.resourceStatus.probe(resourceIdOf(vip, resource), r.ok, r.durationMs, r.detail, failures);
        },
      },
      init.unhealthyCooldownMs !== undefined ? { cooldownMs: init.unhealthyCooldownMs } : {},
    );
    this.executor = new VipExecutor({
      clock: c.clock,
      driver: c.driver,
      runner: c.runner,
      log: this.log,
      lookup: (vip) => this.vipConfig(vip),
      onUnhealthy: (vip, reason) => this.health.mark(vip, reason),
      onEvent: (e) => this.emitEvent(e),
      onResourceState: (name, state, message) => this.resourceStatus.state(name, state, message),
      onAddressRefused: (vip) => this.metrics.addressRefused.inc({ vip }),
      onBindTime: (_vip, ms) => this.metrics.bindDuration.observe(ms / 1000),
      onResourceResult: (vip, resource, operation, ok) =>
        this.metrics.resourceOps.inc({ vip, resource, operation, result: ok ? 'success' : 'failure' }),
      onPhase: (vip, phase, epoch) => {
        this.metrics.holder.set({ vip }, phase === 'bound' ? 1 : 0);
        this.metrics.epoch.set({ vip }, epoch);
        const cand = this.candidacies.get(vip);
        if (phase === 'bound' && cand) {
          this.candidacies.delete(vip);
          this.metrics.failoverDuration.observe({ reason: cand.reason }, (c.clock.now() - cand.at) / 1000);
        }
        const cfg = this.vipConfig(vip);
        if (phase === 'bound' && cfg) this.health.watch(cfg);
        // Probes stop when the release starts: a check of a service being stopped, or of an
        // address being removed, is no failure of the Resource.
        if (phase === 'unbinding' || phase === 'unbound') this.health.unwatch(vip);
      },
    });
  }

  /**
   * Ready once the member runs (configuration loaded, stale addresses swept, socket open) and
   * has settled: it hears its peers and its quiet period as a voter is over, so a VIP can be
   * handed to it and its acks count. A DaemonSet rolling update stops the next node only then
   * (docs/adr/0024). On a node its HACluster does not select the agent has nothing to do and
   * is ready too (idle), so that `kubectl rollout status` completes.
   */
  ready(): { ready: boolean; reason: string } {
    if (this.host) {
      if (this.host.view().ready) return { ready: true, reason: `member ${this.init.node} running` };
      return {
        ready: false,
        reason: `member ${this.init.node} settling: hearing its peers, then its quiet period as a voter`,
      };
    }
    if (this.idle) return { ready: true, reason: `idle: ${this.lastProblem}` };
    return { ready: false, reason: this.lastProblem || 'waiting for the cluster configuration' };
  }

  healthy(): boolean {
    return this.stopped || this.c.clock.now() - this.lastTickAt < 10_000;
  }

  /** The running member host (undefined until configured). */
  get member(): MemberHost | undefined {
    return this.host;
  }

  boundVips() {
    return this.executor.bound();
  }

  start(): void {
    const ns = this.init.namespace;
    this.objects.watch('HACluster', { namespace: ns, fieldSelector: `metadata.name=${this.init.cluster}` });
    this.objects.watch('VirtualIP', { namespace: ns });
    this.objects.watch('Resource', { namespace: ns });
    this.objects.watch('Node');
    this.watches.push(
      this.c.clock.every(1000, () => {
        this.lastTickAt = this.c.clock.now();
      }),
    );
  }

  private onChange(kind: ApiKind): void {
    this.log.debug({ at: preciseNow(), kind }, 'trace: watched object changed');
    if (kind === 'HACluster' || kind === 'Node') {
      this.ensureSecretWatch();
      this.ensureKeyPublished();
    }
    this.scheduleRebuild();
  }

  /** VIP `vip` of the running configuration (an index, rebuilt when the configuration changes). */
  private vipConfig(vip: string): VipConfig | undefined {
    if (this.indexed !== this.config) {
      this.indexed = this.config;
      this.vipIndex = new Map((this.config?.vips ?? []).map((v) => [v.vip, v]));
    }
    return this.vipIndex.get(vip);
  }

  /** The HACluster this agent serves, once the watch delivered it. */
  private cluster(): ApiObject | undefined {
    return this.objects.list('HACluster')[0];
  }

  /**
   * While this node is a member, its Node carries this agent's public key (annotation
   * heartline.dev/member-key): peers verify its datagrams with it. Written when missing or
   * different (a new key, or someone changed it), retried every 5 s after a failure.
   */
  private ensureKeyPublished(): void {
    if (this.publishing || this.publishRetry || this.stopped) return;
    const cluster = this.cluster();
    const node = this.ownNode();
    if (!cluster || !node || !selectsNode(cluster, node)) return;
    if (node.metadata.annotations?.[MEMBER_KEY_ANNOTATION] === this.publicKey) return;
    this.publishing = true;
    this.c
      .publishMemberKey(this.publicKey)
      .then(() => this.log.info({ publicKey: this.publicKey }, 'member key published on the Node'))
      .catch((err: unknown) => {
        this.log.error(
          { err, annotation: MEMBER_KEY_ANNOTATION },
          'cannot publish the member key on this Node: peers drop what this node sends until it is; retrying in 5 s',
        );
        this.publishRetry = this.c.clock.after(5000, () => {
          this.publishRetry = undefined;
          this.ensureKeyPublished();
        });
      })
      .finally(() => {
        this.publishing = false;
      });
  }

  /** This node's Node object, once the watch delivered it. */
  private ownNode(): ApiObject | undefined {
    return this.objects.get('Node', this.init.node);
  }

  /**
   * Watches the auth Secret only while this node is a member (its labels match the
   * HACluster's nodeSelector): a node that is not one never fetches the cluster's key, and
   * one that stops being one drops it. RBAC cannot say "only members" (every agent runs
   * under one service account), so this is the agent's own rule (docs/adr/0021).
   */
  private ensureSecretWatch(): void {
    const cluster = this.cluster();
    const name = (cluster?.spec as { authSecretRef?: { name?: string } } | undefined)?.authSecretRef?.name;
    const member = Boolean(cluster && selectsNode(cluster, this.ownNode()));
    if (!member || !name) {
      // Before the HACluster and Node watches have synced nothing is known yet: keep what runs.
      if (this.objects.isSynced('HACluster') && this.objects.isSynced('Node')) this.dropSecret();
      return;
    }
    if (this.secretName === name) return;
    this.dropSecret();
    this.secretName = name;
    this.objects.watchNamed('Secret', this.init.namespace, name, () => this.scheduleRebuild());
  }

  /** Stops the Secret watch and forgets the keys it delivered. */
  private dropSecret(): void {
    if (this.secretName === undefined) return;
    this.objects.unwatchNamed('Secret', this.init.namespace, this.secretName);
    this.secretName = undefined;
  }

  private scheduleRebuild(): void {
    if (this.rebuildTimer || this.stopped) return;
    this.rebuildTimer = this.c.clock.after(10, () => {
      this.rebuildTimer = undefined;
      // Nothing a user applies may end the process (the fence would then drop every VIP of
      // this node): whatever a rebuild throws is reported and the running member stays.
      this.rebuild().catch((err: unknown) =>
        this.problem(`cannot apply the configuration: ${(err as Error)?.message ?? String(err)}`, {
          reason: 'ConfigurationRejected',
          err,
        }),
      );
    });
  }

  /**
   * Records why the configuration cannot be used: logged, shown by ready() until a member
   * runs, and, with `event`, a Warning Event on the HACluster once per distinct problem.
   * A running member keeps its configuration (keys included) until the problem is fixed.
   */
  private problem(msg: string, event?: { reason: string; err?: unknown }): void {
    if (msg === this.lastProblem) return;
    this.lastProblem = msg;
    const keeping = this.host
      ? `keeping the running configuration (keys ${this.host.configuration.keys.map((k) => k.id).join(', ')}, active ${this.host.configuration.activeKeyId}); nothing moves`
      : 'the member does not start until this is fixed';
    this.log.error(
      { problem: msg, err: event?.err, running: Boolean(this.host) },
      'cluster configuration unusable',
    );
    const cluster = this.cluster();
    if (!event || !cluster) return;
    const note = `${this.init.node}: ${msg}`;
    const suffix = `; ${keeping}`;
    void this.c.api
      .event({
        regarding: cluster,
        type: 'Warning',
        reason: event.reason,
        // events.k8s.io/v1 caps note at 1 KiB.
        note:
          note.length + suffix.length > 1000
            ? `${note.slice(0, 997 - suffix.length)}...${suffix}`
            : note + suffix,
        action: 'Configure',
      })
      .catch((err: unknown) => this.log.debug({ err }, 'event not recorded'));
  }

  private async rebuild(): Promise<void> {
    if (this.stopped) return;
    for (const k of ['HACluster', 'VirtualIP', 'Resource', 'Node'] as const) {
      if (!this.objects.isSynced(k)) return;
    }
    const cluster = this.cluster();
    if (!cluster)
      return this.problem(`HACluster ${this.init.namespace}/${this.init.cluster} not found; apply it`);
    if (!selectsNode(cluster, this.ownNode())) return this.notMember();
    this.idle = false;
    const secretName = this.secretName;
    if (secretName === undefined || !this.objects.namedSynced('Secret', this.init.namespace, secretName))
      return;
    let config: ClusterConfig;
    const status = cluster.status as
      | {
          witness?: { address: string; port: number };
          membership?: { generation: number; members: string[] };
        }
      | undefined;
    try {
      config = buildClusterConfig({
        cluster,
        vips: this.objects.list('VirtualIP'),
        resources: this.objects.list('Resource'),
        nodes: this.objects.list('Node'),
        secret: this.objects.get('Secret', `${this.init.namespace}/${secretName}`),
        witness: status?.witness ?? null,
        membership: status?.membership ?? null,
      });
    } catch (err) {
      if (err instanceof AuthSecretError) return this.problem(err.message, { reason: 'AuthSecretInvalid' });
      if (err instanceof ClusterConfigError)
        return this.problem(err.message, { reason: 'InvalidConfiguration' });
      throw err;
    }
    if (!config.members.some((m) => m.id === this.init.node)) {
      // Selected (by labels, or by running the agent under an empty selector) but not yet in
      // the published member set: wait for the controller (one member at a time, docs/adr/0015);
      // otherwise not a member (leave as a graceful stop).
      // An empty selector: this node runs the agent, so it is a candidate (docs/adr/0024).
      const candidate = config.candidates?.includes(this.init.node) ?? true;
      if (candidate && !status?.membership?.members.includes(this.init.node)) {
        if (this.host) await this.leave();
        return this.problem(
          `Node ${this.init.node} is selected but not yet in HACluster ${config.clusterId}'s published member set (status.membership); the controller adds one member at a time`,
        );
      }
      return this.notMember();
    }
    for (const p of config.problems)
      if (!this.config?.problems.includes(p)) this.log.warn({ problem: p }, 'configuration problem');
    const prev = this.config;
    this.config = config;
    this.logVipChanges(prev, config);
    this.metrics.vipsConfigured(config.vips.map((v) => v.vip));
    this.c.onConfig?.(config);
    if (!this.host) {
      this.lastProblem = '';
      if (!this.starting && !this.leaving) await this.startMember(config);
      return;
    }
    try {
      // Throws before changing anything when the configuration cannot run.
      this.host.reconfigure(config);
    } catch (err) {
      this.config = prev;
      return this.problem(`cannot apply the configuration: ${(err as Error).message}`, {
        reason: 'ConfigurationRejected',
        err,
      });
    }
    if (this.lastProblem) this.log.info({ was: this.lastProblem }, 'cluster configuration usable again');
    this.lastProblem = '';
    if (prev && prev.port !== config.port) {
      this.log.error(
        { from: prev.port, to: config.port },
        'transport.port changed: restart the agent to apply it',
      );
    }
    this.log.debug({ at: preciseNow() }, 'trace: configuration applied');
    this.host.setLocal({ standby: config.standby.has(this.init.node) });
    this.warmInterfaces(config);
    this.applyLinks(config);
  }

  /**
   * One line when the configured VIPs change (added, removed, or being deleted): when this
   * agent learned of a VirtualIP is the first stage of provisioning (bench/provision).
   */
  private logVipChanges(prev: ClusterConfig | undefined, next: ClusterConfig): void {
    const live = (c: ClusterConfig | undefined) =>
      new Set((c?.vips ?? []).filter((v) => !v.deleting && !v.refused).map((v) => v.vip));
    const before = live(prev);
    const after = live(next);
    const added = [...after].filter((v) => !before.has(v));
    const removed = [...before].filter((v) => !after.has(v));
    if (added.length === 0 && removed.length === 0) return;
    const cap = (l: string[]) => (l.length > 20 ? [...l.slice(0, 20), `(+${l.length - 20} more)`] : l);
    this.log.info({ added: cap(added), removed: cap(removed), vips: after.size }, 'VIPs configured');
  }

  /**
   * This node is not a member (not selected, or selected but with no address): leave if a
   * member runs (graceful stop, planned releases, docs/adr/0015), and ask for nothing after.
   */
  private async notMember(): Promise<void> {
    if (this.host) await this.leave();
    const selected = selectsNode(this.cluster()!, this.ownNode());
    // Not selected: the Secret watch is stopped (ensureSecretWatch); the keys are forgotten.
    if (!selected && !this.host) this.config = undefined;
    this.idle = !selected && !this.host;
    this.problem(
      `Node ${this.init.node} is not a member of HACluster ${this.init.namespace}/${this.init.cluster}: ` +
        (selected
          ? 'its Node has no address; set status.addresses or annotation heartline.dev/heartbeat-address'
          : 'label it to match spec.nodeSelector'),
    );
  }

  /** joinLinks for a running member: a failure keeps the links joined before, and says so. */
  private applyLinks(config: ClusterConfig): void {
    this.joinLinks(config).catch((err: unknown) =>
      this.log.error(
        { err },
        'cannot apply the HACluster transport links: keeping the ones joined before; fix spec.transport',
      ),
    );
  }

  /**
   * Joins the cluster's multicast links on the socket (when they or this node's heartbeat
   * address changed), and says loudly when a link cannot work from here: peers would drop
   * what this node sends from an address that is not on its Node, and a socket bound to one
   * address does not receive what is sent to the others. Rejects naming the link.
   */
  private async joinLinks(config: ClusterConfig): Promise<void> {
    const t = this.transport;
    const self = config.members.find((m) => m.id === this.init.node);
    if (!t || !self) return;
    const links = (config.links ?? []).flatMap((l) =>
      l.mode === 'multicast' ? [{ group: l.group, ...(l.interface ? { interface: l.interface } : {}) }] : [],
    );
    const key = JSON.stringify([links, self.address, self.unicast, self.sources]);
    if (key === this.joinedLinks) return;
    const bound = t.address().address;
    const missed = (self.unicast ?? []).filter((a) => a !== bound);
    if (bound !== '0.0.0.0' && bound !== '::' && missed.length) {
      this.log.error(
        { bound, missed },
        'the heartbeat socket is bound to one address: heartbeats peers send to the others are lost; run the agent with --listen-address 0.0.0.0',
      );
    }
    if (links.length && !isMulticastTransport(t)) {
      throw new Error('spec.transport has multicast links but this agent transport cannot multicast');
    }
    if (isMulticastTransport(t)) {
      const joined = await t.setMulticast(links, self.address);
      for (const j of joined) {
        if ((self.sources ?? [self.address]).includes(j.address)) continue;
        this.log.error(
          { group: j.group, interface: j.interface, address: j.address },
          `multicast heartbeats leave from an address that is not on Node ${this.init.node}: peers drop them (source-mismatch); add it to annotation heartline.dev/heartbeat-address`,
        );
      }
      if (joined.length) this.log.info({ links: joined }, 'multicast links joined');
    }
    this.joinedLinks = key;
  }

  /**
   * This node is no longer a member: stop the member as on SIGTERM (its VIPs move by planned
   * release), close the heartbeat socket, and start afresh (a new life) if it is added back.
   */
  private async leave(): Promise<void> {
    const host = this.host;
    if (!host || this.leaving) return;
    this.leaving = true;
    this.host = undefined;
    this.linkTimer?.stop();
    this.linkTimer = undefined;
    this.log.info(
      { incarnation: host.currentIncarnation },
      'this node left the member set: releasing its VIPs',
    );
    try {
      await host.stop();
      await this.transport?.close();
      this.transport = undefined;
    } finally {
      this.leaving = false;
    }
    this.scheduleRebuild();
  }

  /** Interfaces of VIPs this node may hold, looked up before a takeover needs them. */
  private warmInterfaces(config: ClusterConfig): void {
    this.executor.warm(config.vips.filter((v) => !v.spec.interface).map((v) => v.spec.address));
  }

  private async startMember(config: ClusterConfig): Promise<void> {
    this.starting = true;
    try {
      const swept = await this.c.driver.sweep();
      if (swept.length) this.log.warn({ swept }, 'removed stale Heartline addresses from a previous life');
      this.warmInterfaces(config);
      this.transport = await this.c.openTransport(config.port);
      try {
        await this.joinLinks(config);
      } catch (err) {
        await this.transport.close();
        this.transport = undefined;
        this.joinedLinks = '';
        throw err;
      }
      const host = new MemberHost(
        {
          clock: this.c.clock,
          transport: this.transport,
          log: this.log,
          counters: this.counters,
          effects: {
            bind: (cmd) => {
              const cfg = this.vipConfig(cmd.vip);
              this.metrics.resourcesBinding(
                cmd.vip,
                (cfg?.resources ?? []).map((r) => r.name),
              );
              this.metrics.failovers.inc({
                vip: cmd.vip,
                reason: this.candidacies.get(cmd.vip)?.reason ?? 'Unheld',
              });
              this.executor.bind(cmd);
            },
            renew: (cmd) => this.executor.renew(cmd),
            unbind: (cmd) => this.executor.unbind(cmd),
          },
          observer: (e) => this.observe(e),
          onSend: (kind, ok) => this.metrics.heartbeatsSent.inc({ kind, result: ok ? 'ok' : 'error' }),
          onReceive: (kind) => this.metrics.heartbeatsReceived.inc({ kind }),
          onPeerHeartbeat: (sample) => this.metrics.peerHeartbeat(sample),
          ...(this.init.nextIncarnation ? { nextIncarnation: this.init.nextIncarnation } : {}),
        },
        {
          self: this.init.node,
          config: this.config ?? config,
          signingKey: this.memberKey,
          incarnation: this.init.incarnation ?? incarnationFromWallClock(Date.now()),
          standby: config.standby.has(this.init.node),
          multicast: true,
          ...(this.init.verifyBudget === false ? { verifyBudget: false } : {}),
        },
      );
      if (this.stopped) return;
      this.prewarm(config);
      host.start();
      this.host = host;
      this.log.info(
        {
          incarnation: host.currentIncarnation,
          members: config.members.map((m) => m.id),
          port: config.port,
          quorum: config.quorum,
        },
        'member started',
      );
      this.linkTimer = this.c.clock.every(this.init.linkCheckMs ?? config.timing.intervalMs, () =>
        this.checkLinks(),
      );
      if (this.config && this.config !== config) {
        host.reconfigure(this.config);
        this.applyLinks(this.config);
      }
    } catch (err) {
      if (!this.host && this.transport) {
        // Closed so that the next attempt (on the next change) can open the port again.
        const t = this.transport;
        this.transport = undefined;
        await t.close().catch(() => undefined);
      }
      this.problem(`cannot start the member: ${(err as Error).message}`, { reason: 'MemberNotStarted', err });
    } finally {
      this.starting = false;
    }
  }

  /**
   * Once per process, before the first member starts: runs a planned handover on throwaway
   * state (runtime/prewarm.ts), so that the first real one does not compile its code inside
   * the no-holder window. Best effort: a failure is logged and changes nothing.
   */
  private prewarm(config: ClusterConfig): void {
    if (this.prewarmed || this.init.prewarm === false) return;
    this.prewarmed = true;
    const started = performance.now();
    try {
      const r = prewarmHandoff(config.timing);
      this.log.info(
        { ms: Math.round(performance.now() - started), handedOver: r.handedOver, datagrams: r.datagrams },
        'handover path prewarmed',
      );
    } catch (err) {
      this.log.warn({ err }, 'handover prewarm failed (the first planned move may be slower)');
    }
  }

  private async checkLinks(): Promise<void> {
    for (const b of this.executor.bound()) {
      if (b.phase !== 'bound' || !b.addr) continue;
      const up = await this.c.driver.linkUp(b.addr.iface).catch(() => true);
      if (!up && !this.health.unhealthy().has(b.vip)) this.health.mark(b.vip, `link ${b.addr.iface} is down`);
    }
  }

  private observe(e: MemberEvent): void {
    switch (e.type) {
      case 'liveness':
        this.log.info({ change: e.change }, 'member liveness changed');
        break;
      case 'candidate':
        this.candidacies.set(e.vip, { at: this.c.clock.now(), reason: FAILOVER_REASONS[e.cause] });
        this.log.info({ vip: e.vip, epoch: e.epoch, reason: e.reason }, 'asking for takeover');
        break;
      case 'abandon':
        this.candidacies.delete(e.vip);
        this.log.info({ vip: e.vip, epoch: e.epoch, reason: e.reason }, 'takeover abandoned');
        break;
      case 'refused':
        this.log.debug(
          { vip: e.vip, epoch: e.epoch, candidate: e.candidate, reason: e.reason },
          'takeover refused',
        );
        break;
    }
  }

  private emitEvent(e: ExecutorEvent): void {
    const [namespace, name] = e.vip.split('/');
    const obj = this.objects.get('VirtualIP', `${namespace}/${name}`);
    if (!obj) return;
    void this.c.api
      .event({
        regarding: obj,
        type: e.type,
        reason: e.reason,
        note: `${this.init.node}: ${e.note}`,
        action: e.action,
      })
      .catch((err: unknown) => this.log.debug({ err }, 'event not recorded'));
  }

  /** SIGTERM: release every VIP as a planned move, then close the fence (which sweeps). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.rebuildTimer?.stop();
    this.linkTimer?.stop();
    this.publishRetry?.stop();
    for (const w of this.watches) w.stop();
    this.objects.stop();
    this.health.close();
    // The process stops (pod deleted, rolling update): hand each VIP over as a drain does.
    if (this.host) await this.host.stop(undefined, { handOver: true });
    await this.executor.drain();
    await this.transport?.close();
    await this.c.driver.close();
    await this.c.runner.close();
  }
}
