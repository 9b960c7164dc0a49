/**
 * The VirtualIP reconciler: adds the finalizer, writes status and Events from what its
 * HACluster's observer saw (decideVip) and the address rule over every VIP and Node
 * (runtime/address-claims.ts), and on deletion removes the finalizer once the address is
 * released everywhere or a bounded timeout passed (decideFinalize).
 */
import type { Logger } from 'pino';
import { formatFieldError, parseVirtualIP, type VirtualIPStatus } from '../api/index.js';
import type { ApiObject, Millis, ObjectKey } from '../core/ports.js';
import { NotFoundError } from '../core/ports.js';
import {
  addressKey,
  resolveAddressClaims,
  type AddressClaimant,
  type AddressVerdict,
  type NodeAddressOf,
} from '../runtime/address-claims.js';
import { addressesOfNodes, VIP_FINALIZER } from '../runtime/cluster-config.js';
import { objectKey, splitId, type CacheChange } from '../runtime/object-cache.js';
import { decideFinalize } from './decide/finalize.js';
import { decideVip, type VipCluster } from './decide/vip.js';
import { quorumSummary } from './decide/view.js';
import type { ObservedClusters } from './hacluster-reconciler.js';
import type { ReconcileResult, Reconciler } from './manager.js';
import { emit, vipsOfCluster, writeStatus, type ReconcileContext } from './reconciler.js';

export interface VirtualIPReconcilerInit {
  /** See ControllerInit.releaseTimeoutMs. */
  releaseTimeoutMs?: Millis;
}

export class VirtualIPReconciler implements Reconciler {
  readonly kind = 'VirtualIP' as const;
  private readonly deletingSince = new Map<string, Millis>();
  /** parseVirtualIP of each VIP's spec, by uid and generation (the spec cannot change without both). */
  private readonly parsedVips = new Map<
    string,
    { uid: string | undefined; generation: number | undefined; result: ReturnType<typeof parseVirtualIP> }
  >();
  /**
   * Where each held VIP was bound, as first seen at its current epoch (its spec.address
   * then): a VIP whose spec.address changes while held keeps its old address claimed until
   * it is released or bound again at a new epoch.
   */
  private readonly heldAt = new Map<string, { epoch: number; address: string }>();
  /**
   * VIP ids by the address key of their spec.address: rebuilt (one pass over the VIPs) only
   * when a spec address changes, which is rare; a failover changes `heldAt`, not specs.
   */
  private specIndex: Map<string, Set<string>> | undefined;
  /**
   * VIP ids by the address key of their `heldAt` entry, kept in step with it. (Rebuilding one
   * index of both on every change of `heldAt` made a storm of failovers quadratic: each moved
   * VIP rebuilt it from all 1,000 VIPs twice.)
   */
  private readonly heldIndex = new Map<string, Set<string>>();
  /** The Nodes' addresses, until a Node changes. */
  private nodeAddresses: NodeAddressOf[] | undefined;

  constructor(
    private readonly ctx: ReconcileContext,
    private readonly clusters: ObservedClusters,
    private readonly init: VirtualIPReconcilerInit = {},
  ) {}

  /** The VirtualIPs a cache change concerns. */
  onChange(ch: CacheChange): void {
    const { enqueue } = this.ctx;
    const ns = ch.object.metadata.namespace;
    switch (ch.kind) {
      case 'HACluster':
        for (const v of vipsOfCluster(this.ctx.cache, ns ?? '', ch.object.metadata.name))
          enqueue('VirtualIP', objectKey(v));
        break;
      case 'VirtualIP':
        enqueue('VirtualIP', objectKey(ch.object));
        // Its address may free, take or share another VIP's address: those decide again.
        if (
          specAddressOf(ch.object) !== specAddressOf(ch.old) ||
          ch.type === 'deleted' ||
          ch.type === 'added'
        )
          this.specIndex = undefined;
        for (const a of [specAddressOf(ch.object), specAddressOf(ch.old)])
          if (a) this.enqueueSharing(a, objectKey(ch.object));
        break;
      case 'Node': {
        if (ch.type === 'resync') break;
        this.nodeAddresses = undefined;
        // A VIP equal to a Node address is refused: VIPs on an address that came or went decide again.
        const before = new Set(addressesOfNodes(ch.old ? [ch.old] : []).map((a) => addressKey(a.address)));
        const after = new Set(
          addressesOfNodes(ch.type === 'deleted' ? [] : [ch.object]).map((a) => addressKey(a.address)),
        );
        for (const k of [...before, ...after]) {
          if (before.has(k) && after.has(k)) continue;
          for (const id of this.idsAt(k)) enqueue('VirtualIP', id);
        }
        break;
      }
    }
  }

