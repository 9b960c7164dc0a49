import jsonpatch from 'fast-json-patch';
import {
  ConflictError,
  NotFoundError,
  type ApiEvent,
  type ApiKind,
  type ApiObject,
  type ApiSource,
  type Clock,
  type ObjectKey,
  type OwnedKind,
  type Stoppable,
  type WatchEvent,
  type WatchOptions,
} from '../../src/core/ports.js';
import { apiVersionOf, LOCATIONS } from '../../src/adapters/k8s/kinds.js';
import {
  StoreLeaseLock,
  type LeaseStore,
  type LeaseWrite,
  type StoredLease,
} from '../../src/adapters/k8s/store-lease-lock.js';

const clone = <T>(v: T): T => structuredClone(v);
const keyOf = (kind: ApiKind, k: ObjectKey): string =>
  `${kind}|${LOCATIONS[kind].namespaced ? (k.namespace ?? '') : ''}|${k.name}`;

/** Equality-only label selectors (`a=b,c=d`) and field selectors on metadata.name / metadata.namespace. */
function matches(o: ApiObject, opts: WatchOptions): boolean {
  if (opts.namespace && LOCATIONS[o.kind as ApiKind]?.namespaced && o.metadata.namespace !== opts.namespace)
    return false;
  for (const term of (opts.labelSelector ?? '').split(',').filter(Boolean)) {
    const [k, v] = term.split('=');
    if ((o.metadata.labels ?? {})[k!.trim()] !== v?.trim()) return false;
  }
  for (const term of (opts.fieldSelector ?? '').split(',').filter(Boolean)) {
    const [k, v] = term.split('=');
    const field = k!.trim();
    if (field !== 'metadata.name' && field !== 'metadata.namespace') {
      throw new Error(
        `FakeApiSource supports fieldSelector on metadata.name and metadata.namespace only, got ${field}`,
      );
    }
    if ((field === 'metadata.name' ? o.metadata.name : o.metadata.namespace) !== v?.trim()) return false;
  }
  return true;
}

export interface RecordedEvent extends ApiEvent {
  namespace: string;
}

type FakeOp = 'get' | 'list' | 'patchStatus' | 'addFinalizer' | 'removeFinalizer' | 'event';

/**
 * In-memory ApiSource. Tests seed and change objects with `apply` / `delete` (as users would
 * with kubectl); the code under test sees them through the ApiSource port with the same
 * semantics as K8sApiSource (checked by the shared contract): resourceVersions, generation
 * bumps on spec changes, finalizers holding deletion, asynchronous watch delivery, a
 * `synced` after the initial objects. Unlike the real API server it does not validate or
 * prune against the CRD schemas. `failNext` injects API errors.
 */
export class FakeApiSource implements ApiSource {
  readonly events: RecordedEvent[] = [];
  private readonly objects = new Map<string, ApiObject>();
  private readonly watchers = new Set<{
    kind: ApiKind;
    opts: WatchOptions;
    handler: (e: WatchEvent) => void;
  }>();
  private readonly failures = new Map<FakeOp, Error[]>();
  private rv = 1;
  private uid = 1;

  /** The next `count` calls of `op` reject with `error` (e.g. an ApiError for a 500). */
  failNext(op: FakeOp, error: Error, count = 1): void {
    this.failures.set(op, [...(this.failures.get(op) ?? []), ...Array<Error>(count).fill(error)]);
  }

  /** Number of active watches (to check that code stops what it starts). */
  get watchCount(): number {
    return this.watchers.size;
  }

  /** The options of the active watches of `kind` (to check what code asks to see). */
  watchesOf(kind: ApiKind): WatchOptions[] {
    return [...this.watchers].filter((w) => w.kind === kind).map((w) => clone(w.opts));
  }

  private maybeFail(op: FakeOp): void {
    const e = this.failures.get(op)?.shift();
    if (e) throw e;
  }

  private notify(type: 'added' | 'updated' | 'deleted', o: ApiObject): void {
    const kind = o.kind as ApiKind;
    for (const w of this.watchers) {
      if (w.kind !== kind || !matches(o, w.opts)) continue;
      const copy = clone(o);
      queueMicrotask(() => {
        if (this.watchers.has(w)) w.handler({ type, object: copy });
      });
    }
  }

