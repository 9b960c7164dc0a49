import {
  absoluteDeadline,
  formatRequest,
  helloOwnerMode,
  hostOf,
  parseAddressPairs,
  parseLine,
} from '../../../../src/adapters/linux/netd-protocol.js';

describe('heartline-netd line protocol', () => {
  it('formats requests as OP id args', () => {
    expect(formatRequest('ADD', 7, ['eth0', '198.18.0.100/24', 2, 600])).toBe(
      'ADD 7 eth0 198.18.0.100/24 2 600\n',
    );
    expect(formatRequest('LIST', 8, [])).toBe('LIST 8\n');
  });

  it('writes a fence deadline as @microseconds on CLOCK_MONOTONIC, never later than asked', () => {
    expect(absoluteDeadline(5_000_000_000n, 250)).toBe('@5250000');
    expect(absoluteDeadline(5_000_000_999n, 0.0019)).toBe('@5000001');
    expect(() => absoluteDeadline(1n, 0)).toThrow(/deadlineMs must be in \(0, 86400000\]/);
    expect(() => absoluteDeadline(1n, 86_400_001)).toThrow(RangeError);
    expect(() => absoluteDeadline(1n, Number.NaN)).toThrow(RangeError);
  });

  it('refuses tokens that would break the framing', () => {
    expect(() => formatRequest('LINK', 1, ['eth0\nSWEEP 2'])).toThrow(/spaces/);
    expect(() => formatRequest('LINK', 1, ['eth 0'])).toThrow(/spaces/);
    expect(() => formatRequest('LINK', 1, [''])).toThrow(/empty/);
  });

  it('parses replies, errors and fence events', () => {
    expect(parseLine('3 OK')).toEqual({ kind: 'ok', id: 3, fields: [] });
    expect(parseLine('4 OK up')).toEqual({ kind: 'ok', id: 4, fields: ['up'] });
    expect(parseLine('5 ERR no interface eth9 in this network namespace')).toEqual({
      kind: 'err',
      id: 5,
      message: 'no interface eth9 in this network namespace',
    });
    expect(parseLine('- ERR request longer than 1024 bytes')).toEqual({
      kind: 'err',
      id: undefined,
      message: 'request longer than 1024 bytes',
    });
    expect(parseLine('* EXPIRED eth0 198.18.0.100/24')).toEqual({
      kind: 'expired',
      addr: { iface: 'eth0', cidr: '198.18.0.100/24' },
    });
    expect(parseLine('* EXPIRED eth0 198.18.0.100/24 late_ms=1.3')).toEqual({
      kind: 'expired',
      addr: { iface: 'eth0', cidr: '198.18.0.100/24' },
      lateMs: 1.3,
    });
    expect(parseLine('hello')).toEqual({ kind: 'garbage', line: 'hello' });
  });

  it('parses address lists', () => {
    expect(parseAddressPairs(['eth0', '198.18.0.100/24', 'eth1', '2001:2::1/64'])).toEqual([
      { iface: 'eth0', cidr: '198.18.0.100/24' },
      { iface: 'eth1', cidr: '2001:2::1/64' },
    ]);
    expect(() => parseAddressPairs(['eth0'])).toThrow(/odd/);
  });

  it('reads the owner mode from a HELLO reply, and nothing from an older one', () => {
    expect(helloOwnerMode(['heartline-netd', '1', '42', 'proto'])).toBe('proto');
    expect(helloOwnerMode(['heartline-netd', '1', '42', 'fallback'])).toBe('fallback');
    expect(helloOwnerMode(['heartline-netd', '1', '42'])).toBeUndefined();
    expect(helloOwnerMode(['heartline-netd', '1', '42', 'auto'])).toBeUndefined();
  });

  it('takes the host part of a CIDR', () => {
    expect(hostOf('198.18.0.100/24')).toBe('198.18.0.100');
    expect(hostOf('2001:2::1')).toBe('2001:2::1');
  });
});