  /**
   * What an observer saw change: every VIP of the cluster when members changed, and the VIPs
   * named. The named ones changed holder: they go first (urgent), before the sweep, so that a
   * dead member's VIPs reach status without waiting behind every other VIP of the cluster.
   */
  onObserved(clusterId: string, change: { vips: string[]; members: boolean }): void {
    for (const vip of change.vips) this.ctx.enqueue('VirtualIP', vip, true);
    if (change.members) {
      const { ns, name } = splitId(clusterId);
      for (const v of vipsOfCluster(this.ctx.cache, ns ?? '', name))
        this.ctx.enqueue('VirtualIP', objectKey(v));
    }
  }

  stopLeading(): Promise<void> {
    this.deletingSince.clear();
    this.ctx.metrics.forgetAllVips();
    return Promise.resolve();
  }

  async reconcile(id: string, log: Logger): Promise<ReconcileResult> {
    const { ctx } = this;
    const { ns, name } = splitId(id);
    const objKey = { namespace: ns, name };
    const obj = ctx.cache.get('VirtualIP', id);
    if (!obj) {
      ctx.writer.forget('VirtualIP', objKey);
      this.deletingSince.delete(id);
      this.parsedVips.delete(id);
      const held = this.heldAt.get(id);
      if (held) {
        this.setHeldAt(id, undefined);
        this.enqueueSharing(held.address, id);
      }
      ctx.metrics.forgetVip(id);
      return {};
    }
    const deleting = Boolean(obj.metadata.deletionTimestamp);
    const finalizers = obj.metadata.finalizers ?? [];
    if (!deleting && !finalizers.includes(VIP_FINALIZER)) {
      try {
        await ctx.api.addFinalizer('VirtualIP', objKey, VIP_FINALIZER);
        log.debug('finalizer added');
      } catch (err) {
        if (err instanceof NotFoundError) return {};
        throw err;
      }
    }
    const parsed = this.parseVip(id, obj);
    const address = parsed.ok
      ? parsed.value.spec.address
      : String((obj.spec as { address?: unknown } | undefined)?.address ?? name);
    const cluster = this.clusterOf(id, obj, parsed);

    if (deleting) return this.finalizeDeleted(id, objKey, obj, cluster, address, log);
    this.deletingSince.delete(id);

    const base = ctx.writer.base<VirtualIPStatus>('VirtualIP', objKey, obj.status);
    const decision = decideVip({
      id,
      address,
      generation: obj.metadata.generation,
      deleting,
      base,
      cluster,
      now: ctx.clock.now(),
      wallNow: ctx.wallNow(),
      addressVerdict: this.addressVerdictOf(id),
    });
    const clusterName = (obj.spec as { clusterRef?: { name?: string } } | undefined)?.clusterRef?.name ?? '';
    ctx.metrics.setHolder(id, decision.status.holder, `${ns ?? 'default'}/${clusterName}`);
    // Where it is bound, and whether another VIP waiting for this address may go ahead now.
    const heldBefore = this.heldAt.get(id);
    const heldMoved = this.noteHeld(id, decision.status, address);
    // Bound again after status said nobody holds it (its holder died): that goes at once, not
    // up to statusIntervalMs after the "no holder" write of a moment ago.
    const rebound = Boolean(decision.status.holder) && !base?.holder;
    const w = await writeStatus(ctx, 'VirtualIP', objKey, obj, decision.status, rebound);
    if (w.requeueAfterMs !== undefined) return { requeueAfterMs: w.requeueAfterMs };
    if (w.written) {
      log.debug(
        { holder: decision.status.holder, epoch: decision.status.epoch, phase: decision.status.phase },
        'VirtualIP status written',
      );
      if (decision.failover) ctx.metrics.failovers.inc({ reason: decision.failover.reason });
      emit(ctx, obj, 'VirtualIP', decision.events, log);
    }
    if (heldMoved || decision.status.holder !== base?.holder) {
      this.enqueueSharing(address, id);
      if (heldBefore) this.enqueueSharing(heldBefore.address, id);
    }
    return {};
  }

