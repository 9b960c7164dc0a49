/**
 * The Service reconciler (issue 14): gives Services of type LoadBalancer with
 * loadBalancerClass heartline.dev/vip (and, where a pool opts in, class-less ones) addresses
 * from AddressPools, makes one VirtualIP per address in the pool's namespace (so its
 * HACluster's agents hold it like any other, fenced and under a quorum lease), writes
 * status.loadBalancer.ingress with ipMode VIP, the IPAllocated and AddressHeld conditions
 * and Events, and gives addresses back when the Service goes away, changes type or class.
 *
 * The record is on the objects (docs/adr/0028): each Service-made VirtualIP carries the
 * label heartline.dev/load-balancer and the Services it serves in an annotation (and an owner
 * reference for those in its namespace), so a restarted controller finds every allocation
 * again. An address is free only once its VirtualIP is gone, and a VirtualIP is gone only
 * after its holder released it (the VirtualIP reconciler's finalizer): an address is never
 * handed to a new Service while a node may still have it bound.
 */
import type { Logger } from 'pino';
import { hostOf, parseAddressPool, type AddressPool } from '../api/index.js';
import type { ApiObject, JsonPatchOp, ObjectWriter } from '../core/ports.js';
import { ConflictError, NotFoundError } from '../core/ports.js';
import { addressKey } from '../runtime/address-claims.js';
import { addressesOfNodes } from '../runtime/cluster-config.js';
import { objectKey, splitId, type CacheChange } from '../runtime/object-cache.js';
import type { PoolVerdicts } from './addresspool-reconciler.js';
import type { ReconcileResult, Reconciler } from './manager.js';
import { emit, writeStatus, type ReconcileContext } from './reconciler.js';
import {
  allocate,
  resolvePools,
  type AddressUse,
  type Allocated,
  type PoolView,
  type ServiceRequest,
} from './lb/allocator.js';
import {
  LB_LABEL,
  SERVICES_ANNOTATION,
  ServiceConditionTypes,
  clearedServiceStatus,
  decideServiceStatus,
  serviceIdOf,
  serviceRequestOf,
  servedBy,
  servicesOfVip,
  lbVipKeyOf,
  lbVipObject,
  serviceOwnerRef,
  type HeldView,
} from './lb/service-lb.js';

/** SERVICES_ANNOTATION as a JSON Patch path (RFC 6901: `~` is `~0`, `/` is `~1`). */
const SERVICES_ANNOTATION_PATH = `/metadata/annotations/${SERVICES_ANNOTATION.replace(/~/g, '~0').replace(/\//g, '~1')}`;
/** The label that ties an EndpointSlice to its Service. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** How soon to look again when the cache has not caught up with our own write. */
const CACHE_LAG_MS = 200;

interface Pools {
  usable: PoolView[];
  specs: Map<string, AddressPool>;
  refused: Map<string, string>;
  classless: boolean;
}

export class ServiceReconciler implements Reconciler, PoolVerdicts {
  readonly kind = 'Service' as const;
  private pools: Pools | undefined;
  /** Service id → ids of the Service-made VirtualIPs that list it; rebuilt when one changes. */
  private byService: Map<string, Set<string>> | undefined;
  /** Services whose last allocation failed: retried when an address may have come free. */
  private readonly waiting = new Set<string>();
  /** Pools already warned about (id → message), so an overlap is reported once. */
  private readonly poolWarned = new Map<string, string>();
  /**
   * VirtualIPs this reconciler created that the cache has not delivered yet (controller-
   * runtime's "expectations"): counted as existing, so the next reconcile neither hands their
   * address to another Service nor creates them again.
   */
  private readonly created = new Map<string, ApiObject>();
  /**
   * VirtualIPs decided but not yet created, by id, with the Service that decides them: put in
   * place in the same synchronous step as the allocation, so a worker reconciling another
   * Service at the same time sees the address taken (workers interleave only at awaits).
   */
  private readonly pending = new Map<string, { sid: string; object: ApiObject }>();

  constructor(
    private readonly ctx: ReconcileContext,
    private readonly writer: ObjectWriter,
  ) {}

