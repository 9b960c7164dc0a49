/**
 * Which addresses a Service of type LoadBalancer gets: a pure function of the pools, the
 * addresses in use (every VirtualIP, Service-made or hand-written, being deleted included,
 * and every Node address) and the Service's request. The Service reconciler calls it on every
 * reconcile with the allocation it already has, so the answer is idempotent: an allocation
 * that still satisfies the request is kept as is, and nothing lives only in memory (the
 * VirtualIPs and the Service status are the record; docs/adr/0028).
 *
 * Rules, after MetalLB's allocator where the meaning is the same:
 * - Families follow `ipFamilies` / `ipFamilyPolicy`: SingleStack takes the first family,
 *   RequireDualStack needs an address of each listed family, PreferDualStack needs the first
 *   and takes the second when a pool has one.
 * - Requested addresses (`spec.loadBalancerIP`, or the `heartline.dev/address` annotation
 *   with one address per family) are honoured when they are in a pool, pass the VirtualIP
 *   address rules with that pool's prefix, and are free or shareable; otherwise nothing is
 *   allocated (AddressInUse / NotInPool).
 * - Sharing (`heartline.dev/allow-shared-ip`, MetalLB's allow-shared-ip): two Services share
 *   an address when both carry the same key, their ports (protocol, port) are disjoint, and
 *   their externalTrafficPolicy is Cluster for both, or Local for both with the same selector
 *   (the address follows one set of endpoints).
 * - Automatic addresses come from pools with autoAssign (and, for a Service without a
 *   loadBalancerClass, assignClassless), in name order, lowest free address first, skipping
 *   IPv4 .0 / .255 under avoidBuggyIPs and every address the VirtualIP rules refuse. A Service
 *   with a sharing key first joins an address its sharers already have.
 */
import { addressProblem } from '../../api/vip-address.js';
import { bigToIp, canonicalIp, ipToBig, parsePoolEntry, type PoolRange } from '../../api/pool-range.js';
import { parseIp } from '../../api/net.js';
import { addressKey } from '../../runtime/address-claims.js';

export type Family = 4 | 6;

/** A pool as the allocator sees it (already validated, overlap resolved). */
export interface PoolView {
  /** "namespace/name". */
  id: string;
  name: string;
  cluster: string;
  ranges: PoolRange[];
  prefix4: number;
  prefix6: number;
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  assignClassless: boolean;
}

export interface PortSpec {
  protocol: string;
  port: number;
}

/** A Service as the allocator sees it. */
export interface ServiceRequest {
  /** "namespace/name". */
  id: string;
  /** ipFamilies in order (4 / 6); empty means [4]. */
  families: Family[];
  policy: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  /** Addresses the Service asks for (spec.loadBalancerIP or the annotation). */
  requested: string[];
  /** Only this pool (annotation heartline.dev/address-pool). */
  pool?: string | undefined;
  /** True when the Service has no loadBalancerClass (served only by assignClassless pools). */
  classless: boolean;
  sharingKey?: string | undefined;
  ports: PortSpec[];
  local: boolean;
  /** spec.selector as canonical JSON, for Local sharing. */
  selector: string;
}

/** Who uses an address now. */
export interface AddressUse {
  /** The VirtualIP that carries it, "namespace/name". */
  vip: string;
  /** The Services that share it; empty for a hand-written VirtualIP (never shareable). */
  services: ServiceRequest[];
  /** Being deleted (still bound somewhere until released): not shareable, not free. */
  terminating: boolean;
}

export interface Allocated {
  ip: string;
  family: Family;
  pool: string;
  /** The address with the pool's prefix, as the VirtualIP's spec.address. */
  cidr: string;
}

export type AllocationRefusal =
  /** A requested address is taken and not shareable. */
  | 'AddressInUse'
  /** A requested address is in no pool (or not in the named one). */
  | 'NotInPool'
  /** No pool of a needed family has a free address. */
  | 'PoolExhausted'
  /** No pool serves this Service (class, family or the named pool). */
  | 'NoPool'
  /** The request itself is wrong (e.g. two addresses of one family). */
  | 'InvalidRequest';

export type Allocation =
  | { ok: true; addresses: Allocated[]; reason: string }
  | { ok: false; reason: AllocationRefusal; message: string };

export interface AllocateInput {
  service: ServiceRequest;
  pools: readonly PoolView[];
  /** Address key (addressKey of the IP) → its use; the Service's own current addresses included. */
  used: ReadonlyMap<string, AddressUse>;
  /** Address keys no Service may get (Node addresses). */
  reserved: ReadonlySet<string>;
  /** The IPs the Service holds now (its VirtualIPs), kept when they still fit. */
  current: readonly string[];
}

