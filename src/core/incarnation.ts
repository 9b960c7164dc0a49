/**
 * Incarnations: a member's life number (uint32), strictly newer on every restart. They are
 * compared in serial-number arithmetic (RFC 1982, as TCP sequence numbers): `a` is a later
 * life than `b` when `a - b mod 2^32` is in (0, 2^31). So the value may wrap past 2^32 - 1
 * (a wall-clock source in deciseconds wraps in 2037; a counter seeded from it wraps later)
 * and comparisons stay right as long as the lives compared are less than 2^31 apart.
 *
 * 0 is never an incarnation: it means "no life known" and is older than every life.
 * Where incarnations come from (a counter persisted on the node, docs/adr/0015) is the
 * runtime's business; the core only compares them.
 */
import type { Incarnation } from './messages.js';

/** "No life known"; never used as an incarnation. */
export const NO_INCARNATION = 0;

const HALF = 0x80000000;

/** `a` is a later life than `b` (0 is older than every life). */
export function laterLife(a: Incarnation, b: Incarnation): boolean {
  if (a === b || a === NO_INCARNATION) return false;
  if (b === NO_INCARNATION) return true;
  const d = (a - b) >>> 0;
  return d !== 0 && d < HALF;
}

/** The life after `i` (wraps past 2^32 - 1 and skips 0). */
export function nextIncarnation(i: Incarnation): Incarnation {
  const n = (i + 1) >>> 0;
  return n === NO_INCARNATION ? 1 : n;
}

/**
 * An incarnation from the wall clock: deciseconds since 2024-01-01 modulo 2^32, never 0.
 * Only a seed: where lives must be ordered across restarts it depends on the clock never
 * going back, which nothing guarantees. The agent uses it only when its persisted counter is
 * lost (first start, wiped disk); the controller, which has no node-local storage, for each
 * life of its observer and witness (see docs/adr/0015).
 */
export function incarnationFromWallClock(nowMs: number): Incarnation {
  const ds = Math.floor((nowMs - Date.UTC(2024, 0, 1)) / 100);
  const n = ((ds % 0x100000000) + 0x100000000) % 0x100000000;
  return n === NO_INCARNATION ? 1 : n;
}
