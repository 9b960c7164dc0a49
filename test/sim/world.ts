/**
 * The simulated world: members driven by per-node drifting clocks, a lossy network, a
 * kernel that keeps bound addresses until their lifetime or the fence deadline, and the
 * invariant checker (S1, S2, L1). Everything runs on one event queue; no real timers.
 *
 * Beside the members runs the controller's observer (core/observer.ts) on the datagrams the
 * members send to the controller: after the heal, STATUS checks that the holder and epoch it
 * reports (what the controller writes to VirtualIP status) match where the address is bound.
 *
 * After the heal (a healthy network, no more faults) it also checks that moves are clean:
 * PLANNED, a planned move (a Release naming a successor: failback, drain end, operator move)
 * is one move, the successor binding next and within an interval; HELD, no member asks for
 * a takeover of a VIP that a live member has held long enough for it to know.
 */
import {
  Member,
  type Output,
  type QuorumMode,
  type UnsafeOptions,
  type VipSpec,
} from '../../src/core/member.js';
import type { Epoch, Message, MemberId, VipId } from '../../src/core/messages.js';
import { Observer } from '../../src/core/observer.js';
import { decideVip } from '../../src/controller/decide/vip.js';
import { quorumSummary } from '../../src/controller/decide/view.js';
import type { ClusterConfig } from '../../src/runtime/cluster-config.js';
import type { Timing } from '../../src/core/timing.js';
import { addressKey, resolveAddressClaims } from '../../src/runtime/address-claims.js';
import { ReplayGuard } from '../../src/core/wire/replay-window.js';
import { EventHeap } from './heap.js';
import { Rng } from './rng.js';

export const CONTROLLER = 'ctl';

/** A fault or operator action, at a simulated real time. */
export type Fault =
  | { at: number; kind: 'crash'; node: MemberId; fenceKilled: boolean; restartAt: number | null }
  | { at: number; kind: 'pause'; node: MemberId; forMs: number }
  /** Graceful stop (SIGTERM): Member.stop(), then the agent exits; restarts later or at heal. */
  | { at: number; kind: 'stop'; node: MemberId; restartAt: number | null }
  | { at: number; kind: 'partition'; groups: MemberId[][]; untilMs: number }
  | { at: number; kind: 'oneway'; from: MemberId; to: MemberId; untilMs: number }
  | { at: number; kind: 'flap'; a: MemberId; b: MemberId; periodMs: number; untilMs: number }
  | { at: number; kind: 'net'; loss: number; dup: number; spikeMs: number; untilMs: number }
  | { at: number; kind: 'step'; node: MemberId; ms: number }
  | { at: number; kind: 'standby'; node: MemberId; on: boolean }
  | { at: number; kind: 'unhealthy'; node: MemberId; vip: VipId; on: boolean }
  /**
   * An operator's move (heartline.dev/move-to, docs/adr/0031): the VIP's target set (or
   * cleared, `to` null) in the API; each member's watch sees it `lagMs[member]` later.
   */
  | { at: number; kind: 'move'; vip: VipId; to: MemberId | null; lagMs: Record<MemberId, number> };

/**
 * Membership changes (Node labels added and removed) and how the controller publishes them:
 * numbered generations one voter apart, the next but one only after the barrier (a majority
 * of the voters of the previous generation advertise the current one, then lease + margin).
 * Each node's agent learns a published generation `lagMs[node]` late (watch lag); a node
 * outside the member set runs no member; a member that learns it was removed leaves
 * gracefully (Member.stop). See docs/protocol.md "Membership changes".
 */
export interface MembershipPlan {
  /** Nodes that are ever members; `Scenario.members` is generation 1. */
  universe: MemberId[];
  /** Operator changes (label added: the node joins; removed: it leaves), by time. */
  changes: Array<{ at: number; op: 'add' | 'remove'; node: MemberId }>;
  /** How late each node learns a published generation (ms; default 1). */
  lagMs: Record<MemberId, number>;
  /**
   * Breaks the protocol on purpose: every label change is published at once (no barrier) and
   * members grant and ack whatever generation they are at (no voter rule): each member
   * switches its set on its own when it learns it.
   */
  naive?: boolean;
}

export interface Scenario {
  seed: number;
  timing: Timing;
  members: MemberId[];
  /** The controller's witness voter, if any (id CONTROLLER). */
  witness: boolean;
  quorum: QuorumMode;
  /** The VirtualIP objects, oldest first (creation order). */
  vips: VipSpec[];
  /**
   * spec.address of VIPs (several names may share one); a VIP not listed has an address of
   * its own. S1 is checked per address.
   */
  addresses?: Record<VipId, string>;
  /**
   * Breaks the product on purpose: members get every VIP, the address rule
   * (runtime/address-claims.ts) is not applied.
   */
  noAddressRule?: boolean;
  /** Breaks the observer's feed on purpose: it never hears this member (STATUS must catch it). */
  observerDeafTo?: MemberId;
  autoFailback: boolean;
  /** Per node: clock rate (1 +- drift) and offset. */
  clocks: Record<MemberId, { rate: number; offset: number }>;
  faults: Fault[];
  /** Faults stop and heal at this time (all crashed nodes restart, network healthy). */
  healAt: number;
  endAt: number;
  /** Bound after healAt within which every usable VIP must have a holder (L1). */
  l1BoundMs: number;
  unsafe?: UnsafeOptions;
  /**
   * A replaying adversary: it records every datagram on the wire and, each time a member
   * restarts (its codec's replay windows start empty), plays back to it the datagrams
   * recorded for it before, at twice the heartbeat rate, through the member's replay window
   * (each accepted at most once, as the real codec would).
   */
  replayer?: boolean;
  /** Stop with a CONTRACT violation after this many events (a wake loop). */
  maxEvents?: number;
  /**
   * Largest fence delay the world injects (real ms, default 0): each fence deadline (a paused
   * agent) and each fence at agent exit (a crash) removes the address up to this much
   * later, 0 to the bound (the bound itself in a third of the draws). The schedules set it to
   * the budget the timing accounts for (Timing.fenceDelayMs); a larger value breaks S1
   * (test/sim/breaking.test.ts). Drawn from a stream of its own: members behave the same.
   */
  fenceDelayMs?: number;
  membership?: MembershipPlan;
}

export interface Violation {
  invariant: 'S1' | 'S2' | 'L1' | 'BACKSTOP' | 'CONTRACT' | 'PLANNED' | 'HELD' | 'STATUS';
  at: number;
  message: string;
}

export interface RunResult {
  seed: number;
  violations: Violation[];
  /** Crash failover durations (ms): holder crashed -> another member bound the VIP. */
  failovers: number[];
  /** Graceful-stop handovers (ms): holder stopped -> another member bound the VIP. */
  handovers: number[];
  /** Overlaps allowed only because the fence died with the agent (kernel lifetime backstop). */
  backstopOverlaps: number[];
  /** Largest fence delay injected in this run (real ms; Scenario.fenceDelayMs). */
  fenceLateMaxMs: number;
  /** Time from healAt until every usable VIP had a holder (ms), or null if never. */
  convergeMs: number | null;
  /** Every bind, in order (real time). */
  binds: Array<{ at: number; node: MemberId; vip: VipId; epoch: Epoch }>;
  /** Planned moves after the heal that the PLANNED check followed to their end. */
  plannedMoves: number;
  events: number;
  trace: string[];
}

