import { pino, type Logger } from 'pino';
import {
  NotFoundError,
  type ApiEvent,
  type ApiKind,
  type ApiObject,
  type ApiSource,
  type Clock,
  type Millis,
  type ObjectWriter,
  type ObjectKey,
  type OwnedKind,
  type Stoppable,
  type WatchEvent,
  type WatchOptions,
} from '../../core/ports.js';
import { ApiError } from './api-error.js';
import { eventBody, GuardedApiSource, namespaceOf as ns, type Operation } from './guarded-writes.js';
import { LOCATIONS, collectionPath, keptObject } from './kinds.js';
import type { RestConfig } from './kubeconfig.js';
import {
  HttpStatusError,
  RestClient,
  serverMessageOf,
  type RestClientStats,
  type WatchStream,
} from './rest-client.js';

export interface RestApiSourceComponents {
  config: RestConfig;
  clock: Clock;
  logger?: Logger;
}

export interface RestApiSourceInit {
  /** Who reports Events (reportingInstance), e.g. the node name. */
  identity: string;
  /** reportingController of Events. Default heartline.dev/controller. */
  reportingController?: string;
  /** Period of `resync` re-delivery of cached objects; 0 disables. Default 300000. */
  resyncMs?: Millis;
  /** Watch restart backoff after an error: first delay and cap. Default 200 / 30000 ms. */
  backoffInitialMs?: Millis;
  backoffMaxMs?: Millis;
  /**
   * The server ends each watch after `timeoutSeconds`, drawn from [this, 2 × this) so that
   * watches do not all restart at once; the watch then resumes from the last version seen.
   * A watch silent for that long plus a minute is presumed dead and restarted. Default 300.
   */
  watchTimeoutSeconds?: number;
  /** A request with no answer for this long fails. Default 30000. */
  requestTimeoutMs?: Millis;
}

interface ListBody {
  metadata?: { resourceVersion?: string };
  items?: ApiObject[];
}

/** One line of a watch stream. */
interface WatchLine {
  type?: string;
  object?: ApiObject & { code?: number; reason?: string; message?: string };
}

/**
 * The ApiSource on the Kubernetes REST API itself (node:http / node:https), without
 * @kubernetes/client-node: what the agent uses, so that it stays small (docs/adr/0007). It
 * behaves as K8sApiSource does, and the same contract suite holds both to that:
 *
 * - A watch lists, delivers every object (added, or updated / deleted against what it had
 *   before a relist), reports `synced` once the watch stream is open, and then follows the
 *   stream from the list's resourceVersion with bookmarks. A stream the server ends resumes
 *   from the last version seen; a 410 Gone (as an answer or an ERROR event) relists at once;
 *   any other failure (list or watch rejected, connection lost, ERROR event, garbage) restarts
 *   after an exponential backoff, resuming from the last version seen, and reports `synced`
 *   again. `resync` re-delivers the cache periodically.
 * - Writes (status, finalizers) are guarded JSON Patches starting from the watches' copy, and
 *   errors are mapped, by the code K8sApiSource uses too (guarded-writes.ts). `get` and `list`
 *   always read the API server.
 * - As an ObjectWriter (the controller's LoadBalancer Services, docs/adr/0038) it creates,
 *   patches and deletes Heartline objects through the same code as K8sApiSource.
 *
 * Size: one adapter whose reflector (list, watch, resume, relist, resync) is most of it; the
 * writes are guarded-writes.ts's.
 */
export class RestApiSource extends GuardedApiSource implements ApiSource, ObjectWriter {
  private readonly client: RestClient;
  private readonly logger: Logger;
  private readonly resyncMs: Millis;
  private readonly backoffInitialMs: Millis;
  private readonly backoffMaxMs: Millis;
  private readonly watchTimeoutSeconds: number;
  private readonly reportingController: string;
  private readonly reflectors = new Set<Reflector>();
  constructor(
    private readonly components: RestApiSourceComponents,
    private readonly init: RestApiSourceInit,
  ) {
    super();
    this.client = new RestClient(components.config, {
      userAgent: 'heartline-rest',
      ...(init.requestTimeoutMs !== undefined ? { requestTimeoutMs: init.requestTimeoutMs } : {}),
    });
    this.logger = (components.logger ?? pino({ name: 'heartline.k8s' })).child({ component: 'api-source' });
    this.resyncMs = init.resyncMs ?? 300_000;
    this.backoffInitialMs = init.backoffInitialMs ?? 200;
    this.backoffMaxMs = init.backoffMaxMs ?? 30_000;
    this.watchTimeoutSeconds = init.watchTimeoutSeconds ?? 300;
    this.reportingController = init.reportingController ?? 'heartline.dev/controller';
  }