  onChange(ch: CacheChange): void {
    const { enqueue } = this.ctx;
    switch (ch.kind) {
      case 'Service':
        enqueue('Service', objectKey(ch.object));
        break;
      case 'VirtualIP': {
        this.created.delete(objectKey(ch.object));
        const lb = (o?: ApiObject) => o?.metadata.labels?.[LB_LABEL] === 'true';
        if (lb(ch.object) || lb(ch.old)) {
          this.byService = undefined;
          for (const s of new Set([...servicesOfVip(ch.object), ...(ch.old ? servicesOfVip(ch.old) : [])]))
            enqueue('Service', s);
        }
        if (ch.type === 'deleted' || ch.type === 'added' || specAddress(ch.object) !== specAddress(ch.old))
          this.retryWaiting();
        break;
      }
      case 'EndpointSlice': {
        // externalTrafficPolicy Local: the nodes with a ready endpoint may hold the address.
        const svc = ch.object.metadata.labels?.[SERVICE_NAME_LABEL];
        const ns = ch.object.metadata.namespace;
        if (svc && ns) enqueue('Service', `${ns}/${svc}`);
        break;
      }
      case 'AddressPool':
        if (ch.type === 'resync') break;
        this.pools = undefined;
        for (const s of this.ctx.cache.list('Service')) enqueue('Service', objectKey(s));
        break;
      case 'Node':
        if (ch.type !== 'resync') this.retryWaiting();
        break;
    }
  }

  private retryWaiting(): void {
    for (const s of this.waiting) this.ctx.enqueue('Service', s);
  }

  /** Every VirtualIP: the cache's, and those created here that it has not delivered yet. */
  private vipList(): ApiObject[] {
    const list = this.ctx.cache.list('VirtualIP');
    if (this.created.size === 0 && this.pending.size === 0) return list;
    const extra = [
      ...[...this.created].filter(([id]) => !this.ctx.cache.get('VirtualIP', id)).map(([, v]) => v),
      ...[...this.pending].filter(([id]) => !this.ctx.cache.get('VirtualIP', id)).map(([, p]) => p.object),
    ];
    return [...list, ...extra];
  }

  private vipGet(id: string): ApiObject | undefined {
    return this.ctx.cache.get('VirtualIP', id) ?? this.created.get(id) ?? this.pending.get(id)?.object;
  }

  stopLeading(): Promise<void> {
    this.created.clear();
    this.pending.clear();
    this.waiting.clear();
    this.poolWarned.clear();
    return Promise.resolve();
  }

  /** Pools not used, with why (invalid, or overlapping an older one). */
  refusedPools(log: Logger): ReadonlyMap<string, string> {
    return this.poolsOf(log).refused;
  }

  private poolsOf(log: Logger): Pools {
    if (this.pools) return this.pools;
    const specs = new Map<string, AddressPool>();
    const refused = new Map<string, string>();
    for (const o of this.ctx.cache.list('AddressPool')) {
      const id = objectKey(o);
      const p = parseAddressPool({ ...o, status: undefined });
      if (p.ok) specs.set(id, p.value);
      else refused.set(id, p.errors.map((e) => `${e.path}: ${e.message}`).join('; '));
    }
    const r = resolvePools(
      [...specs].map(([id, p]) => ({
        id,
        name: p.metadata.name ?? id,
        created: p.metadata.creationTimestamp,
        spec: p.spec,
      })),
    );
    for (const [id, why] of r.refused) refused.set(id, why);
    for (const [id, why] of refused) {
      if (this.poolWarned.get(id) === why) continue;
      this.poolWarned.set(id, why);
      log.warn({ pool: id, problem: why }, 'address pool not used');
      const o = this.ctx.cache.get('AddressPool', id);
      if (o)
        emit(
          this.ctx,
          o,
          'AddressPool',
          [{ type: 'Warning', reason: 'PoolRefused', note: `not used: ${why}`, action: 'Allocate' }],
          log,
        );
    }
    this.pools = { usable: r.usable, specs, refused, classless: r.usable.some((p) => p.assignClassless) };
    return this.pools;
  }

