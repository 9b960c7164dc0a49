/**
 * An ApiSource that counts every request it passes on, by verb, kind and result, so the
 * controller's cost to the API server is visible (`heartline_controller_api_requests_total`)
 * and testable ("no request per VIP at steady state").
 */
import type {
  ApiEvent,
  ApiKind,
  ApiObject,
  ApiSource,
  JsonPatchOp,
  ObjectKey,
  ObjectWriter,
  OwnedKind,
  Stoppable,
  WatchEvent,
  WatchOptions,
} from '../core/ports.js';
import type { ControllerMetrics } from './metrics.js';

export type ApiVerb =
  | 'watch'
  | 'get'
  | 'list'
  | 'patch-status'
  | 'add-finalizer'
  | 'remove-finalizer'
  | 'create-event'
  | 'create'
  | 'patch'
  | 'delete';

export class InstrumentedApiSource implements ApiSource, ObjectWriter {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly inner: ApiSource & Partial<ObjectWriter>,
    private readonly metrics?: ControllerMetrics,
  ) {}

  /** This source as an ObjectWriter when the inner one is one (the real adapter), else undefined. */
  writer(): ObjectWriter | undefined {
    return this.inner.create && this.inner.patch && this.inner.delete ? this : undefined;
  }

  private writerOf(): ObjectWriter {
    const w = this.inner as Partial<ObjectWriter>;
    if (!w.create || !w.patch || !w.delete) throw new Error('this ApiSource cannot create or delete objects');
    return w as ObjectWriter;
  }

  create(kind: OwnedKind, object: ApiObject): Promise<ApiObject> {
    return this.count('create', kind, () => this.writerOf().create(kind, object));
  }

  patch(kind: OwnedKind, key: ObjectKey, ops: JsonPatchOp[]): Promise<ApiObject> {
    return this.count('patch', kind, () => this.writerOf().patch(kind, key, ops));
  }

  delete(kind: OwnedKind, key: ObjectKey, options?: { uid?: string }): Promise<boolean> {
    return this.count('delete', kind, () => this.writerOf().delete(kind, key, options));
  }

  /** Requests so far by "verb kind", e.g. "patch-status VirtualIP". */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  /** Total requests so far, optionally of one verb. */
  total(verb?: ApiVerb): number {
    let n = 0;
    for (const [k, v] of this.counts) if (!verb || k.startsWith(`${verb} `)) n += v;
    return n;
  }

  private async count<T>(verb: ApiVerb, kind: string, call: () => Promise<T>): Promise<T> {
    const key = `${verb} ${kind}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    try {
      const r = await call();
      this.metrics?.apiRequests.inc({ verb, kind, result: 'ok' });
      return r;
    } catch (err) {
      this.metrics?.apiRequests.inc({ verb, kind, result: 'error' });
      throw err;
    }
  }

  watch(kind: ApiKind, handler: (event: WatchEvent) => void, options?: WatchOptions): Stoppable {
    const key = `watch ${kind}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.metrics?.apiRequests.inc({ verb: 'watch', kind, result: 'ok' });
    return this.inner.watch(kind, handler, options);
  }

  get(kind: ApiKind, key: ObjectKey): Promise<ApiObject | undefined> {
    return this.count('get', kind, () => this.inner.get(kind, key));
  }

  list(kind: ApiKind, options?: WatchOptions): Promise<ApiObject[]> {
    return this.count('list', kind, () => this.inner.list(kind, options));
  }

  patchStatus(
    kind: OwnedKind,
    key: ObjectKey,
    status: unknown,
    options?: { expectResourceVersion?: string },
  ) {
    return this.count('patch-status', kind, () => this.inner.patchStatus(kind, key, status, options));
  }

  addFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    return this.count('add-finalizer', kind, () => this.inner.addFinalizer(kind, key, finalizer));
  }

  removeFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    return this.count('remove-finalizer', kind, () => this.inner.removeFinalizer(kind, key, finalizer));
  }

  event(event: ApiEvent): Promise<void> {
    return this.count('create-event', event.regarding.kind ?? 'unknown', () => this.inner.event(event));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
