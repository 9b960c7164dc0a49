/**
 * The AddressPool reconciler: writes each pool's status, how many of its addresses
 * Service-made VirtualIPs hold (`assigned`) and whether it is used (`Ready`) or refused
 * because it overlaps an older pool or is invalid (`Overlap`, reason and message). The
 * allocation itself is the Service reconciler's; this only reports.
 */
import type { Logger } from 'pino';
import type { Condition } from '../api/meta.js';
import { objectKey, splitId, type CacheChange } from '../runtime/object-cache.js';
import type { ReconcileResult, Reconciler } from './manager.js';
import { writeStatus, type ReconcileContext } from './reconciler.js';
import { LB_LABEL, POOL_LABEL } from './lb/service-lb.js';

/** Why a pool is not used, by pool id (from the Service reconciler's view of the pools). */
export interface PoolVerdicts {
  refusedPools(log: Logger): ReadonlyMap<string, string>;
}

export class AddressPoolReconciler implements Reconciler {
  readonly kind = 'AddressPool' as const;

  constructor(
    private readonly ctx: ReconcileContext,
    private readonly verdicts: PoolVerdicts,
  ) {}

  onChange(ch: CacheChange): void {
    if (ch.kind === 'AddressPool' && ch.type !== 'resync') {
      // One pool's change can refuse or free another (overlap): every pool reports again.
      for (const p of this.ctx.cache.list('AddressPool')) this.ctx.enqueue('AddressPool', objectKey(p));
    }
    if (ch.kind === 'VirtualIP' && ch.type !== 'resync') {
      for (const o of [ch.object, ch.old]) {
        const pool = o?.metadata.labels?.[POOL_LABEL];
        if (o?.metadata.labels?.[LB_LABEL] === 'true' && pool && o.metadata.namespace)
          this.ctx.enqueue('AddressPool', `${o.metadata.namespace}/${pool}`);
      }
    }
  }

  async reconcile(id: string, log: Logger): Promise<ReconcileResult> {
    const { ctx } = this;
    const { ns, name } = splitId(id);
    const key = { namespace: ns, name };
    const pool = ctx.cache.get('AddressPool', id);
    if (!pool) {
      ctx.writer.forget('AddressPool', key);
      return {};
    }
    const assigned = ctx.cache
      .list('VirtualIP', ns)
      .filter(
        (v) => v.metadata.labels?.[LB_LABEL] === 'true' && v.metadata.labels?.[POOL_LABEL] === name,
      ).length;
    const refused = this.verdicts.refusedPools(log).get(id);
    const base = ctx.writer.base<{ conditions?: Condition[] }>('AddressPool', key, pool.status);
    const prev = base?.conditions?.find((c) => c.type === 'Ready');
    const status = refused === undefined ? 'True' : 'False';
    const reason = refused === undefined ? 'Usable' : 'Refused';
    const ready: Condition = {
      type: 'Ready',
      status,
      reason,
      message: refused ?? 'addresses are handed out to LoadBalancer Services',
      lastTransitionTime:
        prev && prev.status === status ? prev.lastTransitionTime : ctx.wallNow().toISOString(),
      ...(pool.metadata.generation !== undefined ? { observedGeneration: pool.metadata.generation } : {}),
    };
    const desired = {
      assigned,
      conditions: [ready],
      ...(pool.metadata.generation !== undefined ? { observedGeneration: pool.metadata.generation } : {}),
    };
    const r = await writeStatus(ctx, 'AddressPool', key, pool, desired);
    return r.requeueAfterMs !== undefined ? { requeueAfterMs: r.requeueAfterMs } : {};
  }
}
