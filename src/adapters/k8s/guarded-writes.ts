/**
 * The write path both ApiSources share (K8sApiSource on client-node, RestApiSource on
 * node:http): guarded JSON Patches and the copies they start from. The transport (how a GET
 * or a PATCH goes out, which watch cache holds what) is the adapter's; what is written and
 * how a conflict is told from a stale copy is here, once.
 *
 * Writes (status, finalizers) are JSON Patches guarded by a `test` of the resourceVersion
 * they were computed from, so a concurrent writer yields a conflict instead of a lost update.
 * They start from the adapter's watched copy (or its own last read or write) without a GET;
 * when that copy was stale the guard fails, and the write is retried once from a fresh read.
 * Errors: 404 → NotFoundError (writes) or undefined (get); 409 and a failed version test →
 * ConflictError; anything else → ApiError with the server's message.
 */
import { randomBytes } from 'node:crypto';
import jsonpatch from 'fast-json-patch';
import {
  ConflictError,
  NotFoundError,
  type ApiEvent,
  type ApiKind,
  type ApiObject,
  type JsonPatchOp,
  type ObjectKey,
  type OwnedKind,
} from '../../core/ports.js';
import { ApiError } from './api-error.js';
import { LOCATIONS, apiVersionOf, describeKey, keptObject } from './kinds.js';

export type Operation = jsonpatch.Operation;

/** What an adapter supplies: its requests, its watch cache and how to read its errors. */
export interface GuardedWriteTransport {
  /** One object from the API server (kept: apiVersion and kind set); rejects with the transport's error. */
  fetch(kind: ApiKind, key: ObjectKey): Promise<ApiObject>;
  /** A JSON Patch (of the status subresource when `status`); the object as written, kept. */
  patch(kind: OwnedKind, key: ObjectKey, body: Operation[], status: boolean): Promise<ApiObject>;
  /** The running watches' copy (apiVersion and kind set), undefined when no watch has it. */
  watched(kind: ApiKind, key: ObjectKey): ApiObject | undefined;
  /** The HTTP status of a transport error, if it has one. */
  statusCode(err: unknown): number | undefined;
  /** The server's message in a transport error. */
  serverMessage(err: unknown): string;
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

export class GuardedWrites {
  /**
   * The last object this adapter read or wrote per key, with the resourceVersion the watch
   * had for it at that moment: while the watch still has that version, this copy is newer.
   */
  private readonly recent = new Map<string, { object: ApiObject; watchedRv: string | undefined }>();

  constructor(private readonly t: GuardedWriteTransport) {}

