/**
 * A simulated Heartline cluster for controller tests: FakeApiSource with an HACluster, its
 * Secret, Nodes and VirtualIPs; agents as MemberHosts with recording Effects on a SimNetwork;
 * controllers on the same network with FakeLeaseLocks over one FakeLeaseStore. Everything
 * runs on one SimWorld, so seconds of protocol take milliseconds.
 */
import { randomBytes } from 'node:crypto';
import type { ApiObject, ApiSource } from '../../../src/core/ports.js';
import { Controller } from '../../../src/controller/controller.js';
import { InstrumentedApiSource } from '../../../src/controller/instrumented-api.js';
import { ControllerMetrics } from '../../../src/controller/metrics.js';
import { silentLogger } from '../../../src/ops/log.js';
import { buildClusterConfig, type ClusterConfig } from '../../../src/runtime/cluster-config.js';
import { MemberHost, type BindCommand, type UnbindCommand } from '../../../src/runtime/member-host.js';
import { MEMBER_KEY_ANNOTATION } from '../../../src/runtime/cluster-config.js';
import { memberKeyOf, publicKeyOf } from '../../fixtures/member-keys.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { FakeApiSource, FakeLeaseLock, FakeLeaseStore } from '../../fakes/k8s.js';
import { SimNetwork, type SimTransport } from '../../fakes/transport.js';

export const NS = 'lab';
export const WALL_ORIGIN = Date.UTC(2026, 10, 22, 0, 0, 0);

export interface RigInit {
  nodes: string[];
  quorum?: 'majority' | 'witness' | 'ignore';
  vips?: Array<{ name: string; address: string; preferredNodes?: string[] }>;
  /** The HACluster's spec.nodeSelector (default: heartline.dev/member=true, which every node has). */
  nodeSelector?: Record<string, string>;
}

export class SimAgent {
  readonly bound = new Map<string, number>();
  readonly log: Array<BindCommand | UnbindCommand> = [];
  host: MemberHost | undefined;
  private transport: SimTransport | undefined;
  private incarnation = 1000;

  constructor(
    private readonly rig: Rig,
    readonly name: string,
    readonly address: string,
  ) {}

  start(config: ClusterConfig): void {
    this.transport = this.rig.net.transport(this.address, 694);
    this.incarnation += 10;
    this.host = new MemberHost(
      {
        clock: this.rig.clock,
        transport: this.transport,
        log: silentLogger(),
        effects: {
          bind: (cmd) => {
            this.bound.set(cmd.vip, cmd.epoch);
            this.log.push(cmd);
          },
          renew: () => {},
          unbind: (cmd) => {
            this.bound.delete(cmd.vip);
            this.log.push(cmd);
          },
        },
      },
      { self: this.name, config, incarnation: this.incarnation, signingKey: memberKeyOf(this.name) },
    );
    this.host.start();
  }

  /** Power-off: no release, silence from now on. */
  async crash(): Promise<void> {
    await this.transport?.close();
    await this.host?.stop();
    this.bound.clear();
    this.host = undefined;
  }

  /** Graceful stop: releases first. */
  async stop(): Promise<void> {
    await this.host?.stop();
    await this.transport?.close();
    this.bound.clear();
    this.host = undefined;
  }
}

export class Rig {
  readonly world = new SimWorld();
  readonly clock = new SimClock({ world: this.world });
  readonly net = new SimNetwork({ clock: this.clock, faults: { delayMs: 1 } });
  readonly api = new FakeApiSource();
  readonly leases = new FakeLeaseStore();
  readonly agents = new Map<string, SimAgent>();
  readonly controllers: Array<{
    controller: Controller;
    api: InstrumentedApiSource;
    metrics: ControllerMetrics;
    address: string;
  }> = [];

  constructor(readonly init: RigInit) {
    this.api.apply('Secret', {
      metadata: { name: 'auth', namespace: NS },
      data: { '1': randomBytes(32).toString('base64') },
    } as ApiObject);
    this.init.nodes.forEach((n, i) => {
      this.api.apply('Node', {
        metadata: {
          name: n,
          labels: { 'heartline.dev/member': 'true' },
          annotations: { [MEMBER_KEY_ANNOTATION]: publicKeyOf(n) },
        },
        status: { addresses: [{ type: 'InternalIP', address: `198.18.0.${i + 1}` }] },
      });
      this.agents.set(n, new SimAgent(this, n, `198.18.0.${i + 1}`));
    });
    this.api.apply('HACluster', {
      metadata: { name: 'web', namespace: NS },
      spec: {
        authSecretRef: { name: 'auth', activeKeyId: '1' },
        quorum: init.quorum ?? 'majority',
        nodeSelector: init.nodeSelector ?? { 'heartline.dev/member': 'true' },
      },
    });
    for (const v of init.vips ?? [{ name: 'vip1', address: '198.18.0.100/24' }]) {
      this.api.apply('VirtualIP', {
        metadata: { name: v.name, namespace: NS },
        spec: {
          clusterRef: { name: 'web' },
          address: v.address,
          ...(v.preferredNodes ? { preferredNodes: v.preferredNodes } : {}),
        },
      });
    }
  }