  /** Creates or replaces an object (spec, labels, data...); keeps status and finalizers unless given. */
  apply(kind: ApiKind, obj: ApiObject): ApiObject {
    const key = {
      name: obj.metadata.name,
      ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
    };
    const k = keyOf(kind, key);
    const prev = this.objects.get(k);
    const next: ApiObject = clone({ ...obj, apiVersion: apiVersionOf(kind), kind }) as ApiObject;
    next.metadata.resourceVersion = String(++this.rv);
    next.metadata.uid = prev?.metadata.uid ?? `uid-${this.uid++}`;
    const specChanged = !prev || JSON.stringify(prev.spec) !== JSON.stringify(next.spec);
    next.metadata.generation = (prev?.metadata.generation ?? 0) + (specChanged ? 1 : 0);
    if (prev) {
      if (next.status === undefined && prev.status !== undefined) next.status = clone(prev.status);
      if (next.metadata.finalizers === undefined && prev.metadata.finalizers)
        next.metadata.finalizers = [...prev.metadata.finalizers];
      if (prev.metadata.deletionTimestamp) next.metadata.deletionTimestamp = prev.metadata.deletionTimestamp;
    }
    this.objects.set(k, next);
    this.notify(prev ? 'updated' : 'added', next);
    return clone(next);
  }

  /** A merge patch of Node `name`'s annotations, like RestApiSource.annotateNode. Rejects when the Node does not exist. */
  annotateNode(name: string, annotations: Record<string, string>): Promise<void> {
    const o = this.objects.get(keyOf('Node', { name }));
    if (!o) return Promise.reject(new NotFoundError('Node', { name }));
    const next = clone(o);
    next.metadata.annotations = { ...(next.metadata.annotations ?? {}), ...annotations };
    next.metadata.resourceVersion = String(++this.rv);
    this.objects.set(keyOf('Node', { name }), next);
    this.notify('updated', next);
    return Promise.resolve();
  }

  /** Deletes like the API server: with finalizers it only sets deletionTimestamp. Returns false if absent. */
  delete(kind: ApiKind, key: ObjectKey): boolean {
    const k = keyOf(kind, key);
    const o = this.objects.get(k);
    if (!o) return false;
    if ((o.metadata.finalizers ?? []).length > 0) {
      if (!o.metadata.deletionTimestamp) {
        o.metadata.deletionTimestamp = new Date(0).toISOString();
        o.metadata.resourceVersion = String(++this.rv);
        this.notify('updated', o);
      }
      return true;
    }
    this.objects.delete(k);
    o.metadata.resourceVersion = String(++this.rv);
    this.notify('deleted', o);
    return true;
  }

  watch(kind: ApiKind, handler: (event: WatchEvent) => void, options: WatchOptions = {}): Stoppable {
    const w = { kind, opts: { ...options }, handler };
    const initial = [...this.objects.values()]
      .filter((o) => o.kind === kind && matches(o, options))
      .map(clone);
    this.watchers.add(w);
    queueMicrotask(() => {
      if (!this.watchers.has(w)) return;
      for (const o of initial) handler({ type: 'added', object: o });
      handler({ type: 'synced' });
    });
    return { stop: () => this.watchers.delete(w) };
  }

  /** Re-delivers every watched object as `resync` (the real source does this on a timer). */
  resync(): void {
    for (const w of this.watchers)
      for (const o of this.objects.values())
        if (o.kind === w.kind && matches(o, w.opts)) w.handler({ type: 'resync', object: clone(o) });
  }

  get(kind: ApiKind, key: ObjectKey): Promise<ApiObject | undefined> {
    return Promise.resolve().then(() => {
      this.maybeFail('get');
      const o = this.objects.get(keyOf(kind, key));
      return o ? clone(o) : undefined;
    });
  }

  list(kind: ApiKind, options: WatchOptions = {}): Promise<ApiObject[]> {
    return Promise.resolve().then(() => {
      this.maybeFail('list');
      return [...this.objects.values()].filter((o) => o.kind === kind && matches(o, options)).map(clone);
    });
  }

