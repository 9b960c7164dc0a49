import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  allocate,
  canShare,
  familiesOf,
  ipOfKey,
  resolvePools,
  vipNameOf,
  type AddressUse,
  type AllocateInput,
  type PoolView,
  type ServiceRequest,
} from '../../../../src/controller/lb/allocator.js';
import { addressKey } from '../../../../src/runtime/address-claims.js';
import { addressProblem } from '../../../../src/api/vip-address.js';

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:00:01Z';

type PoolSpecIn = Parameters<typeof resolvePools>[0][number]['spec'];
function poolSpec(addresses: string[], extra: Partial<PoolSpecIn> = {}): PoolSpecIn {
  return {
    clusterRef: { name: 'c' },
    addresses,
    prefixLength: { ipv4: 24, ipv6: 64 },
    autoAssign: true,
    avoidBuggyIPs: false,
    assignClassless: false,
    ...extra,
  };
}

function pools(...specs: Array<[string, string[], Partial<PoolSpecIn>?]>): PoolView[] {
  const r = resolvePools(
    specs.map(([name, addrs, extra], i) => ({
      id: `hl/${name}`,
      name,
      created: `2026-01-01T00:00:0${i}Z`,
      spec: poolSpec(addrs, extra),
    })),
  );
  expect([...r.refused]).toEqual([]);
  return r.usable;
}

function svc(name: string, extra: Partial<ServiceRequest> = {}): ServiceRequest {
  return {
    id: `app/${name}`,
    families: [4],
    policy: 'SingleStack',
    requested: [],
    classless: false,
    ports: [{ protocol: 'TCP', port: 80 }],
    local: false,
    selector: '{"app":"web"}',
    ...extra,
  };
}

function input(
  s: ServiceRequest,
  p: PoolView[],
  used: Array<[string, AddressUse]> = [],
  current: string[] = [],
) {
  const i: AllocateInput = {
    service: s,
    pools: p,
    used: new Map(used.map(([ip, u]) => [addressKey(ip), u])),
    reserved: new Set(),
    current,
  };
  return i;
}

const byService = (ip: string, ...services: ServiceRequest[]): [string, AddressUse] => [
  ip,
  { vip: `hl/${vipNameOf(ip)}`, services, terminating: false },
];

describe('resolvePools', () => {
  it('refuses the younger of two overlapping pools, naming the older', () => {
    const r = resolvePools([
      { id: 'hl/b', name: 'b', created: T1, spec: poolSpec(['198.18.10.8-198.18.10.20']) },
      { id: 'hl/a', name: 'a', created: T0, spec: poolSpec(['198.18.10.0/28']) },
    ]);
    expect(r.usable.map((p) => p.id)).toEqual(['hl/a']);
    expect(r.refused.get('hl/b')).toContain('overlaps pool hl/a');
  });
  it('refuses a pool whose own entries overlap, and an unordered range', () => {
    const r = resolvePools([
      { id: 'hl/a', name: 'a', created: T0, spec: poolSpec(['198.18.10.0/28', '198.18.10.4-198.18.10.5']) },
      { id: 'hl/b', name: 'b', created: T0, spec: poolSpec(['198.18.11.9-198.18.11.1']) },
    ]);
    expect(r.usable).toEqual([]);
    expect(r.refused.get('hl/a')).toContain('overlap');
    expect(r.refused.get('hl/b')).toContain('not a CIDR or an ordered range');
  });
  it('IPv4 and IPv6 ranges never overlap each other', () => {
    expect(pools(['a', ['198.18.10.0/28']], ['b', ['2001:db8:1::/120']])).toHaveLength(2);
  });
});

