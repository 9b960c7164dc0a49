/**
 * Reports this node's entry of each Resource's `status.nodes` (state, since, message, last
 * probe). Writes only on a change of state or of probe outcome, never per probe, and only
 * its own entry: a read-modify-write guarded by resourceVersion, retried on conflict, since
 * every member writes into the same list.
 */
import type { Logger } from 'pino';
import type { Condition, ResourceNodeState } from '../api/index.js';
import { ConflictError, NotFoundError, type ApiSource } from '../core/ports.js';

interface NodeEntry {
  name: string;
  state: ResourceNodeState;
  since?: string;
  message?: string;
  lastProbe?: {
    time: string;
    result: 'success' | 'failure' | 'timeout' | 'error';
    latencyMs?: number;
    message?: string;
    consecutiveFailures?: number;
  };
}

export interface ResourceStatusComponents {
  api: ApiSource;
  log: Logger;
  /** Wall-clock time for status timestamps (not used for any decision). */
  wallNow?: () => Date;
}

export class ResourceStatusReporter {
  private readonly last = new Map<string, string>(); // "ns/name" -> JSON of what we last wrote
  private readonly queue = new Map<string, NodeEntry>();
  private running = false;
  private readonly wallNow: () => Date;

  constructor(
    private readonly c: ResourceStatusComponents,
    private readonly node: string,
  ) {
    this.wallNow = c.wallNow ?? (() => new Date());
  }

  private stamp(): string {
    return this.wallNow()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
  }

  /** A Resource changed state on this node. */
  state(resource: string, state: ResourceNodeState, message?: string): void {
    const prev = this.queue.get(resource) ?? this.parseLast(resource);
    const entry: NodeEntry = {
      ...(prev ?? {}),
      name: this.node,
      state,
      since: prev?.state === state && prev.since ? prev.since : this.stamp(),
    };
    if (message) entry.message = message.slice(0, 1024);
    else delete entry.message;
    this.enqueue(resource, entry);
  }

  /** A probe ran; written only when its outcome differs from the last one written. */
  probe(
    resource: string,
    ok: boolean,
    latencyMs: number,
    message: string,
    consecutiveFailures: number,
  ): void {
    const prev = this.queue.get(resource) ?? this.parseLast(resource);
    const result = ok ? 'success' : 'failure';
    if (
      prev?.lastProbe?.result === result &&
      (ok || prev.lastProbe.consecutiveFailures === consecutiveFailures)
    )
      return;
    const entry: NodeEntry = {
      ...(prev ?? { name: this.node, state: 'running' as const }),
      name: this.node,
      lastProbe: {
        time: this.stamp(),
        result,
        latencyMs: Math.round(latencyMs),
        message: message.slice(0, 1024),
        consecutiveFailures,
      },
    };
    this.enqueue(resource, entry);
  }

  private parseLast(resource: string): NodeEntry | undefined {
    const s = this.last.get(resource);
    return s ? (JSON.parse(s) as NodeEntry) : undefined;
  }

  private enqueue(resource: string, entry: NodeEntry): void {
    this.queue.set(resource, entry);
    if (!this.running) void this.flush();
  }

  private async flush(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.size) {
        const [resource, entry] = this.queue.entries().next().value as [string, NodeEntry];
        this.queue.delete(resource);
        const json = JSON.stringify(entry);
        if (this.last.get(resource) === json) continue;
        await this.write(resource, entry);
        this.last.set(resource, json);
      }
    } finally {
      this.running = false;
    }
  }

  private async write(resource: string, entry: NodeEntry): Promise<void> {
    const [namespace, name] = resource.split('/') as [string, string];
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const cur = await this.c.api.get('Resource', { namespace, name });
        if (!cur) return;
        const status = { ...((cur.status as Record<string, unknown> | undefined) ?? {}) };
        const nodes = ((status.nodes as NodeEntry[] | undefined) ?? []).filter((n) => n.name !== this.node);
        nodes.push(entry);
        nodes.sort((a, b) => a.name.localeCompare(b.name));
        status.nodes = nodes;
        Object.assign(
          status,
          readinessOf(
            nodes,
            status.conditions as Condition[] | undefined,
            cur.metadata.generation,
            this.stamp(),
          ),
        );
        await this.c.api.patchStatus('Resource', { namespace, name }, status, {
          expectResourceVersion: cur.metadata.resourceVersion ?? '',
        });
        return;
      } catch (err) {
        if (err instanceof NotFoundError) return;
        if (err instanceof ConflictError) continue;
        this.c.log.warn({ err, resource }, 'cannot write Resource status');
        return;
      }
    }
    this.c.log.warn({ resource }, 'Resource status: too many conflicts, giving up this update');
  }
}

/**
 * The aggregate part of a Resource's status (kstatus): condition Ready, status.summary and
 * status.observedGeneration, from the per-node entries. Every agent computes it in the same
 * guarded read-modify-write as its own entry, so the last writer's view is the whole list.
 * Ready is True while it runs on some node and has failed on none, False otherwise (reason
 * Failed or NotRunning).
 */
export function readinessOf(
  nodes: readonly NodeEntry[],
  prev: readonly Condition[] | undefined,
  generation: number | undefined,
  nowIso: string,
): { conditions: Condition[]; summary: { running: string }; observedGeneration?: number } {
  const running = nodes.filter((n) => n.state === 'running').map((n) => n.name);
  const failed = nodes.filter((n) => n.state === 'failed');
  const [status, reason, message]: [Condition['status'], string, string] =
    failed.length > 0
      ? [
          'False',
          'Failed',
          `failed on ${failed.map((n) => (n.message ? `${n.name} (${n.message})` : n.name)).join(', ')}`,
        ]
      : running.length > 0
        ? ['True', 'Running', `running on ${running.join(', ')}`]
        : ['False', 'NotRunning', 'not running on any node (its VirtualIP has no holder, or it is stopped)'];
  const old = prev?.find((c) => c.type === 'Ready');
  const ready: Condition = {
    type: 'Ready',
    status,
    reason,
    message: message.slice(0, 32768),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : nowIso,
  };
  return {
    conditions: [...(prev ?? []).filter((c) => c.type !== 'Ready'), ready],
    summary: { running: running.join(',') },
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}