  /** Requests, watches and the connections they opened (for tests and diagnostics). */
  stats(): RestClientStats {
    return this.client.stats();
  }

  watch(kind: ApiKind, handler: (event: WatchEvent) => void, options: WatchOptions = {}): Stoppable {
    const reflector = new Reflector({
      kind,
      options,
      client: this.client,
      clock: this.components.clock,
      log: this.logger.child({ kind, namespace: options.namespace }),
      list: () => this.rawList(kind, options),
      handler,
      onDeleted: (o) => this.writes.watchedDeleted(kind, o),
      onUpserted: (o) => this.writes.watchedUpserted(kind, o),
      onStop: () => this.reflectors.delete(reflector),
      resyncMs: this.resyncMs,
      backoffInitialMs: this.backoffInitialMs,
      backoffMaxMs: this.backoffMaxMs,
      watchTimeoutSeconds: this.watchTimeoutSeconds,
    });
    this.reflectors.add(reflector);
    reflector.start();
    return { stop: () => reflector.stop() };
  }

  protected async fetch(kind: ApiKind, key: ObjectKey): Promise<ApiObject> {
    const k = LOCATIONS[kind];
    const path = `${collectionPath(kind, k.namespaced ? ns(kind, key) : undefined)}/${encodeURIComponent(key.name)}`;
    return keptObject(kind, await this.client.request<ApiObject>('GET', path));
  }

  async list(kind: ApiKind, options: WatchOptions = {}): Promise<ApiObject[]> {
    return (await this.rawList(kind, options)).items;
  }

  private async rawList(
    kind: ApiKind,
    options: WatchOptions,
  ): Promise<{ metadata?: { resourceVersion?: string }; items: ApiObject[] }> {
    try {
      const list = await this.client.request<ListBody>('GET', collectionPath(kind, options.namespace), {
        query: { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector },
      });
      return {
        ...(list.metadata ? { metadata: list.metadata } : {}),
        items: (list.items ?? []).map((o) => keptObject(kind, o)),
      };
    } catch (err) {
      throw this.writes.wrap(`list ${kind}${options.namespace ? ` in ${options.namespace}` : ''}`, err);
    }
  }

  protected async postEvent(e: ApiEvent): Promise<void> {
    const body = eventBody(
      e,
      { controller: this.reportingController, instance: this.init.identity },
      microTime(new Date()),
    );
    await this.client.request(
      'POST',
      `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(body.metadata.namespace)}/events`,
      { body: { apiVersion: 'events.k8s.io/v1', kind: 'Event', ...body } },
    );
  }

  protected statusCode(err: unknown): number | undefined {
    return statusCode(err);
  }

  protected serverMessage(err: unknown): string {
    return serverMessage(err);
  }

  /**
   * Sets annotations on Node `name` with a JSON merge patch of metadata.annotations only (no
   * resourceVersion guard: only these keys change). The agent publishes its member key this
   * way; RBAC grants patch on nodes and the admission policy heartline-agent-member-key
   * limits it to that annotation on the agent's own node (docs/adr/0021).
   */
  async annotateNode(name: string, annotations: Record<string, string>): Promise<void> {
    try {
      await this.client.request('PATCH', `${collectionPath('Node')}/${encodeURIComponent(name)}`, {
        body: { metadata: { annotations } },
        contentType: 'application/merge-patch+json',
      });
    } catch (err) {
      if (statusCode(err) === 404) throw new NotFoundError('Node', { name });
      throw this.writes.wrap(`annotate Node ${name}`, err);
    }
  }

  protected postObject(kind: OwnedKind, namespace: string, body: ApiObject): Promise<object> {
    return this.client.request<ApiObject>('POST', collectionPath(kind, namespace), { body });
  }

