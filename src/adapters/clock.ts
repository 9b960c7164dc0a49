import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import type { Clock, Millis, Stoppable } from '../core/ports.js';

export interface SystemClockInit {
  /** Receives errors thrown by `every`/`after` callbacks. Default: logged at error level. */
  onCallbackError?: (err: unknown) => void;
  logger?: Logger;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * The real Clock: monotonic milliseconds from `performance.now()` (unaffected by wall-clock
 * steps), timers from Node's event loop. Timers keep the process alive until stopped.
 */
export class SystemClock implements Clock {
  private readonly onError: (err: unknown) => void;

  constructor(init: SystemClockInit = {}) {
    const logger = init.logger ?? pino({ name: 'heartline.clock' });
    this.onError = init.onCallbackError ?? ((err) => logger.error({ err }, 'clock callback failed'));
  }

  now(): Millis {
    return performance.now();
  }

  sleep(ms: Millis, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortReason(signal!));
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  after(ms: Millis, fn: () => void): Stoppable {
    const timer = setTimeout(
      () => {
        try {
          fn();
        } catch (err) {
          this.onError(err);
        }
      },
      Math.max(0, ms),
    );
    return { stop: () => clearTimeout(timer) };
  }

  every(ms: Millis, fn: () => unknown): Stoppable {
    if (!(ms > 0)) throw new RangeError(`every: period must be > 0 ms, got ${ms}`);
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let due = this.now() + ms;
    const schedule = (): void => {
      if (stopped) return;
      const now = this.now();
      // Skip ticks missed while fn ran (or while the process was paused): no bunching.
      if (due <= now) due += (Math.floor((now - due) / ms) + 1) * ms;
      timer = setTimeout(tick, due - now);
    };
    const tick = (): void => {
      if (stopped) return;
      due += ms;
      let result: unknown;
      try {
        result = fn();
      } catch (err) {
        this.onError(err);
      }
      if (isThenable(result)) {
        Promise.resolve(result)
          .catch((err: unknown) => this.onError(err))
          .finally(schedule);
      } else {
        schedule();
      }
    };
    timer = setTimeout(tick, ms);
    return {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
