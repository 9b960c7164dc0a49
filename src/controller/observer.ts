/**
 * Hosts the core Observer (core/observer.ts) for one cluster, as MemberHost hosts Member: it
 * authenticates the datagrams members send to the controller's witness id, feeds them to the
 * observer, sends the observer's heartbeats (when no witness MemberHost speaks for the
 * witness id) to each member's unicast addresses, and wakes it when it asks.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { MemberId, VipId } from '../core/messages.js';
import { Observer, type Observation, type ObserverStep } from '../core/observer.js';
import type { Clock, Peer, Stoppable, Transport } from '../core/ports.js';
import { IdTable, Keyring, SourceBinding, WireCodec, type DropCounters } from '../core/wire/index.js';
import { RateLimitedLog } from '../ops/rate-limited-log.js';
import {
  memberKeysOf,
  WITNESS_ID,
  type ClusterConfig,
  type MemberAddress,
} from '../runtime/cluster-config.js';

export type {
  LossCause,
  Observation,
  ObservedHolding,
  ObservedMember,
  VipTransition,
} from '../core/observer.js';

/** Where the observer's heartbeats go: each member's unicast link addresses, else its main address (the observer never multicasts). */
function unicastPeers(config: ClusterConfig): Map<MemberId, Peer[]> {
  return new Map(
    config.members.map((m) => [
      m.id,
      (m.unicast?.length ? m.unicast : [m.address]).map((address) => ({ address, port: m.port })),
    ]),
  );
}

/** What the core observer watches of a cluster configuration. */
function observed(config: ClusterConfig) {
  return {
    clusterId: config.clusterId,
    members: config.members.map((m) => m.id),
    timing: config.timing,
    vips: config.vips.map((v) => v.vip),
  };
}

export interface ObserverComponents {
  clock: Clock;
  transport: Transport;
  log: Logger;
  /** Called after the holders or the members' liveness changed. */
  onChange: (change: { vips: VipId[]; members: boolean }) => void;
  counters?: DropCounters;
}

export interface ObserverInit {
  config: ClusterConfig;
  incarnation: number;
  /** Send observer heartbeats (only when no witness MemberHost speaks for WITNESS_ID). */
  heartbeat: boolean;
  /** The controller's witness key: signs the observer's heartbeats (docs/adr/0021). */
  signingKey: KeyObject;
}

export class ClusterObserver {
  private config: ClusterConfig;
  private codec: WireCodec;
  private core: Observer | undefined;
  /** Each member's unicast destinations (one per unicast link). */
  private addresses = new Map<MemberId, Peer[]>();
  private timer: Stoppable | undefined;
  private running = false;

  /** Drops are counted (codec); their log lines are rate-limited. */
  private readonly dropLog: RateLimitedLog;

  constructor(
    private readonly c: ObserverComponents,
    private readonly init: ObserverInit,
  ) {
    this.dropLog = new RateLimitedLog({ log: c.log, clock: c.clock }, { msg: 'datagram dropped' });
    this.config = init.config;
    this.codec = this.newCodec(init.config);
  }

  get counters(): DropCounters {
    return this.codec.counters;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const now = this.c.clock.now();
    this.core = new Observer(
      {
        ...observed(this.config),
        self: WITNESS_ID,
        incarnation: this.init.incarnation,
        heartbeat: this.init.heartbeat,
      },
      now,
    );
    this.c.transport.onMessage((bytes, from) => this.onDatagram(bytes, from));
    this.dispatch(this.core.tick(now));
  }

  stop(): void {
    this.running = false;
    this.timer?.stop();
    this.timer = undefined;
  }

  /**
   * Applies a new configuration; a different member list or timing starts observing afresh.
   * Throws before changing anything when `next` cannot run (bad keys, colliding ids).
   */
  reconfigure(next: ClusterConfig): void {
    const prev = this.config;
    if (prev.clusterId !== next.clusterId) {
      this.codec = this.newCodec(next);
    } else {
      const idTable = this.idTable(next);
      const sources = this.sources(next);
      const keyring = new Keyring(next.keys, next.activeKeyId);
      this.codec.reconfigure(idTable, sources, memberKeysOf(next.members));
      this.codec.setKeyring(keyring);
    }
    this.config = next;
    this.addresses = unicastPeers(next);
    if (!this.core) return;
    const step = this.core.reconfigure(this.c.clock.now(), observed(next));
    if (this.running) this.dispatch(step);
  }

  observation(): Observation {
    const now = this.c.clock.now();
    if (this.core) return this.core.observation(now);
    return {
      now,
      startedAt: 0,
      settled: false,
      members: this.config.members.map((m) => ({
        id: m.id,
        liveness: 'unknown',
        incarnation: 0,
        lastHeard: undefined,
        standby: false,
        unhealthy: [],
        holdingsKnown: false,
        generation: 0,
      })),
      holdings: new Map(),
      claims: new Map(),
      transitions: new Map(),
      loads: new Map(),
    };
  }

  // ---------------------------------------------------------------------------------------

  private idTable(config: ClusterConfig): IdTable {
    return new IdTable({
      clusterId: config.clusterId,
      members: [...config.members.map((m) => m.id), WITNESS_ID],
      vips: config.vips.map((v) => v.vip),
    });
  }

  private sources(config: ClusterConfig): SourceBinding {
    return new SourceBinding(
      config.members.map(
        (m: MemberAddress) => [m.id, (m.sources ?? [m.address]).map((address) => ({ address }))] as const,
      ),
    );
  }

  private newCodec(config: ClusterConfig): WireCodec {
    const counters = this.codec?.counters ?? this.c.counters;
    const codec = new WireCodec({
      ids: this.idTable(config),
      self: WITNESS_ID,
      keyring: new Keyring(config.keys, config.activeKeyId),
      sources: this.sources(config),
      signingKey: this.init.signingKey,
      memberKeys: memberKeysOf(config.members),
      ...(counters ? { counters } : {}),
    });
    this.addresses = unicastPeers(config);
    return codec;
  }

  private onDatagram(bytes: Uint8Array, from: Peer): void {
    if (!this.running || !this.core) return;
    const r = this.codec.decode(bytes, from);
    if (!r.ok) {
      if (r.reason !== 'wrong-cluster') {
        this.dropLog.write(r.reason, {
          reason: r.reason,
          from: `${from.address}:${from.port}`,
          sender: r.sender,
        });
      }
      return;
    }
    this.dispatch(this.core.observe(this.c.clock.now(), r.message));
  }

  /** Sends what the step produced, reports its change, and sets the timer for the next wake. */
  private dispatch(step: ObserverStep): void {
    for (const o of step.out) {
      if (o.type !== 'send' || o.to === '*') continue;
      let datagram: Uint8Array;
      try {
        datagram = this.codec.encode(o.message, o.to);
      } catch (err) {
        this.c.log.error({ err, to: o.to }, 'cannot encode observer heartbeat');
        continue;
      }
      for (const peer of this.addresses.get(o.to) ?? []) void this.c.transport.send(peer, datagram);
    }
    if (step.change) this.c.onChange(step.change);
    this.schedule();
  }

  private schedule(): void {
    if (!this.running || !this.core) return;
    const now = this.c.clock.now();
    const at = this.core.wakeAt();
    this.timer?.stop();
    this.timer = undefined;
    if (!Number.isFinite(at)) return;
    this.timer = this.c.clock.after(Math.max(1, at - now), () => {
      this.timer = undefined;
      if (!this.running || !this.core) return;
      this.dispatch(this.core.tick(this.c.clock.now()));
    });
  }
}
