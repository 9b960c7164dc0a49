/** RateLimitedLog: a burst per key and window, then one summary of what it suppressed. */
import { pino } from 'pino';
import { RateLimitedLog } from '../../../src/ops/rate-limited-log.js';
import { SimClock } from '../../fakes/clock.js';

function capture(level = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { log, lines };
}

describe('RateLimitedLog', () => {
  it('writes the first `burst` lines per key and window, then one summary with the count', async () => {
    const clock = new SimClock();
    const { log, lines } = capture();
    const drops = new RateLimitedLog({ log, clock }, { msg: 'datagram dropped', burst: 3, windowMs: 1000 });
    for (let i = 0; i < 100; i++) drops.write('bad-mac', { reason: 'bad-mac', i });
    for (let i = 0; i < 2; i++) drops.write('replay', { reason: 'replay', i });
    expect(lines.map((l) => [l.msg, l.reason, l.i])).toEqual([
      ['datagram dropped', 'bad-mac', 0],
      ['datagram dropped', 'bad-mac', 1],
      ['datagram dropped', 'bad-mac', 2],
      ['datagram dropped', 'replay', 0],
      ['datagram dropped', 'replay', 1],
    ]);
    await clock.advance(1000);
    expect(lines.slice(5)).toEqual([
      expect.objectContaining({
        msg: 'datagram dropped (more lines suppressed)',
        key: 'bad-mac',
        suppressed: 97,
        logged: 3,
        windowMs: 1000,
      }),
    ]);
    // A new window writes again.
    drops.write('bad-mac', { reason: 'bad-mac', i: 100 });
    expect(lines.at(-1)).toMatchObject({ msg: 'datagram dropped', i: 100 });
    expect(lines).toHaveLength(7);
  });

  it('starts a new window for a key whose window suppressed nothing, without a summary', async () => {
    const clock = new SimClock();
    const { log, lines } = capture();
    const l = new RateLimitedLog({ log, clock }, { msg: 'm', burst: 2, windowMs: 1000 });
    l.write('k', { n: 1 });
    await clock.advance(1500);
    l.write('k', { n: 2 });
    l.write('k', { n: 3 });
    l.write('k', { n: 4 });
    expect(lines.map((x) => x.n)).toEqual([1, 2, 3]);
    await clock.advance(1000);
    expect(lines.at(-1)).toMatchObject({ key: 'k', suppressed: 1, logged: 2 });
    expect(lines).toHaveLength(4);
  });

  it('bounds the keys it tracks: past maxKeys, new keys share one "(other)" window', async () => {
    const clock = new SimClock();
    const { log, lines } = capture();
    const l = new RateLimitedLog({ log, clock }, { msg: 'm', burst: 1, windowMs: 1000, maxKeys: 2 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) l.write(k, { k });
    expect(lines.map((x) => x.k)).toEqual(['a', 'b', 'c']);
    await clock.advance(1000);
    expect(lines.at(-1)).toMatchObject({ key: '(other)', suppressed: 2 });
    // Silent windows that ended make room for new keys again.
    await clock.advance(1000);
    l.write('f', { k: 'f' });
    l.write('g', { k: 'g' });
    expect(lines.slice(-2).map((x) => x.k)).toEqual(['f', 'g']);
  });

  it('does nothing (not even a timer) when its level is off', () => {
    const clock = new SimClock();
    const { log, lines } = capture('info');
    const l = new RateLimitedLog({ log, clock }, { msg: 'm', burst: 1 });
    for (let i = 0; i < 10; i++) l.write('k', {});
    expect(lines).toEqual([]);
    expect(clock.world.pending).toBe(0);
  });

  it('writes at the level it was given', () => {
    const clock = new SimClock();
    const { log, lines } = capture('info');
    new RateLimitedLog({ log, clock }, { msg: 'm', level: 'warn' }).write('k', {});
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: 'm' })]);
  });
});
