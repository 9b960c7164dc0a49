/**
 * What the parts of a member share: its identity and configuration, its local state (VIPs,
 * standby, health), the clock reading of the current step, and the three tables every part
 * reads (membership, voter table, holder leases). Also the member's public command and event
 * types, which every part produces.
 */
import type { ElectionVip } from './election.js';
import { HolderLeases, quorumOf, type Quorum, type QuorumMode } from './lease-holder.js';
import type { UnsafeOptions, VoterTable } from './lease-voter.js';
import type { LivenessChange, Membership } from './membership.js';
import {
  LIMITS,
  type AckRefusal,
  type Destination,
  type Epoch,
  type Generation,
  type Incarnation,
  type MemberId,
  type Message,
  type TakeoverCause,
  type VipId,
} from './messages.js';
import type { Millis } from './ports.js';
import type { Timing } from './timing.js';

/** A VIP as the core sees it. */
export interface VipSpec extends ElectionVip {
  /** Lowest epoch to use (from the VIP's status, the durable record). Default 0. */
  epochFloor?: Epoch;
}

export type UnbindReason =
  /** No quorum of unexpired grants any more. */
  | 'lease-expired'
  /** A newer epoch exists: someone else holds it. */
  | 'superseded'
  /** Planned move: released for `successor`. */
  | 'planned'
  /** The VIP was removed from the configuration. */
  | 'removed'
  /** The member is stopping. */
  | 'stopped';

/** Commands for the agent. Times are on the member's own clock. */
export type Output =
  /** Add the address (kernel lifetime and fence deadline from `leaseExpiry`), announce it, start Resources. */
  | { type: 'bind'; vip: VipId; epoch: Epoch; leaseExpiry: Millis; reason: string }
  /** Extend the kernel lifetime and fence deadline of a bound address to `leaseExpiry`. */
  | { type: 'renew'; vip: VipId; epoch: Epoch; leaseExpiry: Millis }
  /** Stop Resources (planned) and remove the address now. */
  | { type: 'unbind'; vip: VipId; epoch: Epoch; reason: UnbindReason; detail: string }
  /** Send a message (to one member, or '*' for all). */
  | { type: 'send'; to: Destination; message: Message };

/** Things worth a log line, a metric or an Event. Informational: no action needed. */
export type MemberEvent =
  | { type: 'liveness'; change: LivenessChange }
  /** A candidacy started: `cause` says why (a bounded set, for metrics), `reason` in words. */
  | { type: 'candidate'; vip: VipId; epoch: Epoch; cause: TakeoverCause; reason: string }
  | { type: 'abandon'; vip: VipId; epoch: Epoch; reason: string }
  | { type: 'refused'; vip: VipId; epoch: Epoch; candidate: MemberId; reason: AckRefusal }
  /**
   * A message from a peer that has not proven freshness in this life (`unproven`), or from
   * before its proof (`stale`): it counted for nothing (docs/adr/0015). The host counts these
   * as `not-fresh` drops.
   */
  | { type: 'not-fresh'; from: MemberId; kind: Message['kind']; reason: 'unproven' | 'stale' };

export interface MemberComponents {
  /** Receives informational events (logs, metrics, Events). */
  observer?: (event: MemberEvent) => void;
}

export interface MemberInit {
  clusterId: string;
  self: MemberId;
  /** Strictly greater than any previous life of this member (e.g. boot counter or start time). */
  incarnation: Incarnation;
  /**
   * Members that may hold VIPs, self included unless self is the witness. Same list on every
   * member of one `generation` (change it with Member.setMembers).
   */
  members: readonly MemberId[];
  /**
   * Number of the member set `members` (published by the controller; docs/protocol.md
   * "Membership changes"). Voters grant and ack only members at this generation or later.
   * Default 0: no generation published.
   */
  generation?: Generation;
  /** The controller's witness voter (a member id that never holds), if any. */
  witness?: MemberId | null;
  quorum: QuorumMode;
  timing: Timing;
  vips: readonly VipSpec[];
  autoFailback?: boolean;
  /** Test-only breakages of the protocol (see {@link UnsafeOptions}). */
  unsafe?: UnsafeOptions;
}

/** The configuration is inconsistent; names the field and the fix. */
export class MemberConfigError extends Error {
  override readonly name = 'MemberConfigError';
}

export const UINT32_MAX = 0xffffffff;

/** Checks `init` and throws {@link MemberConfigError} naming the field. */
export function checkMembers(init: Pick<MemberInit, 'self' | 'members' | 'witness' | 'quorum'>): void {
  const witness = init.witness ?? null;
  if (witness !== init.self && !init.members.includes(init.self)) {
    throw new MemberConfigError(`members: ${init.self} is not listed; add it or make it the witness`);
  }
  if (witness && init.members.includes(witness)) {
    throw new MemberConfigError(`witness: ${witness} is also in members; the witness votes but never holds`);
  }
  if (init.quorum === 'witness' && !witness) {
    throw new MemberConfigError('quorum: "witness" needs a witness member id (the controller)');
  }
  if (init.members.length + (witness ? 1 : 0) > LIMITS.maxMembers) {
    throw new MemberConfigError(`members: at most ${LIMITS.maxMembers} members (witness included)`);
  }
}

export class MemberContext {
  readonly self: MemberId;
  readonly incarnation: Incarnation;
  readonly clusterId: string;
  readonly timing: Timing;
  // The member set and what derives from it change together, in place (setMembers).
  quorum!: Quorum;
  /** Members whose grants and acks count. */
  voterSet!: ReadonlySet<MemberId>;
  /** Members that may hold VIPs (`init.members`, in their configured order). */
  members!: readonly MemberId[];
  memberSet!: ReadonlySet<MemberId>;
  /** Every other member, the witness included. */
  peers!: readonly MemberId[];
  /** Generation of the member set (see MemberInit.generation). */
  generation: Generation = 0;
  readonly witness: MemberId | null;
  readonly isWitness: boolean;
  readonly autoFailback: boolean;
  readonly vips = new Map<VipId, VipSpec>();
  /** Drained / standby here (setLocal, or stopping). */
  standby = false;
  /** VIPs whose Resources fail here. */
  unhealthy = new Set<VipId>();
  /** Start of this life. */
  startedAt: Millis = 0;
  /** `now` of the current step (never goes back). */
  lastNow: Millis = -Infinity;
  membership!: Membership;
  voter!: VoterTable;
  readonly leases: HolderLeases;

  constructor(
    private readonly components: MemberComponents,
    readonly init: MemberInit,
  ) {
    checkMembers(init);
    this.self = init.self;
    this.incarnation = init.incarnation;
    this.clusterId = init.clusterId;
    this.timing = init.timing;
    this.autoFailback = init.autoFailback ?? false;
    this.witness = init.witness ?? null;
    this.isWitness = this.witness === init.self;
    this.setMembers(init.members, init.generation ?? 0);
    for (const v of init.vips) this.vips.set(v.vip, v);
    this.leases = new HolderLeases(this.self, this.timing, this.quorum);
  }

  /** Sets the member set and what derives from it (the caller checked it with checkMembers). */
  setMembers(members: readonly MemberId[], generation: Generation): void {
    const { witness } = this;
    this.quorum = quorumOf(this.init.quorum, members, witness);
    this.voterSet = new Set(this.quorum.voters);
    this.members = [...members];
    this.memberSet = new Set(members);
    this.peers = [...members, ...(witness ? [witness] : [])].filter((m) => m !== this.self);
    this.generation = generation;
  }

  emit(e: MemberEvent): void {
    this.components.observer?.(e);
  }
}
