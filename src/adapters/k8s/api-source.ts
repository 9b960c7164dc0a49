import {
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  V1MicroTime,
  Watch,
  setHeaderOptions,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import jsonpatch from 'fast-json-patch';
import { pino, type Logger } from 'pino';
import {
  ConflictError,
  NotFoundError,
  type ApiEvent,
  type ApiKind,
  type ApiObject,
  type ApiSource,
  type Clock,
  type Millis,
  type ObjectKey,
  type OwnedKind,
  type Stoppable,
  type WatchEvent,
  type WatchOptions,
} from '../../core/ports.js';
import { ApiError } from './api-error.js';
import { connectionPool, makeApiClient, watchKubeConfig } from './connections.js';
import { KINDS, apiVersionOf, collectionPath, describeKey, keptObject } from './kinds.js';

type Operation = jsonpatch.Operation;

export interface K8sApiSourceComponents {
  kubeConfig: KubeConfig;
  clock: Clock;
  logger?: Logger;
}

export interface K8sApiSourceInit {
  /** Who reports Events (reportingInstance), e.g. the pod name. */
  identity: string;
  /** reportingController of Events. Default heartline.dev/controller. */
  reportingController?: string;
  /** Period of `resync` re-delivery of cached objects; 0 disables. Default 300000. */
  resyncMs?: Millis;
  /** Watch restart backoff after an error: first delay and cap. Default 200 / 30000 ms. */
  backoffInitialMs?: Millis;
  backoffMaxMs?: Millis;
}

export { ApiError };

interface HttpError {
  code?: number;
  body?: unknown;
  message?: string;
}

function statusCode(err: unknown): number | undefined {
  const c = (err as HttpError | undefined)?.code;
  return typeof c === 'number' ? c : undefined;
}

function serverMessage(err: unknown): string {
  const e = err as HttpError;
  let body = e?.body;
  if (typeof body === 'string') {
    const text: string = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text;
    }
  }
  const m = (body as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : (e?.message ?? String(err));
}

/**
 * A patch's resourceVersion guard failed: the object changed since the version the patch was
 * computed from. Carries the current object when the adapter had to read it anyway.
 */
class StaleConflict extends ConflictError {
  constructor(
    kind: ApiKind,
    key: ObjectKey,
    detail: string,
    readonly current: ApiObject,
  ) {
    super(kind, key, detail);
  }
}

/** How many objects the adapter remembers from its own reads and writes (see `recent`). */
const RECENT_LIMIT = 4096;

/** Loads a kubeconfig: $KUBECONFIG or ~/.kube/config, else the in-cluster service account. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

const jsonPatch = () => setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

/**
 * The real ApiSource on @kubernetes/client-node 1.x. Watches are client-node informers
 * (ListWatch), restarted with exponential backoff after any error other than 410 (which the
 * informer handles by relisting); `synced` is emitted after every successful (re)start.
 * Requests and watches reuse keep-alive connections (`connections.ts`).
 *
 * Writes (status, finalizers) are JSON Patches guarded by a `test` of the resourceVersion they
 * were computed from, so a concurrent writer yields a conflict instead of a lost update. They
 * start from the object as this adapter's own watches (or its own last write) have it, without
 * a GET; when that copy was stale the guard fails, and the write is retried once from a fresh
 * read. Only objects nobody here watches are read before writing. `get` and `list` always read
 * the API server.
 */
export class K8sApiSource implements ApiSource {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly events: EventsV1Api;
  private readonly logger: Logger;
  private readonly watches = new Set<Stoppable>();
  private readonly resyncMs: Millis;
  private readonly backoffInitialMs: Millis;
  private readonly backoffMaxMs: Millis;
  private readonly reportingController: string;
  /** Running informers, consulted as caches by writes. */
  private readonly informers = new Set<{
    kind: ApiKind;
    namespace: string | undefined;
    informer: ListWatch<KubernetesObject>;
  }>();
  /**
   * The last object this adapter read or wrote per key, with the resourceVersion the informer
   * had for it at that moment: while the informer still has that version, this copy is newer.
   */
  private readonly recent = new Map<string, { object: ApiObject; informerRv: string | undefined }>();

  constructor(
    private readonly components: K8sApiSourceComponents,
    private readonly init: K8sApiSourceInit,
  ) {
    const kc = components.kubeConfig;
    this.custom = makeApiClient(kc, CustomObjectsApi);
    this.core = makeApiClient(kc, CoreV1Api);
    this.events = makeApiClient(kc, EventsV1Api);
    this.logger = (components.logger ?? pino({ name: 'heartline.k8s' })).child({ component: 'api-source' });
    this.resyncMs = init.resyncMs ?? 300_000;
    this.backoffInitialMs = init.backoffInitialMs ?? 200;
    this.backoffMaxMs = init.backoffMaxMs ?? 30_000;
    this.reportingController = init.reportingController ?? 'heartline.dev/controller';
  }

  watch(kind: ApiKind, handler: (event: WatchEvent) => void, options: WatchOptions = {}): Stoppable {
    const { clock, kubeConfig } = this.components;
    const path = collectionPath(kind, options.namespace);
    const log = this.logger.child({ kind, namespace: options.namespace });
    const listFn = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const list = await this.rawList(kind, options);
      return list as KubernetesListObject<KubernetesObject>;
    };
    // The informer caches what the watch hands it: drop managedFields before it does (listFn's
    // items are already kept objects), so its cache holds no more than ours.
    const watch = new Watch(watchKubeConfig(kubeConfig));
    const watchKept = Object.assign(Object.create(watch) as Watch, {
      watch: (...[p, query, callback, done]: Parameters<Watch['watch']>) =>
        watch.watch(
          p,
          query,
          (phase: string, apiObj: unknown, watchObj?: unknown) =>
            callback(
              phase,
              phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED'
                ? keptObject(kind, apiObj as object)
                : apiObj,
              watchObj,
            ),
          done,
        ),
    });
    const informer = new ListWatch<KubernetesObject>(
      path,
      watchKept,
      listFn,
      false,
      options.labelSelector,
      options.fieldSelector,
    );
    const entry = { kind, namespace: options.namespace, informer };
    this.informers.add(entry);
    const deliver = (event: WatchEvent): void => {
      try {
        handler(event);
      } catch (err) {
        log.error({ err, event: event.type }, 'watch handler failed');
      }
    };
    const withKind = (o: KubernetesObject): ApiObject => ({
      apiVersion: apiVersionOf(kind),
      kind,
      ...(o as ApiObject),
    });
    let stopped = false;
    let backoff = this.backoffInitialMs;
    let restartTimer: Stoppable | undefined;
    let failedAttempt = false;
    const onObject = (type: 'added' | 'updated' | 'deleted') => (o: KubernetesObject) => {
      backoff = this.backoffInitialMs;
      const object = withKind(o);
      if (type === 'deleted') this.recent.delete(recentId(kind, object.metadata));
      else this.forgetPassed(kind, object);
      deliver({ type, object });
    };
    informer.on('add', onObject('added'));
    informer.on('update', onObject('updated'));
    informer.on('delete', onObject('deleted'));
    const onError = (err: unknown): void => {
      failedAttempt = true;
      if (stopped || restartTimer) return;
      log.warn(
        { err: err instanceof Error ? err : new Error(serverMessage(err)), retryInMs: backoff },
        'watch failed; restarting',
      );
      const delay = backoff;
      backoff = Math.min(backoff * 2, this.backoffMaxMs);
      restartTimer = clock.after(delay, () => {
        restartTimer = undefined;
        void start();
      });
    };
    informer.on('error', onError);
    const start = async (): Promise<void> => {
      if (stopped) return;
      failedAttempt = false;
      try {
        await informer.start();
      } catch (err) {
        onError(err);
        return;
      }
      if (!failedAttempt && !stopped) deliver({ type: 'synced' });
    };
    const resync =
      this.resyncMs > 0
        ? clock.every(this.resyncMs, () => {
            for (const o of informer.list()) deliver({ type: 'resync', object: withKind(o) });
          })
        : undefined;
    void start();
    const handle: Stoppable = {
      stop: () => {
        if (stopped) return;
        stopped = true;
        restartTimer?.stop();
        resync?.stop();
        void informer.stop();
        this.informers.delete(entry);
        this.watches.delete(handle);
      },
    };
    this.watches.add(handle);
    return handle;
  }

  async get(kind: ApiKind, key: ObjectKey): Promise<ApiObject | undefined> {
    const k = KINDS[kind];
    try {
      let o: unknown;
      if (k.group) {
        o = await this.custom.getNamespacedCustomObject({
          group: k.group,
          version: k.version,
          plural: k.plural,
          namespace: ns(kind, key),
          name: key.name,
        });
      } else if (kind === 'Node') {
        o = await this.core.readNode({ name: key.name });
      } else if (kind === 'Pod') {
        o = await this.core.readNamespacedPod({ name: key.name, namespace: ns(kind, key) });
      } else {
        o = await this.core.readNamespacedSecret({ name: key.name, namespace: ns(kind, key) });
      }
      const object = keptObject(kind, o as object);
      this.remember(kind, object);
      return object;
    } catch (err) {
      if (statusCode(err) === 404) {
        this.recent.delete(recentId(kind, key));
        return undefined;
      }
      throw this.wrap(`get ${describeKey(kind, key)}`, err);
    }
  }

  async list(kind: ApiKind, options: WatchOptions = {}): Promise<ApiObject[]> {
    return (await this.rawList(kind, options)).items;
  }

  private async rawList(
    kind: ApiKind,
    options: WatchOptions,
  ): Promise<{ metadata?: { resourceVersion?: string }; items: ApiObject[] }> {
    const k = KINDS[kind];
    const sel = {
      ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
      ...(options.fieldSelector ? { fieldSelector: options.fieldSelector } : {}),
    };
    try {
      let list: { metadata?: { resourceVersion?: string }; items: unknown[] };
      if (k.group) {
        const base = { group: k.group, version: k.version, plural: k.plural, ...sel };
        list = (
          options.namespace
            ? await this.custom.listNamespacedCustomObject({ ...base, namespace: options.namespace })
            : await this.custom.listClusterCustomObject(base)
        ) as typeof list;
      } else if (kind === 'Node') {
        list = (await this.core.listNode(sel)) as typeof list;
      } else if (kind === 'Pod') {
        list = (
          options.namespace
            ? await this.core.listNamespacedPod({ namespace: options.namespace, ...sel })
            : await this.core.listPodForAllNamespaces(sel)
        ) as typeof list;
      } else {
        list = (
          options.namespace
            ? await this.core.listNamespacedSecret({ namespace: options.namespace, ...sel })
            : await this.core.listSecretForAllNamespaces(sel)
        ) as typeof list;
      }
      return {
        ...(list.metadata ? { metadata: list.metadata } : {}),
        items: list.items.map((o) => keptObject(kind, o as object)),
      };
    } catch (err) {
      throw this.wrap(`list ${kind}${options.namespace ? ` in ${options.namespace}` : ''}`, err);
    }
  }

  async patchStatus(
    kind: OwnedKind,
    key: ObjectKey,
    status: unknown,
    options: { expectResourceVersion?: string } = {},
  ): Promise<{ object: ApiObject; changed: boolean }> {
    const expected = options.expectResourceVersion;
    let base = this.known(kind, key, expected);
    let fresh = false;
    if (!base) {
      base = await this.read(kind, key);
      fresh = true;
    }
    for (;;) {
      const rv = base.metadata.resourceVersion ?? '';
      if (expected !== undefined && expected !== rv)
        throw new ConflictError(kind, key, `resourceVersion is ${rv}, expected ${expected}`);
      const ops = jsonpatch.compare(base.status === undefined ? {} : { status: base.status }, { status });
      if (ops.length === 0) return { object: base, changed: false };
      try {
        const object = await this.jsonPatch(
          kind,
          key,
          [{ op: 'test', path: '/metadata/resourceVersion', value: rv }, ...ops],
          true,
        );
        return { object, changed: true };
      } catch (err) {
        // A cached copy may be stale: once, from a fresh read. A caller's version is final.
        if (!(err instanceof ConflictError) || fresh || expected !== undefined) throw err;
        base = err instanceof StaleConflict ? err.current : await this.read(kind, key);
        fresh = true;
      }
    }
  }

  async addFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    let next = this.known(kind, key);
    for (let attempt = 0; ; attempt++) {
      const cur = next ?? (await this.read(kind, key));
      next = undefined;
      const list = cur.metadata.finalizers;
      if (list?.includes(finalizer)) return false;
      const test: Operation = {
        op: 'test',
        path: '/metadata/resourceVersion',
        value: cur.metadata.resourceVersion,
      };
      const add: Operation = list
        ? { op: 'add', path: '/metadata/finalizers/-', value: finalizer }
        : { op: 'add', path: '/metadata/finalizers', value: [finalizer] };
      try {
        await this.jsonPatch(kind, key, [test, add], false);
        return true;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 4) throw err;
        if (err instanceof StaleConflict) next = err.current;
      }
    }
  }

  async removeFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    let next = this.known(kind, key);
    for (let attempt = 0; ; attempt++) {
      const cur = next ?? (await this.get(kind, key));
      next = undefined;
      if (!cur) return false;
      const i = cur.metadata.finalizers?.indexOf(finalizer) ?? -1;
      if (i < 0) return false;
      try {
        await this.jsonPatch(
          kind,
          key,
          [
            { op: 'test', path: '/metadata/resourceVersion', value: cur.metadata.resourceVersion },
            { op: 'test', path: `/metadata/finalizers/${i}`, value: finalizer },
            { op: 'remove', path: `/metadata/finalizers/${i}` },
          ],
          false,
        );
        return true;
      } catch (err) {
        if (err instanceof NotFoundError) return false;
        if (!(err instanceof ConflictError) || attempt >= 4) throw err;
        if (err instanceof StaleConflict) next = err.current;
      }
    }
  }

  async event(e: ApiEvent): Promise<void> {
    const m = e.regarding.metadata;
    const namespace = m.namespace ?? 'default';
    try {
      await this.events.createNamespacedEvent({
        namespace,
        body: {
          // Named like the kubelet's events: <object>.<random hex>; generateName may not end in '.'.
          metadata: { name: `${m.name.slice(0, 230)}.${randomBytes(8).toString('hex')}`, namespace },
          eventTime: new V1MicroTime(),
          reportingController: this.reportingController,
          reportingInstance: this.init.identity.slice(0, 128),
          action: e.action,
          reason: e.reason,
          note: e.note.length > 1024 ? `${e.note.slice(0, 1021)}...` : e.note,
          type: e.type,
          regarding: {
            ...(e.regarding.apiVersion ? { apiVersion: e.regarding.apiVersion } : {}),
            ...(e.regarding.kind ? { kind: e.regarding.kind } : {}),
            name: m.name,
            ...(m.namespace ? { namespace: m.namespace } : {}),
            ...(m.uid ? { uid: m.uid } : {}),
            ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
          },
        },
      });
    } catch (err) {
      throw this.wrap(
        `create Event ${e.reason} for ${e.regarding.kind ?? 'object'} ${namespace}/${m.name}`,
        err,
      );
    }
  }

  close(): Promise<void> {
    for (const w of [...this.watches]) w.stop();
    connectionPool(this.components.kubeConfig).closeIdle();
    return Promise.resolve();
  }

  private async jsonPatch(
    kind: OwnedKind,
    key: ObjectKey,
    body: Operation[],
    status: boolean,
  ): Promise<ApiObject> {
    const k = KINDS[kind];
    const req = {
      group: k.group,
      version: k.version,
      plural: k.plural,
      namespace: ns(kind, key),
      name: key.name,
      body,
    };
    try {
      const o = status
        ? await this.custom.patchNamespacedCustomObjectStatus(req, jsonPatch())
        : await this.custom.patchNamespacedCustomObject(req, jsonPatch());
      const object = keptObject(kind, o as object);
      this.remember(kind, object);
      return object;
    } catch (err) {
      const code = statusCode(err);
      const msg = serverMessage(err);
      if (code === 404) {
        this.recent.delete(recentId(kind, key));
        throw new NotFoundError(kind, key);
      }
      if (code === 409) throw new ConflictError(kind, key, msg);
      // A failed `test` op comes back as a bare 422 ("the server rejected our request due to
      // an error in our request"), like a schema error; tell them apart by re-reading.
      const tested = body.find((op) => op.op === 'test' && op.path === '/metadata/resourceVersion');
      if (code === 422 && tested) {
        const now = await this.get(kind, key).catch(() => undefined);
        if (!now) throw new NotFoundError(kind, key);
        if (now.metadata.resourceVersion !== (tested as { value: unknown }).value) {
          throw new StaleConflict(
            kind,
            key,
            `resourceVersion changed from ${String((tested as { value: unknown }).value)} to ${now.metadata.resourceVersion}`,
            now,
          );
        }
      }
      throw this.wrap(`patch ${status ? 'status of ' : ''}${describeKey(kind, key)}`, err);
    }
  }

  /** The object from the API server; NotFoundError when absent. */
  private async read(kind: OwnedKind, key: ObjectKey): Promise<ApiObject> {
    const o = await this.get(kind, key);
    if (!o) throw new NotFoundError(kind, key);
    return o;
  }

  /** The informers' copy of an object, undefined when no running informer has it. */
  private informed(kind: ApiKind, key: ObjectKey): KubernetesObject | undefined {
    for (const w of this.informers) {
      if (w.kind !== kind || (w.namespace !== undefined && w.namespace !== key.namespace)) continue;
      const o = w.informer.get(key.name, KINDS[kind].namespaced ? key.namespace : undefined);
      if (o) return o;
    }
    return undefined;
  }

  /**
   * The newest copy of an object known without a request, as a base for a guarded patch:
   * with `expectResourceVersion`, only a copy at exactly that version; otherwise the
   * informers' copy, or this adapter's own last read or write while the informers have not
   * moved past it. Undefined when a read is needed.
   */
  private known(kind: OwnedKind, key: ObjectKey, expectResourceVersion?: string): ApiObject | undefined {
    const seen = this.informed(kind, key);
    const id = recentId(kind, key);
    const mine = this.recent.get(id);
    const withKind = (o: KubernetesObject): ApiObject => ({
      ...(o as ApiObject),
      apiVersion: apiVersionOf(kind),
      kind,
    });
    if (expectResourceVersion !== undefined) {
      if (mine?.object.metadata.resourceVersion === expectResourceVersion) return mine.object;
      if (seen?.metadata?.resourceVersion === expectResourceVersion) return withKind(seen);
      return undefined;
    }
    if (!seen) return undefined;
    if (mine && mine.informerRv === seen.metadata?.resourceVersion) return mine.object;
    if (mine) this.recent.delete(id);
    return withKind(seen);
  }

  /**
   * The informer delivered `o`: a copy of ours from before it is one known() would drop when
   * next asked; drop it now, so that the informer's cache is the only copy of a settled object.
   */
  private forgetPassed(kind: ApiKind, o: ApiObject): void {
    const id = recentId(kind, o.metadata);
    const mine = this.recent.get(id);
    if (mine && mine.informerRv !== o.metadata.resourceVersion) this.recent.delete(id);
  }

  private remember(kind: ApiKind, object: ApiObject): void {
    const id = recentId(kind, object.metadata);
    this.recent.delete(id);
    this.recent.set(id, {
      object,
      informerRv: this.informed(kind, object.metadata)?.metadata?.resourceVersion,
    });
    if (this.recent.size > RECENT_LIMIT) {
      const oldest = this.recent.keys().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
  }

  private wrap(what: string, err: unknown): Error {
    if (err instanceof ConflictError || err instanceof NotFoundError || err instanceof ApiError) return err;
    return new ApiError(what, statusCode(err), serverMessage(err), { cause: err });
  }
}

function recentId(kind: ApiKind, key: ObjectKey): string {
  return `${kind}|${KINDS[kind].namespaced ? (key.namespace ?? '') : ''}|${key.name}`;
}

function ns(kind: ApiKind, key: ObjectKey): string {
  if (!key.namespace)
    throw new Error(`${kind} ${key.name}: namespace is required for namespaced kind ${kind}`);
  return key.namespace;
}
