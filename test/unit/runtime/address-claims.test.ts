import { describe, expect, it } from '@jest/globals';
import {
  addressKey,
  resolveAddressClaims,
  type AddressClaimant,
} from '../../../src/runtime/address-claims.js';
import { buildClusterConfig } from '../../../src/runtime/cluster-config.js';
import type { ApiObject } from '../../../src/core/ports.js';

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:00:01Z';
const T2 = '2026-01-01T00:00:02Z';

function verdicts(claimants: AddressClaimant[], nodes: Array<{ node: string; address: string }> = []) {
  return Object.fromEntries(
    [...resolveAddressClaims(claimants, nodes)].map(([id, v]) => [id, v.ok ? 'ok' : v.reason]),
  );
}

describe('addressKey', () => {
  it('compares the IP only, whatever the prefix or spelling', () => {
    expect(addressKey('198.18.0.100/24')).toBe(addressKey('198.18.0.100/32'));
    expect(addressKey('198.18.0.100/24')).toBe(addressKey('198.18.0.100'));
    expect(addressKey('2001:db8::1/64')).toBe(addressKey('2001:0db8:0:0::0001/128'));
    expect(addressKey('198.18.0.100/24')).not.toBe(addressKey('198.18.0.101/24'));
  });
});

describe('resolveAddressClaims', () => {
  it('the older VirtualIP keeps a shared address; the younger ones are refused, naming it', () => {
    const r = resolveAddressClaims([
      { id: 'ns/b', address: '198.18.0.100/24', created: T1 },
      { id: 'ns/a', address: '198.18.0.100/32', created: T2 },
      { id: 'ns/c', address: '198.18.0.100/24', created: T0 },
      { id: 'ns/d', address: '198.18.0.101/24', created: T2 },
    ]);
    expect(r.get('ns/c')).toEqual({ ok: true });
    expect(r.get('ns/d')).toEqual({ ok: true });
    for (const id of ['ns/a', 'ns/b']) {
      const v = r.get(id);
      expect(v).toMatchObject({ ok: false, reason: 'DuplicateAddress', others: ['ns/c'] });
      if (v && !v.ok)
        expect(v.message).toMatch(
          /^spec\.address: 198\.18\.0\.100 is already the address of VirtualIP ns\/c/,
        );
    }
  });

  it('same creation second (or none): namespace/name decides, the same way on every reader', () => {
    const claims: AddressClaimant[] = [
      { id: 'ns/web-b', address: '198.18.0.100/24', created: T0 },
      { id: 'ns/web-a', address: '198.18.0.100/24', created: T0 },
      { id: 'other/x', address: '198.18.0.100/24' },
    ];
    expect(verdicts(claims)).toEqual({
      'ns/web-a': 'ok',
      'ns/web-b': 'DuplicateAddress',
      'other/x': 'DuplicateAddress',
    });
    expect(verdicts([...claims].reverse())).toEqual(verdicts(claims));
  });

  it('refuses every VirtualIP on a Node address', () => {
    const r = resolveAddressClaims(
      [
        { id: 'ns/a', address: '198.18.0.11/24', created: T0 },
        { id: 'ns/b', address: '198.18.0.11/32', created: T1 },
      ],
      [{ node: 'n1', address: '198.18.0.11' }],
    );
    for (const id of ['ns/a', 'ns/b']) {
      const v = r.get(id);
      expect(v).toMatchObject({ ok: false, reason: 'NodeAddress', others: ['n1'] });
      if (v && !v.ok) expect(v.message).toContain('is an address of Node n1');
    }
  });

  it('the owner waits while a younger VirtualIP with its address may still be bound', () => {
    // The older one moved onto the address of a younger one that is bound.
    expect(
      verdicts([
        { id: 'ns/old', address: '198.18.0.100/24', created: T0 },
        { id: 'ns/young', address: '198.18.0.100/24', created: T1, held: true },
      ]),
    ).toEqual({ 'ns/old': 'AwaitingRelease', 'ns/young': 'DuplicateAddress' });
    // Once released, the owner may bind.
    expect(
      verdicts([
        { id: 'ns/old', address: '198.18.0.100/24', created: T0, held: true },
        { id: 'ns/young', address: '198.18.0.100/24', created: T1 },
      ]),
    ).toEqual({ 'ns/old': 'ok', 'ns/young': 'DuplicateAddress' });
  });

  it('an address left while bound stays claimed until released (heldAddress)', () => {
    const claims: AddressClaimant[] = [
      { id: 'ns/old', address: '198.18.0.200/24', created: T0, held: true, heldAddress: '198.18.0.100/24' },
      { id: 'ns/young', address: '198.18.0.100/24', created: T1 },
    ];
    const r = resolveAddressClaims(claims);
    expect(r.get('ns/old')).toEqual({ ok: true });
    expect(r.get('ns/young')).toMatchObject({ ok: false, reason: 'AwaitingRelease', others: ['ns/old'] });
    // Released (or bound again at its new address): the younger one may take it.
    expect(verdicts([{ ...claims[0]!, heldAddress: undefined }, claims[1]!])).toEqual({
      'ns/old': 'ok',
      'ns/young': 'ok',
    });
  });

  it("the controller's verdict holds a VirtualIP back until the controller clears it", () => {
    expect(verdicts([{ id: 'ns/young', address: '198.18.0.100/24', blocked: true }])).toEqual({
      'ns/young': 'AwaitingController',
    });
  });
});

describe('buildClusterConfig applies the rule', () => {
  const KEY = Buffer.alloc(32, 7).toString('base64');
  const vip = (name: string, address: string, created: string, cluster = 'web'): ApiObject =>
    ({
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'VirtualIP',
      metadata: { name, namespace: 'ns', creationTimestamp: created },
      spec: { clusterRef: { name: cluster }, address },
    }) as ApiObject;
  const build = (vips: ApiObject[]) =>
    buildClusterConfig({
      cluster: {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: 'web', namespace: 'ns' },
        spec: { authSecretRef: { name: 'auth', activeKeyId: '1' } },
      } as ApiObject,
      vips,
      resources: [],
      nodes: [
        {
          metadata: { name: 'n1' },
          status: { addresses: [{ type: 'InternalIP', address: '198.18.0.11' }] },
        } as ApiObject,
      ],
      secret: { metadata: { name: 'auth', namespace: 'ns' }, data: { '1': KEY } } as ApiObject,
    });

  it('a refused VirtualIP stays known but is never bound (like a deleted one), with the reason in problems', () => {
    const c = build([
      vip('young', '198.18.0.100/24', T1),
      vip('old', '198.18.0.100/32', T0),
      vip('node', '198.18.0.11/24', T0),
      // Another cluster of the namespace owns .101: this cluster's younger duplicate is refused.
      vip('elsewhere', '198.18.0.101/24', T0, 'db'),
      vip('mine', '198.18.0.101/24', T2),
    ]);
    const byId = Object.fromEntries(c.vips.map((v) => [v.vip, v.deleting]));
    expect(byId).toEqual({ 'ns/mine': true, 'ns/node': true, 'ns/old': false, 'ns/young': true });
    expect(c.vips.find((v) => v.vip === 'ns/young')?.refused).toContain('VirtualIP ns/old');
    expect(c.problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining(
          'VirtualIP ns/young: not bound: spec.address: 198.18.0.100 is already the address of VirtualIP ns/old',
        ),
        expect.stringContaining(
          'VirtualIP ns/node: not bound: spec.address: 198.18.0.11 is an address of Node n1',
        ),
        expect.stringContaining('VirtualIP ns/mine: not bound'),
      ]),
    );
  });
});