interface Binding {
  node: Node;
  vip: VipId;
  epoch: Epoch;
  boundAt: number;
  fenceLocal: number;
  kernelLocal: number;
  renewedAt: number;
  removedAt: number;
  /** How late (local ms) the fence removes the address after `fenceLocal` (injected delay). */
  fenceLate: number;
  /** The agent and the fence died together: only the kernel lifetime removes it. */
  zombie: boolean;
}

interface Node {
  id: MemberId;
  witness: boolean;
  member: Member | null;
  incarnation: number;
  state: 'up' | 'down' | 'paused';
  rate: number;
  offset: number;
  steps: number;
  buffer: Message[];
  wakeToken: number;
  bindings: Map<VipId, Binding>;
  seen: Map<VipId, Epoch>;
  standby: boolean;
  unhealthy: Set<VipId>;
  /** Standby/health changed while the agent was paused: it applies them when it resumes. */
  localDirty: boolean;
  /** The wire codec's replay windows of this life (what the replaying adversary must pass). */
  guard: ReplayGuard<MemberId>;
  /** Real time the member last started or resumed (its view is fresh from then on). */
  upSince: number;
  /** Newest membership generation this node's agent has learned (index into World.generations). */
  learned: number;
  /** Highest generation its member ever ran at (what the controller saw it advertise). */
  advertised: number;
  /** Not in the member set it learned: no member runs (never added, or removed and left). */
  outside: boolean;
}

type Ev =
  | { t: number; n: number; kind: 'wake'; node: Node; token: number }
  | { t: number; n: number; kind: 'deliver'; node: Node; msg: Message }
  | { t: number; n: number; kind: 'fault'; fault: Fault }
  | { t: number; n: number; kind: 'restart'; node: Node }
  | { t: number; n: number; kind: 'resume'; node: Node }
  | { t: number; n: number; kind: 'unblock'; from: MemberId; to: MemberId; token: number }
  | {
      t: number;
      n: number;
      kind: 'flap';
      a: MemberId;
      b: MemberId;
      periodMs: number;
      untilMs: number;
      token: number;
    }
  | { t: number; n: number; kind: 'heal' }
  | { t: number; n: number; kind: 'replay'; node: Node; life: number; tape: Message[]; next: number }
  | { t: number; n: number; kind: 'label'; op: 'add' | 'remove'; node: MemberId }
  | { t: number; n: number; kind: 'publish' }
  | { t: number; n: number; kind: 'learn'; node: Node; generation: number }
  | { t: number; n: number; kind: 'check' }
  | { t: number; n: number; kind: 'observe'; msg: Message }
  | { t: number; n: number; kind: 'observer-wake'; token: number }
  | { t: number; n: number; kind: 'vips'; node: Node };

const TRACE = 80;
/** Datagrams the replaying adversary keeps per destination. */
const RECORDED = 400;

export class World {
  private readonly rng: Rng;
  private readonly q = new EventHeap<Ev>();
  private n = 0;
  private now = 0;
  private readonly nodes = new Map<MemberId, Node>();
  /** Bindings by address (see `slot`): S1 is per address, not per VIP name. */
  private readonly byVip = new Map<string, Binding[]>();
  /** The VIPs the members run: those the address rule admits, as the agent builds them. */
  private readonly admitted: VipSpec[];
  private readonly blocked = new Map<string, number>(); // "from>to" -> token
  private loss = 0.002;
  private dup = 0.002;
  private spikeMs = 0;
  private netUntil = 0;
  private healed = false;
  private readonly durable = new Map<VipId, Epoch>();
  private readonly maxBound = new Map<VipId, Epoch>();
  private readonly lostAt = new Map<VipId, number>();
  private readonly stoppedAt = new Map<VipId, { t: number; node: Node }>();
  private readonly lastHeld = new Map<VipId, number>();
  /** Planned moves after the heal not yet completed: the successor must bind next. */
  private readonly planned = new Map<VipId, { from: MemberId; to: MemberId; epoch: Epoch; at: number }>();
  /** Move targets as the API has them (what a member's watch delivers, after its lag). */
  private readonly moves = new Map<VipId, MemberId>();
  private readonly traceBuf: string[] = [];
  private events = 0;
  /** What the replaying adversary recorded, per destination (the last RECORDED datagrams). */
  private readonly tapes = new Map<MemberId, Message[]>();
  private readonly replayRng: Rng;
  /** Injected fence delays (Scenario.fenceDelayMs), a stream of their own. */
  private readonly fenceRng: Rng;
  /** Largest injected fence delay seen (real ms). */
  private fenceLateMax = 0;
  /** Published member sets; generations[g] is generation g (index 0 unused). */
  private readonly generations: MemberId[][] = [[]];
  /** The labelled member set (what the controller converges to). */
  private readonly labelled: Set<MemberId>;
  /** When the barrier for the next generation was first met (controller's view). */
  private barrierSince: number | undefined;
  private publishAt = Infinity;
  /**
   * The controller's observer, on real time (the controller's clock), fed what the members
   * send to the controller; null with membership changes (the sim has no controller
   * reconfiguring it then). Its own random source: the members' schedule stays as it was.
   */
  private readonly observer: Observer | null;
  /** The cluster as the controller's decisions see it (decideVip), for STATUS. */
  private readonly clusterConfig: ClusterConfig;
  private readonly observerRng: Rng;
  private observerToken = 0;
  readonly result: RunResult;