  private index(): Map<string, Set<string>> {
    if (this.byService) return this.byService;
    const m = new Map<string, Set<string>>();
    for (const v of this.vipList()) {
      if (v.metadata.labels?.[LB_LABEL] !== 'true') continue;
      for (const s of servicesOfVip(v)) {
        const set = m.get(s) ?? new Set<string>();
        set.add(objectKey(v));
        m.set(s, set);
      }
    }
    this.byService = m;
    return m;
  }

  /** Every address in use: VirtualIPs (Service-made or not, being deleted included). */
  private usedAddresses(): Map<string, AddressUse> {
    const used = new Map<string, AddressUse>();
    const requests = new Map<string, ServiceRequest>();
    const requestOf = (id: string): ServiceRequest => {
      let r = requests.get(id);
      if (!r) {
        const svc = this.ctx.cache.get('Service', id);
        // A Service that is gone but still listed shares with nobody until it is removed.
        r = svc
          ? serviceRequestOf(svc)
          : {
              id,
              families: [],
              policy: 'SingleStack',
              requested: [],
              classless: false,
              ports: [],
              local: false,
              selector: '',
            };
        requests.set(id, r);
      }
      return r;
    };
    for (const v of this.vipList()) {
      const a = specAddress(v);
      if (!a) continue;
      const k = addressKey(a);
      if (used.has(k)) continue;
      const lb = v.metadata.labels?.[LB_LABEL] === 'true';
      used.set(k, {
        vip: objectKey(v),
        services: lb ? servicesOfVip(v).map(requestOf) : [],
        terminating: Boolean(v.metadata.deletionTimestamp),
      });
    }
    return used;
  }

