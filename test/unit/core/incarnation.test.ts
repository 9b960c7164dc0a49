import {
  incarnationFromWallClock,
  laterLife,
  nextIncarnation,
  NO_INCARNATION,
} from '../../../src/core/incarnation.js';

describe('incarnations (serial-number arithmetic)', () => {
  it('orders lives that are less than 2^31 apart, across the wrap at 2^32', () => {
    expect(laterLife(2, 1)).toBe(true);
    expect(laterLife(1, 2)).toBe(false);
    expect(laterLife(5, 5)).toBe(false);
    expect(laterLife(3, 0xfffffffe)).toBe(true); // wrapped: 0xfffffffe, 0xffffffff, 1, 2, 3
    expect(laterLife(0xfffffffe, 3)).toBe(false);
    expect(laterLife(0x7fffffff + 1, 1)).toBe(true);
    expect(laterLife(0x80000001 + 1, 1)).toBe(false); // 2^31 apart or more: reads as older
  });

  it('treats 0 as "no life known": older than every life, never later', () => {
    expect(laterLife(1, NO_INCARNATION)).toBe(true);
    expect(laterLife(0xffffffff, NO_INCARNATION)).toBe(true);
    expect(laterLife(NO_INCARNATION, 1)).toBe(false);
    expect(laterLife(NO_INCARNATION, NO_INCARNATION)).toBe(false);
  });

  it('nextIncarnation wraps past 2^32 - 1 and skips 0', () => {
    expect(nextIncarnation(1)).toBe(2);
    expect(nextIncarnation(0xffffffff)).toBe(1);
    expect(laterLife(nextIncarnation(0xffffffff), 0xffffffff)).toBe(true);
  });

  it('the wall-clock seed wraps in 2037 instead of overflowing uint32, and stays ordered across it', () => {
    const before = incarnationFromWallClock(Date.UTC(2037, 6, 1));
    const after = incarnationFromWallClock(Date.UTC(2037, 8, 1));
    expect(after).toBeLessThan(before); // wrapped
    expect(after).toBeGreaterThan(0);
    expect(laterLife(after, before)).toBe(true);
    expect(incarnationFromWallClock(Date.UTC(2023, 0, 1))).toBeGreaterThan(0); // before 2024: still a u32
    expect(incarnationFromWallClock(Date.UTC(2024, 0, 1))).toBe(1); // 0 is skipped
  });
});
