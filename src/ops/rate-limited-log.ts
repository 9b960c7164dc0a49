import type { Logger } from 'pino';
import type { Clock, Millis } from '../core/ports.js';

export interface RateLimitedLogComponents {
  log: Logger;
  clock: Clock;
}

export interface RateLimitedLogInit {
  /** The constant message of every line. */
  msg: string;
  /** Level of every line. Default debug. */
  level?: 'debug' | 'info' | 'warn' | 'error';
  /** Lines per key per window that are written. Default 10. */
  burst?: number;
  /** Window length. Default 60 000 ms. */
  windowMs?: Millis;
  /** Keys tracked at once; when full, a new key is only counted in the overflow summary. Default 64. */
  maxKeys?: number;
}

/** The key lines of keys past `maxKeys` are written and counted under. */
const OTHER = '(other)';

interface Window {
  start: Millis;
  logged: number;
  suppressed: number;
}

/**
 * A log line that a flood cannot turn into a flood of lines: per key (e.g. a drop reason), the
 * first `burst` lines of each window are written, the rest are only counted, and once a window
 * in which lines were suppressed ends, one summary line says how many (`suppressed`, with the
 * key and the window). Counting what happened is the caller's business (metrics): this only
 * bounds what reaches the log.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();
  private readonly level: NonNullable<RateLimitedLogInit['level']>;
  private readonly burst: number;
  private readonly windowMs: Millis;
  private readonly maxKeys: number;

  constructor(
    private readonly c: RateLimitedLogComponents,
    private readonly init: RateLimitedLogInit,
  ) {
    this.level = init.level ?? 'debug';
    this.burst = init.burst ?? 10;
    this.windowMs = init.windowMs ?? 60_000;
    this.maxKeys = init.maxKeys ?? 64;
  }

  /** Writes `fields` (the key is not added to them), or counts the line when the key's window is used up. */
  write(key: string, fields: Record<string, unknown>): void {
    if (!this.c.log.isLevelEnabled(this.level)) return;
    const now = this.c.clock.now();
    if (!this.windows.has(key) && this.windows.size >= this.maxKeys) {
      for (const [k, old] of this.windows)
        if (old.suppressed === 0 && now - old.start >= this.windowMs) this.windows.delete(k);
      if (this.windows.size >= this.maxKeys) key = OTHER;
    }
    let w = this.windows.get(key);
    // A window that suppressed nothing ends silently; one that did ends in its summary (timer).
    if (w && w.suppressed === 0 && now - w.start >= this.windowMs) w = undefined;
    if (!w) {
      w = { start: now, logged: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (w.logged < this.burst) {
      w.logged++;
      this.c.log[this.level](fields, this.init.msg);
      return;
    }
    if (w.suppressed++ === 0) {
      const window = w;
      this.c.clock.after(Math.max(0, window.start + this.windowMs - now), () => this.summarize(key, window));
    }
  }

  private summarize(key: string, w: Window): void {
    if (this.windows.get(key) === w) this.windows.delete(key);
    this.c.log[this.level](
      { key, suppressed: w.suppressed, logged: w.logged, windowMs: this.windowMs },
      `${this.init.msg} (more lines suppressed)`,
    );
  }
}
