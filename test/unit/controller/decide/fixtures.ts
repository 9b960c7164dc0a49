/** The cluster, observation and VIP input the decision tests start from (lab/web, members a b c). */
import type { VirtualIPStatus } from '../../../../src/api/index.js';
import type { VipInput } from '../../../../src/controller/decide/vip.js';
import { quorumSummary } from '../../../../src/controller/decide/view.js';
import type { Observation, VipTransition } from '../../../../src/controller/observer.js';
import type { Liveness } from '../../../../src/core/membership.js';
import { deriveTiming } from '../../../../src/core/timing.js';
import { WITNESS_ID, type ClusterConfig } from '../../../../src/runtime/cluster-config.js';

export const timing = deriveTiming({ intervalMs: 200, deadMs: 1000 });
export const WALL = new Date(Date.UTC(2026, 10, 22, 1, 0, 0));

export function config(over: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    clusterId: 'lab/web',
    namespace: 'lab',
    name: 'web',
    port: 694,
    members: ['a', 'b', 'c'].map((id, i) => ({ id, address: `198.18.0.${i + 1}`, port: 694 })),
    witness: { id: WITNESS_ID, address: '198.18.0.200', port: 694 },
    quorum: 'majority',
    timing,
    autoFailback: false,
    keys: [],
    activeKeyId: 1,
    vips: [
      {
        vip: 'lab/vip1',
        preferredNodes: ['a', 'b'],
        eligible: undefined,
        epochFloor: 0,
        spec: {} as never,
        deleting: false,
        resources: [],
      },
    ],
    standby: new Set(),
    problems: [],
    ...over,
  };
}

export function obs(
  liveness: Record<string, Liveness>,
  holdings: Record<string, { holder: string; epoch: number }> = {},
  transitions: VipTransition[] = [],
  settled = true,
): Observation {
  return {
    now: 10_000,
    startedAt: 0,
    settled,
    members: Object.entries(liveness).map(([id, l]) => ({
      id,
      liveness: l,
      incarnation: 7,
      lastHeard: l === 'dead' ? 8000 : 9990,
      standby: false,
      unhealthy: [],
      holdingsKnown: true,
    })),
    holdings: new Map(Object.entries(holdings).map(([vip, h]) => [vip, { ...h, since: 9000 }])),
    claims: new Map(Object.entries(holdings).map(([vip, h]) => [vip, [h.holder]])),
    transitions: new Map(transitions.map((t) => [t.vip, t])),
    loads: Object.values(holdings).reduce(
      (m, h) => m.set(h.holder, (m.get(h.holder) ?? 0) + 1),
      new Map<string, number>(),
    ),
  };
}

export function input(o: Observation, base: VirtualIPStatus | undefined, c = config()): VipInput {
  return {
    id: 'lab/vip1',
    address: '198.18.0.100/24',
    generation: 1,
    deleting: false,
    base,
    cluster: { ok: true, config: c, obs: o, quorum: quorumSummary(c, o) },
    now: 10_000,
    wallNow: WALL,
  };
}
