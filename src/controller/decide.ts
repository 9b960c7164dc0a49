/**
 * What the status of a VirtualIP and of an HACluster should be, and which Events to record,
 * given the objects and what the controller's observer saw on the heartbeat channel. Pure:
 * no I/O, no clock reads; times come in as arguments. The reconcilers only read, call these
 * and write.
 *
 * Status changes only when something real changed (holder, epoch, liveness state, quorum,
 * a condition's status/reason/message), never per heartbeat, so a quiet cluster costs no
 * API request. Timestamps are whole seconds and are carried over unless their subject
 * changed.
 *
 * Size: the pure decisions of both reconcilers together, so the status rules (conditions,
 * timestamps, Events) are written once and unit-tested side by side (decide.test.ts).
 */
import type { Condition, HAClusterStatus, VirtualIPStatus } from '../api/index.js';
import { elect, loadCap, type ElectionMember, type ElectionResult } from '../core/election.js';
import { quorumOf } from '../core/lease-holder.js';
import type { Millis } from '../core/ports.js';
import type { AddressVerdict } from '../runtime/address-claims.js';
import { WITNESS_ID, type ClusterConfig, type VipConfig } from '../runtime/cluster-config.js';
import type { LossCause, Observation, VipTransition } from './observer.js';

/** An Event to record about the object being reconciled. */
export interface EventSpec {
  type: 'Normal' | 'Warning';
  reason: string;
  note: string;
  action: string;
}

/** Where the controller's witness listens, published in HACluster status for the agents. */
export interface WitnessAddress {
  /** The witness's public key (`ed25519:<base64>`): agents verify its datagrams with it (docs/adr/0021). */
  publicKey?: string;
  address: string;
  port: number;
}

/** HACluster status as the controller writes it. */
export type ClusterStatus = HAClusterStatus & { witness?: WitnessAddress };

/** Moved: an operator's move (heartline.dev/move-to, docs/adr/0031) to that member. */
export type FailoverReason = LossCause | 'Failback' | 'Moved';

export interface VipDecision {
  status: VirtualIPStatus;
  events: EventSpec[];
  /** Set when this decision records a completed move (for the failovers metric). */
  failover?: { from: string; to: string; reason: FailoverReason };
}

export interface QuorumSummary {
  state: 'quorate' | 'lost' | 'ignored';
  have: number;
  need: number;
}

/** RFC 3339 in whole seconds, as metav1.Time serialises. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function condition(
  prev: readonly Condition[] | undefined,
  type: string,
  status: Condition['status'],
  reason: string,
  message: string,
  generation: number | undefined,
  nowIso: string,
): Condition {
  const old = prev?.find((c) => c.type === type);
  const lastTransitionTime = old && old.status === status ? old.lastTransitionTime : nowIso;
  return {
    type,
    status,
    reason,
    message: message.slice(0, 32768),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime,
  };
}

/** Quorum as the observer sees it: the witness (this controller) counts as reachable when it votes. */
export function quorumSummary(config: ClusterConfig, obs: Observation): QuorumSummary {
  const q = quorumOf(
    config.quorum,
    config.members.map((m) => m.id),
    config.witness?.id ?? null,
  );
  if (config.quorum === 'ignore') {
    const have = obs.members.filter((m) => m.liveness === 'alive' || m.liveness === 'warn').length;
    return { state: 'ignored', have, need: 1 };
  }
  const alive = new Set(
    obs.members.filter((m) => m.liveness === 'alive' || m.liveness === 'warn').map((m) => m.id),
  );
  const have = q.voters.filter((v) => v === WITNESS_ID || alive.has(v)).length;
  return { state: have >= q.size ? 'quorate' : 'lost', have, need: q.size };
}

function electionMembers(config: ClusterConfig, obs: Observation, vip: string): ElectionMember[] {
  // Each member's load counts the VIPs it holds other than this one.
  const holder = obs.holdings.get(vip)?.holder;
  return obs.members.map((m) => ({
    id: m.id,
    alive: m.liveness === 'alive' || m.liveness === 'warn',
    healthy: !m.unhealthy.includes(vip),
    standby: m.standby || config.standby.has(m.id),
    load: (obs.loads.get(m.id) ?? 0) - (m.id === holder ? 1 : 0),
  }));
}

const vipIndexes = new WeakMap<ClusterConfig, Map<string, VipConfig>>();