  wallNow = (): Date => new Date(WALL_ORIGIN + this.world.time);

  /** `wrap` puts something between the controller and the fake API (e.g. to hold calls). */
  addController(
    identity: string,
    opts: {
      workers?: number;
      wrap?: (api: ApiSource) => ApiSource;
      /** Watch these agent pods (ControllerInit.agentPods), with this grace period. */
      agentPods?: { namespace: string; labelSelector: string; graceMs?: number };
    } = {},
  ): {
    controller: Controller;
    api: InstrumentedApiSource;
    metrics: ControllerMetrics;
    address: string;
  } {
    const address = `198.18.0.${200 + this.controllers.length}`;
    const metrics = new ControllerMetrics({ now: () => this.clock.now() });
    const api = new InstrumentedApiSource(opts.wrap ? opts.wrap(this.api) : this.api, metrics);
    const controller = new Controller(
      {
        api,
        lease: new FakeLeaseLock(
          { store: this.leases, clock: this.clock },
          { identity, leaseDurationSeconds: 15 },
        ),
        clock: this.clock,
        log: silentLogger(),
        metrics,
        transport: this.net.transport(address, 694),
        wallNow: this.wallNow,
      },
      {
        witness: { address, port: 694 },
        ...(opts.workers ? { workers: opts.workers } : {}),
        ...(opts.agentPods
          ? {
              agentPods: { namespace: opts.agentPods.namespace, labelSelector: opts.agentPods.labelSelector },
              ...(opts.agentPods.graceMs !== undefined ? { agentGoneGraceMs: opts.agentPods.graceMs } : {}),
            }
          : {}),
      },
    );
    const entry = { controller, api, metrics, address };
    this.controllers.push(entry);
    controller.start();
    return entry;
  }

  async object(kind: 'HACluster' | 'VirtualIP', name: string): Promise<ApiObject | undefined> {
    return this.api.get(kind, { namespace: NS, name });
  }

  async vipStatus(
    name = 'vip1',
  ): Promise<Record<string, unknown> & { holder?: string; epoch?: number; phase?: string }> {
    return ((await this.object('VirtualIP', name))?.status ?? {}) as Record<string, unknown>;
  }

  /** The configuration agents derive from the objects (with the witness address the controller published). */
  async config(): Promise<ClusterConfig> {
    const cluster = (await this.object('HACluster', 'web'))!;
    const status = cluster.status as
      | {
          witness?: { address: string; port: number };
          membership?: { generation: number; members: string[] };
        }
      | undefined;
    const witness = status?.witness ?? null;
    return buildClusterConfig({
      membership: status?.membership ?? null,
      cluster,
      vips: await this.api.list('VirtualIP', { namespace: NS }),
      resources: [],
      nodes: await this.api.list('Node'),
      secret: await this.api.get('Secret', { namespace: NS, name: 'auth' }),
      witness,
    });
  }

  async startAgents(names = this.init.nodes): Promise<void> {
    const config = await this.config();
    for (const n of names) this.agents.get(n)!.start(config);
  }

  async reconfigureAgents(): Promise<void> {
    const config = await this.config();
    for (const a of this.agents.values()) a.host?.reconfigure(config);
  }

  async advance(ms: number): Promise<void> {
    await this.world.advance(ms);
  }

  /** Advances in steps until `pred` holds; fails after `maxMs` of simulated time. */
  async until(pred: () => boolean | Promise<boolean>, maxMs = 20_000, stepMs = 50): Promise<number> {
    const start = this.world.time;
    while (!(await pred())) {
      if (this.world.time - start > maxMs)
        throw new Error(`condition not met within ${maxMs} ms of simulated time`);
      await this.advance(stepMs);
    }
    return this.world.time - start;
  }

  holders(vip = `${NS}/vip1`): string[] {
    return [...this.agents.values()].filter((a) => a.bound.has(vip)).map((a) => a.name);
  }

  async close(): Promise<void> {
    for (const a of this.agents.values()) await a.stop();
    for (const c of this.controllers) await c.controller.stop();
  }
}