describe('allocate', () => {
  it('hands out the lowest usable address, skipping the network address of the bind prefix', () => {
    const p = pools(['a', ['198.18.10.0/28']]);
    const r = allocate(input(svc('web'), p));
    expect(r).toEqual({
      ok: true,
      reason: 'allocated',
      addresses: [{ ip: '198.18.10.1', family: 4, pool: 'hl/a', cidr: '198.18.10.1/24' }],
    });
  });

  it('avoidBuggyIPs skips .0 and .255 even where the bind prefix allows them', () => {
    const p = pools([
      'a',
      ['198.18.10.255-198.18.11.1'],
      { avoidBuggyIPs: true, prefixLength: { ipv4: 16, ipv6: 64 } },
    ]);
    const r = allocate(input(svc('web'), p));
    expect(r.ok && r.addresses[0]!.ip).toBe('198.18.11.1');
    const q = pools(['a', ['198.18.10.255-198.18.11.1'], { prefixLength: { ipv4: 16, ipv6: 64 } }]);
    const r2 = allocate(input(svc('web'), q));
    expect(r2.ok && r2.addresses[0]!.ip).toBe('198.18.10.255');
  });

  it('is idempotent: the current address is kept even when a lower one is free', () => {
    const p = pools(['a', ['198.18.10.0/28']]);
    const me = svc('web');
    const r = allocate(input(me, p, [byService('198.18.10.7', me)], ['198.18.10.7']));
    expect(r.ok && r.addresses.map((a) => a.ip)).toEqual(['198.18.10.7']);
  });

  it('never hands out a used, a terminating or a Node address', () => {
    const p = pools(['a', ['198.18.10.1-198.18.10.4']]);
    const i = input(svc('web'), p, [
      byService('198.18.10.1', svc('other')),
      ['198.18.10.2', { vip: 'hl/manual', services: [], terminating: false }],
      ['198.18.10.3', { vip: 'hl/lb-198-18-10-3', services: [svc('gone')], terminating: true }],
    ]);
    i.reserved = new Set([addressKey('198.18.10.4')]);
    const r = allocate(i);
    expect(r).toMatchObject({ ok: false, reason: 'PoolExhausted' });
  });

  it('honours a requested address when free, refuses it when taken (AddressInUse) or outside pools', () => {
    const p = pools(['a', ['198.18.10.0/28']]);
    const ok = allocate(input(svc('web', { requested: ['198.18.10.9'] }), p));
    expect(ok.ok && ok.addresses[0]!.ip).toBe('198.18.10.9');
    const taken = allocate(
      input(svc('web', { requested: ['198.18.10.9'] }), p, [byService('198.18.10.9', svc('x'))]),
    );
    expect(taken).toMatchObject({ ok: false, reason: 'AddressInUse' });
    expect(!taken.ok && taken.message).toContain('app/x');
    const outside = allocate(input(svc('web', { requested: ['198.18.99.9'] }), p));
    expect(outside).toMatchObject({ ok: false, reason: 'NotInPool' });
    const net = allocate(input(svc('web', { requested: ['198.18.10.0'] }), p));
    expect(net).toMatchObject({ ok: false, reason: 'InvalidRequest' });
  });

  it('a requested address may come from a pool without autoAssign; automatic ones may not', () => {
    const p = pools(['a', ['198.18.10.0/28'], { autoAssign: false }]);
    expect(allocate(input(svc('web'), p))).toMatchObject({ ok: false, reason: 'NoPool' });
    expect(allocate(input(svc('web', { requested: ['198.18.10.3'] }), p))).toMatchObject({ ok: true });
  });

  it('class-less Services are served only by pools with assignClassless', () => {
    const p = pools(['a', ['198.18.10.0/28']]);
    expect(allocate(input(svc('web', { classless: true }), p))).toMatchObject({
      ok: false,
      reason: 'NoPool',
    });
    const q = pools(['a', ['198.18.10.0/28'], { assignClassless: true }]);
    expect(allocate(input(svc('web', { classless: true }), q))).toMatchObject({ ok: true });
  });

  it('the heartline.dev/address-pool annotation picks the pool', () => {
    const p = pools(['a', ['198.18.10.0/28']], ['b', ['198.18.11.0/28']]);
    const r = allocate(input(svc('web', { pool: 'b' }), p));
    expect(r.ok && r.addresses[0]!.pool).toBe('hl/b');
    expect(allocate(input(svc('web', { pool: 'zz' }), p))).toMatchObject({ ok: false, reason: 'NoPool' });
  });

  it('shares an address between Services with one key and disjoint ports, and only then', () => {
    const p = pools(['a', ['198.18.10.0/28']]);
    const a = svc('a', { sharingKey: 'k', ports: [{ protocol: 'TCP', port: 80 }] });
    const b = svc('b', { sharingKey: 'k', ports: [{ protocol: 'TCP', port: 443 }] });
    const r = allocate(input(b, p, [byService('198.18.10.1', a)]));
    expect(r.ok && r.addresses[0]!.ip).toBe('198.18.10.1');
    const clash = svc('c', { sharingKey: 'k', ports: [{ protocol: 'TCP', port: 80 }] });
    const r2 = allocate(input(clash, p, [byService('198.18.10.1', a)]));
    expect(r2.ok && r2.addresses[0]!.ip).toBe('198.18.10.2');
    const req = allocate(
      input(svc('c', { ...clash, requested: ['198.18.10.1'] }), p, [byService('198.18.10.1', a)]),
    );
    expect(req).toMatchObject({ ok: false, reason: 'AddressInUse' });
    // UDP 80 and TCP 80 are disjoint.
    const udp = svc('u', { sharingKey: 'k', ports: [{ protocol: 'UDP', port: 80 }] });
    expect(canShare(udp, [a])).toBe(true);
    // Local needs the same selector on both.
    const la = svc('la', { sharingKey: 'k', local: true });
    const lb = svc('lb', {
      sharingKey: 'k',
      local: true,
      ports: [{ protocol: 'TCP', port: 81 }],
      selector: '{"app":"x"}',
    });
    expect(canShare(lb, [la])).toBe(false);
    expect(canShare({ ...lb, selector: la.selector }, [la])).toBe(true);
    expect(canShare(svc('nokey'), [a])).toBe(false);
  });

  it('dual-stack: Require needs both families, Prefer takes what there is, SingleStack one', () => {
    const both = pools(['a', ['198.18.10.0/28', '2001:db8:1::/120']]);
    const only4 = pools(['a', ['198.18.10.0/28']]);
    const dual = (policy: ServiceRequest['policy']) => svc('web', { families: [6, 4], policy });
    const r = allocate(input(dual('RequireDualStack'), both));
    expect(r.ok && r.addresses.map((a) => a.cidr)).toEqual(['2001:db8:1::1/64', '198.18.10.1/24']);
    expect(allocate(input(dual('RequireDualStack'), only4))).toMatchObject({ ok: false, reason: 'NoPool' });
    const prefer = allocate(input(svc('web', { families: [4], policy: 'PreferDualStack' }), only4));
    expect(prefer.ok && prefer.addresses.map((a) => a.ip)).toEqual(['198.18.10.1']);
    const preferOne = allocate(input(svc('web', { families: [4], policy: 'PreferDualStack' }), both));
    expect(preferOne.ok && preferOne.addresses.map((a) => a.ip)).toEqual(['198.18.10.1']);
    const preferBoth = allocate(input(svc('web', { families: [4, 6], policy: 'PreferDualStack' }), both));
    expect(preferBoth.ok && preferBoth.addresses.map((a) => a.ip)).toEqual(['198.18.10.1', '2001:db8:1::1']);
    expect(familiesOf(svc('x', { families: [6], policy: 'SingleStack' }))).toEqual([
      { family: 6, required: true },
    ]);
  });

  it('vipNameOf gives a DNS-1123 name per address', () => {
    expect(vipNameOf('198.18.10.5')).toBe('lb-198-18-10-5');
    expect(vipNameOf('2001:db8:0::5')).toBe('lb-2001-db8--5');
    expect(vipNameOf('2001:db8::')).toBe('lb-2001-db8--0');
    expect(ipOfKey(addressKey('2001:db8::5'))).toBe('2001:db8::5');
  });
});