  constructor(
    private readonly sc: Scenario,
    private readonly opts: { trace?: boolean; traceSink?: (line: string) => void } = {},
  ) {
    this.rng = new Rng(sc.seed * 7919 + 17);
    this.replayRng = new Rng(sc.seed * 104729 + 3);
    this.observerRng = new Rng(sc.seed * 15485863 + 11);
    this.fenceRng = new Rng(sc.seed * 130363 + 11);
    this.result = {
      seed: sc.seed,
      violations: [],
      failovers: [],
      handovers: [],
      backstopOverlaps: [],
      fenceLateMaxMs: 0,
      convergeMs: null,
      binds: [],
      plannedMoves: 0,
      events: 0,
      trace: [],
    };
    this.admitted = admittedVips(sc);
    this.clusterConfig = {
      clusterId: 'sim',
      namespace: 'default',
      name: 'sim',
      port: 694,
      members: sc.members.map((id) => ({ id, address: '198.18.0.1', port: 694 })),
      witness: sc.witness ? { id: CONTROLLER, address: '198.18.0.2', port: 694 } : null,
      quorum: sc.quorum,
      timing: sc.timing,
      autoFailback: sc.autoFailback,
      keys: [],
      activeKeyId: 1,
      vips: this.admitted.map((v) => ({
        vip: v.vip,
        preferredNodes: [...(v.preferredNodes ?? [])],
        eligible: v.eligible ? [...v.eligible] : undefined,
        epochFloor: 0,
        spec: {} as never,
        deleting: false,
        resources: [],
      })),
      standby: new Set(),
      problems: [],
    };
    this.observer = sc.membership
      ? null
      : new Observer(
          {
            clusterId: 'sim',
            self: CONTROLLER,
            incarnation: 1,
            heartbeat: false,
            members: sc.members,
            timing: sc.timing,
            vips: this.admitted.map((v) => v.vip),
          },
          0,
        );
    for (const v of this.admitted) if (v.moveTo !== undefined) this.moves.set(v.vip, v.moveTo);
    this.generations.push([...sc.members]);
    this.labelled = new Set(sc.members);
    const universe = sc.membership?.universe ?? sc.members;
    const ids = [...new Set([...sc.members, ...universe]), ...(sc.witness ? [CONTROLLER] : [])];
    for (const id of ids) {
      const c = sc.clocks[id] ?? { rate: 1, offset: 0 };
      this.nodes.set(id, {
        id,
        witness: id === CONTROLLER,
        member: null,
        incarnation: 0,
        state: 'down',
        rate: c.rate,
        offset: c.offset,
        steps: 0,
        buffer: [],
        wakeToken: 0,
        bindings: new Map(),
        seen: new Map(),
        standby: false,
        unhealthy: new Set(),
        localDirty: false,
        guard: new ReplayGuard<MemberId>(1024),
        upSince: 0,
        learned: 1,
        advertised: 0,
        outside: id !== CONTROLLER && !sc.members.includes(id),
      });
    }
  }

  run(): RunResult {
    this.observer?.tick(0);
    this.scheduleObserver();
    for (const node of this.nodes.values()) this.boot(node);
    for (const f of this.sc.faults) this.push({ t: f.at, n: 0, kind: 'fault', fault: f });
    for (const c of this.sc.membership?.changes ?? [])
      this.push({ t: c.at, n: 0, kind: 'label', op: c.op, node: c.node });
    this.push({ t: this.sc.healAt, n: 0, kind: 'heal' });
    const step = Math.max(5, Math.round(this.sc.timing.intervalMs / 10));
    for (let t = this.sc.healAt; t <= this.sc.endAt; t += step) this.push({ t, n: 0, kind: 'check' });
    for (;;) {
      const ev = this.q.pop();
      if (!ev || ev.t > this.sc.endAt) break;
      this.now = ev.t;
      this.events++;
      this.handle(ev);
      if (this.events > (this.sc.maxEvents ?? 400_000)) {
        this.violate('CONTRACT', 'runaway schedule: too many events (a wake loop?)');
        break;
      }
      if (this.result.violations.length > 0 && this.result.violations.some((v) => v.invariant !== 'BACKSTOP'))
        break;
    }
    this.result.events = this.events;
    this.result.fenceLateMaxMs = this.fenceLateMax;
    this.result.trace = [...this.traceBuf];
    return this.result;
  }

  // ---- clocks ---------------------------------------------------------------------------

  private local(node: Node, t = this.now): number {
    return node.offset + node.rate * t + node.steps;
  }

  private real(node: Node, local: number): number {
    return (local - node.offset - node.steps) / node.rate;
  }

  // ---- events ---------------------------------------------------------------------------

  private push(ev: Ev): void {
    ev.n = ++this.n;
    this.q.push(ev);
  }

  private trace(line: string): void {
    if (!this.opts.trace && this.traceBuf.length >= TRACE) this.traceBuf.shift();
    const s = `${this.now.toFixed(1).padStart(9)} ${line}`;
    this.traceBuf.push(s);
    this.opts.traceSink?.(s);
  }

  private handle(ev: Ev): void {
    switch (ev.kind) {
      case 'wake':
        if (ev.token !== ev.node.wakeToken || ev.node.state !== 'up' || !ev.node.member) return;
        this.apply(ev.node, ev.node.member.tick(this.local(ev.node)));
        return;
      case 'deliver':
        return this.deliver(ev.node, ev.msg);
      case 'fault':
        return this.fault(ev.fault);
      case 'restart':
        if (ev.node.state === 'down' && !ev.node.outside) this.boot(ev.node);
        return;
      case 'resume':
        return this.resume(ev.node);
      case 'unblock':
        if (this.blocked.get(`${ev.from}>${ev.to}`) === ev.token) this.blocked.delete(`${ev.from}>${ev.to}`);
        return;
      case 'flap': {
        const k1 = `${ev.a}>${ev.b}`;
        const k2 = `${ev.b}>${ev.a}`;
        if (this.now >= ev.untilMs || this.healed) {
          this.blocked.delete(k1);
          this.blocked.delete(k2);
          return;
        }
        if (this.blocked.has(k1)) {
          this.blocked.delete(k1);
          this.blocked.delete(k2);
        } else {
          this.blocked.set(k1, ev.token);
          this.blocked.set(k2, ev.token);
        }
        this.push({ ...ev, t: this.now + ev.periodMs * this.rng.range(0.5, 1.5) });
        return;
      }
      case 'heal':
        return this.heal();
      case 'check':
        this.checkL1();
        return this.checkStatus();
      case 'observe':
        this.observer?.observe(this.now, ev.msg);
        return this.scheduleObserver();
      case 'observer-wake':
        if (ev.token !== this.observerToken) return;
        this.observer?.tick(this.now);
        return this.scheduleObserver();
      case 'label':
        this.trace(`operator ${ev.op === 'add' ? 'labels' : 'unlabels'} ${ev.node}`);
        if (ev.op === 'add') this.labelled.add(ev.node);
        else this.labelled.delete(ev.node);
        return this.publish();
      case 'publish':
        if (ev.t === this.publishAt) this.publishAt = Infinity;
        return this.publish();
      case 'learn':
        return this.learn(ev.node, ev.generation);
      case 'replay':
        return this.replay(ev);
      case 'vips': {
        const node = ev.node;
        if (node.state === 'paused') {
          this.push({ t: this.now + this.sc.timing.intervalMs, n: 0, kind: 'vips', node });
          return;
        }
        if (node.state !== 'up' || !node.member) return; // a restart reads the current objects
        this.apply(node, node.member.setVips(this.local(node), this.vipSpecs()));
        return;
      }
    }
  }

  /** The VIPs as a member builds them from the API now: epoch floors and move targets. */
  private vipSpecs(): VipSpec[] {
    return this.admitted.map((v) => {
      const { moveTo: _static, ...rest } = v;
      const moveTo = this.moves.get(v.vip);
      return { ...rest, epochFloor: this.durable.get(v.vip) ?? 0, ...(moveTo ? { moveTo } : {}) };
    });
  }

