/**
 * When a deleted VirtualIP's finalizer may go. Pure.
 */
import type { Millis } from '../../core/ports.js';
import type { EventSpec } from './status.js';
import type { VipCluster } from './vip.js';

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
