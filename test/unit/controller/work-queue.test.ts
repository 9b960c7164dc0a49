import { StatusWriter, jsonEqual } from '../../../src/controller/status-writer.js';
import { WorkQueue } from '../../../src/controller/work-queue.js';
import { SimClock } from '../../fakes/clock.js';
import { FakeApiSource } from '../../fakes/k8s.js';

describe('WorkQueue', () => {
  it('deduplicates waiting keys and never hands out a key twice at once', async () => {
    const q = new WorkQueue(new SimClock());
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    const k = await q.get();
    expect(k).toBe('a');
    q.add('a'); // while processing: comes back after done
    expect(await q.get()).toBe('b');
    expect(q.length).toBe(0);
    q.done('a');
    expect(await q.get()).toBe('a');
  });

  it('hands out urgent keys before ordinary ones; an urgent add moves a waiting key up', async () => {
    const q = new WorkQueue(new SimClock());
    for (const k of ['s1', 's2', 's3', 's4']) q.add(k); // a sweep
    q.add('v', true); // an observed change of holder
    q.add('s3', true); // already waiting: moves up, once
    q.add('s3', true);
    q.add('s1'); // an ordinary add leaves a waiting key where it is
    expect(q.length).toBe(5);
    const order: string[] = [];
    for (let i = 0; i < 3; i++) order.push((await q.get())!);
    expect(order).toEqual(['v', 's3', 's1']);
    // Added while processing: dirty, and comes back urgent after done.
    q.add('v', true);
    q.done('v');
    expect(await q.get()).toBe('v');
    expect([await q.get(), await q.get()]).toEqual(['s2', 's4']);
    expect(q.length).toBe(0);
  });

  it('a deferred urgent key comes back urgent, ahead of a sweep queued meanwhile', async () => {
    const clock = new SimClock();
    const q = new WorkQueue(clock);
    q.add('v', true);
    q.add('s0');
    const v = (await q.get())!;
    expect(v).toBe('v');
    expect(q.takenUrgent('v')).toBe(true);
    // Its status write waits for the rate limit: requeued for 200 ms, keeping its urgency.
    q.addAfter('v', 200, q.takenUrgent('v'));
    q.done('v');
    expect(q.takenUrgent('v')).toBe(false);
    const s0 = (await q.get())!;
    expect(q.takenUrgent(s0)).toBe(false);
    q.done(s0);
    for (let i = 1; i <= 100; i++) q.add(`s${i}`); // the sweep after a member died
    await clock.advance(200);
    expect(await q.get()).toBe('v');
    // An ordinary delayed add stays ordinary; a later urgent one for the same key upgrades it.
    q.done('v');
    q.addAfter('w', 100);
    q.addAfter('x', 100);
    q.addAfter('x', 300, true);
    await clock.advance(100);
    expect(await q.get()).toBe('x');
    expect(await q.get()).toBe('s1');
  });

  it('backs off exponentially per key until forget', async () => {
    const clock = new SimClock();
    const q = new WorkQueue(clock, { baseDelayMs: 100, maxDelayMs: 1000 });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('x'))).toEqual([100, 200, 400, 800, 1000]);
    expect(q.retries('x')).toBe(5);
    q.forget('x');
    expect(q.addRateLimited('x')).toBe(100);
    expect(q.length).toBe(0);
    await clock.advance(100);
    expect(q.length).toBe(1);
  });

  it('an earlier delayed add wins over a later one; shutDown releases waiting getters', async () => {
    const clock = new SimClock();
    const q = new WorkQueue(clock);
    q.addAfter('k', 500);
    q.addAfter('k', 100);
    await clock.advance(150);
    expect(await q.get()).toBe('k');
    const pending = q.get();
    q.shutDown();
    expect(await pending).toBeUndefined();
  });
});

describe('StatusWriter', () => {
  const key = { namespace: 'lab', name: 'v' };
  it('writes only changes, at most once per interval, and defers the rest', async () => {
    const clock = new SimClock();
    const api = new FakeApiSource();
    api.apply('VirtualIP', { metadata: { name: 'v', namespace: 'lab' }, spec: {} });
    let writes = 0;
    const counting = Object.assign(Object.create(api) as FakeApiSource, {
      patchStatus: (...args: Parameters<FakeApiSource['patchStatus']>) => {
        writes++;
        return api.patchStatus(...args);
      },
    });
    const w = new StatusWriter(counting, clock, 250);
    expect(await w.write('VirtualIP', key, undefined, { holder: 'a' })).toEqual({ outcome: 'written' });
    expect(await w.write('VirtualIP', key, undefined, { holder: 'a' })).toEqual({ outcome: 'unchanged' });
    await clock.advance(100);
    expect(await w.write('VirtualIP', key, undefined, { holder: 'b' })).toEqual({
      outcome: 'deferred',
      retryInMs: 150,
    });
    await clock.advance(150);
    expect(await w.write('VirtualIP', key, undefined, { holder: 'b' })).toEqual({ outcome: 'written' });
    expect(writes).toBe(2);
    expect((await api.get('VirtualIP', key))?.status).toEqual({ holder: 'b' });
    api.delete('VirtualIP', key);
    await clock.advance(300);
    expect(await w.write('VirtualIP', key, undefined, { holder: 'c' })).toEqual({ outcome: 'gone' });
  });

  it('lets one write per interval go early ({ now: true }), never two', async () => {
    const clock = new SimClock();
    const api = new FakeApiSource();
    api.apply('VirtualIP', { metadata: { name: 'v', namespace: 'lab' }, spec: {} });
    const w = new StatusWriter(api, clock, 250);
    // The holder died: "no holder" written; 100 ms later a member holds it again.
    expect(await w.write('VirtualIP', key, undefined, { holder: '' })).toEqual({ outcome: 'written' });
    await clock.advance(100);
    expect(await w.write('VirtualIP', key, undefined, { holder: 'b' }, { now: true })).toEqual({
      outcome: 'written',
    });
    // A third change in the same interval waits, asked early or not.
    await clock.advance(10);
    expect(await w.write('VirtualIP', key, undefined, { holder: '' }, { now: true })).toEqual({
      outcome: 'deferred',
      retryInMs: 240,
    });
    await clock.advance(240);
    expect(await w.write('VirtualIP', key, undefined, { holder: '' })).toEqual({ outcome: 'written' });
    // An on-time write resets the allowance: the next early one may go again.
    await clock.advance(50);
    expect(await w.write('VirtualIP', key, undefined, { holder: 'c' }, { now: true })).toEqual({
      outcome: 'written',
    });
    expect((await api.get('VirtualIP', key))?.status).toEqual({ holder: 'c' });
  });

  it('compares JSON regardless of key order and undefined members', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined })).toBe(true);
    expect(jsonEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
  });
});