/** The configuration of VIP `id` (indexed once per configuration: a pass over every VIP stays linear). */
function vipConfigOf(config: ClusterConfig, id: string): VipConfig | undefined {
  let index = vipIndexes.get(config);
  if (!index) {
    index = new Map(config.vips.map((v) => [v.vip, v]));
    vipIndexes.set(config, index);
  }
  return index.get(id);
}

/** The election as the members run it, on the observer's view: who should hold `vip` and why. */
export function expectedHolder(
  config: ClusterConfig,
  obs: Observation,
  vip: VipConfig,
  current: string | null,
): ElectionResult {
  const epoch = obs.holdings.get(vip.vip)?.epoch ?? 0;
  const members = electionMembers(config, obs, vip.vip);
  // The members' load bound (ADR 0005): VIPs configured over members alive and not in standby.
  const usable = members.filter((m) => m.alive && !m.standby).length;
  return elect({
    spec: vip,
    members,
    current: { holder: current, epoch },
    autoFailback: config.autoFailback,
    loadCap: loadCap(config.vips.length, usable),
  });
}

function failoverReason(
  t: VipTransition | undefined,
  vip: VipConfig,
  autoFailback: boolean,
  from: string,
  to: string,
  standby: ReadonlySet<string>,
): FailoverReason {
  const cause = t && t.cause !== 'Initial' ? t.cause : 'Released';
  const planned = cause === 'Released' || cause === 'Superseded';
  // The holder's Node asks for standby (drain, cordon, annotation): the release was a drain,
  // even when the observer heard the release before the heartbeat that says standby.
  if (planned && standby.has(from)) return 'Drain';
  if (planned && vip.moveTo === to) return 'Moved';
  if ((cause === 'Released' || cause === 'Superseded') && autoFailback) {
    const pi = vip.preferredNodes.indexOf(to);
    const fi = vip.preferredNodes.indexOf(from);
    if (pi >= 0 && (fi < 0 || pi < fi)) return 'Failback';
  }
  return cause;
}

const WARNING_CAUSES: ReadonlySet<string> = new Set(['HolderDead', 'HolderRestarted', 'ResourceFailed']);

export interface VipInput {
  /** "namespace/name", the VIP's id in the cluster configuration. */
  id: string;
  address: string;
  generation: number | undefined;
  deleting: boolean;
  /** Status as last written (or read when nothing was written in this leadership). */
  base: VirtualIPStatus | undefined;
  /** The cluster, when it exists and its configuration builds. */
  cluster:
    | { ok: true; config: ClusterConfig; obs: Observation; quorum: QuorumSummary }
    | {
        ok: false;
        reason: 'ClusterNotFound' | 'InvalidCluster' | 'InvalidVirtualIP' | 'NotObserved';
        message: string;
      };
  now: Millis;
  wallNow: Date;
  /**
   * The address rule's verdict (runtime/address-claims.ts, over every VirtualIP and Node):
   * a refused VIP is never bound and says why in condition AddressConflict. Default: ok.
   */
  addressVerdict?: AddressVerdict;
}

/** The cluster of a VirtualIP as the VIP decisions see it (`VipInput.cluster`). */
export type VipCluster = VipInput['cluster'];

export interface FinalizeInput {
  /** "namespace/name" of the deleted VirtualIP. */
  id: string;
  address: string;
  cluster: VipCluster;
  now: Millis;
  /** When this controller first saw it deleting (now, on the first pass). */
  deletingSince: Millis;
  /** `ControllerInit.releaseTimeoutMs`, if set; else derived from the cluster's timing. */
  releaseTimeoutMs: Millis | undefined;
  finalizer: string;
}

export type FinalizeDecision =
  | { remove: false; retryInMs: Millis }
  | { remove: true; released: boolean; waitedMs: Millis; events: EventSpec[] };

/**
 * Whether a deleted VirtualIP's finalizer may go: once no member reports holding it (or its
 * HACluster is gone, so none can), else after a bounded timeout with a Warning (the holder's
 * lease and the kernel address lifetime then bound how long it stays bound).
 */
