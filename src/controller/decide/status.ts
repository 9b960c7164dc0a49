/**
 * What the decisions share: the Event they ask for, condition bookkeeping and timestamps.
 *
 * The decisions in this folder (vip.ts, cluster.ts, finalize.ts, membership.ts) say what the
 * status of a VirtualIP and of an HACluster should be, and which Events to record, given the
 * objects and what the controller's observer saw on the heartbeat channel. They are pure: no
 * I/O, no clock reads; times come in as arguments. The reconcilers only read, call them and
 * write. Status changes only when something real changed (holder, epoch, liveness state,
 * quorum, a condition's status/reason/message), never per heartbeat, so a quiet cluster costs
 * no API request. Timestamps are whole seconds and are carried over unless their subject
 * changed.
 */
import type { Condition } from '../../api/index.js';

/** An Event to record about the object being reconciled. */
export interface EventSpec {
  type: 'Normal' | 'Warning';
  reason: string;
  note: string;
  action: string;
}

/** RFC 3339 in whole seconds, as metav1.Time serialises. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function condition(
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