  /** Plays the next recorded datagram back to a member that restarted (see Scenario.replayer). */
  private replay(ev: Extract<Ev, { kind: 'replay' }>): void {
    const node = ev.node;
    if (node.incarnation !== ev.life || node.state === 'down') return;
    const msg = ev.tape[ev.next];
    if (!msg) return;
    if (node.state === 'up' && node.guard.check(msg.from, msg.incarnation, msg.seq) === 'fresh') {
      node.guard.accept(msg.from, msg.incarnation, msg.seq);
      this.trace(`${node.id} <- REPLAYED ${msg.kind} of ${msg.from} i${msg.incarnation} #${msg.seq}`);
      this.apply(node, (node.member as Member).receive(this.local(node), msg));
    }
    const gap = (this.sc.timing.intervalMs / 2) * this.replayRng.range(0.5, 1.5);
    this.push({ ...ev, t: this.now + gap, next: ev.next + 1 });
  }

  private boot(node: Node): void {
    // A starting agent reads the current generation (a fresh list, not a lagging watch).
    if (!node.witness) node.learned = this.generations.length - 1;
    const members = this.generations[node.learned] as MemberId[];
    if (!node.witness && !members.includes(node.id)) {
      node.outside = true;
      node.state = 'down';
      return;
    }
    node.outside = false;
    node.incarnation += 1;
    node.state = 'up';
    node.buffer = [];
    node.guard = new ReplayGuard<MemberId>(1024);
    const tape = this.tapes.get(node.id);
    if (this.sc.replayer && node.incarnation > 1 && tape && tape.length > 0) {
      this.trace(`adversary replays ${tape.length} recorded datagrams to ${node.id}`);
      this.push({
        t: this.now + 1,
        n: 0,
        kind: 'replay',
        node,
        life: node.incarnation,
        tape: [...tape],
        next: 0,
      });
    }
    node.seen = new Map();
    node.localDirty = false;
    node.upSince = this.now;
    // The agent sweeps Heartline addresses of its previous life before it starts.
    for (const b of node.bindings.values()) this.remove(b, 'sweep at start');
    node.bindings.clear();
    const vips = this.vipSpecs();
    node.member = new Member(
      {},
      {
        clusterId: 'sim',
        self: node.id,
        incarnation: node.incarnation,
        members,
        generation: this.sc.membership?.naive ? 0 : node.learned,
        witness: this.sc.witness ? CONTROLLER : null,
        quorum: this.sc.quorum,
        timing: this.sc.timing,
        vips,
        autoFailback: this.sc.autoFailback,
        ...(this.sc.unsafe || this.sc.membership?.naive
          ? {
              unsafe: {
                ...this.sc.unsafe,
                ...(this.sc.membership?.naive ? { skipGenerationRule: true } : {}),
              },
            }
          : {}),
      },
    );
    node.advertised = Math.max(node.advertised, node.learned);
    this.trace(`${node.id} start incarnation ${node.incarnation} generation ${node.learned}`);
    const out = node.member.start(this.local(node));
    if (node.standby || node.unhealthy.size > 0) {
      out.push(
        ...node.member.setLocal(this.local(node), { standby: node.standby, unhealthy: node.unhealthy }),
      );
    }
    this.apply(node, out);
  }

  private resume(node: Node): void {
    if (node.state !== 'paused') return;
    node.state = 'up';
    node.upSince = this.now;
    this.trace(`${node.id} resumes (${node.buffer.length} buffered datagrams)`);
    const m = node.member as Member;
    this.apply(node, m.tick(this.local(node)));
    // The agent applies a generation its watch delivered while it was paused.
    if (node.member && node.learned > node.advertised) this.learn(node, node.learned, true);
    if (node.state !== 'up' || !node.member) return;
    if (node.localDirty) {
      // The agent resumes and applies the drain/health changes it missed while paused.
      node.localDirty = false;
      this.trace(
        `${node.id} applies local state missed while paused: standby ${node.standby}, unhealthy [${[...node.unhealthy].join(',')}]`,
      );
      this.apply(node, m.setLocal(this.local(node), { standby: node.standby, unhealthy: node.unhealthy }));
    }
    const buf = node.buffer;
    node.buffer = [];
    for (const msg of buf) {
      if (node.state !== 'up') break;
      this.receive(node, msg);
    }
  }

  private deliver(node: Node, msg: Message): void {
    if (node.state === 'down') return;
    if (node.state === 'paused') {
      if (node.buffer.length < 1000) node.buffer.push(msg);
      return;
    }
    this.receive(node, msg);
  }

  private receive(node: Node, msg: Message): void {
    if (this.opts.trace) {
      if (msg.kind === 'takeover-ack') {
        for (const e of msg.entries) {
          this.trace(
            `${node.id} <- ${msg.from} ack ${e.vip} e${e.epoch} ${e.granted ? 'GRANTED' : `refused(${e.reason}) knows e${e.knownEpoch} ${e.knownHolder} promise ${e.promiseRemainingMs}ms`}`,
          );
        }
      } else if (msg.kind === 'takeover') {
        for (const e of msg.entries)
          this.trace(`${node.id} <- ${msg.from} takeover ${e.vip} e${e.epoch} cause ${e.cause}`);
      } else if (msg.kind === 'release') {
        this.trace(
          `${node.id} <- ${msg.from} release ${msg.vip} e${msg.epoch}${(msg.also ?? []).map((r) => ` ${r.vip} e${r.epoch}`).join('')}`,
        );
      }
    }
    if (msg.kind === 'heartbeat') {
      for (const e of msg.holdings.entries) this.see(node, e.vip, e.epoch);
    }
    // The codec's window records what it accepts (duplicates still reach the core here: the
    // core must tolerate them anyway).
    if (node.guard.check(msg.from, msg.incarnation, msg.seq) === 'fresh')
      node.guard.accept(msg.from, msg.incarnation, msg.seq);
    this.apply(node, (node.member as Member).receive(this.local(node), msg));
  }

  private see(node: Node, vip: VipId, epoch: Epoch): void {
    if ((node.seen.get(vip) ?? 0) < epoch) node.seen.set(vip, epoch);
  }

  // ---- outputs --------------------------------------------------------------------------

  private apply(node: Node, out: Output[]): void {
    for (const o of out) {
      switch (o.type) {
        case 'send':
          if (this.healed) this.checkMoves(node, o.message);
          this.send(node, o.to, o.message);
          this.tapObserver(node, o.to, o.message);
          break;
        case 'bind':
          this.bind(node, o.vip, o.epoch, o.leaseExpiry, o.reason);
          break;
        case 'renew':
          this.renew(node, o.vip, o.epoch, o.leaseExpiry);
          break;
        case 'unbind': {
          const b = node.bindings.get(o.vip);
          this.trace(`${node.id} unbind ${o.vip} e${o.epoch} (${o.reason}: ${o.detail})`);
          // The agent removes the address before anything that reveals the unbind goes out
          // (MemberHost holds the datagrams until then), so a late removal delays the Release
          // with it: immediate here. Lateness matters where the agent does not act: the fence
          // deadline of a paused agent (active()) and the fence at agent exit.
          if (b && b.epoch === o.epoch) this.remove(b, o.reason);
          break;
        }
      }
    }
    this.schedule(node);
  }

  private schedule(node: Node): void {
    if (!node.member || node.state === 'down') return;
    const w = node.member.wakeAt();
    if (!Number.isFinite(w)) return;
    node.wakeToken++;
    // +1 µs so that the node's clock reads at least `w` despite floating-point rounding.
    this.push({
      t: Math.max(this.now, this.real(node, w) + 1e-3),
      n: 0,
      kind: 'wake',
      node,
      token: node.wakeToken,
    });
  }

