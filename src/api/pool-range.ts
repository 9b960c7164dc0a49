/**
 * The entries of an AddressPool's `addresses`: a CIDR (`198.18.10.0/28`, `2001:db8:1::/120`)
 * or an inclusive range of one family (`198.18.10.20-198.18.10.40`), as MetalLB's
 * IPAddressPool writes them. Addresses are handled as bigints (IPv6 pools can be large); the
 * allocator walks them without enumerating.
 */
import { parseCidr, parseIp, type ParsedIp } from './net.js';

export interface PoolRange {
  family: 4 | 6;
  first: bigint;
  last: bigint;
  /** The entry as written. */
  entry: string;
}

export function ipToBig(ip: ParsedIp): bigint {
  let n = 0n;
  for (const b of ip.bytes) n = (n << 8n) | BigInt(b);
  return n;
}

export function bigToIp(family: 4 | 6, n: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((n >> s) & 0xffffn).toString(16));
  // RFC 5952: the longest run (>= 2) of zero groups, the first if tied, becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an IP (RFC 5952 for IPv6), or undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const p = parseIp(text);
  return p ? bigToIp(p.family, ipToBig(p)) : undefined;
}

/** Why `entry` is not a pool entry, or undefined when it is one. */
export function poolEntryProblem(entry: string): string | undefined {
  const dash = entry.indexOf('-');
  if (dash < 0) {
    const c = parseCidr(entry);
    if (!c)
      return `${JSON.stringify(entry)} is neither a CIDR nor a range; write e.g. 198.18.10.0/28 or 198.18.10.20-198.18.10.40`;
    const r = parsePoolEntry(entry);
    if (r && bigToIp(c.family, r.first) !== canonicalIp(entry.slice(0, entry.indexOf('/'))))
      return `${JSON.stringify(entry)} has host bits set; write the network, e.g. ${bigToIp(c.family, r.first)}/${c.prefixLength}`;
    return undefined;
  }
  const a = parseIp(entry.slice(0, dash));
  const b = parseIp(entry.slice(dash + 1));
  if (!a || !b)
    return `${JSON.stringify(entry)} is not a range of two IP addresses; write e.g. 198.18.10.20-198.18.10.40 (no spaces)`;
  if (a.family !== b.family)
    return `${JSON.stringify(entry)} mixes IPv4 and IPv6; write one range per family`;
  if (ipToBig(a) > ipToBig(b))
    return `${JSON.stringify(entry)} ends before it starts; write the lower address first`;
  return undefined;
}

/** The range an entry covers, or undefined when it is not a valid entry. */
export function parsePoolEntry(entry: string): PoolRange | undefined {
  const dash = entry.indexOf('-');
  if (dash < 0) {
    const c = parseCidr(entry);
    if (!c) return undefined;
    const width = BigInt(c.family === 4 ? 32 : 128);
    const host = width - BigInt(c.prefixLength);
    const n = ipToBig(c);
    const first = (n >> host) << host;
    return { family: c.family, first, last: first + (1n << host) - 1n, entry };
  }
  const a = parseIp(entry.slice(0, dash));
  const b = parseIp(entry.slice(dash + 1));
  if (!a || !b || a.family !== b.family) return undefined;
  const first = ipToBig(a);
  const last = ipToBig(b);
  return first <= last ? { family: a.family, first, last, entry } : undefined;
}
