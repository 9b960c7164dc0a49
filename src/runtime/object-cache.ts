/**
 * An informer-style cache fed by ApiSource watches: the latest copy of every object of the
 * watched kinds, whether each watch has delivered its initial list, and a callback per
 * change (the controller enqueues the affected keys; the agent rebuilds its configuration).
 * Shared by the controller and the agent.
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

/** `{namespace, name}` of a cache key (`namespace/name`, or `name` for cluster-scoped kinds): objectKey's inverse. */
export function splitId(id: string): { ns: string | undefined; name: string } {
  const slash = id.indexOf('/');
  return slash < 0 ? { ns: undefined, name: id } : { ns: id.slice(0, slash), name: id.slice(slash + 1) };
}

export class ObjectCache {
  private readonly stores = new Map<ApiKind, Map<string, ApiObject>>();
  private readonly synced = new Set<ApiKind>();
  private readonly watches: Stoppable[] = [];
  /** Watches of single objects by name (watchNamed), by `kind|namespace/name`. */
  private readonly named = new Map<string, { stop: Stoppable; synced: boolean }>();

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

  /**
   * Watches one object of `kind` by name (fieldSelector metadata.name=..., which RBAC
   * resourceNames authorize), into the same store as `watch`: for objects the controller
   * may read only by name, such as the auth Secrets its HAClusters reference. Idempotent.
   * `onSynced` runs once, when the watch delivered its initial state (the object or nothing).
   */
  watchNamed(kind: ApiKind, namespace: string, name: string, onSynced: () => void = () => {}): void {
    const id = `${kind}|${namespace}/${name}`;
    if (this.named.has(id)) return;
    let store = this.stores.get(kind);
    if (!store) {
      store = new Map<string, ApiObject>();
      this.stores.set(kind, store);
      // Named watches alone do not make a kind "watched" for hasSynced: see unsyncedNamed.
      this.synced.add(kind);
    }
    const entry = { stop: undefined as unknown as Stoppable, synced: false };
    this.named.set(id, entry);
    const s = store;
    entry.stop = this.api.watch(
      kind,
      (e) => {
        if (this.named.get(id) !== entry) return;
        if (e.type === 'synced') {
          if (entry.synced) return;
          entry.synced = true;
          onSynced();
          return;
        }
        const key = objectKey(e.object);
        const old = s.get(key);
        if (e.type === 'deleted') s.delete(key);
        else s.set(key, e.object);
        this.onChange({ kind, type: e.type, object: e.object, ...(old ? { old } : {}) });
      },
      { namespace, fieldSelector: `metadata.name=${name}` },
    );
  }

  /** Stops a watchNamed watch and forgets its object. */
  unwatchNamed(kind: ApiKind, namespace: string, name: string): void {
    const id = `${kind}|${namespace}/${name}`;
    const entry = this.named.get(id);
    if (!entry) return;
    this.named.delete(id);
    entry.stop.stop();
    this.stores.get(kind)?.delete(`${namespace}/${name}`);
  }

  /** The objects watched by name, as `namespace/name`, of `kind`. */
  namedOf(kind: ApiKind): string[] {
    const prefix = `${kind}|`;
    return [...this.named.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** Whether the watchNamed watch of this object delivered its initial state (false if none). */
  namedSynced(kind: ApiKind, namespace: string, name: string): boolean {
    return this.named.get(`${kind}|${namespace}/${name}`)?.synced ?? false;
  }

  /** watchNamed watches still waiting for their initial state, as `Kind namespace/name`. */
  unsyncedNamed(): string[] {
    return [...this.named].filter(([, e]) => !e.synced).map(([id]) => id.replace('|', ' '));
  }

  get(kind: ApiKind, key: string): ApiObject | undefined {
    return this.stores.get(kind)?.get(key);
  }

  list(kind: ApiKind, namespace?: string): ApiObject[] {
    const all = [...(this.stores.get(kind)?.values() ?? [])];
    return namespace === undefined ? all : all.filter((o) => (o.metadata.namespace ?? '') === namespace);
  }

  /** Whether `watch(kind)` delivered its initial list. */
  isSynced(kind: ApiKind): boolean {
    return this.stores.has(kind) && this.synced.has(kind);
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
    for (const e of this.named.values()) e.stop.stop();
    this.named.clear();
  }
}