  private send(from: Node, to: MemberId | '*', msg: Message): void {
    if (to === '*') {
      for (const id of this.nodes.keys()) if (id !== from.id) this.send(from, id, msg);
      return;
    }
    const dest = this.nodes.get(to);
    if (!dest) return;
    if (this.sc.replayer) {
      // The adversary taps the wire next to the sender: it records even what is lost later.
      let tape = this.tapes.get(to);
      if (!tape) this.tapes.set(to, (tape = []));
      tape.push(msg);
      if (tape.length > RECORDED * 2) tape.splice(0, tape.length - RECORDED);
    }
    if (this.blocked.size > 0 && this.blocked.has(`${from.id}>${to}`)) return;
    const faulty = !this.healed && this.now < this.netUntil;
    const loss = this.healed ? 0 : this.loss;
    if (loss > 0 && this.rng.chance(loss)) return;
    const delay = () =>
      0.1 + this.rng.next() * 0.9 + (faulty && this.spikeMs > 0 ? this.rng.next() * this.spikeMs : 0);
    this.push({ t: this.now + delay(), n: 0, kind: 'deliver', node: dest, msg });
    if (!this.healed && this.rng.chance(this.dup))
      this.push({ t: this.now + delay() + 1, n: 0, kind: 'deliver', node: dest, msg });
  }

  // ---- the controller's observer -------------------------------------------------------

  /**
   * What the controller's socket receives of `msg`: in quorum "witness" what members address
   * to it; otherwise (members send it heartbeats in production, not in the sim) a copy of
   * each heartbeat and release. Lost, delayed and partitioned like any datagram to CONTROLLER.
   */
  private tapObserver(from: Node, to: MemberId | '*', msg: Message): void {
    if (!this.observer || from.witness || from.id === this.sc.observerDeafTo) return;
    if (msg.kind !== 'heartbeat' && msg.kind !== 'release') return;
    if (this.sc.witness && to !== CONTROLLER && to !== '*') return;
    if (this.blocked.size > 0 && this.blocked.has(`${from.id}>${CONTROLLER}`)) return;
    if (!this.healed && this.loss > 0 && this.observerRng.chance(this.loss)) return;
    const faulty = !this.healed && this.now < this.netUntil;
    const delay =
      0.1 +
      this.observerRng.next() * 0.9 +
      (faulty && this.spikeMs > 0 ? this.observerRng.next() * this.spikeMs : 0);
    this.push({ t: this.now + delay, n: 0, kind: 'observe', msg });
  }

  private scheduleObserver(): void {
    if (!this.observer) return;
    const w = this.observer.wakeAt();
    if (!Number.isFinite(w)) return;
    this.push({ t: Math.max(this.now, w + 1e-3), n: 0, kind: 'observer-wake', token: ++this.observerToken });
  }

  /**
   * STATUS: after the heal, a VIP bound at one member, unchanged for long enough that the
   * observer must have heard (2 x deadMs + 2 x intervalMs), is reported held by that member
   * at that epoch: the holder and epoch the controller writes to its status.
   */
  private checkStatus(): void {
    if (!this.observer) return;
    const t = this.sc.timing;
    const settle = 2 * t.deadMs + 2 * t.intervalMs;
    const obs = this.observer.observation(this.now);
    for (const v of this.admitted) {
      const bound: Binding[] = [];
      for (const n of this.nodes.values()) {
        const b = n.bindings.get(v.vip);
        if (b !== undefined && this.active(b)) bound.push(b);
      }
      if (bound.length !== 1) continue;
      const b = bound[0] as Binding;
      if (b.node.state !== 'up' || b.node.witness) continue;
      if (this.now - Math.max(b.boundAt, this.sc.healAt, b.node.upSince) <= settle) continue;
      // The status the controller would write from this observation.
      const { status } = decideVip({
        id: v.vip,
        address: this.sc.addresses?.[v.vip] ?? '198.18.0.100/24',
        generation: 1,
        deleting: false,
        base: undefined,
        cluster: {
          ok: true,
          config: this.clusterConfig,
          obs,
          quorum: quorumSummary(this.clusterConfig, obs),
        },
        now: this.now,
        wallNow: new Date(Date.UTC(2026, 0, 1) + this.now),
      });
      if (status.holder === b.node.id && status.epoch === b.epoch) continue;
      this.violate(
        'STATUS',
        `${v.vip} is bound at ${b.node.id} e${b.epoch} since ${b.boundAt.toFixed(0)}ms, but the controller would write holder ${status.holder ?? 'none'} epoch ${status.epoch ?? 'none'} (phase ${status.phase})`,
      );
      return;
    }
  }

  // ---- kernel and invariants ------------------------------------------------------------

  private active(b: Binding): boolean {
    if (b.removedAt <= this.now) return false;
    const l = this.local(b.node);
    if (l >= b.kernelLocal) return false;
    if (!b.zombie && l >= b.fenceLocal + b.fenceLate) return false;
    return true;
  }

  /** One injected fence delay in [0, Scenario.fenceDelayMs], the bound itself a third of the time. */
  private fenceDelay(): number {
    const d = this.sc.fenceDelayMs ?? 0;
    if (d <= 0) return 0;
    const late = this.fenceRng.chance(1 / 3) ? d : this.fenceRng.range(0, d);
    this.fenceLateMax = Math.max(this.fenceLateMax, late);
    return late;
  }

  /** The address goes `fenceDelay()` from now (the fence or the agent's removal, late). */
  private removeLate(b: Binding, why: string): void {
    const late = this.fenceDelay();
    if (late > 0) this.trace(`${b.node.id} ${b.vip} e${b.epoch} removed ${late.toFixed(1)}ms late (${why})`);
    const at = this.now + late;
    if (b.removedAt > at) b.removedAt = at;
  }

  private kernelLocal(node: Node, leaseExpiry: number): number {
    const now = this.local(node);
    const lifetimeSec = Math.max(1, Math.ceil((leaseExpiry - now) / 1000));
    return now + lifetimeSec * 1000 + this.rng.range(10, 180);
  }

