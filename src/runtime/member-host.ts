/**
 * Hosts one core Member on real (or simulated) ports: it feeds the member time from the
 * Clock and authenticated messages from the Transport, sends what the member sends, and
 * hands bind / renew / unbind commands to the role's Effects (the agent's executor; the
 * controller's witness has none, since a witness never holds).
 *
 * A member set published by the controller at a later generation is applied in place
 * (Member.setMembers: same incarnation, leases, promises and codec; docs/protocol.md
 * "Membership changes"). Other membership changes (a member set without a generation, quorum
 * or timing changes) start a new life of the member: the old one releases its VIPs first
 * (planned), then a new incarnation starts. VIP, Resource and key changes are applied in place.
 *
 * Size: one file on purpose: the order of effects and datagrams (an unbind before any
 * datagram after it) is one piece of logic across receive, tick and reconfigure.
 */
import type { Logger } from 'pino';
import {
  Member,
  type MemberEvent,
  type MemberView,
  type Output,
  type UnsafeOptions,
} from '../core/member.js';
import { nextIncarnation } from '../core/incarnation.js';
import type { Destination, Echo, Message, MemberId } from '../core/messages.js';
import type { KeyObject } from 'node:crypto';
import type { Clock, Peer, Stoppable, Transport } from '../core/ports.js';
import {
  IdTable,
  Keyring,
  SourceBinding,
  WireCodec,
  verifyBudgetFor,
  type DropCounters,
  type MemberKeys,
} from '../core/wire/index.js';
import { RateLimitedLog } from '../ops/rate-limited-log.js';
import { preciseNow } from '../ops/log.js';
import { PeerLinkStats, type PeerLinkSample } from './peer-link-stats.js';
import {
  inPlaceMembership,
  memberKeysOf,
  sameMembership,
  type ClusterConfig,
  type MemberAddress,
} from './cluster-config.js';

export type BindCommand = Extract<Output, { type: 'bind' }>;
export type RenewCommand = Extract<Output, { type: 'renew' }>;
export type UnbindCommand = Extract<Output, { type: 'unbind' }>;

/**
 * What the role does with the member's commands. Must not block: queue and return.
 * `unbind` may return a promise that settles once the address is gone: until then the host
 * holds back every datagram, so no peer learns of a release before it is true.
 */
export interface Effects {
  bind(cmd: BindCommand): void;
  renew(cmd: RenewCommand): void;
  unbind(cmd: UnbindCommand): void | Promise<void>;
}

export interface MemberHostComponents {
  clock: Clock;
  transport: Transport;
  log: Logger;
  effects: Effects;
  /** Informational events of the member (liveness changes, elections, refusals). */
  observer?: (event: MemberEvent) => void;
  /** Where wire drops are counted (kept across reconfigurations). */
  counters?: DropCounters;
  /** Called for every datagram sent (for metrics). */
  onSend?: (kind: Message['kind'], ok: boolean) => void;
  /** Called for every datagram received and accepted (for metrics). */
  onReceive?: (kind: Message['kind']) => void;
  /** Called for every accepted heartbeat of a peer: round trip and missed heartbeats (for metrics). */
  onPeerHeartbeat?: (sample: PeerLinkSample) => void;
  /**
   * A durable incarnation for a new life started in this process (membership change): the
   * agent's persisted counter (docs/adr/0015). Default: the next after the current one, which
   * is not persisted.
   */
  nextIncarnation?: () => number;
}

export interface MemberHostInit {
  self: MemberId;
  config: ClusterConfig;
  /**
   * This member's Ed25519 private key: it signs every datagram (docs/adr/0021). Its public
   * half must be the one the configuration lists for `self`, or peers drop what it sends.
   */
  signingKey: KeyObject;
  /** First incarnation; later lives use larger ones. Must exceed every previous life's. */
  incarnation: number;
  standby?: boolean;
  unsafe?: UnsafeOptions;
  /**
   * Also send every message to the cluster's multicast links (config.links), as one datagram
   * per group at the cluster port. Only for a host whose transport joined them (the agent);
   * the controller's witness reaches members by unicast only.
   */
  multicast?: boolean;
  /**
   * Limit the signature checks that fail per sender and in total (docs/adr/0026). Default
   * true; false only to measure what the limit saves (bench, the flood e2e test).
   */
  verifyBudget?: boolean;
}