describe('allocate (properties)', () => {
  const octet = fc.integer({ min: 0, max: 255 });

  it('allocating Services one by one never hands out an address twice, nor one the rules refuse', () => {
    fc.assert(
      fc.property(
        octet,
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        fc.integer({ min: 22, max: 30 }),
        (third, count, avoid, prefix) => {
          const p = pools([
            'a',
            [`198.18.${third}.0/26`, `198.19.${third}.250-198.19.${(third + 1) % 256}.4`].filter(
              (_e, i) => i === 0 || third < 255,
            ),
            { avoidBuggyIPs: avoid, prefixLength: { ipv4: prefix, ipv6: 64 } },
          ]);
          const used = new Map<string, AddressUse>();
          for (let i = 0; i < count; i++) {
            const s = svc(`s${i}`);
            const r = allocate({ service: s, pools: p, used, reserved: new Set(), current: [] });
            if (!r.ok) {
              expect(r.reason).toBe('PoolExhausted');
              continue;
            }
            for (const a of r.addresses) {
              const k = addressKey(a.ip);
              expect(used.has(k)).toBe(false);
              expect(addressProblem(a.cidr)).toBeUndefined();
              if (avoid) expect(a.ip).not.toMatch(/\.(0|255)$/);
              used.set(k, { vip: vipNameOf(a.ip), services: [s], terminating: false });
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is idempotent: allocating again with the result as current gives the same addresses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 30 }),
        fc.constantFrom<ServiceRequest['policy']>('SingleStack', 'PreferDualStack', 'RequireDualStack'),
        fc.constantFrom<Array<4 | 6>>([4], [6], [4, 6], [6, 4]),
        (taken, policy, families) => {
          const p = pools(['a', ['198.18.10.0/27', '2001:db8:1::/123']]);
          const used = new Map<string, AddressUse>();
          for (let i = 1; i <= taken; i++)
            used.set(addressKey(`198.18.10.${i}`), {
              vip: 'x',
              services: [svc(`o${i}`)],
              terminating: false,
            });
          const s = svc('me', { policy, families });
          const first = allocate({ service: s, pools: p, used, reserved: new Set(), current: [] });
          if (!first.ok) return;
          const mine = new Map(used);
          for (const a of first.addresses)
            mine.set(addressKey(a.ip), { vip: vipNameOf(a.ip), services: [s], terminating: false });
          const again = allocate({
            service: s,
            pools: p,
            used: mine,
            reserved: new Set(),
            current: first.addresses.map((a) => a.ip),
          });
          expect(again).toEqual(first);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('every allocated address lies in a pool that serves the Service, of the family asked', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.boolean(), (classless, assignClassless, v6) => {
        const p = pools(['a', ['198.18.10.0/28', '2001:db8:1::/124'], { assignClassless }]);
        const r = allocate(input(svc('me', { classless, families: [v6 ? 6 : 4] }), p));
        if (classless && !assignClassless) expect(r).toMatchObject({ ok: false, reason: 'NoPool' });
        else {
          expect(r.ok).toBe(true);
          if (r.ok) expect(r.addresses[0]!.ip.includes(':')).toBe(v6);
        }
      }),
    );
  });
});
