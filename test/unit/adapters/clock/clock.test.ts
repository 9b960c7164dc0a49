import { SystemClock } from '../../../../src/adapters/clock.js';
import { SimClock, SimWorld } from '../../../fakes/clock.js';
import { clockContract } from '../../../contract/clock.js';

clockContract('SystemClock', () => {
  const clock = new SystemClock();
  return { clock, advance: (ms) => new Promise((r) => setTimeout(r, ms + 2)) };
});

clockContract('SimClock', () => {
  const clock = new SimClock();
  return { clock, advance: (ms) => clock.advance(ms) };
});

clockContract('SimClock running 1e-3 fast in a shared world', () => {
  const world = new SimWorld();
  const clock = new SimClock({ world, rate: 1.001, start: 5000 });
  return { clock, advance: (ms) => world.advance(ms) };
});

describe('SystemClock', () => {
  it('keeps ticking after a callback throws and reports the error', async () => {
    const errors: unknown[] = [];
    const clock = new SystemClock({ onCallbackError: (err) => errors.push(err) });
    let ticks = 0;
    const h = clock.every(5, () => {
      ticks++;
      throw new Error(`tick ${ticks}`);
    });
    await new Promise((r) => setTimeout(r, 40));
    h.stop();
    expect(ticks).toBeGreaterThanOrEqual(2);
    expect(errors.length).toBe(ticks);
    expect(String(errors[0])).toContain('tick 1');
  });
});

describe('SimClock', () => {
  it('drifts by its rate against true time', async () => {
    const world = new SimWorld();
    const fast = new SimClock({ world, rate: 1.001 });
    const slow = new SimClock({ world, rate: 0.999 });
    await world.advance(10_000);
    expect(fast.now()).toBeCloseTo(10_010, 6);
    expect(slow.now()).toBeCloseTo(9_990, 6);
  });

  it('a slow clock fires its timers later in true time', async () => {
    const world = new SimWorld();
    const slow = new SimClock({ world, rate: 0.5 });
    let firedAt: number | undefined;
    slow.after(100, () => (firedAt = world.time));
    await world.advance(150);
    expect(firedAt).toBeUndefined();
    await world.advance(100);
    expect(firedAt).toBe(200);
  });

  it('orders timers of differently drifting clocks by true time, ties by creation', async () => {
    const world = new SimWorld();
    const a = new SimClock({ world, rate: 2 });
    const b = new SimClock({ world, rate: 1 });
    const order: string[] = [];
    b.after(100, () => order.push('b100'));
    a.after(100, () => order.push('a100')); // true 50
    a.after(200, () => order.push('a200')); // true 100, after b100 (created earlier)
    await world.advance(1000);
    expect(order).toEqual(['a100', 'b100', 'a200']);
  });

  it('step jumps forward and fires overdue timers at the next advance; backward steps are refused', async () => {
    const clock = new SimClock();
    let fired = false;
    clock.after(1000, () => (fired = true));
    clock.step(5000);
    expect(clock.now()).toBe(5000);
    await clock.advance(0);
    expect(fired).toBe(true);
    expect(() => clock.step(-1)).toThrow(RangeError);
  });

  it('setRate changes the rate from now on without a jump', async () => {
    const clock = new SimClock();
    await clock.advance(100);
    clock.setRate(2);
    expect(clock.now()).toBe(100);
    await clock.advance(100);
    expect(clock.now()).toBe(300);
  });

  it('every skips ticks missed while the clock stepped instead of bunching them', async () => {
    const clock = new SimClock();
    const at: number[] = [];
    const h = clock.every(100, () => {
      at.push(clock.now());
    });
    await clock.advance(100);
    clock.step(1000);
    await clock.advance(250);
    h.stop();
    expect(at[0]).toBe(100);
    expect(at[1]).toBe(1100);
    expect(at.slice(2)).toEqual([1200, 1300]);
  });

  it('makes advance reject with an error thrown by a callback', async () => {
    const clock = new SimClock();
    clock.after(10, () => {
      throw new Error('boom');
    });
    await expect(clock.advance(20)).rejects.toThrow('boom');
  });

  it('resumes code awaiting sleep before firing the next timer (ties still by creation)', async () => {
    const clock = new SimClock();
    const log: string[] = [];
    void (async () => {
      await clock.sleep(10);
      log.push('woke');
      clock.after(0, () => log.push('scheduled-by-sleeper'));
    })();
    clock.after(10, () => log.push('second-timer'));
    await clock.advance(10);
    expect(log).toEqual(['woke', 'second-timer', 'scheduled-by-sleeper']);
  });
});