export class MemberHost {
  private member!: Member;
  private codec!: WireCodec;
  private config: ClusterConfig;
  /** Each member's unicast destinations, one per unicast link. */
  private addresses = new Map<MemberId, Peer[]>();
  /** Multicast groups every message also goes to (empty unless init.multicast). */
  private groups: Peer[] = [];
  private incarnation: number;
  private timer: Stoppable | undefined;
  private timerAt = Infinity;
  private running = false;
  private standby: boolean;
  private unhealthy = new Set<string>();
  /** Unbinds in progress; while any is, datagrams wait in `held`. */
  private pendingUnbinds = 0;
  private held: Array<{ to: Destination; message: Message }> = [];
  /** Sequence number of the last message copied to a non-voting witness (see copyToObserver). */
  private observerSeq = -1;
  /** The observer's newest heartbeat, echoed in the copies so it can check their freshness. */
  private observerEcho: Echo | undefined;
  /** Drops are counted (codec); their log lines are rate-limited so a flood cannot flood the log. */
  private readonly dropLog: RateLimitedLog;
  private readonly links: PeerLinkStats;

  constructor(
    private readonly c: MemberHostComponents,
    private readonly init: MemberHostInit,
  ) {
    this.dropLog = new RateLimitedLog({ log: c.log, clock: c.clock }, { msg: 'datagram dropped' });
    this.config = init.config;
    this.links = new PeerLinkStats(init.config.timing.intervalMs);
    this.incarnation = init.incarnation;
    this.standby = init.standby ?? false;
  }

  get self(): MemberId {
    return this.init.self;
  }

  get counters(): DropCounters {
    return this.codec.counters;
  }

  get currentIncarnation(): number {
    return this.incarnation;
  }

  /** Throws, before anything starts, when the configuration cannot run (see reconfigure). */
  start(): void {
    const wire = this.wireOf(this.config);
    this.running = true;
    this.c.transport.onMessage((bytes, from) => this.onDatagram(bytes, from));
    this.newLife(this.config, wire);
  }