  private bind(node: Node, vip: VipId, epoch: Epoch, leaseExpiry: number, reason: string): void {
    this.trace(
      `${node.id} BIND ${vip} e${epoch} lease +${(leaseExpiry - this.local(node)).toFixed(0)}ms (${reason})`,
    );
    if (leaseExpiry <= this.local(node))
      this.violate('CONTRACT', `${node.id} asked to bind ${vip} with an expired lease`);
    const max = this.maxBound.get(vip) ?? 0;
    if (epoch <= max)
      this.violate(
        'S2',
        `${node.id} bound ${vip} at epoch ${epoch}, not above the highest bound epoch ${max}`,
      );
    const seen = node.seen.get(vip) ?? 0;
    if (epoch < seen)
      this.violate('S2', `${node.id} bound ${vip} at epoch ${epoch} after seeing epoch ${seen}`);
    this.maxBound.set(vip, Math.max(max, epoch));
    this.durable.set(vip, Math.max(this.durable.get(vip) ?? 0, epoch));
    this.see(node, vip, epoch);
    const old = node.bindings.get(vip);
    if (old) this.remove(old, 'rebind');
    const b: Binding = {
      node,
      vip,
      epoch,
      boundAt: this.now,
      fenceLocal: leaseExpiry,
      fenceLate: this.fenceDelay(),
      kernelLocal: this.kernelLocal(node, leaseExpiry),
      renewedAt: this.now,
      removedAt: Infinity,
      zombie: false,
    };
    this.checkS1(b);
    node.bindings.set(vip, b);
    const list = (this.byVip.get(this.slot(vip)) ?? []).filter((x) => this.active(x));
    list.push(b);
    this.byVip.set(this.slot(vip), list);
    const stopped = this.stoppedAt.get(vip);
    if (stopped !== undefined && stopped.node !== node) {
      this.result.handovers.push(this.now - stopped.t);
      this.stoppedAt.delete(vip);
    }
    this.result.binds.push({ at: this.now, node: node.id, vip, epoch });
    const move = this.planned.get(vip);
    if (move) {
      this.planned.delete(vip);
      this.result.plannedMoves++;
      if (move.to !== node.id)
        this.violate(
          'PLANNED',
          `${move.from} released ${vip} e${move.epoch} for ${move.to}, but ${node.id} bound it next (e${epoch})`,
        );
    }
    const lost = this.lostAt.get(vip);
    if (lost !== undefined) {
      this.result.failovers.push(this.now - lost);
      this.lostAt.delete(vip);
    }
  }

  private renew(node: Node, vip: VipId, epoch: Epoch, leaseExpiry: number): void {
    const b = node.bindings.get(vip);
    if (!b || b.epoch !== epoch) {
      this.violate('CONTRACT', `${node.id} renewed ${vip} e${epoch} which it never bound`);
      return;
    }
    if (!this.active(b)) {
      // The fence (or kernel) removed it; the agent adds it back: same check as a bind.
      this.trace(`${node.id} re-adds ${vip} e${epoch} (fence had removed it)`);
      b.removedAt = Infinity;
      b.boundAt = this.now;
      this.checkS1(b);
      const list = (this.byVip.get(this.slot(vip)) ?? []).filter((x) => this.active(x) && x !== b);
      list.push(b);
      this.byVip.set(this.slot(vip), list);
    }
    b.fenceLocal = leaseExpiry;
    b.fenceLate = this.fenceDelay();
    b.kernelLocal = this.kernelLocal(node, leaseExpiry);
    b.renewedAt = this.now;
  }

  private remove(b: Binding, why: string): void {
    if (b.removedAt > this.now) b.removedAt = this.now;
    void why;
  }

  /** The address a VIP binds: S1 holds per address (two VIP names on one address count). */
  private slot(vip: VipId): string {
    const a = this.sc.addresses?.[vip];
    return a === undefined ? `vip:${vip}` : addressKey(a);
  }

  private checkS1(b: Binding): void {
    for (const other of this.byVip.get(this.slot(b.vip)) ?? []) {
      if (other.node === b.node || !this.active(other)) continue;
      if (other.zombie) {
        // Agent and fence killed together: only the kernel lifetime removes the address.
        const until = this.real(other.node, other.kernelLocal);
        const overlap = until - this.now;
        const bound = Math.ceil(this.sc.timing.leaseMs / 1000) * 1000 + 180 + 10;
        const sinceRenew = until - other.renewedAt;
        this.result.backstopOverlaps.push(overlap);
        this.trace(
          `backstop overlap ${b.vip}: ${other.node.id}'s address lives ${overlap.toFixed(0)}ms more (kernel lifetime)`,
        );
        if (sinceRenew > bound + 5) {
          this.violate(
            'BACKSTOP',
            `${other.node.id}'s orphaned ${b.vip} outlives its last renewal by ${sinceRenew.toFixed(0)}ms > ${bound}ms`,
          );
        }
        continue;
      }
      const what =
        other.node.state === 'paused'
          ? 'paused holder'
          : other.node.state === 'down'
            ? 'crashed holder'
            : 'holder';
      const same = other.vip === b.vip ? 'it' : `${other.vip}, same address ${this.sc.addresses?.[b.vip]},`;
      this.violate(
        'S1',
        `${b.node.id} bound ${b.vip} at epoch ${b.epoch} while ${what} ${other.node.id} still had ${same} bound at epoch ${other.epoch}`,
      );
    }
  }

  private violate(invariant: Violation['invariant'], message: string): void {
    this.trace(`!!! ${invariant}: ${message}`);
    this.result.violations.push({ invariant, at: this.now, message });
  }

  private usable(vip: VipSpec): boolean {
    const eligible = vip.eligible ?? [...this.nodes.keys()].filter((id) => id !== CONTROLLER);
    return eligible.some((id) => {
      const n = this.nodes.get(id);
      return n && n.state === 'up' && !n.standby && !n.unhealthy.has(vip.vip);
    });
  }

  /**
   * After the heal: a Release naming a successor opens a planned move (checked at the next
   * bind and in checkL1); a takeover request must not name a VIP that another live member
   * has held for deadMs while the requester was up (it has heard that holder's holdings).
   */
  private checkMoves(node: Node, msg: Message): void {
    if (msg.kind === 'release' && msg.successor !== null && !this.planned.has(msg.vip)) {
      // Only moves decided on a whole view: for two intervals after the heal (drains end,
      // paused members resume) and until a member has heard every other, two views can each
      // move the VIP (one wins, by the epoch rules). A member restarted at the heal settles
      // (quietMs) after that, so its failback is checked.
      const to = this.nodes.get(msg.successor);
      const settled = this.now >= this.sc.healAt + 2 * this.sc.timing.intervalMs;
      if (to && settled && this.seesAll(node) && this.seesAll(to))
        this.planned.set(msg.vip, { from: node.id, to: msg.successor, epoch: msg.epoch, at: this.now });
      return;
    }
    if (msg.kind !== 'takeover') return;
    for (const e of msg.entries) {
      for (const b of this.byVip.get(e.vip) ?? []) {
        if (b.node === node || b.node.state !== 'up' || !this.active(b)) continue;
        const known =
          Math.max(b.boundAt, node.upSince, b.node.upSince, this.sc.healAt) + this.sc.timing.deadMs;
        if (this.now < known) continue;
        this.violate(
          'HELD',
          `${node.id} asked for ${e.vip} e${e.epoch} while ${b.node.id} has held it (e${b.epoch}) since ${b.boundAt.toFixed(0)}`,
        );
      }
    }
  }

  /** Every other member that is up is alive (or late) in `node`'s view. */
  private seesAll(node: Node): boolean {
    if (!node.member || node.state !== 'up') return false;
    const view = node.member.view(this.local(node));
    return view.members.every((m) => {
      const up = this.nodes.get(m.id)?.state === 'up';
      return !up || m.liveness === 'alive' || m.liveness === 'warn';
    });
  }