const famName = (f: Family) => (f === 4 ? 'IPv4' : 'IPv6');

/** The families a Service needs addresses for, and whether each is required. */
export function familiesOf(s: ServiceRequest): { family: Family; required: boolean }[] {
  const fams: Family[] = s.families.length > 0 ? [...s.families] : [4];
  if (s.policy === 'SingleStack') return [{ family: fams[0]!, required: true }];
  // The API server fills ipFamilies from the policy and the cluster's Service CIDRs: a
  // PreferDualStack Service of a single-stack cluster lists one family, and a LoadBalancer
  // address of a family the Service has no ClusterIP of would reach nothing.
  return fams
    .slice(0, 2)
    .map((family, i) => ({ family, required: s.policy === 'RequireDualStack' || i === 0 }));
}

function portsDisjoint(a: PortSpec[], b: PortSpec[]): boolean {
  const seen = new Set(a.map((p) => `${p.protocol}/${p.port}`));
  return b.every((p) => !seen.has(`${p.protocol}/${p.port}`));
}

/** Whether `s` may share an address with every Service in `others` (MetalLB's rule). */
export function canShare(s: ServiceRequest, others: readonly ServiceRequest[]): boolean {
  if (s.sharingKey === undefined || s.sharingKey === '') return false;
  return others.every(
    (o) =>
      o.id === s.id ||
      (o.sharingKey === s.sharingKey &&
        portsDisjoint(s.ports, o.ports) &&
        o.local === s.local &&
        (!s.local || o.selector === s.selector)),
  );
}

function poolFamilyOk(p: PoolView, family: Family): boolean {
  return p.ranges.some((r) => r.family === family);
}

function poolServes(p: PoolView, s: ServiceRequest): boolean {
  if (s.pool !== undefined) return p.name === s.pool;
  return !s.classless || p.assignClassless;
}

function prefixOf(p: PoolView, family: Family): number {
  return family === 4 ? p.prefix4 : p.prefix6;
}

/** Why `ip` (canonical) may not be handed out from `pool`, or undefined. */
function unusable(pool: PoolView, family: Family, n: bigint, ip: string): string | undefined {
  if (pool.avoidBuggyIPs && family === 4) {
    const last = n & 0xffn;
    if (last === 0n || last === 255n) return `${ip} ends in .0 or .255 and pool ${pool.id} has avoidBuggyIPs`;
  }
  return addressProblem(`${ip}/${prefixOf(pool, family)}`);
}

function poolOf(pools: readonly PoolView[], family: Family, n: bigint): PoolView | undefined {
  return pools.find((p) => p.ranges.some((r) => r.family === family && r.first <= n && n <= r.last));
}

interface Pick {
  ip: string;
  family: Family;
  pool: PoolView;
}

function allocated(p: Pick): Allocated {
  return { ip: p.ip, family: p.family, pool: p.pool.id, cidr: `${p.ip}/${prefixOf(p.pool, p.family)}` };
}

/** Can `s` take `ip` (key `k`) given what uses it now? */
function takeable(
  s: ServiceRequest,
  k: string,
  used: AllocateInput['used'],
  reserved: AllocateInput['reserved'],
) {
  if (reserved.has(k)) return { ok: false as const, why: 'is the address of a Node' };
  const u = used.get(k);
  if (!u) return { ok: true as const };
  if (u.services.some((o) => o.id === s.id) && !u.terminating) {
    const others = u.services.filter((o) => o.id !== s.id);
    return others.length === 0 || canShare(s, others)
      ? { ok: true as const }
      : {
          ok: false as const,
          why: `is shared with ${others.map((o) => o.id).join(', ')}, which no longer allow sharing it`,
        };
  }
  if (u.terminating)
    return { ok: false as const, why: `is still held by VirtualIP ${u.vip}, which is being released` };
  if (u.services.length === 0) return { ok: false as const, why: `is the address of VirtualIP ${u.vip}` };
  if (canShare(s, u.services)) return { ok: true as const };
  return {
    ok: false as const,
    why: `is used by Service ${u.services.map((o) => o.id).join(', ')} (sharing needs the same heartline.dev/allow-shared-ip key on both, disjoint ports, and the same externalTrafficPolicy, with the same selector for Local)`,
  };
}