  /**
   * Graceful stop: the member releases every VIP (planned; with `handOver`, each to its elected
   * successor, see Member.stop); resolves once the addresses are gone and the releases sent,
   * or after `timeoutMs`.
   */
  async stop(timeoutMs = 30_000, opts: { handOver?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.dispatch(this.member.stop(this.c.clock.now(), opts));
    this.timer?.stop();
    this.timer = undefined;
    const deadline = this.c.clock.now() + timeoutMs;
    while (this.pendingUnbinds > 0 && this.c.clock.now() < deadline) await this.c.clock.sleep(5);
    this.flushHeld();
    this.running = false;
  }

  view(): MemberView {
    return this.member.view(this.c.clock.now());
  }

  /** Votes a lease or a takeover needs, self included. */
  get quorumSize(): number {
    return this.member.quorum.size;
  }

  get configuration(): ClusterConfig {
    return this.config;
  }

  setLocal(local: { standby?: boolean; unhealthy?: Iterable<string> }): void {
    if (local.standby !== undefined) this.standby = local.standby;
    if (local.unhealthy !== undefined) this.unhealthy = new Set(local.unhealthy);
    if (!this.running) return;
    this.dispatch(this.member.setLocal(this.c.clock.now(), local));
  }

  /**
   * Applies a new configuration: in place when membership is the same, else a new life.
   * Throws (a KeyringError, an IdCollisionError) before changing anything when `next`
   * cannot run: the member keeps running the configuration it had.
   */
  reconfigure(next: ClusterConfig): void {
    const prev = this.config;
    if ((prev.generation ?? 0) > (next.generation ?? 0)) {
      // A published member set never goes back (an old object, or status.membership gone):
      // keep running the later one; everything else in `next` applies.
      this.c.log.warn(
        { running: prev.generation, offered: next.generation ?? 0 },
        'older member set ignored: keeping the later generation',
      );
      next = { ...next, members: prev.members, generation: prev.generation };
    }
    const wire = this.wireOf(next);
    this.config = next;
    this.links.setInterval(next.timing.intervalMs);
    this.links.retain(new Set(this.allMembers(next).map((m) => m.id)));
    if (!this.running) return;
    const inPlace = inPlaceMembership(prev, next);
    if (!sameMembership(prev, next) && !inPlace) {
      this.c.log.info(
        { from: prev.members.map((m) => m.id), to: next.members.map((m) => m.id) },
        'membership changed: releasing and starting a new life',
      );
      this.dispatch(this.member.stop(this.c.clock.now()));
      this.incarnation = this.freshIncarnation();
      this.newLife(next, wire);
      return;
    }
    this.codec.reconfigure(wire.ids, wire.sources, wire.memberKeys);
    this.codec.setKeyring(wire.keyring);
    this.addresses = this.addressMap(next);
    this.groups = this.groupPeers(next);
    if (inPlace) {
      this.c.log.info(
        {
          from: prev.members.map((m) => m.id),
          to: next.members.map((m) => m.id),
          generation: next.generation,
        },
        'membership changed: applied in place',
      );
      // Checked by inPlaceMembership and the agent (self listed): MemberConfigError is a bug here.
      this.dispatch(
        this.member.setMembers(this.c.clock.now(), {
          members: next.members.map((m) => m.id),
          generation: next.generation ?? 0,
        }),
      );
    }
    this.dispatch(this.member.setVips(this.c.clock.now(), this.vipSpecs(next)));
  }

  private freshIncarnation(): number {
    try {
      if (this.c.nextIncarnation) return this.c.nextIncarnation();
    } catch (err) {
      this.c.log.error({ err }, 'cannot persist a new incarnation: using the next one, not persisted');
    }
    return nextIncarnation(this.incarnation);
  }

  /** What the codec needs for `config`, built up front so that a bad configuration throws before any change. */
  private wireOf(config: ClusterConfig): {
    ids: IdTable;
    sources: SourceBinding;
    keyring: Keyring;
    memberKeys: MemberKeys;
  } {
    return {
      ids: this.idTable(config),
      sources: this.sources(config),
      keyring: new Keyring(config.keys, config.activeKeyId),
      memberKeys: memberKeysOf(this.allMembers(config)),
    };
  }

  private vipSpecs(config: ClusterConfig) {
    return config.vips
      .filter((v) => !v.deleting)
      .map(({ vip, preferredNodes, eligible, epochFloor, moveTo }) => ({
        vip,
        preferredNodes,
        eligible,
        epochFloor,
        ...(moveTo !== undefined ? { moveTo } : {}),
      }));
  }

  private allMembers(config: ClusterConfig): MemberAddress[] {
    return config.witness ? [...config.members, config.witness] : config.members;
  }

  private idTable(config: ClusterConfig): IdTable {
    return new IdTable({
      clusterId: config.clusterId,
      members: this.allMembers(config).map((m) => m.id),
      vips: config.vips.map((v) => v.vip),
    });
  }

  private sources(config: ClusterConfig): SourceBinding {
    return new SourceBinding(
      this.allMembers(config).map(
        (m) => [m.id, (m.sources ?? [m.address]).map((address) => ({ address }))] as const,
      ),
    );
  }

  /**
   * Each member's unicast destinations. A member no unicast link reaches is reached by the
   * multicast links when this host sends on them, else (the witness) at its main address.
   */
  private addressMap(config: ClusterConfig): Map<MemberId, Peer[]> {
    const fallback = (m: MemberAddress) => (this.groupPeers(config).length ? [] : [m.address]);
    return new Map(
      this.allMembers(config).map((m) => [
        m.id,
        // A published member without a Node (address '') is unreachable until it is removed.
        (m.unicast?.length ? m.unicast : m.address ? fallback(m) : []).map((address) => ({
          address,
          port: m.port,
        })),
      ]),
    );
  }

  private groupPeers(config: ClusterConfig): Peer[] {
    if (!this.init.multicast) return [];
    return (config.links ?? []).flatMap((l) =>
      l.mode === 'multicast' ? [{ address: l.group, port: config.port }] : [],
    );
  }

  private newLife(config: ClusterConfig, wire = this.wireOf(config)): void {
    this.observerSeq = -1;
    this.links.newLife();
    if (this.codec) {
      // Keep the replay windows across a new life of ours (docs/adr/0015): a new codec would
      // accept recordings of our peers' traffic again.
      this.codec.reconfigure(wire.ids, wire.sources, wire.memberKeys);
      this.codec.setKeyring(wire.keyring);
      this.codec.setVerifyBudget(this.verifyBudgetOf(config));
    } else {
      this.codec = new WireCodec({
        ids: wire.ids,
        self: this.init.self,
        keyring: wire.keyring,
        sources: wire.sources,
        signingKey: this.init.signingKey,
        memberKeys: wire.memberKeys,
        ...(this.c.counters ? { counters: this.c.counters } : {}),
        ...this.budgetInit(config),
      });
    }
    this.addresses = this.addressMap(config);
    this.groups = this.groupPeers(config);
    this.member = new Member(
      {
        observer: (e) => {
          // Authenticated, but it counted for nothing: a drop, not an accepted datagram.
          if (e.type === 'not-fresh') this.codec.counters.reclassify('not-fresh');
          this.c.observer?.(e);
        },
      },
      {
        clusterId: config.clusterId,
        self: this.init.self,
        incarnation: this.incarnation,
        members: config.members.map((m) => m.id),
        generation: config.generation ?? 0,
        // A witness that does not vote (quorum other than "witness") is no peer of the core:
        // it only receives our broadcast heartbeats (see send) to observe the cluster.
        witness: config.quorum === 'witness' ? (config.witness?.id ?? null) : null,
        quorum: config.quorum,
        timing: config.timing,
        vips: this.vipSpecs(config),
        autoFailback: config.autoFailback,
        ...(this.init.unsafe ? { unsafe: this.init.unsafe } : {}),
      },
    );
    const now = this.c.clock.now();
    this.dispatch(this.member.start(now));
    if (this.standby || this.unhealthy.size) {
      this.dispatch(this.member.setLocal(now, { standby: this.standby, unhealthy: this.unhealthy }));
    }
  }

  private verifyBudgetOf(config: ClusterConfig) {
    return this.init.verifyBudget === false ? undefined : verifyBudgetFor(config.timing.intervalMs);
  }

  private budgetInit(config: ClusterConfig) {
    const verifyBudget = this.verifyBudgetOf(config);
    return verifyBudget ? { verifyBudget, now: () => this.c.clock.now() } : {};
  }

  private onDatagram(bytes: Uint8Array, from: Peer): void {
    if (!this.running) return;
    const r = this.codec.decode(bytes, from);
    if (!r.ok) {
      this.dropLog.write(r.reason, {
        reason: r.reason,
        from: `${from.address}:${from.port}`,
        sender: r.sender,
      });
      return;
    }
    if (r.to !== '*' && r.to !== this.init.self) return;
    const w = this.config.witness;
    if (r.message.kind === 'heartbeat' && w && r.message.from === w.id && this.config.quorum !== 'witness') {
      const m = r.message;
      this.observerEcho = { member: w.id, incarnation: m.incarnation, seq: m.seq, holdingsVersion: 0 };
    }
    this.c.onReceive?.(r.message.kind);
    if (r.message.kind === 'release' || r.message.kind === 'takeover-ack')
      this.c.log.debug(
        { at: preciseNow(), kind: r.message.kind, from: r.message.from },
        'trace: datagram received',
      );
    const now = this.c.clock.now();
    if (r.message.kind === 'heartbeat' && this.c.onPeerHeartbeat) {
      this.c.onPeerHeartbeat(this.links.heartbeat(r.message, now, this.init.self, this.incarnation));
    }
    this.dispatch(this.member.receive(now, r.message));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (!this.running) return;
    this.dispatch(this.member.tick(this.c.clock.now()));
  }

  private dispatch(outputs: Output[]): void {
    for (const o of outputs) {
      switch (o.type) {
        case 'send':
          if (this.pendingUnbinds > 0) this.hold(o.to, o.message);
          else this.send(o.to, o.message);
          break;
        case 'bind':
          this.c.effects.bind(o);
          break;
        case 'renew':
          this.c.effects.renew(o);
          break;
        case 'unbind': {
          const done = this.c.effects.unbind(o);
          if (done) {
            this.pendingUnbinds++;
            void done
              .catch((err: unknown) => this.c.log.error({ err, vip: o.vip }, 'unbind failed'))
              .finally(() => {
                if (--this.pendingUnbinds === 0) this.flushHeld();
              });
          }
          break;
        }
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (!this.running) return;
    const at = this.member.wakeAt();
    if (!Number.isFinite(at) || at >= this.timerAt) return;
    this.timer?.stop();
    this.timerAt = at;
    this.timer = this.c.clock.after(Math.max(0, at - this.c.clock.now()), () => this.onTimer());
  }

  /**
   * Keeps a datagram until pending unbinds finish. Of heartbeats to one destination only the
   * newest per holdings page is kept (a round may carry every page of a new version), and none
   * of an older holdings version.
   */
  private hold(to: Destination, message: Message): void {
    if (message.kind === 'heartbeat') {
      const { version, page } = message.holdings;
      this.held = this.held.filter(
        (h) =>
          h.message.kind !== 'heartbeat' ||
          h.to !== to ||
          (h.message.holdings.version === version && h.message.holdings.page !== page),
      );
    }
    this.held.push({ to, message });
  }

  private flushHeld(): void {
    const held = this.held;
    this.held = [];
    // A handover first, so that it does not wait behind the signing of a heartbeat round: the
    // grants (takeover-acks, the handoff's among them), then the Release to its named
    // successor, which binds on that Release with the grant it already has (docs/adr/0034).
    // Otherwise in the order the member sent them.
    const rank = (to: Destination, m: Message) =>
      m.kind === 'takeover-ack' ? 0 : m.kind === 'release' && m.successor === to ? 1 : 2;
    const ordered = held
      .map((h, i) => ({ h, i, r: rank(h.to, h.message) }))
      .sort((a, b) => a.r - b.r || a.i - b.i);
    for (const { h } of ordered) this.sendToPeers(h.to, h.message);
    // The observer hears them in the member's order (a drain's standby heartbeat before its
    // Releases, so that status says drain).
    for (const h of held) this.copyToObserver(h.message);
    this.c.log.debug({ at: preciseNow(), datagrams: held.length }, 'trace: held datagrams sent');
  }

  /**
   * Outside quorum "witness" the controller's witness is no peer of the core, so the core
   * never addresses it; it still observes the cluster from our heartbeats and releases. Each
   * round (one sequence number, addressed to every peer) goes to it once, without the
   * per-peer echoes and conflicts, which are grants and claims for other members; instead it
   * echoes the observer's newest heartbeat (granting nothing), so that the observer can tell
   * our copies from a recording (docs/adr/0015).
   */
  private copyToObserver(message: Message): void {
    const w = this.config.witness;
    if (!w || this.config.quorum === 'witness' || w.id === this.init.self) return;
    if ((message.kind !== 'heartbeat' && message.kind !== 'release') || message.seq === this.observerSeq)
      return;
    const peer = this.addresses.get(w.id)?.[0];
    if (!peer) return;
    this.observerSeq = message.seq;
    const echoes = this.observerEcho ? [this.observerEcho] : [];
    const copy: Message = message.kind === 'heartbeat' ? { ...message, echoes, conflicts: [] } : message;
    let datagram: Uint8Array;
    try {
      datagram = this.codec.encode(copy, w.id);
    } catch (err) {
      this.c.log.error({ err, kind: message.kind, to: w.id }, 'cannot encode message for the observer');
      return;
    }
    void this.c.transport.send(peer, datagram).then((ok) => this.c.onSend?.(message.kind, ok));
  }

  /**
   * Sends to every unicast address of the addressee (every peer for '*') and to every
   * multicast group: a peer hears the message while any link delivers, and drops the
   * other copies as replays. The witness is reached by unicast only.
   */
  private send(to: Destination, message: Message): void {
    this.sendToPeers(to, message);
    // After the peers' copy: the observer's is for status, not on anyone's path to a bind.
    this.copyToObserver(message);
  }

  private sendToPeers(to: Destination, message: Message): void {
    let targets: Peer[];
    if (to === '*') {
      targets = [...this.addresses].filter(([id]) => id !== this.init.self).flatMap(([, peers]) => peers);
    } else {
      const peers = this.addresses.get(to);
      if (!peers) return;
      targets = peers;
    }
    if (to !== this.config.witness?.id) targets = [...targets, ...this.groups];
    if (targets.length === 0) return;
    if (message.kind === 'heartbeat') this.links.sentHeartbeat(message.seq, this.c.clock.now());
    let datagram: Uint8Array;
    try {
      datagram = this.codec.encode(message, to);
    } catch (err) {
      this.c.log.error({ err, kind: message.kind, to }, 'cannot encode message');
      return;
    }
    for (const peer of targets) {
      void this.c.transport.send(peer, datagram).then((ok) => this.c.onSend?.(message.kind, ok));
    }
  }
}
