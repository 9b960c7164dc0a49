import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  bigToIp,
  canonicalIp,
  formatFieldError,
  ipToBig,
  parseAddressPool,
  parseIp,
  parsePoolEntry,
  poolEntryProblem,
} from '../../../src/api/index.js';

const pool = (spec: Record<string, unknown>) => ({
  apiVersion: 'heartline.dev/v1alpha1',
  kind: 'AddressPool',
  metadata: { name: 'p', namespace: 'hl' },
  spec: { clusterRef: { name: 'c' }, ...spec },
});

describe('AddressPool schema', () => {
  it('accepts CIDRs and ranges of both families and fills the defaults', () => {
    const r = parseAddressPool(
      pool({ addresses: ['198.18.10.0/28', '198.18.11.20-198.18.11.40', '2001:db8:1::/120'] }),
    );
    expect(r.ok).toBe(true);
    if (r.ok)
      expect(r.value.spec).toMatchObject({
        prefixLength: { ipv4: 24, ipv6: 64 },
        autoAssign: true,
        avoidBuggyIPs: false,
        assignClassless: false,
      });
  });
  it.each([
    ['198.18.10.5/28', 'host bits set; write the network, e.g. 198.18.10.0/28'],
    ['198.18.10.9-198.18.10.1', 'ends before it starts'],
    ['198.18.10.1-2001:db8::1', 'mixes IPv4 and IPv6'],
    ['198.18.10.1 - 198.18.10.9', 'not a range of two IP addresses'],
    ['nonsense', 'neither a CIDR nor a range'],
  ])('refuses %s, saying how to fix it', (entry, words) => {
    const r = parseAddressPool(pool({ addresses: [entry] }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map(formatFieldError).join('\n')).toContain(words);
    expect(poolEntryProblem(entry)).toContain(words);
  });
  it('needs at least one address', () => {
    expect(parseAddressPool(pool({ addresses: [] })).ok).toBe(false);
  });
});

describe('pool ranges', () => {
  it('a CIDR covers its whole block', () => {
    const r = parsePoolEntry('198.18.10.0/30')!;
    expect([bigToIp(4, r.first), bigToIp(4, r.last)]).toEqual(['198.18.10.0', '198.18.10.3']);
    const v6 = parsePoolEntry('2001:db8:1::/126')!;
    expect([bigToIp(6, v6.first), bigToIp(6, v6.last)]).toEqual(['2001:db8:1::', '2001:db8:1::3']);
  });
  it('canonical IPv6 text follows RFC 5952', () => {
    expect(canonicalIp('2001:0DB8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIp('::1')).toBe('::1');
    expect(canonicalIp('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
  });
  it('bigToIp and ipToBig are inverse (both families)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (n) => {
        const text = bigToIp(6, n);
        expect(ipToBig(parseIp(text)!)).toBe(n);
        const v4 = n & 0xffffffffn;
        expect(ipToBig(parseIp(bigToIp(4, v4))!)).toBe(v4);
      }),
    );
  });
});
