/**
 * An informer-style cache fed by ApiSource watches: the latest copy of every object of the
 * watched kinds, whether each watch has delivered its initial list, and a callback per
 * change so the controller can enqueue the affected keys.
 */
import type { ApiKind, ApiObject, ApiSource, Stoppable, WatchOptions } from '../core/ports.js';

export type CacheChange = {
  kind: ApiKind;
  type: 'added' | 'updated' | 'deleted' | 'resync';
  object: ApiObject;
  old?: ApiObject;
};

export function objectKey(o: { metadata: { namespace?: string; name: string } }): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

export class ObjectCache {
  private readonly stores = new Map<ApiKind, Map<string, ApiObject>>();
  private readonly synced = new Set<ApiKind>();
  private readonly watches: Stoppable[] = [];

  constructor(
    private readonly api: ApiSource,
    private readonly onChange: (change: CacheChange) => void,
    private readonly onSynced: (kind: ApiKind) => void = () => {},
  ) {}

  /** Starts watching `kind`. */
  watch(kind: ApiKind, options?: WatchOptions): void {
    const store = new Map<string, ApiObject>();
    this.stores.set(kind, store);
    this.watches.push(
      this.api.watch(
        kind,
        (e) => {
          if (e.type === 'synced') {
            const first = !this.synced.has(kind);
            this.synced.add(kind);
            if (first) this.onSynced(kind);
            return;
          }
          const key = objectKey(e.object);
          const old = store.get(key);
          if (e.type === 'deleted') store.delete(key);
          else store.set(key, e.object);
          this.onChange({ kind, type: e.type, object: e.object, ...(old ? { old } : {}) });
        },
        options,
      ),
    );
  }

  get(kind: ApiKind, key: string): ApiObject | undefined {
    return this.stores.get(kind)?.get(key);
  }

  list(kind: ApiKind, namespace?: string): ApiObject[] {
    const all = [...(this.stores.get(kind)?.values() ?? [])];
    return namespace === undefined ? all : all.filter((o) => (o.metadata.namespace ?? '') === namespace);
  }

  /** Every watched kind delivered its initial list. */
  hasSynced(): boolean {
    return [...this.stores.keys()].every((k) => this.synced.has(k));
  }

  unsyncedKinds(): ApiKind[] {
    return [...this.stores.keys()].filter((k) => !this.synced.has(k));
  }

  stop(): void {
    for (const w of this.watches.splice(0)) w.stop();
  }
}
