/**
 * Clock contract: every Clock (SystemClock, SimClock) must pass this. `advance(ms)` lets at
 * least `ms` of the clock's time pass (really sleeping for the system clock).
 */
import type { Clock } from '../../src/core/ports.js';

export interface ClockSubject {
  clock: Clock;
  advance(ms: number): Promise<void>;
}

export function clockContract(name: string, make: () => ClockSubject): void {
  describe(`Clock contract: ${name}`, () => {
    const P = 20; // period used by the tests, ms
    let s: ClockSubject;
    const stoppers: { stop(): void }[] = [];
    beforeEach(() => {
      s = make();
    });
    afterEach(() => {
      stoppers.splice(0).forEach((h) => h.stop());
    });

    it('now() never goes backwards and moves by at least the time let pass', async () => {
      const a = s.clock.now();
      await s.advance(P);
      const b = s.clock.now();
      expect(b).toBeGreaterThanOrEqual(a + P - 1);
    });

    it('sleep resolves once its time has passed on this clock', async () => {
      const start = s.clock.now();
      let woke: number | undefined;
      void s.clock.sleep(P).then(() => (woke = s.clock.now()));
      await s.advance(P * 2);
      expect(woke).toBeDefined();
      expect(woke!).toBeGreaterThanOrEqual(start + P - 1);
    });

    it('sleep rejects with the abort reason and never resolves after abort', async () => {
      const ac = new AbortController();
      const outcome: string[] = [];
      const p = s.clock.sleep(P, ac.signal).then(
        () => outcome.push('resolved'),
        (err: unknown) => outcome.push(`rejected:${String(err)}`),
      );
      ac.abort('bye');
      await p;
      await s.advance(P * 2);
      expect(outcome).toEqual(['rejected:bye']);
    });

    it('sleep with an already aborted signal rejects at once', async () => {
      const ac = new AbortController();
      ac.abort(new Error('early'));
      await expect(s.clock.sleep(P, ac.signal)).rejects.toThrow('early');
    });

    it('after fires exactly once, and not at all when stopped first', async () => {
      let fired = 0;
      let cancelled = 0;
      stoppers.push(s.clock.after(P, () => fired++));
      s.clock.after(P, () => cancelled++).stop();
      await s.advance(P * 4);
      expect(fired).toBe(1);
      expect(cancelled).toBe(0);
    });

    it('timers fire in order of due time, equal ones in creation order', async () => {
      const order: string[] = [];
      stoppers.push(s.clock.after(P * 2, () => order.push('late')));
      stoppers.push(s.clock.after(P, () => order.push('first')));
      stoppers.push(s.clock.after(P, () => order.push('second')));
      await s.advance(P * 4);
      expect(order).toEqual(['first', 'second', 'late']);
    });

    it('every ticks repeatedly until stopped', async () => {
      let ticks = 0;
      const h = s.clock.every(P, () => {
        ticks++;
      });
      await s.advance(P * 3.5);
      expect(ticks).toBeGreaterThanOrEqual(2);
      h.stop();
      const atStop = ticks;
      await s.advance(P * 3);
      expect(ticks).toBe(atStop);
    });

    it('every never overlaps a tick whose promise is still pending', async () => {
      let running = 0;
      let maxRunning = 0;
      let ticks = 0;
      stoppers.push(
        s.clock.every(P, async () => {
          running++;
          ticks++;
          maxRunning = Math.max(maxRunning, running);
          await s.clock.sleep(P * 2.5);
          running--;
        }),
      );
      for (let i = 0; i < 10; i++) await s.advance(P);
      expect(ticks).toBeGreaterThanOrEqual(2);
      expect(maxRunning).toBe(1);
    });

    it('rejects a non-positive period', () => {
      expect(() => s.clock.every(0, () => undefined)).toThrow(RangeError);
    });
  });
}
