/**
 * Events, recorded off the reconcile path (as client-go's event broadcaster does): `record`
 * queues and returns at once, a few sends run at a time, and the Events of one object go out
 * one after another in the order they were recorded. A reconcile therefore waits for its status
 * write only; when a member dies holding 100 VIPs, the 100 status writes no longer queue behind
 * 100 Event POSTs.
 *
 * Events are best effort: a failed send is logged and not retried, and when `maxPending` Events
 * wait already, a new one is dropped and counted (`droppedTotal`, the controller's
 * `heartline_controller_events_dropped_total`), never the status it accompanies.
 *
 * Status first, also at the API server: while `holdWhile()` says urgent status writes are
 * waiting (a dead member's VIPs), no new send starts, so that the API server's CPU goes to
 * the writes; an Event is held at most `maxHoldMs`, so a long storm delays Events, never
 * loses them.
 */
import type { Logger } from 'pino';
import type { ApiEvent, ApiSource, Clock, Millis, Stoppable } from '../core/ports.js';

export interface EventRecorderComponents {
  api: Pick<ApiSource, 'event'>;
  log: Logger;
  /** Called once per dropped Event (queue full). */
  onDropped?: () => void;
  /** With `holdWhile`: when held Events are looked at again, and how long they have waited. */
  clock?: Clock;
  /** True while sends should wait (urgent status writes pending). Needs `clock`. */
  holdWhile?: () => boolean;
}

export interface EventRecorderInit {
  /** Sends in flight at once (different objects). Default 2: status writes come first. */
  concurrency?: number;
  /** Events waiting to be sent before new ones are dropped. Default 5000. */
  maxPending?: number;
  /** Longest an Event waits for `holdWhile` to turn false. Default 2000 ms. */
  maxHoldMs?: Millis;
  /** How often held Events are looked at again. Default 20 ms. */
  holdPollMs?: Millis;
}

interface Pending {
  /** The regarded object, "Kind|namespace/name": its Events are sent in order. */
  key: string;
  event: ApiEvent;
  log: Logger;
  /** When it was recorded (with a clock), for `maxHoldMs`. */
  at: Millis;
}

export class EventRecorder {
  private readonly pending: Pending[] = [];
  private readonly busy = new Set<string>();
  private active = 0;
  private dropped = 0;
  private idle: Array<() => void> = [];
  private readonly concurrency: number;
  private readonly maxPending: number;
  private readonly maxHoldMs: Millis;
  private readonly holdPollMs: Millis;
  private holdTimer: Stoppable | undefined;
  /** A flush is waiting: send everything, hold nothing. */
  private flushing = false;

  constructor(
    private readonly c: EventRecorderComponents,
    init: EventRecorderInit = {},
  ) {
    this.concurrency = init.concurrency ?? 2;
    this.maxPending = init.maxPending ?? 5000;
    this.maxHoldMs = init.maxHoldMs ?? 2000;
    this.holdPollMs = init.holdPollMs ?? 20;
    if (c.holdWhile && !c.clock) throw new Error('event recorder: holdWhile needs a clock');
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1)
      throw new Error(`event recorder concurrency: ${String(init.concurrency)} is not a positive integer`);
  }

  /** Events dropped because the queue was full. */
  get droppedTotal(): number {
    return this.dropped;
  }

  /** Events queued or being sent. */
  get backlog(): number {
    return this.pending.length + this.active;
  }

  /** Queues an Event; never throws, never waits. */
  record(event: ApiEvent, log: Logger): void {
    const o = event.regarding;
    const key = `${o.kind}|${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (this.pending.length >= this.maxPending) {
      this.dropped += 1;
      this.c.onDropped?.();
      if (this.dropped === 1 || this.dropped % 100 === 0)
        log.warn(
          { event: event.reason, dropped: this.dropped, maxPending: this.maxPending },
          'Event queue full: Event dropped',
        );
      return;
    }
    this.pending.push({ key, event, log, at: this.c.clock?.now() ?? 0 });
    this.pump();
  }

  /** Resolves once every queued Event has been sent (or has failed); nothing is held meanwhile. */
  flush(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    this.flushing = true;
    const done = new Promise<void>((resolve) => this.idle.push(resolve));
    this.pump();
    return done;
  }

  /** Held: urgent status writes wait and the oldest Event has not waited `maxHoldMs` yet. */
  private held(): boolean {
    const { clock, holdWhile } = this.c;
    if (!clock || !holdWhile || this.flushing || this.pending.length === 0 || !holdWhile()) return false;
    if (clock.now() - this.pending[0]!.at >= this.maxHoldMs) return false;
    this.holdTimer ??= clock.after(this.holdPollMs, () => {
      this.holdTimer = undefined;
      this.pump();
    });
    return true;
  }

  private pump(): void {
    while (this.active < this.concurrency && !this.held()) {
      const i = this.pending.findIndex((p) => !this.busy.has(p.key));
      if (i < 0) break;
      const [p] = this.pending.splice(i, 1) as [Pending];
      this.busy.add(p.key);
      this.active += 1;
      void this.send(p);
    }
    if (this.backlog === 0) {
      this.flushing = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async send(p: Pending): Promise<void> {
    try {
      await this.c.api.event(p.event);
    } catch (err) {
      p.log.warn({ err, event: p.event.reason }, 'cannot record Event');
    } finally {
      this.busy.delete(p.key);
      this.active -= 1;
      this.pump();
    }
  }
}