  private checkL1(): void {
    for (const [vip, m] of this.planned) {
      if (this.now - m.at <= this.sc.timing.intervalMs) continue;
      this.planned.delete(vip);
      this.violate(
        'PLANNED',
        `${m.from} released ${vip} e${m.epoch} for ${m.to}, which did not bind it within ${this.sc.timing.intervalMs}ms`,
      );
    }
    let all = true;
    for (const v of this.admitted) {
      const held = [...this.nodes.values()].some((n) => {
        const b = n.bindings.get(v.vip);
        return b !== undefined && this.active(b);
      });
      if (held) {
        this.lastHeld.set(v.vip, this.now);
        continue;
      }
      if (!this.usable(v)) continue;
      all = false;
      const since = Math.max(this.lastHeld.get(v.vip) ?? 0, this.sc.healAt);
      if (this.now - since > this.sc.l1BoundMs) {
        this.violate(
          'L1',
          `${v.vip} has had no holder for ${(this.now - since).toFixed(0)}ms after healing (bound ${this.sc.l1BoundMs}ms)`,
        );
        this.lastHeld.set(v.vip, this.now); // report once per gap
      }
    }
    if (all && this.result.convergeMs === null) this.result.convergeMs = this.now - this.sc.healAt;
  }

  // ---- faults ---------------------------------------------------------------------------

  private heal(): void {
    this.healed = true;
    this.trace('--- heal: network healthy, crashed nodes restart, paused nodes resume, drains end');
    this.blocked.clear();
    for (const node of this.nodes.values()) {
      if (node.state === 'paused') this.resume(node);
    }
    // Late watches catch up (their lag ends with the faults).
    const latest = this.generations.length - 1;
    for (const node of this.nodes.values())
      if (node.learned < latest)
        this.push({ t: this.now + 1, n: 0, kind: 'learn', node, generation: latest });
    for (const node of this.nodes.values()) {
      const wasStandby = node.standby || node.unhealthy.size > 0;
      node.standby = false;
      node.unhealthy.clear();
      if (node.state === 'down') {
        if (!node.outside) this.boot(node);
      } else if (wasStandby && node.member)
        this.apply(node, node.member.setLocal(this.local(node), { standby: false, unhealthy: [] }));
    }
  }

  private fault(f: Fault): void {
    if (this.healed) return;
    switch (f.kind) {
      case 'crash': {
        const node = this.nodes.get(f.node);
        if (!node || node.state === 'down') return;
        this.trace(`${node.id} CRASH${f.fenceKilled ? ' with its fence' : ''}`);
        for (const b of node.bindings.values()) {
          if (!this.active(b)) continue;
          // Failover time is measured only where another member could take the VIP.
          const spec = this.sc.vips.find((v) => v.vip === b.vip);
          const others = (spec?.eligible ?? this.sc.members).filter((id) => id !== node.id);
          const usable = others.some((id) => {
            const n = this.nodes.get(id);
            return n && n.state === 'up' && !n.standby && !n.unhealthy.has(b.vip);
          });
          if (usable && !this.lostAt.has(b.vip)) this.lostAt.set(b.vip, this.now);
          if (f.fenceKilled) b.zombie = true;
          else this.removeLate(b, 'fence saw agent exit');
        }
        node.state = 'down';
        node.member = null;
        node.buffer = [];
        if (f.restartAt !== null) this.push({ t: f.restartAt, n: 0, kind: 'restart', node });
        return;
      }
      case 'stop': {
        const node = this.nodes.get(f.node);
        if (!node || node.state !== 'up' || !node.member) return;
        this.trace(`${node.id} STOP (graceful)`);
        for (const b of node.bindings.values()) {
          if (!this.active(b)) continue;
          const spec = this.sc.vips.find((v) => v.vip === b.vip);
          const others = (spec?.eligible ?? this.sc.members).filter((id) => id !== node.id);
          const usable = others.some((id) => {
            const n = this.nodes.get(id);
            return n && n.state === 'up' && !n.standby && !n.unhealthy.has(b.vip);
          });
          if (usable && !this.stoppedAt.has(b.vip)) this.stoppedAt.set(b.vip, { t: this.now, node });
        }
        const m = node.member;
        // As the agent on SIGTERM: each VIP handed to its elected successor.
        this.apply(node, m.stop(this.local(node), { handOver: true }));
        for (const b of node.bindings.values()) {
          if (this.active(b)) this.violate('CONTRACT', `${node.id} stopped with ${b.vip} still bound`);
        }
        node.state = 'down';
        node.member = null;
        node.buffer = [];
        if (f.restartAt !== null) this.push({ t: f.restartAt, n: 0, kind: 'restart', node });
        return;
      }
      case 'pause': {
        const node = this.nodes.get(f.node);
        if (!node || node.state !== 'up') return;
        this.trace(`${node.id} PAUSE ${f.forMs.toFixed(0)}ms`);
        node.state = 'paused';
        this.push({ t: this.now + f.forMs, n: 0, kind: 'resume', node });
        return;
      }
      case 'partition': {
        this.trace(`PARTITION ${f.groups.map((g) => g.join(',')).join(' | ')} until ${f.untilMs.toFixed(0)}`);
        for (const g of f.groups) {
          for (const h of f.groups) {
            if (g === h) continue;
            for (const a of g) for (const b of h) this.block(a, b, f.untilMs);
          }
        }
        return;
      }
      case 'oneway':
        this.trace(`ONE-WAY drop ${f.from} -> ${f.to} until ${f.untilMs.toFixed(0)}`);
        this.block(f.from, f.to, f.untilMs);
        return;
      case 'flap':
        this.trace(`FLAP ${f.a} <-> ${f.b} every ~${f.periodMs.toFixed(0)}ms until ${f.untilMs.toFixed(0)}`);
        this.push({
          t: this.now,
          n: 0,
          kind: 'flap',
          a: f.a,
          b: f.b,
          periodMs: f.periodMs,
          untilMs: f.untilMs,
          token: ++this.n,
        });
        return;
      case 'net':
        this.trace(
          `NET loss ${f.loss.toFixed(2)} dup ${f.dup.toFixed(2)} delay spikes ${f.spikeMs.toFixed(0)}ms until ${f.untilMs.toFixed(0)}`,
        );
        this.loss = f.loss;
        this.dup = f.dup;
        this.spikeMs = f.spikeMs;
        this.netUntil = f.untilMs;
        if (f.untilMs > this.now) {
          this.push({
            t: f.untilMs,
            n: 0,
            kind: 'fault',
            fault: { at: f.untilMs, kind: 'net', loss: 0.002, dup: 0.002, spikeMs: 0, untilMs: f.untilMs },
          });
        }
        return;
      case 'step': {
        const node = this.nodes.get(f.node);
        if (!node) return;
        this.trace(`${node.id} clock steps forward ${f.ms}ms`);
        node.steps += f.ms;
        this.schedule(node);
        return;
      }
      case 'standby': {
        const node = this.nodes.get(f.node);
        if (!node || node.witness) return;
        node.standby = f.on;
        this.trace(
          `${node.id} standby ${f.on ? 'on (drain)' : 'off'}${node.state === 'paused' ? ' (agent paused: applied on resume)' : ''}`,
        );
        if (node.state === 'paused') node.localDirty = true;
        if (node.state === 'up' && node.member)
          this.apply(node, node.member.setLocal(this.local(node), { standby: f.on }));
        return;
      }
      case 'unhealthy': {
        const node = this.nodes.get(f.node);
        if (!node || node.witness) return;
        if (f.on) node.unhealthy.add(f.vip);
        else node.unhealthy.delete(f.vip);
        this.trace(
          `${node.id} Resources of ${f.vip} ${f.on ? 'FAIL' : 'recover'}${node.state === 'paused' ? ' (agent paused: applied on resume)' : ''}`,
        );
        if (node.state === 'paused') node.localDirty = true;
        if (node.state === 'up' && node.member)
          this.apply(node, node.member.setLocal(this.local(node), { unhealthy: node.unhealthy }));
        return;
      }
      case 'move': {
        if (f.to === null) this.moves.delete(f.vip);
        else this.moves.set(f.vip, f.to);
        this.trace(`operator ${f.to === null ? `clears the move of ${f.vip}` : `moves ${f.vip} to ${f.to}`}`);
        for (const node of this.nodes.values()) {
          if (node.witness) continue;
          this.push({ t: this.now + (f.lagMs[node.id] ?? 0), n: 0, kind: 'vips', node });
        }
        return;
      }
    }
  }

