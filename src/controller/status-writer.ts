/**
 * Status writes, coalesced: a write happens only when the desired status differs from the
 * last one written (or read), and at most once per object per `minIntervalMs`; a change
 * that comes sooner is deferred and the caller requeues the object for when the interval
 * ends, so a burst of changes costs one write with the latest state.
 *
 * One write per interval may go early: `{ now: true }` marks news the rate limit must not
 * hold back (a VIP bound again, just after its "no holder" was written when its holder died).
 * An object therefore gets at most two writes per interval, never more.
 */
import type { ApiSource, Clock, Millis, ObjectKey, OwnedKind } from '../core/ports.js';
import { NotFoundError } from '../core/ports.js';

/** Deep equality of JSON values, key order ignored. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export type WriteOutcome =
  | { outcome: 'unchanged' }
  | { outcome: 'written' }
  | { outcome: 'deferred'; retryInMs: Millis }
  | { outcome: 'gone' };

export class StatusWriter {
  private readonly last = new Map<string, { at: Millis; status: unknown; early: boolean }>();

  constructor(
    private readonly api: ApiSource,
    private readonly clock: Clock,
    private readonly minIntervalMs: Millis = 250,
  ) {}

  private id(kind: OwnedKind, key: ObjectKey): string {
    return `${kind}|${key.namespace ?? ''}/${key.name}`;
  }

  /** The status to compare against: the last one this writer wrote, else what the cache holds. */
  base<T>(kind: OwnedKind, key: ObjectKey, cached: unknown): T | undefined {
    const l = this.last.get(this.id(kind, key));
    return (l ? l.status : cached) as T | undefined;
  }

  /**
   * Writes `desired` unless it is what was last written (or, before any write, `cached`).
   * `opts.now`: go early, inside the interval, unless the last write already did.
   */
  async write(
    kind: OwnedKind,
    key: ObjectKey,
    cached: unknown,
    desired: unknown,
    opts: { now?: boolean } = {},
  ): Promise<WriteOutcome> {
    const id = this.id(kind, key);
    const l = this.last.get(id);
    if (jsonEqual(l ? l.status : (cached ?? {}), desired)) return { outcome: 'unchanged' };
    const now = this.clock.now();
    const early = l !== undefined && now - l.at < this.minIntervalMs;
    if (l && early && (!opts.now || l.early))
      return { outcome: 'deferred', retryInMs: l.at + this.minIntervalMs - now };
    try {
      await this.api.patchStatus(kind, key, desired);
    } catch (err) {
      if (err instanceof NotFoundError) {
        this.last.delete(id);
        return { outcome: 'gone' };
      }
      throw err;
    }
    this.last.set(id, { at: this.clock.now(), status: desired, early });
    return { outcome: 'written' };
  }

  /** Forgets an object (deleted). */
  forget(kind: OwnedKind, key: ObjectKey): void {
    this.last.delete(this.id(kind, key));
  }

  /** Forgets everything (leadership lost: another instance may write meanwhile). */
  reset(): void {
    this.last.clear();
  }
}
