import type { Clock, Millis, Stoppable } from '../../src/core/ports.js';

interface SimTimer {
  clock: SimClock;
  /** Fires when the owning clock reads at least this. */
  target: Millis;
  seq: number;
  fire: () => void;
}

/**
 * True (simulated) time shared by several SimClocks, each of which may run fast or slow and
 * step. Timers fire in order of the true time at which their clock reaches the target; ties
 * fire in creation order. Nothing happens between `advance` calls.
 */
export class SimWorld {
  private trueNow = 0;
  private seq = 0;
  private readonly timers = new Set<SimTimer>();
  private failure: { err: unknown } | undefined;

  /** True time in ms since the world began. */
  get time(): Millis {
    return this.trueNow;
  }

  /** Number of pending timers (sleeps, afters, every ticks). */
  get pending(): number {
    return this.timers.size;
  }

  /** @internal */
  add(clock: SimClock, target: Millis, fire: () => void): SimTimer {
    const timer = { clock, target, seq: this.seq++, fire };
    this.timers.add(timer);
    return timer;
  }

  /** @internal Records a callback error; the running `advance` rejects with it. */
  fail(err: unknown): void {
    this.failure ??= { err };
  }

  /** @internal */
  remove(timer: SimTimer): void {
    this.timers.delete(timer);
  }

  private next(): { timer: SimTimer; at: Millis } | undefined {
    let best: { timer: SimTimer; at: Millis } | undefined;
    for (const timer of this.timers) {
      const at = timer.clock.trueTimeOf(timer.target);
      if (!best || at < best.at || (at === best.at && timer.seq < best.timer.seq)) best = { timer, at };
    }
    return best;
  }

  /**
   * Moves true time forward by `ms`, firing due timers one at a time; after each one, pending
   * promise continuations run (so code awaiting a sleep resumes before the next timer fires).
   * A callback that throws makes `advance` reject with its error.
   */
  async advance(ms: Millis): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance: ms must be >= 0, got ${ms}`);
    const end = this.trueNow + ms;
    await flush();
    for (;;) {
      const next = this.next();
      if (!next || next.at > end) break;
      this.trueNow = Math.max(this.trueNow, next.at);
      this.timers.delete(next.timer);
      next.timer.fire();
      await flush();
      this.rethrow();
    }
    this.trueNow = end;
    await flush();
    this.rethrow();
  }

  private rethrow(): void {
    const failure = this.failure;
    if (failure) {
      this.failure = undefined;
      throw failure.err;
    }
  }
}

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface SimClockInit {
  /** Share true time with other clocks (one per simulated member). Default: a new world. */
  world?: SimWorld;
  /** Reading at creation. Default 0. */
  start?: Millis;
  /** Clock ms per true ms, e.g. 1.001 for a clock running 1e-3 fast. Default 1. */
  rate?: number;
}

/**
 * A simulated Clock. Reads `start + rate * trueElapsed + steps`. `step(ms)` jumps the
 * reading forward (a paused VM resuming); negative steps are refused because the Clock
 * port promises monotonic readings. Callback errors make the running `advance` reject.
 */
export class SimClock implements Clock {
  readonly world: SimWorld;
  private base: Millis;
  private baseTrue: Millis;
  private currentRate: number;

  constructor(init: SimClockInit = {}) {
    this.world = init.world ?? new SimWorld();
    this.base = init.start ?? 0;
    this.baseTrue = this.world.time;
    this.currentRate = init.rate ?? 1;
    if (!(this.currentRate > 0)) throw new RangeError(`SimClock: rate must be > 0, got ${this.currentRate}`);
  }

  now(): Millis {
    return this.base + this.currentRate * (this.world.time - this.baseTrue);
  }

  get rate(): number {
    return this.currentRate;
  }

  /** Changes the drift from now on. */
  setRate(rate: number): void {
    if (!(rate > 0)) throw new RangeError(`SimClock.setRate: rate must be > 0, got ${rate}`);
    this.base = this.now();
    this.baseTrue = this.world.time;
    this.currentRate = rate;
  }

  /** Jumps the reading forward by `ms`; timers whose target is passed fire at the next advance. */
  step(ms: Millis): void {
    if (!(ms >= 0))
      throw new RangeError(`SimClock.step: only forward steps keep the clock monotonic, got ${ms}`);
    this.base += ms;
  }

  /** Advances the shared world by `ms` of true time. */
  async advance(ms: Millis): Promise<void> {
    await this.world.advance(ms);
  }

  /** @internal True time at which this clock reads `reading`. */
  trueTimeOf(reading: Millis): Millis {
    const now = this.now();
    if (reading <= now) return this.world.time;
    return this.world.time + (reading - now) / this.currentRate;
  }

  private guard(fn: () => void): () => void {
    return () => {
      try {
        fn();
      } catch (err) {
        this.world.fail(err);
      }
    };
  }

  sleep(ms: Millis, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.world.remove(timer);
        reject(signal!.reason);
      };
      const timer = this.world.add(this, this.now() + Math.max(0, ms), () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  after(ms: Millis, fn: () => void): Stoppable {
    const timer = this.world.add(this, this.now() + Math.max(0, ms), this.guard(fn));
    return { stop: () => this.world.remove(timer) };
  }

  every(ms: Millis, fn: () => unknown): Stoppable {
    if (!(ms > 0)) throw new RangeError(`every: period must be > 0 ms, got ${ms}`);
    let stopped = false;
    let timer: SimTimer | undefined;
    let due = this.now() + ms;
    const schedule = (): void => {
      if (stopped) return;
      const now = this.now();
      if (due <= now) due += (Math.floor((now - due) / ms) + 1) * ms;
      timer = this.world.add(this, due, tick);
    };
    const tick = (): void => {
      if (stopped) return;
      due += ms;
      let result: unknown;
      try {
        result = fn();
      } catch (err) {
        this.world.fail(err);
      }
      if (isThenable(result)) {
        Promise.resolve(result)
          .catch((err: unknown) => this.world.fail(err))
          .finally(schedule);
      } else {
        schedule();
      }
    };
    timer = this.world.add(this, due, tick);
    return {
      stop: () => {
        stopped = true;
        if (timer) this.world.remove(timer);
      },
    };
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
