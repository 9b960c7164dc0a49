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
import { pino, type Logger } from 'pino';
import {
  type ApiEvent,
  type ApiKind,
  type ApiObject,
  type ApiSource,
  type Clock,
  type ObjectWriter,
  type Millis,
  ObjectKey,
  OwnedKind,
  Stoppable,
  WatchEvent,
  WatchOptions,
} from '../../core/ports.js';
import { ApiError } from './api-error.js';
import { connectionPool, makeApiClient, watchKubeConfig } from './connections.js';
import { eventBody, GuardedApiSource, namespaceOf as ns, type Operation } from './guarded-writes.js';
import { LOCATIONS, apiVersionOf, collectionPath, keptObject } from './kinds.js';

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
 * Writes (status, finalizers) are guarded JSON Patches starting from the informers' copy
 * (guarded-writes.ts, shared with RestApiSource). `get` and `list` always read the API server.
 */
export class K8sApiSource extends GuardedApiSource implements ApiSource, ObjectWriter {
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
  constructor(
    private readonly components: K8sApiSourceComponents,
    private readonly init: K8sApiSourceInit,
  ) {
    super();
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
      if (type === 'deleted') this.writes.watchedDeleted(kind, object);
      else this.writes.watchedUpserted(kind, object);
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

  protected async fetch(kind: ApiKind, key: ObjectKey): Promise<ApiObject> {
    const k = LOCATIONS[kind];
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
    } else if (kind === 'Service') {
      o = await this.core.readNamespacedService({ name: key.name, namespace: ns(kind, key) });
    } else {
      o = await this.core.readNamespacedSecret({ name: key.name, namespace: ns(kind, key) });
    }
    return keptObject(kind, o as object);
  }

  async list(kind: ApiKind, options: WatchOptions = {}): Promise<ApiObject[]> {
    return (await this.rawList(kind, options)).items;
  }

  private async rawList(
    kind: ApiKind,
    options: WatchOptions,
  ): Promise<{ metadata?: { resourceVersion?: string }; items: ApiObject[] }> {
    const k = LOCATIONS[kind];
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
      } else if (kind === 'Service') {
        list = (
          options.namespace
            ? await this.core.listNamespacedService({ namespace: options.namespace, ...sel })
            : await this.core.listServiceForAllNamespaces(sel)
        ) as typeof list;
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
      throw this.writes.wrap(`list ${kind}${options.namespace ? ` in ${options.namespace}` : ''}`, err);
    }
  }

  protected async postEvent(e: ApiEvent): Promise<void> {
    const body = eventBody(
      e,
      { controller: this.reportingController, instance: this.init.identity },
      new V1MicroTime(),
    );
    await this.events.createNamespacedEvent({ namespace: body.metadata.namespace, body });
  }

  protected watched(kind: ApiKind, key: ObjectKey): ApiObject | undefined {
    const o = this.informed(kind, key);
    return o ? { ...(o as ApiObject), apiVersion: apiVersionOf(kind), kind } : undefined;
  }

  protected statusCode(err: unknown): number | undefined {
    return statusCode(err);
  }

  protected serverMessage(err: unknown): string {
    return serverMessage(err);
  }

  protected postObject(kind: OwnedKind, namespace: string, body: ApiObject): Promise<object> {
    const k = LOCATIONS[kind];
    return this.custom.createNamespacedCustomObject({
      group: k.group,
      version: k.version,
      plural: k.plural,
      namespace,
      body,
    }) as Promise<object>;
  }

  protected async sendDelete(
    kind: OwnedKind,
    key: ObjectKey,
    namespace: string,
    uid?: string,
  ): Promise<void> {
    const k = LOCATIONS[kind];
    await this.custom.deleteNamespacedCustomObject({
      group: k.group,
      version: k.version,
      plural: k.plural,
      namespace,
      name: key.name,
      ...(uid ? { body: { preconditions: { uid } } } : {}),
    });
  }

  close(): Promise<void> {
    for (const w of [...this.watches]) w.stop();
    connectionPool(this.components.kubeConfig).closeIdle();
    return Promise.resolve();
  }

  protected async sendPatch(
    kind: OwnedKind,
    key: ObjectKey,
    body: Operation[],
    status: boolean,
  ): Promise<ApiObject> {
    const k = LOCATIONS[kind];
    const req = {
      group: k.group,
      version: k.version,
      plural: k.plural,
      namespace: ns(kind, key),
      name: key.name,
      body,
    };
    const svc = { name: key.name, namespace: ns(kind, key), body };
    const o =
      kind === 'Service'
        ? status
          ? await this.core.patchNamespacedServiceStatus(svc, jsonPatch())
          : await this.core.patchNamespacedService(svc, jsonPatch())
        : status
          ? await this.custom.patchNamespacedCustomObjectStatus(req, jsonPatch())
          : await this.custom.patchNamespacedCustomObject(req, jsonPatch());
    return keptObject(kind, o as object);
  }

  /** The informers' copy of an object, undefined when no running informer has it. */
  private informed(kind: ApiKind, key: ObjectKey): KubernetesObject | undefined {
    for (const w of this.informers) {
      if (w.kind !== kind || (w.namespace !== undefined && w.namespace !== key.namespace)) continue;
      const o = w.informer.get(key.name, LOCATIONS[kind].namespaced ? key.namespace : undefined);
      if (o) return o;
    }
    return undefined;
  }
}