  async reconcile(id: string, log: Logger): Promise<ReconcileResult> {
    const { ctx } = this;
    const { ns, name } = splitId(id);
    const key = { namespace: ns, name };
    // Deciding from a partial picture could hand out an address a VirtualIP not yet listed has.
    const unsynced = ctx.cache.unsyncedKinds();
    if (unsynced.length > 0) {
      log.debug({ unsynced }, 'waiting for the caches before allocating');
      return { requeueAfterMs: CACHE_LAG_MS };
    }
    const svc = ctx.cache.get('Service', id);
    const pools = this.poolsOf(log);
    const mine = [...(this.index().get(id) ?? [])]
      .map((v) => this.vipGet(v))
      .filter((v): v is ApiObject => v !== undefined);

    // A reservation left by an earlier pass that failed half-way is decided again now.
    for (const [vid, p] of this.pending) if (p.sid === id) this.pending.delete(vid);
    if (!servedBy(svc, pools.classless)) {
      this.waiting.delete(id);
      for (const v of mine) await this.leave(v, id, log);
      if (!svc) {
        ctx.writer.forget('Service', key);
        return {};
      }
      const base = ctx.writer.base<{ conditions?: Array<{ type: string }> }>('Service', key, svc.status);
      // Only a status this controller wrote is taken back (another implementation may own it).
      if (base?.conditions?.some((c) => (ServiceConditionTypes as readonly string[]).includes(c.type))) {
        const r = await writeStatus(ctx, 'Service', key, svc, clearedServiceStatus(svc.status as never));
        if (r.requeueAfterMs !== undefined) return r;
        log.info('no longer a Heartline LoadBalancer: address released, status cleared');
      }
      return {};
    }

    const request = serviceRequestOf(svc!);
    const used = this.usedAddresses();
    const reserved = new Set(addressesOfNodes(ctx.cache.list('Node')).map((a) => addressKey(a.address)));
    const current = mine
      .filter((v) => !v.metadata.deletionTimestamp)
      .map((v) => hostOf(specAddress(v) ?? ''));
    const allocation = allocate({ service: request, pools: pools.usable, used, reserved, current });
    let requeueAfterMs: number | undefined;

    const held: HeldView[] = [];
    if (allocation.ok) {
      this.waiting.delete(id);
      const eligible = request.local ? this.localNodes(svc!) : undefined;
      // No await between allocate() and here: the new addresses are taken before anyone else looks.
      for (const a of allocation.addresses) this.reserve(svc!, a, pools, eligible);
      this.byService = undefined;
      for (const a of allocation.addresses) {
        const r = await this.join(svc!, a, pools, eligible, log);
        if (r === 'lag') requeueAfterMs = CACHE_LAG_MS;
        else held.push(r);
      }
      // Publish only addresses whose VirtualIP lists this Service; look again once the cache has it.
      if (requeueAfterMs !== undefined) return { requeueAfterMs };
      const keep = new Set(allocation.addresses.map((a) => addressKey(a.ip)));
      for (const v of mine) if (!keep.has(addressKey(specAddress(v) ?? ''))) await this.leave(v, id, log);
    } else {
      this.waiting.add(id);
      log.info({ reason: allocation.reason, problem: allocation.message }, 'no address for Service');
      for (const v of mine) await this.leave(v, id, log);
    }

    const base = ctx.writer.base<Parameters<typeof decideServiceStatus>[0]['base']>(
      'Service',
      key,
      svc!.status,
    );
    const decision = decideServiceStatus({
      base,
      generation: svc!.metadata.generation,
      allocation,
      held,
      now: ctx.wallNow(),
    });
    const w = await writeStatus(ctx, 'Service', key, svc!, decision.status);
    if (w.written) emit(ctx, svc!, 'Service', decision.events, log);
    if (w.requeueAfterMs !== undefined)
      requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, w.requeueAfterMs);
    return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
  }

  /**
   * The nodes with a ready endpoint of the Service (its EndpointSlices' endpoints by nodeName;
   * `ready` unset counts as ready, as the API documents), sorted.
   */
  private localNodes(svc: ApiObject): string[] {
    const nodes = new Set<string>();
    for (const slice of this.ctx.cache.list('EndpointSlice', svc.metadata.namespace)) {
      if (slice.metadata.labels?.[SERVICE_NAME_LABEL] !== svc.metadata.name) continue;
      const eps = (slice as { endpoints?: Array<{ nodeName?: string; conditions?: { ready?: boolean } }> })
        .endpoints;
      for (const ep of eps ?? []) if (ep.nodeName && ep.conditions?.ready !== false) nodes.add(ep.nodeName);
    }
    return [...nodes].sort();
  }

  /** Takes the address of `a` for Service `svc` at once when no VirtualIP has it yet (see `pending`). */
  private reserve(svc: ApiObject, a: Allocated, pools: Pools, eligible: string[] | undefined): void {
    const pool = pools.specs.get(a.pool);
    if (!pool) return;
    const { id } = lbVipKeyOf(a, pool);
    if (this.vipGet(id)) return;
    this.pending.set(id, { sid: serviceIdOf(svc), object: lbVipObject(svc, a, pool, eligible) });
  }

  /** Makes sure the VirtualIP of `a` exists and lists the Service; what it shows, or 'lag' to look again. */
  private async join(
    svc: ApiObject,
    a: Allocated,
    pools: Pools,
    eligible: string[] | undefined,
    log: Logger,
  ): Promise<HeldView | 'lag'> {
    const sid = serviceIdOf(svc);
    const pool = pools.specs.get(a.pool);
    if (!pool) return 'lag';
    const { id: vid, ...vipKey } = lbVipKeyOf(a, pool);
    const owner = serviceOwnerRef(svc, vipKey.namespace);
    const pending = this.pending.get(vid);
    if (pending) {
      if (pending.sid !== sid) return 'lag';
      try {
        const stored = await this.writer.create('VirtualIP', pending.object);
        this.created.set(vid, stored);
      } catch (err) {
        if (err instanceof ConflictError) return 'lag';
        throw err;
      } finally {
        this.pending.delete(vid);
        this.byService = undefined;
      }
      log.info({ address: a.ip, vip: vid, pool: a.pool }, 'VirtualIP created for Service');
      return { ip: a.ip, vip: vid, noEndpoints: eligible?.length === 0 };
    }
    const existing = this.vipGet(vid);
    if (!existing) return 'lag';
    if (existing.metadata.labels?.[LB_LABEL] !== 'true' || existing.metadata.deletionTimestamp) return 'lag';
    const have = (existing.spec as { eligibleNodes?: string[] } | undefined)?.eligibleNodes;
    if (JSON.stringify(have) !== JSON.stringify(eligible)) {
      // The endpoints moved: the holder, no longer eligible, hands the address over (planned move).
      try {
        await this.writer.patch('VirtualIP', vipKey, [
          { op: 'test', path: '/metadata/resourceVersion', value: existing.metadata.resourceVersion },
          eligible
            ? { op: 'add', path: '/spec/eligibleNodes', value: eligible }
            : { op: 'remove', path: '/spec/eligibleNodes' },
        ]);
      } catch (err) {
        if (err instanceof ConflictError || err instanceof NotFoundError) return 'lag';
        throw err;
      }
      log.info({ vip: vid, eligible }, 'eligible nodes of VirtualIP updated');
      return 'lag';
    }
    const listed = servicesOfVip(existing);
    if (!listed.includes(sid)) {
      const next = [...listed, sid].sort().join(',');
      const refs = (existing.metadata.ownerReferences as unknown[] | undefined) ?? [];
      const ops: JsonPatchOp[] = [
        { op: 'test', path: '/metadata/resourceVersion', value: existing.metadata.resourceVersion },
        { op: 'add', path: SERVICES_ANNOTATION_PATH, value: next },
      ];
      if (owner) ops.push({ op: 'add', path: '/metadata/ownerReferences', value: [...refs, owner] });
      try {
        await this.writer.patch('VirtualIP', vipKey, ops);
      } catch (err) {
        if (err instanceof ConflictError || err instanceof NotFoundError) return 'lag';
        throw err;
      }
      log.info({ address: a.ip, vip: vid, services: next }, 'Service shares VirtualIP');
    }
    const st = existing.status as
      | {
          holder?: string;
          phase?: string;
          conditions?: Array<{ type: string; status: string; message?: string }>;
        }
      | undefined;
    const ready = st?.conditions?.find((c) => c.type === 'Ready');
    return {
      ip: a.ip,
      vip: vid,
      holder: st?.holder,
      phase: st?.phase,
      why: ready && ready.status !== 'True' ? ready.message : undefined,
      noEndpoints: eligible?.length === 0,
    };
  }

  /** Takes Service `sid` off VirtualIP `v`; deletes the VirtualIP when no Service is left. */
  private async leave(v: ApiObject, sid: string, log: Logger): Promise<void> {
    const key = { namespace: v.metadata.namespace, name: v.metadata.name };
    const listed = servicesOfVip(v);
    const rest = listed.filter((s) => s !== sid);
    try {
      if (rest.length === 0) {
        if (v.metadata.deletionTimestamp) return;
        await this.writer.delete('VirtualIP', key, v.metadata.uid ? { uid: v.metadata.uid } : {});
        log.info({ vip: objectKey(v), address: specAddress(v) }, 'VirtualIP deleted: its last Service left');
        return;
      }
      if (rest.length === listed.length) return;
      const { ns, name } = splitId(sid);
      const refs = (
        (v.metadata.ownerReferences as Array<{ kind?: string; name?: string }> | undefined) ?? []
      ).filter((r) => !(r.kind === 'Service' && r.name === name && ns === v.metadata.namespace));
      await this.writer.patch('VirtualIP', key, [
        { op: 'test', path: '/metadata/resourceVersion', value: v.metadata.resourceVersion },
        {
          op: 'replace',
          path: SERVICES_ANNOTATION_PATH,
          value: rest.join(','),
        },
        { op: 'add', path: '/metadata/ownerReferences', value: refs },
      ]);
      log.info({ vip: objectKey(v), services: rest }, 'Service left shared VirtualIP');
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
  }
}

function specAddress(o: ApiObject | undefined): string | undefined {
  const a = (o?.spec as { address?: unknown } | undefined)?.address;
  return typeof a === 'string' ? a : undefined;
}
