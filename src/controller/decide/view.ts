/**
 * The cluster as the controller's observer sees it, read the way the members read their own
 * view: the quorum, and the election (who should hold a VIP and why). Pure.
 */
import { elect, loadCap, type ElectionMember, type ElectionResult } from '../../core/election.js';
import { quorumOf } from '../../core/lease-holder.js';
import { WITNESS_ID, type ClusterConfig, type VipConfig } from '../../runtime/cluster-config.js';
import type { Observation } from '../observer.js';

export interface QuorumSummary {
  state: 'quorate' | 'lost' | 'ignored';
  have: number;
  need: number;
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

export function electionMembers(config: ClusterConfig, obs: Observation, vip: string): ElectionMember[] {
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
export function vipConfigOf(config: ClusterConfig, id: string): VipConfig | undefined {
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