  protected async sendDelete(
    kind: OwnedKind,
    key: ObjectKey,
    namespace: string,
    uid?: string,
  ): Promise<void> {
    const preconditions = uid
      ? { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid } }
      : undefined;
    await this.client.request(
      'DELETE',
      `${collectionPath(kind, namespace)}/${encodeURIComponent(key.name)}`,
      preconditions ? { body: preconditions } : {},
    );
  }

  close(): Promise<void> {
    for (const r of [...this.reflectors]) r.stop();
    this.client.closeIdle();
    return Promise.resolve();
  }

  protected async sendPatch(
    kind: OwnedKind,
    key: ObjectKey,
    body: Operation[],
    status: boolean,
  ): Promise<ApiObject> {
    const path = `${collectionPath(kind, ns(kind, key))}/${encodeURIComponent(key.name)}${status ? '/status' : ''}`;
    const o = await this.client.request<ApiObject>('PATCH', path, {
      body,
      contentType: 'application/json-patch+json',
    });
    return keptObject(kind, o);
  }

  /** The watches' copy of an object, undefined when no running watch has it. */
  protected watched(kind: ApiKind, key: ObjectKey): ApiObject | undefined {
    for (const r of this.reflectors) {
      if (r.kind !== kind || (r.namespace !== undefined && r.namespace !== key.namespace)) continue;
      const o = r.get(key);
      if (o) return o;
    }
    return undefined;
  }
}

interface ReflectorInit {
  kind: ApiKind;
  options: WatchOptions;
  client: RestClient;
  clock: Clock;
  log: Logger;
  list: () => Promise<{ metadata?: { resourceVersion?: string }; items: ApiObject[] }>;
  handler: (event: WatchEvent) => void;
  onDeleted: (object: ApiObject) => void;
  /** After an add or update reached the cache (before the handler sees it). */
  onUpserted: (object: ApiObject) => void;
  onStop: () => void;
  resyncMs: Millis;
  backoffInitialMs: Millis;
  backoffMaxMs: Millis;
  watchTimeoutSeconds: number;
}

/** A watch that ended cleanly sooner than this, having seen nothing, counts as a failure. */
const MIN_CLEAN_WATCH_MS = 1000;

/** One watch: list, then follow the stream; keeps the objects as the stream has them. */
class Reflector {
  readonly kind: ApiKind;
  readonly namespace: string | undefined;
  private readonly objects = new Map<string, ApiObject>();
  private readonly path: string;
  private rv = '';
  private stopped = false;
  private running = false;
  /** Report `synced` once the next watch stream opens (after a start, a restart or a relist). */
  private announce = true;
  private backoff: Millis;
  private restartTimer: Stoppable | undefined;
  private stream: WatchStream | undefined;
  private readonly resync: Stoppable | undefined;

  constructor(private readonly r: ReflectorInit) {
    this.kind = r.kind;
    this.namespace = r.options.namespace;
    this.path = collectionPath(r.kind, r.options.namespace);
    this.backoff = r.backoffInitialMs;
    this.resync =
      r.resyncMs > 0
        ? r.clock.every(r.resyncMs, () => {
            for (const o of [...this.objects.values()]) this.deliver({ type: 'resync', object: o });
          })
        : undefined;
  }

  get(key: ObjectKey): ApiObject | undefined {
    return this.objects.get(cacheKey(this.kind, key));
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.restartTimer?.stop();
    this.restartTimer = undefined;
    this.resync?.stop();
    this.stream?.abort();
    this.stream = undefined;
    this.r.onStop();
  }

  /** Lists (when there is no version to resume from), then opens the watch stream. */
  private async run(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    try {
      if (!this.rv) {
        let list;
        try {
          list = await this.r.list();
        } catch (err) {
          this.fail(err);
          return;
        }
        if (this.stopped) return;
        this.replace(list.items);
        this.rv = list.metadata?.resourceVersion ?? '';
        this.announce = true;
      }
      this.openWatch();
    } finally {
      this.running = false;
    }
  }

  private openWatch(): void {
    const opened = this.r.clock.now();
    let lines = 0;
    const timeoutSeconds = Math.floor(this.r.watchTimeoutSeconds * (1 + Math.random()));
    this.stream = this.r.client.watch(
      this.path,
      {
        resourceVersion: this.rv,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(timeoutSeconds),
        labelSelector: this.r.options.labelSelector,
        fieldSelector: this.r.options.fieldSelector,
      },
      {
        onOpen: () => {
          if (!this.announce) return;
          this.announce = false;
          this.deliver({ type: 'synced' });
        },
        onLine: (line) => {
          lines++;
          this.onLine(line);
        },
        onEnd: (err) => {
          this.stream = undefined;
          if (this.stopped) return;
          if (err) {
            if (statusCode(err) === 410) return this.relist('watch answered 410 Gone');
            return this.fail(err);
          }
          if (lines === 0 && this.r.clock.now() - opened < MIN_CLEAN_WATCH_MS)
            return this.fail(new Error('the API server ended the watch at once'));
          void this.run(); // the server's timeout: resume from the last version seen
        },
      },
      (timeoutSeconds + 60) * 1000,
    );
  }

