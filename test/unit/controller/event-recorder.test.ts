import type { ApiEvent, ApiObject } from '../../../src/core/ports.js';
import { EventRecorder } from '../../../src/controller/event-recorder.js';
import { silentLogger } from '../../../src/ops/log.js';
import { SimClock } from '../../fakes/clock.js';

/** An Event sink whose sends stay open until the test resolves them. */
class GatedSink {
  readonly started: ApiEvent[] = [];
  readonly done: ApiEvent[] = [];
  private readonly gates: Array<{ event: ApiEvent; finish: (err?: Error) => void }> = [];
  maxInFlight = 0;
  private inFlight = 0;

  event(e: ApiEvent): Promise<void> {
    this.started.push(e);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve, reject) =>
      this.gates.push({
        event: e,
        finish: (err) => {
          this.inFlight -= 1;
          this.done.push(e);
          if (err) reject(err);
          else resolve();
        },
      }),
    );
  }

  /** Completes the oldest open send (optionally failing it), then lets the recorder react. */
  async release(err?: Error): Promise<ApiEvent> {
    const g = this.gates.shift();
    if (!g) throw new Error('no send in flight');
    g.finish(err);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    return g.event;
  }

  get open(): number {
    return this.gates.length;
  }
}

const obj = (name: string): ApiObject => ({
  apiVersion: 'heartline.dev/v1alpha1',
  kind: 'VirtualIP',
  metadata: { name, namespace: 'lab' },
});
const ev = (name: string, reason: string): ApiEvent => ({
  regarding: obj(name),
  type: 'Normal',
  reason,
  note: `${name} ${reason}`,
  action: 'Observe',
});

describe('EventRecorder', () => {
  it('returns at once, runs at most `concurrency` sends, and keeps one object’s Events in order', async () => {
    const sink = new GatedSink();
    const r = new EventRecorder({ api: sink, log: silentLogger() }, { concurrency: 2 });
    r.record(ev('a', 'Lost'), silentLogger());
    r.record(ev('a', 'Bound'), silentLogger());
    r.record(ev('b', 'Bound'), silentLogger());
    r.record(ev('c', 'Bound'), silentLogger());
    // a/Lost and b/Bound go out; a/Bound waits for a/Lost, c for a free slot.
    expect(sink.started.map((e) => e.note)).toEqual(['a Lost', 'b Bound']);
    expect(r.backlog).toBe(4);
    await sink.release(); // a/Lost done: a/Bound may go now (first in line)
    expect(sink.started.map((e) => e.note)).toEqual(['a Lost', 'b Bound', 'a Bound']);
    await sink.release();
    await sink.release();
    await sink.release();
    expect(sink.done.map((e) => e.note)).toEqual(['a Lost', 'b Bound', 'a Bound', 'c Bound']);
    expect(sink.maxInFlight).toBe(2);
    expect(r.backlog).toBe(0);
  });

  it('a failed send is logged and the next Events still go out', async () => {
    const sink = new GatedSink();
    const r = new EventRecorder({ api: sink, log: silentLogger() }, { concurrency: 1 });
    r.record(ev('a', 'One'), silentLogger());
    r.record(ev('a', 'Two'), silentLogger());
    await sink.release(new Error('server said no'));
    expect(sink.open).toBe(1);
    await sink.release();
    expect(sink.done.map((e) => e.reason)).toEqual(['One', 'Two']);
  });

  it('drops and counts new Events when maxPending wait already', async () => {
    const sink = new GatedSink();
    let dropped = 0;
    const r = new EventRecorder(
      { api: sink, log: silentLogger(), onDropped: () => (dropped += 1) },
      { concurrency: 1, maxPending: 2 },
    );
    for (const n of ['a', 'b', 'c', 'd', 'e']) r.record(ev(n, 'Bound'), silentLogger());
    // a in flight, b and c waiting: d and e dropped.
    expect(r.droppedTotal).toBe(2);
    expect(dropped).toBe(2);
    for (let i = 0; i < 3; i++) await sink.release();
    expect(sink.done.map((e) => e.regarding.metadata.name)).toEqual(['a', 'b', 'c']);
  });

  it('flush resolves once everything queued is sent', async () => {
    const sink = new GatedSink();
    const r = new EventRecorder({ api: sink, log: silentLogger() });
    await r.flush(); // nothing queued
    r.record(ev('a', 'One'), silentLogger());
    r.record(ev('a', 'Two'), silentLogger());
    let flushed = false;
    void r.flush().then(() => (flushed = true));
    await sink.release();
    expect(flushed).toBe(false);
    await sink.release();
    expect(flushed).toBe(true);
  });

  it('holds new sends while urgent status writes wait, at most maxHoldMs', async () => {
    const clock = new SimClock();
    const sink = new GatedSink();
    let urgent = true;
    const r = new EventRecorder(
      { api: sink, log: silentLogger(), clock, holdWhile: () => urgent },
      { concurrency: 2, maxHoldMs: 1000, holdPollMs: 20 },
    );
    r.record(ev('a', 'Failover'), silentLogger());
    r.record(ev('b', 'Failover'), silentLogger());
    await clock.advance(100);
    expect(sink.started).toHaveLength(0);
    expect(r.backlog).toBe(2);
    // The status writes are done: the held Events go out at the next look.
    urgent = false;
    await clock.advance(20);
    expect(sink.started.map((e) => e.note)).toEqual(['a Failover', 'b Failover']);
    await sink.release();
    await sink.release();
    // A storm that never ends: an Event waits maxHoldMs, then goes anyway.
    urgent = true;
    r.record(ev('c', 'Failover'), silentLogger());
    await clock.advance(980);
    expect(sink.started).toHaveLength(2);
    await clock.advance(40);
    expect(sink.started.map((e) => e.note)).toEqual(['a Failover', 'b Failover', 'c Failover']);
    await sink.release();
    expect(r.backlog).toBe(0);
    // A flush (the controller stopping) holds nothing back.
    r.record(ev('d', 'Failover'), silentLogger());
    const flushed = r.flush();
    expect(sink.started).toHaveLength(4);
    await sink.release();
    await flushed;
  });

  it('refuses holdWhile without a clock', () => {
    expect(
      () => new EventRecorder({ api: new GatedSink(), log: silentLogger(), holdWhile: () => true }),
    ).toThrow(/holdWhile needs a clock/);
  });

  it('rejects a concurrency that is not a positive integer', () => {
    expect(
      () => new EventRecorder({ api: new GatedSink(), log: silentLogger() }, { concurrency: 0 }),
    ).toThrow(/concurrency: 0/);
  });
});