  async patchStatus(
    kind: OwnedKind,
    key: ObjectKey,
    status: unknown,
    options: { expectResourceVersion?: string } = {},
  ): Promise<{ object: ApiObject; changed: boolean }> {
    await Promise.resolve();
    this.maybeFail('patchStatus');
    const o = this.objects.get(keyOf(kind, key));
    if (!o) throw new NotFoundError(kind, key);
    if (
      options.expectResourceVersion !== undefined &&
      options.expectResourceVersion !== o.metadata.resourceVersion
    ) {
      throw new ConflictError(
        kind,
        key,
        `resourceVersion is ${o.metadata.resourceVersion}, expected ${options.expectResourceVersion}`,
      );
    }
    const ops = jsonpatch.compare(o.status === undefined ? {} : { status: o.status }, { status });
    if (ops.length === 0) return { object: clone(o), changed: false };
    o.status = clone(status);
    o.metadata.resourceVersion = String(++this.rv);
    this.notify('updated', o);
    return { object: clone(o), changed: true };
  }

  async addFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    await Promise.resolve();
    this.maybeFail('addFinalizer');
    const o = this.objects.get(keyOf(kind, key));
    if (!o) throw new NotFoundError(kind, key);
    if (o.metadata.finalizers?.includes(finalizer)) return false;
    if (o.metadata.deletionTimestamp)
      throw new Error(`${kind} ${key.name}: cannot add finalizer ${finalizer} to an object being deleted`);
    o.metadata.finalizers = [...(o.metadata.finalizers ?? []), finalizer];
    o.metadata.resourceVersion = String(++this.rv);
    this.notify('updated', o);
    return true;
  }

  async removeFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    await Promise.resolve();
    this.maybeFail('removeFinalizer');
    const k = keyOf(kind, key);
    const o = this.objects.get(k);
    if (!o || !o.metadata.finalizers?.includes(finalizer)) return false;
    o.metadata.finalizers = o.metadata.finalizers.filter((f) => f !== finalizer);
    o.metadata.resourceVersion = String(++this.rv);
    if (o.metadata.deletionTimestamp && o.metadata.finalizers.length === 0) {
      this.objects.delete(k);
      this.notify('deleted', o);
    } else this.notify('updated', o);
    return true;
  }

  async event(e: ApiEvent): Promise<void> {
    await Promise.resolve();
    this.maybeFail('event');
    this.events.push({ ...clone(e), namespace: e.regarding.metadata.namespace ?? 'default' });
  }

  close(): Promise<void> {
    this.watchers.clear();
    return Promise.resolve();
  }
}

/** One in-memory Lease shared by several FakeLeaseLocks (one per candidate). */
export class FakeLeaseStore implements LeaseStore {
  private lease: StoredLease | undefined;
  private rv = 0;
  private failures = 0;
  /** Every successful write, for assertions on transitions. */
  readonly writes: StoredLease[] = [];

  /** The next `n` calls reject as if the API server were unreachable. */
  failNext(n = 1): void {
    this.failures += n;
  }

  /** Cancels pending injected failures. */
  heal(): void {
    this.failures = 0;
  }

  private check(): void {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('FakeLeaseStore: injected API failure (connection refused)');
    }
  }

  get(): Promise<StoredLease | undefined> {
    return Promise.resolve().then(() => {
      this.check();
      return this.lease ? { ...this.lease } : undefined;
    });
  }

  private write(w: LeaseWrite): StoredLease {
    this.lease = {
      holderIdentity: w.holderIdentity,
      leaseDurationSeconds: w.leaseDurationSeconds,
      leaseTransitions: w.leaseTransitions,
      resourceVersion: String(++this.rv),
    };
    this.writes.push({ ...this.lease });
    return { ...this.lease };
  }

  create(w: LeaseWrite): Promise<StoredLease | 'conflict'> {
    return Promise.resolve().then(() => {
      this.check();
      return this.lease ? 'conflict' : this.write(w);
    });
  }

  update(w: LeaseWrite, resourceVersion: string): Promise<StoredLease | 'conflict'> {
    return Promise.resolve().then(() => {
      this.check();
      if (!this.lease || this.lease.resourceVersion !== resourceVersion) return 'conflict';
      return this.write(w);
    });
  }
}

/** A LeaseLock on a FakeLeaseStore: the production lease algorithm over memory. */
export class FakeLeaseLock extends StoreLeaseLock {
  constructor(
    components: { store: FakeLeaseStore; clock: Clock },
    init: { identity: string; leaseDurationSeconds: number },
  ) {
    super(components, init);
  }
}