  /** The VIP's HACluster as decideVip sees it: observed, or why not. */
  private clusterOf(id: string, obj: ApiObject, parsed: ReturnType<typeof parseVirtualIP>): VipCluster {
    const ns = obj.metadata.namespace;
    const clusterName = (obj.spec as { clusterRef?: { name?: string } } | undefined)?.clusterRef?.name ?? '';
    const clusterId = `${ns ?? 'default'}/${clusterName}`;
    const runtime = this.clusters.runtimeOf(clusterId);
    if (!this.ctx.cache.get('HACluster', clusterId))
      return {
        ok: false,
        reason: 'ClusterNotFound',
        message: `spec.clusterRef.name: HACluster "${clusterName}" not found in namespace ${ns ?? 'default'}; create it or fix clusterRef`,
      };
    if (!parsed.ok)
      return {
        ok: false,
        reason: 'InvalidVirtualIP',
        message: `VirtualIP ${id}: ${parsed.errors.map(formatFieldError).join('; ')}`,
      };
    if (!runtime) {
      const err = this.clusters.configErrorOf(clusterId);
      if (err) return { ok: false, reason: 'InvalidCluster', message: err };
      this.ctx.enqueue('HACluster', clusterId);
      return { ok: false, reason: 'NotObserved', message: `HACluster ${clusterId} not observed yet` };
    }
    const obs = runtime.observation();
    const config = runtime.configuration;
    return { ok: true, config, obs, quorum: quorumSummary(config, obs) };
  }

  /**
   * The VIP's spec, validated. Status writes change the object (and its resourceVersion) but not
   * its generation, so a pass over every VIP does not re-run the schema for each one.
   */
  private parseVip(id: string, obj: ApiObject): ReturnType<typeof parseVirtualIP> {
    const { uid, generation } = obj.metadata;
    const hit = this.parsedVips.get(id);
    if (hit && hit.uid === uid && hit.generation === generation && generation !== undefined)
      return hit.result;
    const result = parseVirtualIP({ ...obj, status: undefined });
    this.parsedVips.set(id, { uid, generation, result });
    return result;
  }

  /** A deleted VIP keeps the finalizer until no member reports holding it, or a bounded timeout. */
  private async finalizeDeleted(
    id: string,
    objKey: ObjectKey,
    obj: ApiObject,
    cluster: VipCluster,
    address: string,
    log: Logger,
  ): Promise<ReconcileResult> {
    if (!(obj.metadata.finalizers ?? []).includes(VIP_FINALIZER)) return {};
    const now = this.ctx.clock.now();
    const since = this.deletingSince.get(id) ?? now;
    this.deletingSince.set(id, since);
    const d = decideFinalize({
      id,
      address,
      cluster,
      now,
      deletingSince: since,
      releaseTimeoutMs: this.init.releaseTimeoutMs,
      finalizer: VIP_FINALIZER,
    });
    if (!d.remove) return { requeueAfterMs: d.retryInMs };
    try {
      await this.ctx.api.removeFinalizer('VirtualIP', objKey, VIP_FINALIZER);
    } catch (err) {
      if (err instanceof NotFoundError) return {};
      throw err;
    }
    log.info({ released: d.released, waitedMs: Math.round(d.waitedMs) }, 'finalizer removed');
    this.deletingSince.delete(id);
    this.ctx.metrics.forgetVip(id);
    emit(this.ctx, obj, 'VirtualIP', d.events, log);
    return {};
  }

  // ------------------------------------------------------------------------- the address rule

  /** Queues every VIP (but `except`) whose address, or address it may still hold, is `address`'s. */
  private enqueueSharing(address: string, except: string): void {
    for (const id of this.idsAt(addressKey(address))) if (id !== except) this.ctx.enqueue('VirtualIP', id);
  }

