/**
 * What the leader runs on the heartbeat channel for one HACluster: the observer always,
 * and in quorum "witness" the witness voter (a MemberHost with self = WITNESS_ID that
 * never holds anything). Both share the cluster's view of the controller's UDP socket.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { MemberEvent } from '../core/member.js';
import type { Clock, Transport } from '../core/ports.js';
import { DropCounters } from '../core/wire/index.js';
import { WITNESS_ID, type ClusterConfig } from '../runtime/cluster-config.js';
import { MemberHost, type Effects } from '../runtime/member-host.js';
import { ClusterObserver, type Observation } from './observer.js';

export interface ClusterRuntimeComponents {
  clock: Clock;
  /** This cluster's view of the shared socket; closed by `stop`. */
  transport: Transport;
  log: Logger;
  onChange: (change: { vips: string[]; members: boolean }) => void;
  onMemberEvent?: (event: MemberEvent) => void;
}

export interface ClusterRuntimeInit {
  /** Built with the controller's own witness address, so WITNESS_ID is in it. */
  config: ClusterConfig;
  /** A fresh incarnation for each life of the observer or witness (strictly growing). */
  incarnation: () => number;
  /** The controller's witness key (its public half is in status.witness.publicKey). */
  signingKey: KeyObject;
}

/** The witness votes and never holds: a bind/renew/unbind command here is a bug in the core. */
export function refusingEffects(log: Logger): Effects {
  const refuse = (type: string, vip: string) =>
    log.error(
      { type, vip },
      'witness asked to change an address; a witness never holds a VIP (core bug), ignored',
    );
  return {
    bind: (cmd) => refuse('bind', cmd.vip),
    renew: (cmd) => refuse('renew', cmd.vip),
    unbind: (cmd) => refuse('unbind', cmd.vip),
  };
}

export class ClusterRuntime {
  private observer: ClusterObserver;
  private witness: MemberHost | undefined;
  private config: ClusterConfig;
  readonly counters = new DropCounters();

  constructor(
    private readonly c: ClusterRuntimeComponents,
    private readonly init: ClusterRuntimeInit,
  ) {
    this.config = init.config;
    this.observer = this.newObserver(init.config);
  }

  get configuration(): ClusterConfig {
    return this.config;
  }

  get voting(): boolean {
    return this.witness !== undefined;
  }

  start(): void {
    this.observer.start();
    if (this.config.quorum === 'witness') this.startWitness(this.config);
  }

  /**
   * In place when the quorum mode is unchanged; otherwise the observer and witness start
   * afresh. Throws before changing anything when `next` cannot run (the observer checks
   * keys and ids first), so the runtime keeps the configuration it had.
   */
  reconfigure(next: ClusterConfig): void {
    const prev = this.config;
    if (prev.quorum === next.quorum) {
      this.observer.reconfigure(next);
      this.witness?.reconfigure(next);
      this.config = next;
      return;
    }
    const observer = this.newObserver(next);
    this.c.log.info(
      { from: prev.quorum, to: next.quorum },
      'quorum mode changed: restarting observer and witness',
    );
    this.observer.stop();
    this.witness?.stop().catch((err: unknown) => this.c.log.error({ err }, 'witness did not stop cleanly'));
    this.witness = undefined;
    this.observer = observer;
    this.config = next;
    this.start();
  }

  observation(): Observation {
    return this.observer.observation();
  }

  async stop(): Promise<void> {
    this.observer.stop();
    await this.witness?.stop();
    this.witness = undefined;
    await this.c.transport.close();
  }

  private newObserver(config: ClusterConfig): ClusterObserver {
    return new ClusterObserver(
      {
        clock: this.c.clock,
        transport: this.c.transport,
        log: this.c.log.child({ part: 'observer' }),
        onChange: this.c.onChange,
        counters: this.counters,
      },
      {
        config,
        incarnation: this.init.incarnation(),
        heartbeat: config.quorum !== 'witness',
        signingKey: this.init.signingKey,
      },
    );
  }

  private startWitness(config: ClusterConfig): void {
    const log = this.c.log.child({ part: 'witness' });
    this.witness = new MemberHost(
      {
        clock: this.c.clock,
        transport: this.c.transport,
        log,
        effects: refusingEffects(log),
        ...(this.c.onMemberEvent ? { observer: this.c.onMemberEvent } : {}),
      },
      { self: WITNESS_ID, config, incarnation: this.init.incarnation(), signingKey: this.init.signingKey },
    );
    this.witness.start();
  }
}
