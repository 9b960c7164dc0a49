/**
 * The pure half of the Service reconciler: what a Service asks for (ServiceRequest), whether
 * Heartline serves it, the VirtualIP that holds an allocated address, and the status and
 * Events that follow from an allocation and the state of its VirtualIPs. No I/O; the
 * reconciler (service-reconciler.ts) reads the cache, calls these and the allocator, and
 * writes.
 */
import type { ApiObject } from '../../core/ports.js';
import type { AddressPool } from '../../api/index.js';
import type { Condition } from '../../api/meta.js';
import { splitId } from '../../runtime/object-cache.js';
import type { EventSpec } from '../decide/status.js';
import { vipNameOf } from './allocator.js';
import type { Allocated, Allocation, Family, PortSpec, ServiceRequest } from './allocator.js';

/** spec.loadBalancerClass of the Services Heartline serves. */
export const LB_CLASS = 'heartline.dev/vip';
/** Requested addresses, one per family, comma-separated (spec.loadBalancerIP also works). */
export const ADDRESS_ANNOTATION = 'heartline.dev/address';
/** Take the address from this pool (its name, in the HACluster's namespace). */
export const POOL_ANNOTATION = 'heartline.dev/address-pool';
/** MetalLB's allow-shared-ip: Services with the same key and disjoint ports share an address. */
export const SHARED_ANNOTATION = 'heartline.dev/allow-shared-ip';
/** On a VirtualIP made for Services: "true". */
export const LB_LABEL = 'heartline.dev/load-balancer';
/** On a VirtualIP made for Services: the pool it came from. */
export const POOL_LABEL = 'heartline.dev/address-pool';
/** On a VirtualIP made for Services: the Services ("namespace/name", sorted, comma-separated) it serves. */
export const SERVICES_ANNOTATION = 'heartline.dev/services';

export const ServiceConditionTypes = ['IPAllocated', 'AddressHeld'] as const;

interface ServiceShape {
  spec?: {
    type?: string;
    loadBalancerClass?: string;
    loadBalancerIP?: string;
    ipFamilies?: string[];
    ipFamilyPolicy?: string;
    externalTrafficPolicy?: string;
    selector?: Record<string, string>;
    ports?: Array<{ protocol?: string; port?: number }>;
  };
  status?: {
    loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string; ipMode?: string }> };
    conditions?: Condition[];
  };
}

const specOf = (svc: ApiObject) => (svc as ServiceShape).spec ?? {};

/** Whether Heartline gives this Service addresses: type LoadBalancer, class heartline.dev/vip or (opted in) none. */
export function servedBy(svc: ApiObject | undefined, classlessOptIn: boolean): boolean {
  if (!svc || svc.metadata.deletionTimestamp) return false;
  const s = specOf(svc);
  if (s.type !== 'LoadBalancer') return false;
  if (s.loadBalancerClass === LB_CLASS) return true;
  return s.loadBalancerClass === undefined && classlessOptIn;
}