/** The first address of `pool` in `family` that `s` may take, or undefined when it is full. */
function firstFree(
  s: ServiceRequest,
  pool: PoolView,
  family: Family,
  input: AllocateInput,
  limit = 1 << 20,
): Pick | undefined {
  let tried = 0;
  for (const r of pool.ranges) {
    if (r.family !== family) continue;
    for (let n = r.first; n <= r.last; n++) {
      if (++tried > limit) return undefined;
      const ip = bigToIp(family, n);
      const k = addressKey(ip);
      if (input.used.has(k) || input.reserved.has(k)) continue;
      if (unusable(pool, family, n, ip) !== undefined) continue;
      return { ip, family, pool };
    }
  }
  return undefined;
}

/** Decides the addresses of one Service. */
export function allocate(input: AllocateInput): Allocation {
  const s = input.service;
  const wanted = familiesOf(s);
  const serving = input.pools.filter((p) => poolServes(p, s));

  // Requested addresses: exactly these, or nothing.
  if (s.requested.length > 0) {
    const picks: Pick[] = [];
    for (const text of s.requested) {
      const ip = canonicalIp(text.trim());
      const parsed = parseIp(text.trim());
      if (!ip || !parsed)
        return {
          ok: false,
          reason: 'InvalidRequest',
          message: `requested address ${JSON.stringify(text)} is not an IP address; set spec.loadBalancerIP or the heartline.dev/address annotation to e.g. 198.18.10.5 (one address per family, comma-separated)`,
        };
      const family = parsed.family;
      if (picks.some((p) => p.family === family))
        return {
          ok: false,
          reason: 'InvalidRequest',
          message: `two requested ${famName(family)} addresses (${s.requested.join(', ')}); ask for at most one per family`,
        };
      const n = ipToBig(parsed);
      const pool = poolOf(serving, family, n);
      if (!pool) {
        const any = poolOf(input.pools, family, n);
        return {
          ok: false,
          reason: 'NotInPool',
          message: any
            ? `requested address ${ip} is in pool ${any.id}, which does not serve this Service (${s.pool !== undefined ? `it asks for pool ${s.pool}` : 'the pool does not set assignClassless and the Service has no loadBalancerClass'})`
            : `requested address ${ip} is in no AddressPool; ask for an address of a pool (kubectl get hapool -A) or add it to one`,
        };
      }
      const bad = unusable(pool, family, n, ip);
      if (bad !== undefined)
        return { ok: false, reason: 'InvalidRequest', message: `requested address ${ip}: ${bad}` };
      const t = takeable(s, addressKey(ip), input.used, input.reserved);
      if (!t.ok)
        return {
          ok: false,
          reason: 'AddressInUse',
          message: `requested address ${ip} ${t.why}; ask for another address or remove the request`,
        };
      picks.push({ ip, family, pool });
    }
    const missing = wanted.filter((w) => w.required && !picks.some((p) => p.family === w.family));
    if (missing.length > 0 && s.policy === 'RequireDualStack')
      return {
        ok: false,
        reason: 'InvalidRequest',
        message: `ipFamilyPolicy RequireDualStack needs an address of each family, but only ${picks.map((p) => p.ip).join(', ')} is requested; request one ${famName(missing[0]!.family)} address too, or drop the request`,
      };
    return { ok: true, addresses: picks.map(allocated), reason: 'requested' };
  }

  const picks: Pick[] = [];
  for (const w of wanted) {
    const pools = serving.filter((p) => poolFamilyOk(p, w.family) && (s.pool !== undefined || p.autoAssign));
    // Keep what it has, when it still fits.
    const kept = input.current
      .map((text) => ({ text, p: parseIp(text) }))
      .find(({ p }) => p?.family === w.family);
    if (kept?.p) {
      const n = ipToBig(kept.p);
      const pool = poolOf(serving, w.family, n);
      const ip = bigToIp(w.family, n);
      if (
        pool &&
        unusable(pool, w.family, n, ip) === undefined &&
        takeable(s, addressKey(ip), input.used, input.reserved).ok
      ) {
        picks.push({ ip, family: w.family, pool });
        continue;
      }
    }
    if (pools.length === 0) {
      if (!w.required) continue;
      return {
        ok: false,
        reason: 'NoPool',
        message: `no AddressPool serves this Service with ${famName(w.family)} addresses (${s.pool !== undefined ? `pool ${s.pool} named by heartline.dev/address-pool does not exist, has no ${famName(w.family)} range or is not usable` : s.classless ? 'it has no loadBalancerClass and no pool sets assignClassless: set spec.loadBalancerClass: heartline.dev/vip, or assignClassless: true on a pool' : `no pool with autoAssign has an ${famName(w.family)} range`}); add one (kubectl get hapool -A)`,
      };
    }
    // Join an address its sharers already have.
    let pick: Pick | undefined;
    if (s.sharingKey) {
      const keys = [...input.used.entries()]
        .filter(([, u]) => !u.terminating && u.services.length > 0 && !u.services.some((o) => o.id === s.id))
        .filter(([, u]) => canShare(s, u.services))
        .map(([k]) => k)
        .sort();
      for (const k of keys) {
        const u = input.used.get(k)!;
        const ip = u.vip ? ipOfKey(k) : undefined;
        const p = ip ? parseIp(ip) : undefined;
        if (!ip || !p || p.family !== w.family) continue;
        const pool = poolOf(pools, w.family, ipToBig(p));
        if (pool) {
          pick = { ip, family: w.family, pool };
          break;
        }
      }
    }
    for (const pool of pools) {
      if (pick) break;
      pick = firstFree(s, pool, w.family, input);
    }
    if (!pick) {
      if (!w.required) continue;
      return {
        ok: false,
        reason: 'PoolExhausted',
        message: `every ${famName(w.family)} address of ${pools.map((p) => p.id).join(', ')} is in use; add addresses to a pool, add a pool, or delete a LoadBalancer Service`,
      };
    }
    picks.push(pick);
  }
  return { ok: true, addresses: picks.map(allocated), reason: 'allocated' };
}