  private onLine(line: string): void {
    let event: WatchLine;
    try {
      event = JSON.parse(line) as WatchLine;
    } catch {
      return this.abortWith(new Error(`watch sent a line that is not JSON: ${line.slice(0, 200)}`));
    }
    const o = event.object;
    if (!o || typeof o !== 'object') {
      return this.abortWith(new Error(`watch sent an event without an object: ${line.slice(0, 200)}`));
    }
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED':
        this.backoff = this.r.backoffInitialMs;
        this.upsert(this.withKind(o));
        break;
      case 'DELETED': {
        this.backoff = this.r.backoffInitialMs;
        const object = this.withKind(o);
        const id = cacheKey(this.kind, object.metadata);
        if (this.objects.delete(id)) {
          this.r.onDeleted(object);
          this.deliver({ type: 'deleted', object });
        }
        break;
      }
      case 'BOOKMARK':
        break;
      case 'ERROR':
        // A Status: 410 (Expired / Gone) means our version is too old to resume from.
        if (o.code === 410 || o.reason === 'Expired' || o.reason === 'Gone')
          return this.relist(`watch ERROR event: ${o.message ?? 'resource version too old'}`);
        return this.abortWith(new ApiError(`watch ${this.kind}`, o.code, o.message ?? JSON.stringify(o)));
      default:
        this.r.log.debug({ type: event.type }, 'unknown watch event type ignored');
        return;
    }
    const rv = o.metadata?.resourceVersion;
    if (rv) this.rv = rv;
  }

  private withKind(o: ApiObject): ApiObject {
    return keptObject(this.kind, o);
  }

  /** The list replaces the cache: what is gone is deleted, the rest added or updated. */
  private replace(items: ApiObject[]): void {
    const fresh = new Set(items.map((o) => cacheKey(this.kind, o.metadata)));
    for (const [id, old] of [...this.objects]) {
      if (fresh.has(id)) continue;
      this.objects.delete(id);
      this.r.onDeleted(old);
      this.deliver({ type: 'deleted', object: old });
    }
    for (const o of items) this.upsert(o);
  }

  private upsert(object: ApiObject): void {
    const id = cacheKey(this.kind, object.metadata);
    const had = this.objects.get(id);
    const rv = object.metadata.resourceVersion;
    if (had && rv !== undefined && had.metadata.resourceVersion === rv) return;
    this.objects.set(id, object);
    this.r.onUpserted(object);
    this.deliver({ type: had ? 'updated' : 'added', object });
  }

  private abortWith(err: Error): void {
    this.stream?.abort();
    this.stream = undefined;
    this.fail(err);
  }

  /** The version is too old: list again at once (no backoff). */
  private relist(why: string): void {
    this.stream?.abort();
    this.stream = undefined;
    this.r.log.info({ why }, 'watch expired; relisting');
    this.rv = '';
    void this.run();
  }

  /** Restarts after the backoff, resuming from the last version seen. */
  private fail(err: unknown): void {
    if (this.stopped || this.restartTimer) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.r.backoffMaxMs);
    this.announce = true;
    this.r.log.warn({ err, retryInMs: delay }, 'watch failed; restarting');
    this.restartTimer = this.r.clock.after(delay, () => {
      this.restartTimer = undefined;
      void this.run();
    });
  }

  private deliver(event: WatchEvent): void {
    if (this.stopped) return;
    try {
      this.r.handler(event);
    } catch (err) {
      this.r.log.error({ err, event: event.type }, 'watch handler failed');
    }
  }
}

/** An ISO time with microseconds, as events.k8s.io/v1 eventTime (MicroTime) wants it. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function statusCode(err: unknown): number | undefined {
  if (err instanceof HttpStatusError) return err.code;
  if (err instanceof ApiError) return err.code;
  return undefined;
}

function serverMessage(err: unknown): string {
  if (err instanceof HttpStatusError) return serverMessageOf(err.body) ?? `HTTP ${err.code}`;
  return err instanceof Error ? err.message : String(err);
}

function cacheKey(kind: ApiKind, key: ObjectKey): string {
  return `${LOCATIONS[kind].namespaced ? (key.namespace ?? '') : ''}/${key.name}`;
}