export function serviceIdOf(svc: ApiObject): string {
  return `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
}

/** The Service's request, as the allocator reads it. */
export function serviceRequestOf(svc: ApiObject): ServiceRequest {
  const s = specOf(svc);
  const ann = svc.metadata.annotations ?? {};
  const families: Family[] = (s.ipFamilies ?? []).flatMap((f): Family[] =>
    f === 'IPv4' ? [4] : f === 'IPv6' ? [6] : [],
  );
  const policy =
    s.ipFamilyPolicy === 'PreferDualStack' || s.ipFamilyPolicy === 'RequireDualStack'
      ? s.ipFamilyPolicy
      : 'SingleStack';
  const requested = (ann[ADDRESS_ANNOTATION] ?? s.loadBalancerIP ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const ports: PortSpec[] = (s.ports ?? []).map((p) => ({
    protocol: p.protocol ?? 'TCP',
    port: p.port ?? 0,
  }));
  const selector = Object.fromEntries(Object.entries(s.selector ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)));
  return {
    id: serviceIdOf(svc),
    families,
    policy,
    requested,
    pool: ann[POOL_ANNOTATION] || undefined,
    classless: s.loadBalancerClass === undefined,
    sharingKey: ann[SHARED_ANNOTATION] || undefined,
    ports,
    local: s.externalTrafficPolicy === 'Local',
    selector: JSON.stringify(selector),
  };
}

/** The Services a VirtualIP serves, from its annotation. */
export function servicesOfVip(vip: ApiObject): string[] {
  return (vip.metadata.annotations?.[SERVICES_ANNOTATION] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** What the VirtualIPs of a Service show, for its AddressHeld condition. */
export interface HeldView {
  ip: string;
  vip: string;
  holder?: string | undefined;
  phase?: string | undefined;
  /** The VirtualIP's Ready condition message, when not Ready. */
  why?: string | undefined;
  /** externalTrafficPolicy Local and no node has a ready endpoint. */
  noEndpoints?: boolean;
}

export interface ServiceDecision {
  status: Record<string, unknown>;
  events: EventSpec[];
}

function setCondition(
  list: Condition[],
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): { list: Condition[]; changed: boolean } {
  const prev = list.find((c) => c.type === next.type);
  const changed = !prev || prev.status !== next.status || prev.reason !== next.reason;
  const cond: Condition = {
    ...next,
    lastTransitionTime: prev && prev.status === next.status ? prev.lastTransitionTime : now.toISOString(),
  };
  return { list: [...list.filter((c) => c.type !== next.type), cond], changed };
}

/**
 * The Service status after an allocation: status.loadBalancer.ingress (ipMode VIP) and the
 * IPAllocated and AddressHeld conditions, other fields and conditions kept; and the Events
 * for what changed (reasons IPAllocated, AddressInUse, PoolExhausted, NoPool, NotInPool,
 * InvalidRequest, NoEligibleNode, AddressHeld).
 */
export function decideServiceStatus(input: {
  base: ServiceShape['status'] | undefined;
  generation: number | undefined;
  allocation: Allocation;
  held: HeldView[];
  now: Date;
}): ServiceDecision {
  const { allocation, held, now } = input;
  const base = input.base ?? {};
  const events: EventSpec[] = [];
  let conditions = [...(base.conditions ?? [])];
  const gen = input.generation !== undefined ? { observedGeneration: input.generation } : {};
  const ips = allocation.ok ? allocation.addresses.map((a) => a.ip) : [];

  const alloc = setCondition(
    conditions,
    allocation.ok
      ? {
          type: 'IPAllocated',
          status: 'True',
          reason: 'IPAllocated',
          message: allocation.addresses.map((a) => `${a.ip} from pool ${a.pool}`).join(', '),
          ...gen,
        }
      : {
          type: 'IPAllocated',
          status: 'False',
          reason: allocation.reason,
          message: allocation.message,
          ...gen,
        },
    now,
  );
  conditions = alloc.list;
  const before = (base.loadBalancer?.ingress ?? []).map((i) => i.ip).filter(Boolean);
  if (allocation.ok && (alloc.changed || before.join(',') !== ips.join(',')))
    events.push({
      type: 'Normal',
      reason: 'IPAllocated',
      note: `assigned ${allocation.addresses.map((a) => `${a.ip} (pool ${a.pool})`).join(', ')}`,
      action: 'Allocate',
    });
  if (!allocation.ok && alloc.changed)
    events.push({ type: 'Warning', reason: allocation.reason, note: allocation.message, action: 'Allocate' });

  if (allocation.ok) {
    const unheld = held.filter((h) => !(h.phase === 'Bound' && h.holder));
    const noNode = held.filter((h) => h.noEndpoints || h.phase === 'Unassigned');
    const heldCond: Omit<Condition, 'lastTransitionTime'> =
      unheld.length === 0 && noNode.length === 0
        ? {
            type: 'AddressHeld',
            status: 'True',
            reason: 'Bound',
            message: held.map((h) => `${h.ip} held by ${h.holder}`).join(', '),
            ...gen,
          }
        : noNode.length > 0
          ? {
              type: 'AddressHeld',
              status: 'False',
              reason: 'NoEligibleNode',
              message: noNode
                .map((h) =>
                  h.noEndpoints
                    ? `${h.ip} (VirtualIP ${h.vip}): no node has a ready endpoint of the Service (externalTrafficPolicy Local)`
                    : `${h.ip} (VirtualIP ${h.vip}): no eligible member${h.why ? `: ${h.why}` : ''}`,
                )
                .join('; '),
              ...gen,
            }
          : {
              type: 'AddressHeld',
              status: 'False',
              reason: 'Pending',
              message: unheld
                .map((h) => `${h.ip} (VirtualIP ${h.vip}) ${h.phase ?? 'not yet decided'}`)
                .join('; '),
              ...gen,
            };
    const h = setCondition(conditions, heldCond, now);
    conditions = h.list;
    if (h.changed && heldCond.reason === 'NoEligibleNode')
      events.push({ type: 'Warning', reason: 'NoEligibleNode', note: heldCond.message, action: 'Hold' });
    if (h.changed && heldCond.reason === 'Bound')
      events.push({ type: 'Normal', reason: 'AddressHeld', note: heldCond.message, action: 'Hold' });
  } else conditions = conditions.filter((c) => c.type !== 'AddressHeld');

  const status: Record<string, unknown> = {
    ...base,
    loadBalancer: ips.length > 0 ? { ingress: ips.map((ip) => ({ ip, ipMode: 'VIP' })) } : {},
    conditions,
  };
  return { status, events };
}

/** The status of a Service Heartline no longer serves: its ingress and conditions removed. */
export function clearedServiceStatus(base: ServiceShape['status'] | undefined): Record<string, unknown> {
  const b = base ?? {};
  const conditions = (b.conditions ?? []).filter(
    (c) => !(ServiceConditionTypes as readonly string[]).includes(c.type),
  );
  const out: Record<string, unknown> = { ...b, loadBalancer: {} };
  if (conditions.length > 0) out.conditions = conditions;
  else delete out.conditions;
  return out;
}

/** Where the VirtualIP of an allocated address lives: the pool's namespace, named after the address. */
export function lbVipKeyOf(a: Allocated, pool: AddressPool): { namespace: string; name: string; id: string } {
  const namespace = pool.metadata.namespace ?? splitId(a.pool).ns ?? 'default';
  const name = vipNameOf(a.ip);
  return { namespace, name, id: `${namespace}/${name}` };
}

/** An owner reference to the Service when it lives in `ns` (Kubernetes has no cross-namespace owners). */
export function serviceOwnerRef(svc: ApiObject, ns: string): Record<string, unknown> | undefined {
  if ((svc.metadata.namespace ?? 'default') !== ns || !svc.metadata.uid) return undefined;
  return { apiVersion: 'v1', kind: 'Service', name: svc.metadata.name, uid: svc.metadata.uid };
}

/**
 * The VirtualIP that holds address `a` of pool `pool` for Service `svc`, as first created:
 * labelled, listing the Service (owned by it when in the same namespace), with the pool's
 * cluster, interface, node selector and announce settings, and the eligible nodes (Local).
 */
export function lbVipObject(
  svc: ApiObject,
  a: Allocated,
  pool: AddressPool,
  eligible: string[] | undefined,
): ApiObject {
  const { namespace, name } = lbVipKeyOf(a, pool);
  const owner = serviceOwnerRef(svc, namespace);
  return {
    apiVersion: 'heartline.dev/v1alpha1',
    kind: 'VirtualIP',
    metadata: {
      name,
      namespace,
      labels: { [LB_LABEL]: 'true', [POOL_LABEL]: pool.metadata.name ?? '' },
      annotations: { [SERVICES_ANNOTATION]: serviceIdOf(svc) },
      ...(owner ? { ownerReferences: [owner] } : {}),
    },
    spec: {
      clusterRef: { name: pool.spec.clusterRef.name },
      address: a.cidr,
      ...(pool.spec.interface ? { interface: pool.spec.interface } : {}),
      ...(pool.spec.nodeSelector ? { nodeSelector: pool.spec.nodeSelector } : {}),
      ...(pool.spec.announce ? { announce: pool.spec.announce } : {}),
      ...(eligible ? { eligibleNodes: eligible } : {}),
    },
  };
}