export function decideFinalize(input: FinalizeInput): FinalizeDecision {
  const { id, address, cluster, now, deletingSince: since, finalizer } = input;
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
    input.releaseTimeoutMs ?? (timing ? 2 * timing.deadMs + timing.leaseMs + timing.marginMs : 5000);
  const timedOut = !released && now - since >= timeout;
  if (!released && !timedOut) return { remove: false, retryInMs: Math.min(250, since + timeout - now) };
  const events: EventSpec[] = released
    ? [
        {
          type: 'Normal',
          reason: 'Released',
          note: `${address} released everywhere (${why}); finalizer ${finalizer} removed`,
          action: 'Finalize',
        },
      ]
    : [
        {
          type: 'Warning',
          reason: 'ReleaseTimeout',
          note: `${address}: still claimed by ${cluster.ok ? (cluster.obs.claims.get(id) ?? []).join(', ') || 'an unobserved member' : 'an unknown member'} ${Math.round(now - since)} ms after deletion; finalizer ${finalizer} removed anyway (the holder's lease and the kernel address lifetime bound how long it stays bound)`,
          action: 'Finalize',
        },
      ];
  return { remove: true, released, waitedMs: now - since, events };
}

/** The VirtualIP's status and the Events of this change. */
export function decideVip(input: VipInput): VipDecision {
  const decision = decideVipHolding(input);
  if (input.deleting) return decision;
  return withAddressVerdict(input, decision);
}

/** Condition AddressConflict, and for a refused VIP Ready False, phase and an Event. */
function withAddressVerdict(input: VipInput, d: VipDecision): VipDecision {
  const verdict = input.addressVerdict ?? { ok: true };
  const { base, generation } = input;
  const nowIso = isoSeconds(input.wallNow);
  const prevConds = base?.conditions;
  const cond = (type: string, status: Condition['status'], reason: string, message: string) =>
    condition(prevConds, type, status, reason, message, generation, nowIso);
  const others = (d.status.conditions ?? []).filter((c) => c.type !== 'AddressConflict');
  const prev = prevConds?.find((c) => c.type === 'AddressConflict');
  // Status kept as it was (members not all heard yet): nothing to add unless a refusal ends.
  if (verdict.ok && d.status === base && prev?.status !== 'True') return d;
  if (verdict.ok) {
    return {
      ...d,
      status: {
        ...d.status,
        conditions: [
          ...others,
          cond(
            'AddressConflict',
            'False',
            'NoConflict',
            `no other VirtualIP and no Node uses ${input.address}`,
          ),
        ],
      },
    };
  }
  const ip = input.address.split('/')[0];
  const conflict = cond('AddressConflict', 'True', verdict.reason, verdict.message);
  const conditions = others.map((c) =>
    c.type === 'Ready'
      ? cond('Ready', 'False', 'AddressConflict', `not bound: ${verdict.message}`)
      : c.type === 'Degraded' && !d.status.holder
        ? cond('Degraded', 'Unknown', 'AddressConflict', 'not bound; see condition AddressConflict')
        : c,
  );
  const events = d.events.filter((e) => e.reason !== 'Unassigned');
  if (prev?.status !== 'True' || prev.reason !== verdict.reason) {
    events.push({
      type: 'Warning',
      reason: 'AddressConflict',
      note: `${ip}: not bound: ${verdict.message}`,
      action: 'Refuse',
    });
  }
  const phase = d.status.holder ? d.status.phase : d.status.phase === 'Pending' ? 'Pending' : 'Unassigned';
  return {
    ...d,
    status: { ...d.status, ...(phase ? { phase } : {}), conditions: [...conditions, conflict] },
    events,
  };
}