  /** The object from the API server, undefined when absent. */
  async get(kind: ApiKind, key: ObjectKey): Promise<ApiObject | undefined> {
    try {
      const object = await this.t.fetch(kind, key);
      this.remember(kind, object);
      return object;
    } catch (err) {
      if (this.t.statusCode(err) === 404) {
        this.recent.delete(recentId(kind, key));
        return undefined;
      }
      throw this.wrap(`get ${describeKey(kind, key)}`, err);
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

  /** A watch delivered the deletion of `o`: our copy of it is gone too. */
  watchedDeleted(kind: ApiKind, o: ApiObject): void {
    this.recent.delete(recentId(kind, o.metadata));
  }

  /**
   * A watch delivered `o`: a copy of ours from before it is one known() would drop when next
   * asked; drop it now, so that the watch cache is the only copy of a settled object.
   */
  watchedUpserted(kind: ApiKind, o: ApiObject): void {
    const id = recentId(kind, o.metadata);
    const mine = this.recent.get(id);
    if (mine && mine.watchedRv !== o.metadata.resourceVersion) this.recent.delete(id);
  }

  /** ConflictError, NotFoundError and ApiError as they are; anything else as an ApiError saying `what` failed. */
  wrap(what: string, err: unknown): Error {
    if (err instanceof ConflictError || err instanceof NotFoundError || err instanceof ApiError) return err;
    return new ApiError(what, this.t.statusCode(err), this.t.serverMessage(err), { cause: err });
  }

  /** A JSON Patch of the object itself (not its status), with the guarded writes' error mapping. */
  patchObject(kind: OwnedKind, key: ObjectKey, body: Operation[]): Promise<ApiObject> {
    return this.jsonPatch(kind, key, body, false);
  }

  private async jsonPatch(
    kind: OwnedKind,
    key: ObjectKey,
    body: Operation[],
    status: boolean,
  ): Promise<ApiObject> {
    try {
      const object = await this.t.patch(kind, key, body, status);
      this.remember(kind, object);
      return object;
    } catch (err) {
      const code = this.t.statusCode(err);
      if (code === 404) {
        this.recent.delete(recentId(kind, key));
        throw new NotFoundError(kind, key);
      }
      if (code === 409) throw new ConflictError(kind, key, this.t.serverMessage(err));
      // A failed `test` op comes back as a bare 422 ("the server rejected our request due to
      // an error in our request"), like a schema error; tell them apart by re-reading.
      const tested = body.find((op) => op.op === 'test' && op.path === '/metadata/resourceVersion');
      if (code === 422 && tested) {
        const now = await this.get(kind, key).catch(() => undefined);
        if (!now) throw new NotFoundError(kind, key);
        const was = (tested as { value: unknown }).value;
        if (now.metadata.resourceVersion !== was) {
          throw new StaleConflict(
            kind,
            key,
            `resourceVersion changed from ${String(was)} to ${now.metadata.resourceVersion}`,
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

  /**
   * The newest copy of an object known without a request, as a base for a guarded patch:
   * with `expectResourceVersion`, only a copy at exactly that version; otherwise the watches'
   * copy, or this adapter's own last read or write while the watches have not moved past it.
   * Undefined when a read is needed.
   */
  private known(kind: OwnedKind, key: ObjectKey, expectResourceVersion?: string): ApiObject | undefined {
    const seen = this.t.watched(kind, key);
    const id = recentId(kind, key);
    const mine = this.recent.get(id);
    if (expectResourceVersion !== undefined) {
      if (mine?.object.metadata.resourceVersion === expectResourceVersion) return mine.object;
      if (seen?.metadata.resourceVersion === expectResourceVersion) return seen;
      return undefined;
    }
    if (!seen) return undefined;
    if (mine && mine.watchedRv === seen.metadata.resourceVersion) return mine.object;
    if (mine) this.recent.delete(id);
    return seen;
  }

  /** Keeps `object` as this adapter's newest copy (after a read or a write of its own). */
  remember(kind: ApiKind, object: ApiObject): void {
    const id = recentId(kind, object.metadata);
    this.recent.delete(id);
    this.recent.set(id, {
      object,
      watchedRv: this.t.watched(kind, object.metadata)?.metadata.resourceVersion,
    });
    if (this.recent.size > RECENT_LIMIT) {
      const oldest = this.recent.keys().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
  }
}

/**
 * What both ApiSources share above their transport: `get` and the guarded writes through
 * GuardedWrites, and the Event body. A subclass supplies its requests, its watch cache, how
 * to read its errors and how to post an Event.
 */
export abstract class GuardedApiSource {
  protected readonly writes = new GuardedWrites({
    fetch: (kind, key) => this.fetch(kind, key),
    patch: (kind, key, body, status) => this.sendPatch(kind, key, body, status),
    watched: (kind, key) => this.watched(kind, key),
    statusCode: (err) => this.statusCode(err),
    serverMessage: (err) => this.serverMessage(err),
  });

  protected abstract fetch(kind: ApiKind, key: ObjectKey): Promise<ApiObject>;
  /** Sends one JSON Patch (of the status subresource when `status`); errors as the transport's. */
  protected abstract sendPatch(
    kind: OwnedKind,
    key: ObjectKey,
    body: Operation[],
    status: boolean,
  ): Promise<ApiObject>;
  protected abstract watched(kind: ApiKind, key: ObjectKey): ApiObject | undefined;
  protected abstract statusCode(err: unknown): number | undefined;
  protected abstract serverMessage(err: unknown): string;
  /** Creates the Event (`eventBody`'s) in its namespace. */
  protected abstract postEvent(e: ApiEvent): Promise<void>;
  /** POSTs a Heartline object (apiVersion and kind set) to its collection; the object as created. */
  protected abstract postObject(kind: OwnedKind, namespace: string, body: ApiObject): Promise<object>;
  /** DELETEs a Heartline object, with a uid precondition when given; errors as the transport's. */
  protected abstract sendDelete(
    kind: OwnedKind,
    key: ObjectKey,
    namespace: string,
    uid?: string,
  ): Promise<void>;

  /** Creates a Heartline object: ConflictError when it exists (409). */
  async create(kind: OwnedKind, object: ApiObject): Promise<ApiObject> {
    const key = { namespace: object.metadata.namespace, name: object.metadata.name };
    if (!LOCATIONS[kind].group)
      throw new Error(`create ${describeKey(kind, key)}: only Heartline kinds are created`);
    try {
      const body = { ...object, apiVersion: apiVersionOf(kind), kind };
      const kept = keptObject(kind, await this.postObject(kind, namespaceOf(kind, key), body));
      this.writes.remember(kind, kept);
      return kept;
    } catch (err) {
      if (this.statusCode(err) === 409) throw new ConflictError(kind, key, this.serverMessage(err));
      throw this.writes.wrap(`create ${describeKey(kind, key)}`, err);
    }
  }

  /** A JSON Patch of the object itself, with the guarded writes' error mapping. */
  patch(kind: OwnedKind, key: ObjectKey, ops: JsonPatchOp[]): Promise<ApiObject> {
    return this.writes.patchObject(kind, key, ops as Operation[]);
  }

  /** Deletes a Heartline object: false when it was gone (404); ConflictError when `uid` no longer matches (409). */
  async delete(kind: OwnedKind, key: ObjectKey, options: { uid?: string } = {}): Promise<boolean> {
    if (!LOCATIONS[kind].group)
      throw new Error(`delete ${describeKey(kind, key)}: only Heartline kinds are deleted`);
    try {
      await this.sendDelete(kind, key, namespaceOf(kind, key), options.uid);
      return true;
    } catch (err) {
      const code = this.statusCode(err);
      if (code === 404) return false;
      if (code === 409) throw new ConflictError(kind, key, this.serverMessage(err));
      throw this.writes.wrap(`delete ${describeKey(kind, key)}`, err);
    }
  }

  get(kind: ApiKind, key: ObjectKey): Promise<ApiObject | undefined> {
    return this.writes.get(kind, key);
  }

  patchStatus(
    kind: OwnedKind,
    key: ObjectKey,
    status: unknown,
    options: { expectResourceVersion?: string } = {},
  ): Promise<{ object: ApiObject; changed: boolean }> {
    return this.writes.patchStatus(kind, key, status, options);
  }

  addFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    return this.writes.addFinalizer(kind, key, finalizer);
  }

  removeFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    return this.writes.removeFinalizer(kind, key, finalizer);
  }

  async event(e: ApiEvent): Promise<void> {
    try {
      await this.postEvent(e);
    } catch (err) {
      throw this.writes.wrap(describeEvent(e), err);
    }
  }
}

/**
 * The events.k8s.io/v1 Event both adapters create for `e`: named like the kubelet's events
 * (`<object>.<random hex>`; generateName may not end in '.'), note cut to the API's 1024.
 */
export function eventBody<T>(
  e: ApiEvent,
  reporter: { controller: string; instance: string },
  eventTime: T,
): {
  metadata: { name: string; namespace: string };
  eventTime: T;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  note: string;
  type: string;
  regarding: {
    apiVersion?: string;
    kind?: string;
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
  };
} {
  const m = e.regarding.metadata;
  const namespace = m.namespace ?? 'default';
  return {
    metadata: { name: `${m.name.slice(0, 230)}.${randomBytes(8).toString('hex')}`, namespace },
    eventTime,
    reportingController: reporter.controller,
    reportingInstance: reporter.instance.slice(0, 128),
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
  };
}

/** What an Event failure says it failed at. */
function describeEvent(e: ApiEvent): string {
  const m = e.regarding.metadata;
  return `create Event ${e.reason} for ${e.regarding.kind ?? 'object'} ${m.namespace ?? 'default'}/${m.name}`;
}

/** `kind|namespace|name`, the namespace left out for cluster-scoped kinds. */
function recentId(kind: ApiKind, key: ObjectKey): string {
  return `${kind}|${LOCATIONS[kind].namespaced ? (key.namespace ?? '') : ''}|${key.name}`;
}

/** The namespace of a key of a namespaced kind; naming the kind when it is missing. */
export function namespaceOf(kind: ApiKind, key: ObjectKey): string {
  if (!key.namespace)
    throw new Error(`${kind} ${key.name}: namespace is required for namespaced kind ${kind}`);
  return key.namespace;
}
