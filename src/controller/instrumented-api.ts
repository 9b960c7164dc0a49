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
  ObjectKey,
  OwnedKind,
  Stoppable,
  WatchEvent,
  WatchOptions,
} from '../core/ports.js';
import type { ControllerMetrics } from './metrics.js';

export type ApiVerb =
  'watch' | 'get' | 'list' | 'patch-status' | 'add-finalizer' | 'remove-finalizer' | 'create-event';

export class InstrumentedApiSource implements ApiSource {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly inner: ApiSource,
    private readonly metrics?: ControllerMetrics,
  ) {}

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
