/**
 * A rate-limited work queue keyed by object, as client-go's workqueue: a key waiting in
 * the queue is there once however often it is added; a key being processed is never handed
 * out twice at once (an add while it runs marks it dirty and it comes back after `done`);
 * failures requeue with per-key exponential backoff until `forget`.
 *
 * Two priorities: a key added `urgent` (an observed change of holder) is handed out before
 * every ordinary key (a resync or a sweep over a cluster's VIPs), in the order the urgent adds
 * came; an urgent add of a key already waiting as ordinary moves it up. Urgency survives a
 * delay: `addAfter(key, ms, true)` comes back urgent, and `takenUrgent` tells a worker whether
 * the key it holds was handed out urgent, so that a reconcile deferred by a rate limit (a status
 * write within `statusIntervalMs` of the last) does not come back behind a sweep.
 */
import type { Clock, Millis, Stoppable } from '../core/ports.js';

/**
 * What a queue reports for client-go's workqueue metrics (workqueue_*): each key queued,
 * how long it waited before a worker took it, how long the worker held it, each retry.
 */
export interface WorkQueueMetrics {
  added(): void;
  taken(waitedMs: Millis): void;
  finished(workedMs: Millis): void;
  retried(): void;
}

export interface WorkQueueInit {
  /** Where the queue's activity is counted (default: nowhere). */
  metrics?: WorkQueueMetrics;
  /** First retry delay after a failure. Default 50 ms. */
  baseDelayMs?: Millis;
  /** Largest retry delay. Default 30 s. */
  maxDelayMs?: Millis;
}

export class WorkQueue<K extends string = string> {
  private readonly queue: K[] = [];
  private readonly urgentQueue: K[] = [];
  private readonly queued = new Set<K>();
  private readonly urgentKeys = new Set<K>();
  /** Dirty keys (added while processing) whose add was urgent. */
  private readonly dirtyUrgent = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly dirty = new Set<K>();
  private readonly failures = new Map<K, number>();
  private readonly delayed = new Map<K, { at: Millis; urgent: boolean; timer: Stoppable }>();
  /** Keys being processed that were handed out urgent. */
  private readonly urgentTaken = new Set<K>();
  /** When each waiting key was queued, and each key being processed was taken. */
  private readonly queuedAt = new Map<K, Millis>();
  private readonly takenAt = new Map<K, Millis>();
  private readonly metrics: WorkQueueMetrics | undefined;
  private readonly waiters: Array<(k: K | undefined) => void> = [];
  private shuttingDown = false;
  private readonly baseDelayMs: Millis;
  private readonly maxDelayMs: Millis;

  constructor(
    private readonly clock: Clock,
    init: WorkQueueInit = {},
  ) {
    this.baseDelayMs = init.baseDelayMs ?? 50;
    this.maxDelayMs = init.maxDelayMs ?? 30_000;
    this.metrics = init.metrics;
  }

  /** Keys being processed and since when, for the unfinished-work metrics. */
  inProgress(): { count: number; totalMs: Millis; longestMs: Millis } {
    const now = this.clock.now();
    let totalMs = 0;
    let longestMs = 0;
    for (const at of this.takenAt.values()) {
      totalMs += now - at;
      longestMs = Math.max(longestMs, now - at);
    }
    return { count: this.takenAt.size, totalMs, longestMs };
  }

  private take(key: K, urgent: boolean): void {
    const now = this.clock.now();
    this.processing.add(key);
    if (urgent) this.urgentTaken.add(key);
    this.takenAt.set(key, now);
    this.metrics?.taken(now - (this.queuedAt.get(key) ?? now));
    this.queuedAt.delete(key);
  }

  /** Urgent keys waiting, being processed, or delayed (a deferred urgent key). */
  get urgentBacklog(): number {
    let delayedUrgent = 0;
    for (const d of this.delayed.values()) if (d.urgent) delayedUrgent += 1;
    return this.urgentQueue.length + this.urgentTaken.size + delayedUrgent;
  }

  /** Keys waiting (not counting delayed or in-flight ones). */
  get length(): number {
    return this.queue.length + this.urgentQueue.length;
  }

  /** Queues `key`; `urgent` keys are handed out before ordinary ones (see the class comment). */
  add(key: K, urgent = false): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      if (urgent) this.dirtyUrgent.add(key);
      return;
    }
    if (this.queued.has(key)) {
      if (urgent && !this.urgentKeys.has(key)) {
        const i = this.queue.indexOf(key);
        if (i >= 0) this.queue.splice(i, 1);
        this.urgentKeys.add(key);
        this.urgentQueue.push(key);
      }
      return;
    }
    this.metrics?.added();
    this.queuedAt.set(key, this.clock.now());
    const w = this.waiters.shift();
    if (w) {
      this.take(key, urgent);
      w(key);
      return;
    }
    this.queued.add(key);
    if (urgent) {
      this.urgentKeys.add(key);
      this.urgentQueue.push(key);
    } else {
      this.queue.push(key);
    }
  }

  /**
   * Adds `key` after `ms` (`urgent`: as `add(key, true)`); an earlier pending delayed add wins
   * over a later one, and keeps the urgency of either.
   */
  addAfter(key: K, ms: Millis, urgent = false): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key, urgent);
      return;
    }
    const at = this.clock.now() + ms;
    const prev = this.delayed.get(key);
    if (prev && prev.at <= at) {
      if (urgent) prev.urgent = true;
      return;
    }
    prev?.timer.stop();
    const entry = { at, urgent: urgent || (prev?.urgent ?? false), timer: undefined as unknown as Stoppable };
    entry.timer = this.clock.after(ms, () => {
      this.delayed.delete(key);
      this.add(key, entry.urgent);
    });
    this.delayed.set(key, entry);
  }

  /** Whether `key`, being processed, was handed out urgent (see the class comment). */
  takenUrgent(key: K): boolean {
    return this.urgentTaken.has(key);
  }

  /** Requeues `key` with exponential backoff (base * 2^failures, capped). Returns the delay. */
  addRateLimited(key: K): Millis {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.metrics?.retried();
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(n, 30));
    this.addAfter(key, delay);
    return delay;
  }

  /** Failures recorded for `key` since the last `forget`. */
  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Clears the backoff of `key` (it succeeded, or was given up). */
  forget(key: K): void {
    this.failures.delete(key);
  }

  /** Next key to process; resolves `undefined` once the queue shuts down. */
  get(): Promise<K | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.urgentQueue.shift() ?? this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      const urgent = this.urgentKeys.delete(key);
      this.take(key, urgent);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` processed; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    const at = this.takenAt.get(key);
    if (at !== undefined) this.metrics?.finished(this.clock.now() - at);
    this.takenAt.delete(key);
    this.processing.delete(key);
    this.urgentTaken.delete(key);
    const urgent = this.dirtyUrgent.delete(key);
    if (this.dirty.delete(key)) this.add(key, urgent);
  }

  /** Stops handing out keys; pending `get`s resolve undefined, delayed adds are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) d.timer.stop();
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    this.queue.length = 0;
    this.urgentQueue.length = 0;
    this.urgentKeys.clear();
    this.urgentTaken.clear();
    this.dirtyUrgent.clear();
    this.queued.clear();
    this.queuedAt.clear();
  }
}