  /** The VIPs whose spec.address, or address they may still hold, has address key `key`. */
  private idsAt(key: string): Set<string> {
    const spec = this.specIndexOf().get(key);
    const held = this.heldIndex.get(key);
    if (!held) return spec ?? new Set();
    if (!spec) return held;
    return new Set([...spec, ...held]);
  }

  private specIndexOf(): Map<string, Set<string>> {
    if (this.specIndex) return this.specIndex;
    const index = new Map<string, Set<string>>();
    for (const o of this.ctx.cache.list('VirtualIP')) {
      const a = specAddressOf(o);
      if (a) addTo(index, addressKey(a), objectKey(o));
    }
    this.specIndex = index;
    return index;
  }

  /** Sets (or, `undefined`, deletes) the `heldAt` entry of `id`, and its place in `heldIndex`. */
  private setHeldAt(id: string, entry: { epoch: number; address: string } | undefined): void {
    const prev = this.heldAt.get(id);
    if (prev) removeFrom(this.heldIndex, addressKey(prev.address), id);
    if (entry) {
      this.heldAt.set(id, entry);
      addTo(this.heldIndex, addressKey(entry.address), id);
    } else {
      this.heldAt.delete(id);
    }
  }

  /** The VIP as the address rule sees it: held per observation or status, and where it may still be bound. */
  private claimantOf(id: string): AddressClaimant | undefined {
    const o = this.ctx.cache.get('VirtualIP', id);
    if (!o) return undefined;
    const parsed = this.parseVip(id, o);
    if (!parsed.ok) return undefined;
    const vip = parsed.value;
    const clusterId = `${o.metadata.namespace ?? 'default'}/${vip.spec.clusterRef.name}`;
    const claimed = this.clusters.runtimeOf(clusterId)?.observation().claims.get(id)?.length ?? 0;
    const ns = o.metadata.namespace;
    const base = this.ctx.writer.base<VirtualIPStatus>(
      'VirtualIP',
      { ...(ns !== undefined ? { namespace: ns } : {}), name: o.metadata.name },
      o.status,
    );
    const held = this.heldAt.get(id);
    return {
      id,
      address: vip.spec.address,
      created: typeof o.metadata.creationTimestamp === 'string' ? o.metadata.creationTimestamp : undefined,
      held: claimed > 0 || Boolean(base?.holder),
      ...(held ? { heldAddress: held.address } : {}),
    };
  }

  /** The address rule's verdict for VIP `id` (address-claims.ts), over every VIP and Node this controller sees. */
  private addressVerdictOf(id: string): AddressVerdict {
    const self = this.claimantOf(id);
    if (!self) return { ok: true };
    const ids = new Set<string>([id]);
    for (const a of [self.address, self.heldAddress])
      if (a !== undefined) for (const other of this.idsAt(addressKey(a))) ids.add(other);
    const claimants = [...ids].flatMap((x) => (x === id ? [self] : (this.claimantOf(x) ?? [])));
    this.nodeAddresses ??= addressesOfNodes(this.ctx.cache.list('Node'));
    return resolveAddressClaims(claimants, this.nodeAddresses).get(id) ?? { ok: true };
  }

  /** Records where a held VIP is bound (see `heldAt`); true if that changed. */
  private noteHeld(id: string, status: VirtualIPStatus, address: string): boolean {
    const prev = this.heldAt.get(id);
    if (!status.holder) {
      if (!prev) return false;
      this.setHeldAt(id, undefined);
    } else {
      const epoch = status.epoch ?? 0;
      if (prev && prev.epoch === epoch) return false;
      this.setHeldAt(id, { epoch, address });
      if (prev && addressKey(prev.address) === addressKey(address)) return false;
    }
    return true;
  }
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  if (ids) ids.add(id);
  else index.set(key, new Set([id]));
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  if (!ids) return;
  ids.delete(id);
  if (ids.size === 0) index.delete(key);
}

function specAddressOf(o: ApiObject | undefined): string | undefined {
  const a = (o?.spec as { address?: unknown } | undefined)?.address;
  return typeof a === 'string' ? a : undefined;
}
