/**
 * A VirtualIP's status (holder, epoch, since, phase, conditions Ready, Bound, QuorumLost,
 * Degraded and AddressConflict, lastFailover) and the Events of a change, from the observer's
 * view of its cluster. Pure; the shared rules are in status.ts.
 */
import type { Condition, VirtualIPStatus } from '../../api/index.js';
import { hostOf } from '../../api/net.js';
import type { Millis } from '../../core/ports.js';
import type { AddressVerdict } from '../../runtime/address-claims.js';
import type { ClusterConfig, VipConfig } from '../../runtime/cluster-config.js';
import type { LossCause, Observation, VipTransition } from '../observer.js';
import { condition, isoSeconds, type EventSpec } from './status.js';
import { electionMembers, expectedHolder, vipConfigOf, type QuorumSummary } from './view.js';

/** Moved: an operator's move (heartline.dev/move-to, docs/adr/0031) to that member. */
export type FailoverReason = LossCause | 'Failback' | 'Moved';

export interface VipDecision {
  status: VirtualIPStatus;
  events: EventSpec[];
  /** Set when this decision records a completed move (for the failovers metric). */
  failover?: { from: string; to: string; reason: FailoverReason };
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
  const ip = hostOf(input.address);
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