function decideVipHolding(input: VipInput): VipDecision {
  const { base, generation } = input;
  const nowIso = isoSeconds(input.wallNow);
  const prevConds = base?.conditions;
  const events: EventSpec[] = [];
  const cond = (type: string, status: Condition['status'], reason: string, message: string) =>
    condition(prevConds, type, status, reason, message, generation, nowIso);

  if (!input.cluster.ok) {
    const { reason, message } = input.cluster;
    const status: VirtualIPStatus = {
      ...(base?.epoch !== undefined ? { epoch: base.epoch } : {}),
      ...(base?.lastFailover ? { lastFailover: base.lastFailover } : {}),
      ...(base?.failoverCount !== undefined ? { failoverCount: base.failoverCount } : {}),
      phase: 'Pending',
      conditions: [
        cond('Ready', 'False', reason, message),
        cond('Bound', 'Unknown', reason, message),
        cond('QuorumLost', 'Unknown', reason, message),
        cond('Degraded', 'Unknown', reason, message),
      ],
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    };
    if (base?.phase !== 'Pending' || prevConds?.find((c) => c.type === 'Ready')?.reason !== reason) {
      events.push({ type: 'Warning', reason, note: message, action: 'Observe' });
    }
    return { status, events };
  }

  const { config, obs, quorum } = input.cluster;
  const vipConfig = vipConfigOf(config, input.id);
  const holding = obs.holdings.get(input.id);
  if (!holding && !obs.settled && base?.phase) {
    // Not every member heard yet: "nobody holds it" is not known. Keep what status says.
    return { status: base, events };
  }
  const baseEpoch = base?.epoch ?? 0;
  const holder = holding?.holder;
  const epoch = Math.max(baseEpoch, holding?.epoch ?? 0);
  const prevHolder = base?.holder || undefined;
  const t = obs.transitions.get(input.id);
  let since = base?.since;
  let lastFailover = base?.lastFailover;
  let failoverCount = base?.failoverCount ?? 0;
  let failover: VipDecision['failover'];
  const election = vipConfig
    ? expectedHolder(config, obs, vipConfig, holder ?? t?.from ?? prevHolder ?? null)
    : undefined;

  if (holder && holding && (holder !== prevHolder || holding.epoch > baseEpoch)) {
    since = isoSeconds(new Date(input.wallNow.getTime() - Math.max(0, input.now - holding.since)));
    const fromT = t && t.to === holder && t.epoch === holding.epoch ? t : undefined;
    const from = fromT?.from ?? prevHolder;
    if (from && from !== holder) {
      const reason: FailoverReason = vipConfig
        ? failoverReason(fromT, vipConfig, config.autoFailback, from, holder, config.standby)
        : fromT && fromT.cause !== 'Initial'
          ? fromT.cause
          : 'Released';
      const gap = fromT?.gapMs;
      lastFailover = {
        from,
        to: holder,
        reason: reason as string,
        ...(gap !== undefined ? { durationMs: Math.max(0, Math.round(gap)) } : {}),
        time: nowIso,
      };
      failoverCount += 1;
      failover = { from, to: holder, reason };
      const chosen = vipConfig ? expectedHolder(config, obs, vipConfig, from) : undefined;
      const why = chosen ? `: ${chosen.reason}` : '';
      const gapText = gap !== undefined ? `; ${Math.round(gap)} ms without a holder` : '';
      events.push({
        type: WARNING_CAUSES.has(reason) ? 'Warning' : 'Normal',
        reason: 'Failover',
        note: `${input.address} moved from ${from} to ${holder} at epoch ${holding.epoch} (${reason})${why}${gapText}`,
        action: 'Failover',
      });
    } else if (from === holder) {
      events.push({
        type: 'Normal',
        reason: 'Reacquired',
        note: `${holder} holds ${input.address} again, at epoch ${holding.epoch}`,
        action: 'Bind',
      });
    } else {
      events.push({
        type: 'Normal',
        reason: 'Bound',
        note: `${holder} holds ${input.address} at epoch ${holding.epoch}${vipConfig ? `: ${expectedHolder(config, obs, vipConfig, null).reason}` : ''}`,
        action: 'Bind',
      });
    }
  } else if (!holder && prevHolder) {
    const cause = t && t.to === null && t.from === prevHolder ? t.cause : 'Released';
    events.push({
      type: cause === 'HolderDead' || cause === 'HolderRestarted' ? 'Warning' : 'Normal',
      reason: cause === 'HolderDead' ? 'HolderLost' : 'Released',
      note: `${prevHolder} no longer holds ${input.address} (epoch ${baseEpoch}): ${cause}; ${
        input.deleting
          ? 'the VirtualIP is being deleted'
          : election?.holder && election.holder !== prevHolder
            ? `${election.holder} should take it`
            : election?.holder
              ? 'waiting for a member to take it'
              : 'no member can take it'
      }`,
      action: 'Release',
    });
  }
  if (!holder) since = undefined;

  // Phase and conditions. Before every member was heard or declared dead, a missing vote is not a lost one.
  const quorumLost = quorum.state === 'lost' && obs.settled;
  let phase: NonNullable<VirtualIPStatus['phase']>;
  if (holder) phase = input.deleting ? 'Releasing' : 'Bound';
  else if (input.deleting) phase = 'Releasing';
  else if (!obs.settled) phase = 'Pending';
  else if (election?.holder || quorumLost) phase = 'Binding';
  else phase = 'Unassigned';

  let ready: Condition;
  if (holder) {
    ready = input.deleting
      ? cond('Ready', 'False', 'Deleting', `the VirtualIP is being deleted; ${holder} is releasing it`)
      : cond('Ready', 'True', 'Bound', `${holder} holds ${input.address} at epoch ${epoch}`);
  } else if (input.deleting) {
    ready = cond('Ready', 'False', 'Deleting', 'the VirtualIP is being deleted');
  } else if (phase === 'Pending') {
    ready = cond(
      'Ready',
      'Unknown',
      'Observing',
      'waiting to hear every member before judging who holds the VIP',
    );
  } else if (quorumLost) {
    ready = cond('Ready', 'False', 'QuorumLost', 'no member may hold the VIP without a quorum of voters');
  } else if (phase === 'Unassigned') {
    ready = cond('Ready', 'False', 'NoEligibleMember', election?.reason ?? 'no eligible member');
  } else {
    ready = cond(
      'Ready',
      'False',
      'TakeoverInProgress',
      // Neither the election's reason nor the expected holder: both move with every member
      // that comes or goes and every bind elsewhere, and each change would rewrite the status
      // of every unheld VIP (the Events name the members).
      'nobody holds it yet; an eligible member is taking it over',
    );
  }
  const bound = holder
    ? cond('Bound', 'True', 'Bound', `bound on ${holder} at epoch ${epoch}`)
    : cond(
        'Bound',
        'False',
        phase === 'Pending' ? 'Observing' : 'NotBound',
        'no member reports holding the VIP',
      );
  // A VIP's conditions carry nothing cluster-wide that changes with every member (vote
  // counts, lists of dead members): one member joining or dying must not rewrite the status
  // of every VIP (the counts are in the HACluster status).
  const ql = quorumLost
    ? cond(
        'QuorumLost',
        'True',
        'QuorumLost',
        'no quorum of voters reachable; see the HACluster status.quorum',
      )
    : !obs.settled && quorum.state === 'lost'
      ? cond('QuorumLost', 'Unknown', 'Observing', 'too few votes heard so far; waiting to hear every member')
      : cond(
          'QuorumLost',
          'False',
          quorum.state === 'ignored' ? 'QuorumIgnored' : 'Quorate',
          quorum.state === 'ignored' ? 'quorum: ignore (can split brain)' : 'a quorum of voters is reachable',
        );
  let degraded: Condition;
  if (!vipConfig) {
    degraded = cond(
      'Degraded',
      'Unknown',
      'InvalidVirtualIP',
      'the VirtualIP is not in the cluster configuration; see the HACluster status for the problem',
    );
  } else {
    const members = electionMembers(config, obs, input.id);
    const eligible = vipConfig.eligible ? new Set(vipConfig.eligible) : undefined;
    const candidates = members.filter((m) => !eligible || eligible.has(m.id));
    // Only members that matter to this VIP in particular: its preferred nodes and, when it
    // is restricted to some, its eligible members.
    const own = new Set(vipConfig.preferredNodes);
    const down = candidates.filter((m) => !m.alive && (eligible || own.has(m.id))).map((m) => m.id);
    const spare = candidates.filter((m) => m.alive && m.healthy && !m.standby && m.id !== holder);
    if (holder && spare.length === 0) {
      degraded = cond(
        'Degraded',
        'True',
        'NoFailoverTarget',
        `no other alive, healthy, eligible member could take over from ${holder}`,
      );
    } else if (down.length > 0) {
      degraded = cond(
        'Degraded',
        'True',
        'MembersUnavailable',
        `${eligible ? 'eligible' : 'preferred'} members not alive: ${down.join(', ')}`,
      );
    } else {
      degraded = cond('Degraded', 'False', 'Redundant', 'another member can take over');
    }
  }
  const status: VirtualIPStatus = {
    ...(holder ? { holder } : {}),
    ...(epoch > 0 ? { epoch } : {}),
    ...(since ? { since } : {}),
    phase,
    conditions: [ready, bound, ql, degraded],
    ...(lastFailover ? { lastFailover } : {}),
    ...(failoverCount > 0 ? { failoverCount } : {}),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  // Quorum loss is a cluster event: the HACluster gets one QuorumLost Event (decideCluster);
  // one per VIP as well made a flapping quorum cost an Event POST per VIP per flap.
  if (phase === 'Unassigned' && base?.phase !== 'Unassigned') {
    events.push({
      type: 'Warning',
      reason: 'Unassigned',
      note: `${input.address}: ${election?.reason ?? 'no eligible member'}`,
      action: 'Observe',
    });
  }
  return { status, events, ...(failover ? { failover } : {}) };
}

export interface ClusterInput {
  name: string;
  generation: number | undefined;
  base: ClusterStatus | undefined;
  config: ClusterConfig | undefined;
  /**
   * Why the configuration did not build (names the object, field and fix). With `config`
   * and `obs` set too, the cluster runs its last good configuration meanwhile.
   */
  configError: string | undefined;
  /** Set (to configError) when what did not build is the auth Secret or its reference. */
  authSecretError?: string | undefined;
  obs: Observation | undefined;
  witness: WitnessAddress | undefined;
  now: Millis;
  wallNow: Date;
}

export interface ClusterDecision {
  status: ClusterStatus;
  events: EventSpec[];
  quorum: QuorumSummary | undefined;
}

/** The HACluster's status (members, quorum, conditions, witness) and the Events of this change. */
export function decideCluster(input: ClusterInput): ClusterDecision {
  const { base, generation, obs, config } = input;
  const nowIso = isoSeconds(input.wallNow);
  const cond = (type: string, status: Condition['status'], reason: string, message: string) =>
    condition(base?.conditions, type, status, reason, message, generation, nowIso);
  const events: EventSpec[] = [];
  const witness = input.witness ? { witness: input.witness } : base?.witness ? { witness: base.witness } : {};
  const gen = generation !== undefined ? { observedGeneration: generation } : {};

  const running = config !== undefined && obs !== undefined;
  const auth = authSecretCondition(input, running, cond, events);

  if (!config || !obs) {
    const message = input.configError ?? 'not observed yet';
    const reason = input.configError ? 'InvalidConfiguration' : 'Observing';
    if (
      input.configError &&
      !input.authSecretError &&
      base?.conditions?.find((c) => c.type === 'Ready')?.reason !== reason
    ) {
      events.push({ type: 'Warning', reason, note: message, action: 'Configure' });
    }
    return {
      status: {
        ...(base?.members ? { members: base.members } : {}),
        ...(base?.quorum ? { quorum: base.quorum } : {}),
        ...(base?.summary ? { summary: base.summary } : {}),
        conditions: [cond('Ready', input.configError ? 'False' : 'Unknown', reason, message), auth],
        ...witness,
        ...gen,
      },
      events,
      quorum: undefined,
    };
  }

  if (!obs.settled) {
    // Until every member was heard or declared dead, keep the last judgement.
    if (base?.members)
      return {
        status: { ...base, conditions: withCondition(base.conditions, auth), ...witness, ...gen },
        events,
        quorum: undefined,
      };
    return {
      status: {
        conditions: [
          cond(
            'Ready',
            'Unknown',
            'Observing',
            'waiting to hear every member (at most heartbeat.initDeadMs)',
          ),
          auth,
        ],
        ...witness,
        ...gen,
      },
      events,
      quorum: undefined,
    };
  }

  const members = obs.members.map((m) => {
    const state = m.liveness === 'alive' ? 'alive' : m.liveness === 'warn' ? 'warn' : 'dead';
    const old = base?.members?.find((b) => b.name === m.id);
    let lastSeen: string | undefined;
    if (state !== 'alive') {
      if (old && old.state === state && old.lastSeen) lastSeen = old.lastSeen;
      else if (m.lastHeard !== undefined)
        lastSeen = isoSeconds(new Date(input.wallNow.getTime() - Math.max(0, input.now - m.lastHeard)));
    }
    if (old && old.state !== state && (state === 'dead' || old.state === 'dead')) {
      events.push(
        state === 'dead'
          ? {
              type: 'Warning',
              reason: 'MemberDead',
              note: `${m.id} silent for ${config.timing.deadMs} ms or more: declared dead`,
              action: 'Observe',
            }
          : {
              type: 'Normal',
              reason: 'MemberAlive',
              note: `${m.id} heard again (incarnation ${m.incarnation})`,
              action: 'Observe',
            },
      );
    }
    return {
      name: m.id,
      state: state as 'alive' | 'warn' | 'dead',
      incarnation: m.incarnation,
      ...(lastSeen ? { lastSeen } : {}),
    };
  });
  const quorum = quorumSummary(config, obs);
  const quorumText = `${quorum.have} votes reachable, ${quorum.need} needed`;
  if (quorum.state === 'lost' && base?.quorum?.state !== 'lost') {
    events.push({
      type: 'Warning',
      reason: 'QuorumLost',
      note: `quorum lost: ${quorumText}; no member may hold a VIP`,
      action: 'Observe',
    });
  } else if (quorum.state === 'quorate' && base?.quorum?.state === 'lost') {
    events.push({
      type: 'Normal',
      reason: 'QuorumRestored',
      note: `quorum restored: ${quorumText}`,
      action: 'Observe',
    });
  }
  const notAlive = members.filter((m) => m.state !== 'alive').map((m) => `${m.name} (${m.state})`);
  const conditions: Condition[] = [
    quorum.state === 'lost'
      ? cond('Ready', 'False', 'QuorumLost', `quorum lost: ${quorumText}`)
      : cond(
          'Ready',
          'True',
          quorum.state === 'ignored' ? 'QuorumIgnored' : 'Quorate',
          quorum.state === 'ignored' ? 'quorum: ignore (can split brain)' : quorumText,
        ),
    notAlive.length > 0
      ? cond(
          'Degraded',
          'True',
          'MembersUnavailable',
          // The configuration's problems often say why (a selected Node that runs no agent).
          [`not alive: ${notAlive.join(', ')}`, ...config.problems].join('; '),
        )
      : config.problems.length > 0
        ? cond('Degraded', 'True', 'ConfigurationProblems', config.problems.join('; '))
        : cond('Degraded', 'False', 'AllMembersAlive', `${members.length} member(s) alive`),
  ];
  if (config.members.length === 0) {
    conditions[0] = cond(
      'Ready',
      'False',
      'NoMembers',
      'no Node matches spec.nodeSelector or has an address; label the nodes or fix the selector',
    );
  }
  if (input.configError && !input.authSecretError) {
    // Another object broke the configuration: the last good one keeps running.
    const message = `${input.configError}; the last good configuration keeps running`;
    if (base?.conditions?.find((c) => c.type === 'Degraded')?.reason !== 'InvalidConfiguration')
      events.push({ type: 'Warning', reason: 'InvalidConfiguration', note: message, action: 'Configure' });
    conditions[1] = cond('Degraded', 'True', 'InvalidConfiguration', message);
  }
  conditions.push(auth);
  const alive = members.filter((m) => m.state !== 'dead').length;
  const vips = config.vips.filter((v) => !v.deleting);
  const held = vips.filter((v) => obs.holdings.get(v.vip)?.holder).length;
  const summary = { members: `${alive}/${members.length}`, vips: `${held}/${vips.length}` };
  return {
    status: { members, quorum, summary, conditions, ...witness, ...gen },
    events,
    quorum,
  };
}

/** `conds` with `c` in place of the condition of its type (appended when absent). */
function withCondition(conds: readonly Condition[] | undefined, c: Condition): Condition[] {
  const out = (conds ?? []).filter((x) => x.type !== c.type);
  out.push(c);
  return out;
}

/**
 * AuthSecretInvalid: True while the auth Secret (or activeKeyId) breaks its rules, with what
 * to fix and which keys keep running; False once it is fixed. A Warning Event when it turns
 * True or its problem changes, a Normal one when it clears.
 */
function authSecretCondition(
  input: ClusterInput,
  running: boolean,
  cond: (type: string, status: Condition['status'], reason: string, message: string) => Condition,
  events: EventSpec[],
): Condition {
  const prev = input.base?.conditions?.find((c) => c.type === AUTH_SECRET_INVALID);
  const config = input.config;
  if (input.authSecretError) {
    const keeping =
      running && config
        ? `the running keys (${config.keys.map((k) => k.id).join(', ')}, active ${config.activeKeyId}) stay in use and nothing moves until it is fixed`
        : 'no keys are running yet: members do not start until it is fixed';
    const message = `${input.authSecretError}; ${keeping}`;
    if (prev?.status !== 'True' || prev.message !== message.slice(0, 32768))
      events.push({ type: 'Warning', reason: AUTH_SECRET_INVALID, note: message, action: 'Configure' });
    return cond(AUTH_SECRET_INVALID, 'True', 'InvalidSecret', message);
  }
  if (!config || input.configError) {
    return prev ?? cond(AUTH_SECRET_INVALID, 'Unknown', 'NotChecked', 'the configuration was not read yet');
  }
  const message = `keys ${config.keys.map((k) => k.id).join(', ')} in use, active ${config.activeKeyId}`;
  if (prev?.status === 'True')
    events.push({
      type: 'Normal',
      reason: 'AuthSecretValid',
      note: `auth Secret fixed: ${message}`,
      action: 'Configure',
    });
  return cond(AUTH_SECRET_INVALID, 'False', 'SecretValid', message);
}

/** Condition type on an HACluster whose auth Secret breaks its rules. */
export const AUTH_SECRET_INVALID = 'AuthSecretInvalid';

/** The member set published in an HACluster's status (status.membership). */
export interface PublishedMembership {
  generation: number;
  members: string[];
  /** Members of generation - 1 (absent at generation 1). */
  previous?: string[];
}

export interface MembershipInput {
  published: PublishedMembership | undefined;
  /** The Nodes the member set converges to (ClusterConfig.candidates, docs/adr/0024). */
  candidates: readonly string[];
  /** Highest generation each member was heard advertising (the observer's view). */
  advertised: ReadonlyMap<string, number>;
  /** The controller's witness votes (quorum "witness"): it is always at the published generation. */
  witnessVotes: boolean;
  now: Millis;
  /** When the barrier for the next generation was first seen met (kept by the caller). */
  barrierSince: Millis | undefined;
  /** lease + margin, scaled for clock drift: grants given before the barrier have expired after it. */
  waitMs: Millis;
  /** How soon to look again while a majority has not moved. */
  pollMs: Millis;
}

export interface MembershipDecision {
  /** What status.membership should say (unchanged when nothing may be published). */
  membership: PublishedMembership | undefined;
  barrierSince: Millis | undefined;
  /** Look again after this long (a change is pending), or undefined. */
  retryInMs: Millis | undefined;
  reason: string;
}

/**
 * The next member set to publish (docs/protocol.md "Membership changes"): generation 1 is the
 * candidate set (the selected Nodes, docs/adr/0024); each later generation adds or removes one member (additions first), and
 * generation g+1 is published only when a majority of the voters of g-1 advertise g (they
 * grant no member still at g-1) and lease + margin has passed since (grants they gave before
 * have expired). Then at most two adjacent generations can count quorums, and majorities of
 * two voter sets one member apart intersect. Never publishes an empty set.
 */
export function decideMembership(input: MembershipInput): MembershipDecision {
  const { published, candidates } = input;
  const keep = (reason: string, barrierSince?: Millis, retryInMs?: Millis): MembershipDecision => ({
    membership: published,
    barrierSince,
    retryInMs,
    reason,
  });
  if (!published) {
    if (candidates.length === 0)
      return keep('no Node matches spec.nodeSelector (an empty selector: no Node runs the agent)');
    return {
      membership: { generation: 1, members: [...candidates].sort() },
      barrierSince: undefined,
      retryInMs: undefined,
      reason: 'first member set',
    };
  }
  const cur = published.members;
  const add = [...candidates].sort().find((id) => !cur.includes(id));
  const remove = [...cur].sort().find((id) => !candidates.includes(id));
  if (add === undefined && remove === undefined) return keep('member set matches the selected Nodes');
  if (add === undefined && cur.length <= 1) return keep('the last member is not removed');
  const g = published.generation;
  if (published.previous) {
    const voters = [...published.previous, ...(input.witnessVotes ? [WITNESS_ID] : [])];
    const moved = voters.filter((id) => id === WITNESS_ID || (input.advertised.get(id) ?? 0) >= g).length;
    const need = Math.floor(voters.length / 2) + 1;
    if (moved < need)
      return keep(
        `waiting for ${need} of generation ${g - 1}'s ${voters.length} voters to run generation ${g} (${moved} do)`,
        undefined,
        input.pollMs,
      );
    const since = input.barrierSince ?? input.now;
    if (input.now < since + input.waitMs)
      return keep(
        `waiting lease + margin after generation ${g - 1}'s majority moved`,
        since,
        since + input.waitMs - input.now,
      );
  }
  const members = add !== undefined ? [...cur, add].sort() : cur.filter((id) => id !== remove);
  return {
    membership: { generation: g + 1, members, previous: [...cur] },
    barrierSince: undefined,
    retryInMs: input.pollMs,
    reason: add !== undefined ? `${add} joins` : `${remove} leaves`,
  };
}
