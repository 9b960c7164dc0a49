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

  it('compares JSON regardless of key order and undefined members', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined })).toBe(true);
    expect(jsonEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
  });
});
