import { SourceBinding, canonicalAddress } from '../../../../src/core/wire/source-binding.js';

describe('canonicalAddress', () => {
  it.each([
    ['198.18.0.1', '198.18.0.1'],
    ['::ffff:198.18.0.1', '198.18.0.1'],
    ['::FFFF:c612:1', '198.18.0.1'],
    ['2001:DB8::1', '2001:db8:0:0:0:0:0:1'],
    ['2001:db8:0:0:0:0:0:1', '2001:db8:0:0:0:0:0:1'],
    ['fe80::1%eth0', 'fe80:0:0:0:0:0:0:1'],
    ['::', '0:0:0:0:0:0:0:0'],
    ['64:ff9b::198.18.0.1', '64:ff9b:0:0:0:0:c612:1'],
  ])('%s -> %s', (input, out) => {
    expect(canonicalAddress(input)).toBe(out);
  });

  it.each([
    '',
    '198.18.0',
    '198.18.0.256',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    'g::1',
    'host.example',
    '01234::',
  ])('rejects %j', (input) => {
    expect(canonicalAddress(input)).toBeUndefined();
  });
});

describe('SourceBinding', () => {
  const b = new SourceBinding([
    ['a', [{ address: '198.18.0.1', port: 694 }, { address: '2001:db8::1' }]],
    ['b', []],
  ]);

  it('matches configured addresses (any port when none is given) and nothing else', () => {
    expect(b.matches('a', { address: '198.18.0.1', port: 694 })).toBe(true);
    expect(b.matches('a', { address: '198.18.0.1', port: 1694 })).toBe(false);
    expect(b.matches('a', { address: '2001:db8:0::1', port: 40000 })).toBe(true);
    expect(b.matches('a', { address: '198.18.0.2', port: 694 })).toBe(false);
    expect(b.matches('b', { address: '198.18.0.1', port: 694 })).toBe(false);
    expect(b.matches('c', { address: '198.18.0.1', port: 694 })).toBe(false);
    expect(b.matches('a', { address: 'garbage', port: 694 })).toBe(false);
  });

  it('refuses addresses and ports that do not parse, naming the member', () => {
    expect(() => new SourceBinding([['a', [{ address: 'node-a' }]]])).toThrow(
      /member "a": source address "node-a"/,
    );
    expect(() => new SourceBinding([['a', [{ address: '198.18.0.1', port: 0 }]]])).toThrow(/source port 0/);
  });
});