  // ---- membership changes (the controller's generations and the agents' watches) ------------

  private votersOf(members: readonly MemberId[]): MemberId[] {
    return this.sc.quorum === 'witness' && this.sc.witness ? [...members, CONTROLLER] : [...members];
  }

  /** Publishes the next generation when the labelled set differs and the barrier allows it. */
  private publish(): void {
    const g = this.generations.length - 1;
    const cur = this.generations[g] as MemberId[];
    const add = [...this.labelled].filter((id) => !cur.includes(id)).sort()[0];
    const remove = cur.filter((id) => !this.labelled.has(id)).sort()[0];
    if (add === undefined && remove === undefined) return;
    // Never fewer than two members: the operator's removal waits.
    if (add === undefined && cur.length <= 2) return;
    const naive = this.sc.membership?.naive ?? false;
    if (!naive && g >= 2) {
      // Barrier: a majority of the voters of g-1 advertise g, then lease + margin.
      const prev = this.votersOf(this.generations[g - 1] as MemberId[]);
      const moved = prev.filter((id) => {
        const n = this.nodes.get(id);
        return id === CONTROLLER ? true : (n?.advertised ?? 0) >= g;
      }).length;
      if (moved < Math.floor(prev.length / 2) + 1) {
        this.barrierSince = undefined;
        return this.retryPublish(this.now + this.sc.timing.intervalMs);
      }
      this.barrierSince ??= this.now;
      const { leaseMs, marginMs } = this.sc.timing;
      const ready = this.barrierSince + (leaseMs + marginMs) * (1 + this.sc.timing.driftRate);
      if (this.now < ready) return this.retryPublish(ready);
    }
    this.barrierSince = undefined;
    const next = add !== undefined ? [...cur, add].sort() : cur.filter((id) => id !== remove);
    this.generations.push(next);
    const gen = this.generations.length - 1;
    this.trace(`controller publishes generation ${gen}: ${next.join(',')}`);
    for (const node of this.nodes.values()) {
      // Watch lag is a fault like the others: after the heal every agent learns within 20 ms.
      const lag = node.witness
        ? 0
        : Math.min(this.sc.membership?.lagMs[node.id] ?? 1, this.healed ? 20 : Infinity);
      this.push({ t: this.now + lag, n: 0, kind: 'learn', node, generation: gen });
    }
    // More changes pending: the next step (after its barrier).
    this.retryPublish(this.now + 1);
  }

  private retryPublish(at: number): void {
    if (at >= this.publishAt) return;
    this.publishAt = at;
    this.push({ t: at, n: 0, kind: 'publish' });
  }

  /** `node`'s agent learns generation `gen` (its watch delivered the HACluster status). */
  private learn(node: Node, gen: number, resumed = false): void {
    if (!resumed) {
      if (gen <= node.learned) return;
      node.learned = gen;
    }
    const members = this.generations[node.learned] as MemberId[];
    if (node.state === 'paused') return; // applied when the agent resumes
    if (!node.witness && !members.includes(node.id)) {
      if (node.outside) return;
      node.outside = true;
      if (node.state !== 'up' || !node.member) return;
      this.trace(`${node.id} learns generation ${node.learned}: removed, leaves`);
      this.apply(node, node.member.stop(this.local(node)));
      node.state = 'down';
      node.member = null;
      node.buffer = [];
      return;
    }
    if (node.outside) {
      if (node.witness) return;
      this.trace(`${node.id} learns generation ${node.learned}: added, starts`);
      if (node.state === 'down') this.boot(node);
      return;
    }
    if (node.state !== 'up' || !node.member) return;
    this.trace(`${node.id} learns generation ${node.learned}: ${members.join(',')}`);
    const generation = this.sc.membership?.naive ? 0 : node.learned;
    if (this.sc.membership?.naive) {
      // No generations: the member takes the set as a new numbered step of its own.
      this.apply(
        node,
        node.member.setMembers(this.local(node), { members, generation: node.member.generation + 1 }),
      );
    } else {
      this.apply(node, node.member.setMembers(this.local(node), { members, generation }));
    }
    // As MemberHost.reconfigure (src/runtime/member-host.ts) does after setMembers: the agent
    // rebuilds its whole configuration, so it also re-reads each VipSpec, epoch floors (the
    // VirtualIP status epochs) included. Without this a member that stood through two
    // generation steps could ask, and get a quorum of the newest set, for an epoch a
    // quorum of the older set had bound (seed 2962 with --moves at the fast profile).
    if (node.member) this.apply(node, node.member.setVips(this.local(node), this.vipSpecs()));
    node.advertised = Math.max(node.advertised, node.learned);
  }

  private block(from: MemberId, to: MemberId, until: number): void {
    const token = ++this.n;
    this.blocked.set(`${from}>${to}`, token);
    this.push({ t: until, n: 0, kind: 'unblock', from, to, token });
  }
}

/**
 * The VIP set the members run, as the agent builds it (runtime/cluster-config.ts): the same
 * pure rule, one address per VirtualIP, the older one (earlier in `vips`) keeping it.
 */
export function admittedVips(sc: Pick<Scenario, 'vips' | 'addresses' | 'noAddressRule'>): VipSpec[] {
  const addresses = sc.addresses;
  if (sc.noAddressRule || !addresses) return sc.vips;
  const verdicts = resolveAddressClaims(
    sc.vips.flatMap((v, i) => {
      const address = addresses[v.vip];
      return address === undefined ? [] : [{ id: v.vip, address, created: new Date(i * 1000).toISOString() }];
    }),
  );
  return sc.vips.filter((v) => verdicts.get(v.vip)?.ok !== false);
}
