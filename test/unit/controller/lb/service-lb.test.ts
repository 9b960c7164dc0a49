import { describe, expect, it } from '@jest/globals';
import type { ApiObject } from '../../../../src/core/ports.js';
import {
  clearedServiceStatus,
  decideServiceStatus,
  serviceRequestOf,
  servedBy,
} from '../../../../src/controller/lb/service-lb.js';

const now = new Date('2026-01-01T00:00:00Z');
const svc = (spec: Record<string, unknown>, annotations: Record<string, string> = {}) =>
  ({ metadata: { name: 'web', namespace: 'app', annotations }, spec }) as ApiObject;

describe('servedBy', () => {
  it('serves type LoadBalancer with class heartline.dev/vip, class-less ones only when opted in', () => {
    expect(servedBy(svc({ type: 'LoadBalancer', loadBalancerClass: 'heartline.dev/vip' }), false)).toBe(true);
    expect(servedBy(svc({ type: 'LoadBalancer' }), false)).toBe(false);
    expect(servedBy(svc({ type: 'LoadBalancer' }), true)).toBe(true);
    expect(servedBy(svc({ type: 'LoadBalancer', loadBalancerClass: 'other.io/lb' }), true)).toBe(false);
    expect(servedBy(svc({ type: 'ClusterIP', loadBalancerClass: 'heartline.dev/vip' }), true)).toBe(false);
  });
});

describe('serviceRequestOf', () => {
  it('reads families, policy, requested addresses, pool, sharing key, ports, Local and selector', () => {
    const r = serviceRequestOf(
      svc(
        {
          type: 'LoadBalancer',
          ipFamilies: ['IPv6', 'IPv4'],
          ipFamilyPolicy: 'RequireDualStack',
          externalTrafficPolicy: 'Local',
          selector: { b: '2', a: '1' },
          ports: [{ protocol: 'UDP', port: 53 }, { port: 80 }],
        },
        {
          'heartline.dev/address': '198.18.10.5, 2001:db8::5',
          'heartline.dev/address-pool': 'edge',
          'heartline.dev/allow-shared-ip': 'k',
        },
      ),
    );
    expect(r).toEqual({
      id: 'app/web',
      families: [6, 4],
      policy: 'RequireDualStack',
      requested: ['198.18.10.5', '2001:db8::5'],
      pool: 'edge',
      classless: true,
      sharingKey: 'k',
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 80 },
      ],
      local: true,
      selector: '{"a":"1","b":"2"}',
    });
    expect(serviceRequestOf(svc({ loadBalancerIP: '198.18.10.9' })).requested).toEqual(['198.18.10.9']);
  });
});

describe('decideServiceStatus', () => {
  const ok = {
    ok: true as const,
    reason: 'allocated',
    addresses: [{ ip: '198.18.10.1', family: 4 as const, pool: 'hl/a', cidr: '198.18.10.1/24' }],
  };

  it('publishes ingress with ipMode VIP, IPAllocated and AddressHeld, with one Event per change', () => {
    const d = decideServiceStatus({
      base: undefined,
      generation: 3,
      allocation: ok,
      held: [{ ip: '198.18.10.1', vip: 'hl/lb-198-18-10-1', holder: 'n2', phase: 'Bound' }],
      now,
    });
    expect(d.status.loadBalancer).toEqual({ ingress: [{ ip: '198.18.10.1', ipMode: 'VIP' }] });
    const conds = d.status.conditions as Array<{ type: string; status: string; reason: string }>;
    expect(conds.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['IPAllocated', 'True', 'IPAllocated'],
      ['AddressHeld', 'True', 'Bound'],
    ]);
    expect(d.events.map((e) => e.reason)).toEqual(['IPAllocated', 'AddressHeld']);
    // The same again: no Event.
    const again = decideServiceStatus({
      base: d.status as never,
      generation: 3,
      allocation: ok,
      held: [{ ip: '198.18.10.1', vip: 'hl/lb-198-18-10-1', holder: 'n2', phase: 'Bound' }],
      now,
    });
    expect(again.events).toEqual([]);
    expect(again.status).toEqual(d.status);
  });

  it('says NoEligibleNode when no node has a ready endpoint, and refusals with their reason', () => {
    const d = decideServiceStatus({
      base: undefined,
      generation: 1,
      allocation: ok,
      held: [{ ip: '198.18.10.1', vip: 'hl/x', noEndpoints: true }],
      now,
    });
    expect(d.events.map((e) => [e.type, e.reason])).toEqual([
      ['Normal', 'IPAllocated'],
      ['Warning', 'NoEligibleNode'],
    ]);
    const refused = decideServiceStatus({
      base: d.status as never,
      generation: 2,
      allocation: { ok: false, reason: 'PoolExhausted', message: 'full' },
      held: [],
      now,
    });
    expect(refused.status.loadBalancer).toEqual({});
    expect(refused.events).toEqual([
      { type: 'Warning', reason: 'PoolExhausted', note: 'full', action: 'Allocate' },
    ]);
    expect(clearedServiceStatus(refused.status as never)).toEqual({ loadBalancer: {} });
  });
});
