/**
 * An HACluster's status (members, quorum, summary, conditions Ready, Degraded and
 * AuthSecretInvalid, the witness's address) and the Events of a change. Pure; the shared
 * rules are in status.ts.
 */
import type { Condition, HAClusterStatus } from '../../api/index.js';
import type { Millis } from '../../core/ports.js';
import type { ClusterConfig } from '../../runtime/cluster-config.js';
import type { Observation } from '../observer.js';
import { condition, isoSeconds, type EventSpec } from './status.js';
import { quorumSummary, type QuorumSummary } from './view.js';

/** Where the controller's witness listens, published in HACluster status for the agents. */
export interface WitnessAddress {
  /** The witness's public key (`ed25519:<base64>`): agents verify its datagrams with it (docs/adr/0021). */
  publicKey?: string;
  address: string;
  port: number;
}

/** HACluster status as the controller writes it. */
export type ClusterStatus = HAClusterStatus & { witness?: WitnessAddress };

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
