import { deriveTiming } from '../../../src/core/timing.js';
import { prewarmHandoff } from '../../../src/runtime/prewarm.js';

describe('prewarmHandoff', () => {
  test.each([
    ['default', { intervalMs: 200, deadMs: 1000 }],
    ['fast', { intervalMs: 100, deadMs: 300 }],
    ['tight', { intervalMs: 50, deadMs: 150 }],
  ])(
    '%s timing: a holder is elected and hands its VIP over, every datagram through real codecs',
    (_name, p) => {
      const r = prewarmHandoff(deriveTiming(p));
      expect(r.handedOver).toBe(true);
      expect(r.datagrams).toBeGreaterThan(0);
    },
  );
});