/** The IP text of an address key made by addressKey. */
export function ipOfKey(k: string): string | undefined {
  const [fam, rest] = k.split(':');
  if (!rest) return undefined;
  const bytes = rest.split('.').map(Number);
  if (fam === '4' && bytes.length === 4) return bytes.join('.');
  if (fam === '6' && bytes.length === 16) {
    let n = 0n;
    for (const b of bytes) n = (n << 8n) | BigInt(b);
    return bigToIp(6, n);
  }
  return undefined;
}

/** Pools parsed from their specs, with the younger of two overlapping pools left out. */
export function resolvePools(
  pools: readonly {
    id: string;
    name: string;
    created?: string | undefined;
    spec: {
      clusterRef: { name: string };
      addresses: string[];
      prefixLength: { ipv4: number; ipv6: number };
      autoAssign: boolean;
      avoidBuggyIPs: boolean;
      assignClassless: boolean;
    };
  }[],
): { usable: PoolView[]; refused: Map<string, string> } {
  const refused = new Map<string, string>();
  const order = [...pools].sort((a, b) => {
    const ta = a.created ? Date.parse(a.created) : Infinity;
    const tb = b.created ? Date.parse(b.created) : Infinity;
    if (ta !== tb) return ta < tb ? -1 : 1;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  const usable: PoolView[] = [];
  for (const p of order) {
    const ranges: PoolRange[] = [];
    let bad: string | undefined;
    for (const e of p.spec.addresses) {
      const r = parsePoolEntry(e);
      if (!r) {
        bad = `addresses: ${JSON.stringify(e)} is not a CIDR or an ordered range`;
        break;
      }
      ranges.push(r);
    }
    if (!bad) {
      for (let i = 0; i < ranges.length && !bad; i++)
        for (let j = i + 1; j < ranges.length && !bad; j++)
          if (overlaps(ranges[i]!, ranges[j]!))
            bad = `addresses: ${ranges[i]!.entry} and ${ranges[j]!.entry} overlap; write each address once`;
    }
    if (!bad) {
      for (const other of usable) {
        const hit = ranges.find((r) => other.ranges.some((o) => overlaps(r, o)));
        if (hit) {
          bad = `addresses: ${hit.entry} overlaps pool ${other.id} (older, keeps its addresses); pools may not overlap: remove the overlap`;
          break;
        }
      }
    }
    if (bad) {
      refused.set(p.id, bad);
      continue;
    }
    usable.push({
      id: p.id,
      name: p.name,
      cluster: p.spec.clusterRef.name,
      ranges,
      prefix4: p.spec.prefixLength.ipv4,
      prefix6: p.spec.prefixLength.ipv6,
      autoAssign: p.spec.autoAssign,
      avoidBuggyIPs: p.spec.avoidBuggyIPs,
      assignClassless: p.spec.assignClassless,
    });
  }
  usable.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1));
  return { usable, refused };
}

function overlaps(a: PoolRange, b: PoolRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/** The VirtualIP name for an address: lb-198-18-10-5, lb-2001-db8--5. One address, one name. */
export function vipNameOf(ip: string): string {
  const c = canonicalIp(ip) ?? ip;
  const n = `lb-${c.replace(/[.:]/g, '-')}`;
  return n.endsWith('-') ? `${n}0` : n;
}
