import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  ADDRESS_CEL,
  ADDRESS_CEL_MESSAGE,
  ADDRESS_RULES,
  addressProblem,
  parseCidr,
  refusingRule,
} from '../../../src/api/index.js';
import { vipAddress } from '../../fixtures/arbitraries.js';

const ruleOf = (a: string) => {
  const c = parseCidr(a);
  if (!c) throw new Error(`${a} is not a CIDR`);
  return refusingRule(c)?.id;
};

describe('VirtualIP address rules', () => {
  it.each([
    ['0.0.0.0/24', 'unspecified'],
    ['0.0.0.0/0', 'unspecified'],
    ['::/0', 'unspecified'],
    ['::/64', 'unspecified'],
    ['0.0.0.5/24', 'this-network'],
    ['0.255.255.254/8', 'this-network'],
    ['255.255.255.255/32', 'limited-broadcast'],
    ['224.0.0.1/24', 'multicast'],
    ['239.255.255.254/24', 'multicast'],
    ['ff02::1/64', 'multicast'],
    ['127.0.0.2/32', 'loopback'],
    ['127.255.255.254/8', 'loopback'],
    ['::1/128', 'loopback'],
    ['169.254.169.254/32', 'cloud-metadata'],
    ['169.254.169.254/16', 'cloud-metadata'],
    ['fd00:ec2::254/64', 'cloud-metadata'],
    ['FD00:EC2:0:0:0:0:0:254/64', 'cloud-metadata'],
    ['169.254.1.1/16', 'link-local'],
    ['fe80::1/64', 'link-local'],
    ['febf:ffff::1/64', 'link-local'],
    ['10.0.0.5/0', 'short-prefix'],
    ['10.0.0.5/1', 'short-prefix'],
    ['198.18.0.100/7', 'short-prefix'],
    ['2001:db8::100/0', 'short-prefix'],
    ['2001:db8::100/15', 'short-prefix'],
    ['198.18.0.0/24', 'network-address'],
    ['10.0.0.0/8', 'network-address'],
    ['198.18.0.4/30', 'network-address'],
    ['2001:db8::/64', 'network-address'],
    ['2001:db8::4/126', 'network-address'],
    ['198.18.0.255/24', 'broadcast-address'],
    ['198.18.0.3/30', 'broadcast-address'],
    ['10.255.255.255/8', 'broadcast-address'],
  ])('refuses %s (%s)', (address, id) => {
    expect(ruleOf(address)).toBe(id);
  });

  it.each([
    '198.18.0.100/24',
    '198.18.0.1/24',
    '198.18.0.254/24',
    '198.18.0.0/31',
    '198.18.0.1/31',
    '198.18.0.0/32',
    '198.18.0.255/32',
    '10.0.0.1/8',
    '1.0.0.1/8',
    '100.64.0.1/10',
    '240.0.0.1/24',
    '169.253.255.254/16',
    '2001:db8::1/64',
    '2001:db8::/127',
    '2001:db8::1/127',
    '2001:db8::/128',
    '2001::1/16',
    'fd00::1/64',
    'fd00:ec2::253/64',
    'fec0::1/64',
    '64:ff9b::198.18.0.1/120',
  ])('accepts %s', (address) => {
    expect(ruleOf(address)).toBeUndefined();
    expect(addressProblem(address)).toBeUndefined();
  });

  it('gives one message per address, naming the value and a fix', () => {
    expect(addressProblem('198.18.0.0/24')).toBe(
      '"198.18.0.0/24" is the network address of its prefix; pick a host address such as 198.18.0.1/24',
    );
    expect(addressProblem('198.18.0.255/24')).toBe(
      '"198.18.0.255/24" is the broadcast address of its prefix; pick a host address such as 198.18.0.254/24',
    );
    expect(addressProblem('2001:db8::/64')).toBe(
      '"2001:db8::/64" is the network address of its prefix; pick a host address such as 2001:db8::1/64',
    );
    expect(addressProblem('10.0.0.5/1')).toBe(
      '"10.0.0.5/1": prefix /1 is shorter than /8: the holder would route that whole /1 to this interface; give the subnet\'s own prefix, e.g. 10.0.0.5/24',
    );
    // 0.0.0.0/24 is unspecified and a network address: the first rule speaks.
    expect(addressProblem('0.0.0.0/24')).toMatch(/^"0\.0\.0\.0\/24" is the unspecified address/);
  });

  it('leaves strings that are not CIDRs to the CIDR rule', () => {
    expect(addressProblem('198.18.0.300/24')).toBeUndefined();
    expect(addressProblem('198.18.0.100')).toBeUndefined();
  });

  it('suggests, for a network or broadcast address, a host address that every rule accepts', () => {
    fc.assert(
      fc.property(vipAddress, (address) => {
        const c = parseCidr(address);
        const id = c && refusingRule(c)?.id;
        if (id !== 'network-address' && id !== 'broadcast-address') return;
        const suggested = / such as (\S+)$/.exec(addressProblem(address) ?? '')?.[1];
        expect(suggested && parseCidr(suggested)).toBeTruthy();
        expect(addressProblem(suggested!)).toBeUndefined();
      }),
      { seed: 18, numRuns: 2000 },
    );
  });

  it('puts every rule into the CRD rule and its message expression', () => {
    for (const r of ADDRESS_RULES) {
      expect(ADDRESS_CEL).toContain(`(${r.cel})`);
      expect(ADDRESS_CEL_MESSAGE).toContain(`(${r.cel}) ?`);
    }
  });

  it('are all listed in docs/api.md', () => {
    const doc = readFileSync('docs/api.md', 'utf8');
    for (const r of ADDRESS_RULES) expect(doc).toContain(`\`${r.id}\``);
  });
});
