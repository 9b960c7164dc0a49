import { cidrContains, isMulticast, parseCidr, parseIp } from '../../../src/api/net.js';

describe('parseCidr (Go netip semantics, as CEL isCIDR)', () => {
  it.each([
    ['198.18.0.100/24', 4, 24],
    ['198.18.0.0/15', 4, 15],
    ['0.0.0.0/0', 4, 0],
    ['198.18.0.1/32', 4, 32],
    ['2001:db8::100/64', 6, 64],
    ['2001:db8:0:1::100/128', 6, 128],
    ['::/0', 6, 0],
    ['::1/128', 6, 128],
    ['64:ff9b::198.18.0.1/96', 6, 96],
    ['2001:DB8::1/64', 6, 64],
  ])('accepts %s', (s, family, prefix) => {
    expect(parseCidr(s)).toMatchObject({ family, prefixLength: prefix });
  });

  it.each([
    '198.18.0.300/24',
    '198.18.0.100/33',
    '198.18.0.100',
    '198.018.0.100/24',
    '198.18.0/24',
    '198.18.0.100/024',
    '198.18.0.100/',
    '2001:db8::100/129',
    '2001:db8::1::2/64',
    '2001:db8:1:2:3:4:5:6:7/64',
    'fe80::1%eth0/64',
    '::ffff:198.18.0.100/120',
    '2001:db8::g/64',
    '12345::/64',
    '',
  ])('rejects %s', (s) => {
    expect(parseCidr(s)).toBeUndefined();
  });

  it('keeps host bits (a VIP is an address with its prefix)', () => {
    expect(parseCidr('198.18.0.100/24')?.bytes).toEqual([198, 18, 0, 100]);
  });

  it('expands :: and embedded IPv4', () => {
    expect(parseIp('2001:db8::1')?.bytes).toEqual([
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ]);
    expect(parseIp('64:ff9b::198.18.0.1')?.bytes.slice(12)).toEqual([198, 18, 0, 1]);
  });
});

describe('cidrContains and isMulticast', () => {
  it('checks membership by prefix', () => {
    const net = parseCidr('198.18.0.0/15')!;
    expect(cidrContains(net, parseIp('198.19.255.1')!)).toBe(true);
    expect(cidrContains(net, parseIp('198.20.0.1')!)).toBe(false);
    expect(cidrContains(net, parseIp('2001:db8::1')!)).toBe(false);
  });
  it('recognises multicast groups of both families', () => {
    expect(isMulticast(parseIp('239.192.0.94')!)).toBe(true);
    expect(isMulticast(parseIp('ff12::694')!)).toBe(true);
    expect(isMulticast(parseIp('198.18.0.1')!)).toBe(false);
    expect(isMulticast(parseIp('2001:db8::1')!)).toBe(false);
  });
});
