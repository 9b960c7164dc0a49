import fc from 'fast-check';
import { ReplayGuard } from '../../../../src/core/wire/replay-window.js';

describe('ReplayGuard', () => {
  it('accepts a new sender, then each seq once within the window', () => {
    const g = new ReplayGuard<string>(64);
    expect(g.check('a', 1, 100)).toBe('fresh');
    g.accept('a', 1, 100);
    expect(g.check('a', 1, 100)).toBe('replay');
    expect(g.check('a', 1, 37)).toBe('fresh');
    expect(g.check('a', 1, 36)).toBe('stale-seq');
    expect(g.check('a', 0, 500)).toBe('stale-incarnation');
    expect(g.check('a', 2, 0)).toBe('fresh');
    expect(g.check('b', 1, 100)).toBe('fresh');
    expect(g.state('a')).toEqual({ incarnation: 1, highestSeq: 100 });
  });

  it('refuses to accept what check says is not fresh', () => {
    const g = new ReplayGuard<string>();
    g.accept('a', 1, 1);
    expect(() => g.accept('a', 1, 1)).toThrow(/replay/);
  });

  it('rejects window sizes that are not multiples of 32', () => {
    expect(() => new ReplayGuard(50)).toThrow(/multiple of 32/);
  });

  it('agrees with a model (set of accepted seqs + highest) on random schedules', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(32, 64, 96),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 300 })), {
          maxLength: 300,
        }),
        (bits, ops) => {
          const g = new ReplayGuard<string>(bits);
          let inc = -1;
          let top = -1;
          let seen = new Set<number>();
          for (const [i, s] of ops) {
            let expected: string;
            if (i > inc) expected = 'fresh';
            else if (i < inc) expected = 'stale-incarnation';
            else if (s > top) expected = 'fresh';
            else if (top - s >= bits) expected = 'stale-seq';
            else expected = seen.has(s) ? 'replay' : 'fresh';
            expect(g.check('x', i, s)).toBe(expected);
            if (expected === 'fresh') {
              g.accept('x', i, s);
              if (i > inc) {
                inc = i;
                top = s;
                seen = new Set([s]);
              } else {
                top = Math.max(top, s);
                seen.add(s);
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
