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
 */
import type { Logger } from 'pino';
import type { ApiEvent, ApiSource } from '../core/ports.js';

export interface EventRecorderComponents {
  api: Pick<ApiSource, 'event'>;
  log: Logger;
  /** Called once per dropped Event (queue full). */
  onDropped?: () => void;
}

export interface EventRecorderInit {
  /** Sends in flight at once (different objects). Default 2: status writes come first. */
  concurrency?: number;
  /** Events waiting to be sent before new ones are dropped. Default 5000. */
  maxPending?: number;
}

interface Pending {
  /** The regarded object, "Kind|namespace/name": its Events are sent in order. */
  key: string;
  event: ApiEvent;
  log: Logger;
}

export class EventRecorder {
  private readonly pending: Pending[] = [];
  private readonly busy = new Set<string>();
  private active = 0;
  private dropped = 0;
  private idle: Array<() => void> = [];
  private readonly concurrency: number;
  private readonly maxPending: number;

  constructor(
    private readonly c: EventRecorderComponents,
    init: EventRecorderInit = {},
  ) {
    this.concurrency = init.concurrency ?? 2;
    this.maxPending = init.maxPending ?? 5000;
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
    this.pending.push({ key, event, log });
    this.pump();
  }

  /** Resolves once every queued Event has been sent (or has failed). */
  flush(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.active < this.concurrency) {
      const i = this.pending.findIndex((p) => !this.busy.has(p.key));
      if (i < 0) break;
      const [p] = this.pending.splice(i, 1) as [Pending];
      this.busy.add(p.key);
      this.active += 1;
      void this.send(p);
    }
    if (this.backlog === 0) for (const resolve of this.idle.splice(0)) resolve();
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
