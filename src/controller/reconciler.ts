/**
 * What the two reconcilers (HACluster, VirtualIP) share: the cache they read, the status
 * writer and Event recorder they write through, and the manager's queue to enqueue each
 * other's keys. Their decisions are pure (decide/); this is their way in and out.
 */
import type { Logger } from 'pino';
import type { ApiKind, ApiObject, ApiSource, Clock, Millis, ObjectKey, OwnedKind } from '../core/ports.js';
import type { ObjectCache } from '../runtime/object-cache.js';
import type { EventSpec } from './decide/status.js';
import type { EventRecorder } from './event-recorder.js';
import type { ControllerMetrics } from './metrics.js';
import type { StatusWriter } from './status-writer.js';

export interface ReconcileContext {
  api: ApiSource;
  clock: Clock;
  log: Logger;
  metrics: ControllerMetrics;
  cache: ObjectCache;
  writer: StatusWriter;
  events: EventRecorder;
  /** Wall clock for status timestamps. */
  wallNow: () => Date;
  /**
   * Queues an object for its kind's reconciler (a no-op while not leading); `urgent` ones are
   * reconciled before ordinary ones (an observed change of holder before a sweep).
   */
  enqueue: (kind: ApiKind, id: string, urgent?: boolean) => void;
}

/**
 * Writes `desired` as the object's status unless it is already there; a write the per-object
 * rate limit defers comes back as `requeueAfterMs`. `now`: news that may go once inside the
 * rate limit's interval (StatusWriter).
 */
export async function writeStatus(
  ctx: ReconcileContext,
  kind: OwnedKind,
  key: ObjectKey,
  obj: ApiObject,
  desired: unknown,
  now = false,
): Promise<{ written: boolean; requeueAfterMs?: Millis }> {
  const r = await ctx.writer.write(kind, key, obj.status, desired, { now });
  if (r.outcome === 'deferred') {
    ctx.metrics.statusWritesDeferred.inc({ kind });
    return { written: false, requeueAfterMs: r.retryInMs };
  }
  return { written: r.outcome === 'written' };
}

/** Queues the Events of a decision; they are sent off the reconcile path (EventRecorder). */
export function emit(
  ctx: ReconcileContext,
  regarding: ApiObject,
  kind: OwnedKind,
  events: EventSpec[],
  log: Logger,
): void {
  for (const e of events) {
    log.info({ event: e.reason, type: e.type, note: e.note }, 'event');
    ctx.events.record(
      { regarding: { ...regarding, kind }, type: e.type, reason: e.reason, note: e.note, action: e.action },
      log,
    );
  }
}

/** The VirtualIPs (cached) whose clusterRef names HACluster `ns/name`. */
export function vipsOfCluster(cache: ObjectCache, ns: string, name: string): ApiObject[] {
  return cache
    .list('VirtualIP', ns)
    .filter((v) => (v.spec as { clusterRef?: { name?: string } } | undefined)?.clusterRef?.name === name);
}
