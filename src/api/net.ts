/**
 * IP address and CIDR parsing with the semantics of Go's `net/netip` as used by the
 * Kubernetes CEL `ip()`/`cidr()` libraries, so offline validation accepts exactly what
 * the API server accepts: IPv4 octets are decimal without leading zeros, IPv6 zones
 * are refused, IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are refused, the prefix
 * length is decimal without leading zeros and at most 32 (v4) or 128 (v6). Host bits
 * after the prefix are allowed (a VIP is an address *with* its prefix).
 */

export interface ParsedIp {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: number[];
}

export interface ParsedCidr extends ParsedIp {
  prefixLength: number;
}

function parseV4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

function parseV6(s: string): number[] | undefined {
  if (s.includes('%')) return undefined; // zones are not allowed
  let text = s;
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    // A trailing dotted quad stands for the last two groups.
    const v4 = parseV4(last);
    if (!v4) return undefined;
    const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
    text = `${s.slice(0, lastColon + 1)}${hex(v4[0] ?? 0, v4[1] ?? 0)}:${hex(v4[2] ?? 0, v4[3] ?? 0)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      const n = parseInt(g, 16);
      out.push(n >> 8, n & 0xff);
    }
    return out;
  };
  const head = groups(halves[0] ?? '');
  const rest = halves.length === 2 ? groups(halves[1] ?? '') : [];
  if (!head || !rest) return undefined;
  const have = head.length + rest.length;
  if (halves.length === 2) {
    if (have > 14) return undefined; // "::" must stand for at least one group
    return [...head, ...new Array<number>(16 - have).fill(0), ...rest];
  }
  return have === 16 ? head : undefined;
}

function is4In6(bytes: number[]): boolean {
  return (
    bytes.length === 16 &&
    bytes.slice(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff
  );
}

/** Parses an IPv4 or IPv6 address; undefined if Kubernetes' `isIP()` would say false. */
export function parseIp(s: string): ParsedIp | undefined {
  if (s.includes(':')) {
    const bytes = parseV6(s);
    if (!bytes || is4In6(bytes)) return undefined;
    return { family: 6, bytes };
  }
  const bytes = parseV4(s);
  return bytes ? { family: 4, bytes } : undefined;
}

/** Parses `address/prefix`; undefined if Kubernetes' `isCIDR()` would say false. */
export function parseCidr(s: string): ParsedCidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const bits = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(bits)) return undefined;
  const prefixLength = Number(bits);
  if (prefixLength > (ip.family === 4 ? 32 : 128)) return undefined;
  return { ...ip, prefixLength };
}

/** True if `ip` lies inside `cidr` (same family, same leading prefixLength bits). */
export function cidrContains(cidr: ParsedCidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  for (let bit = 0; bit < cidr.prefixLength; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((cidr.bytes[byte] ?? 0) & mask) !== ((ip.bytes[byte] ?? 0) & mask)) return false;
  }
  return true;
}

/** True for IPv4 224.0.0.0/4 and IPv6 ff00::/8. */
export function isMulticast(ip: ParsedIp): boolean {
  return ip.family === 4 ? ((ip.bytes[0] ?? 0) & 0xf0) === 0xe0 : ip.bytes[0] === 0xff;
}

/** True when every host bit (after the prefix) of the address is `bit`. */
export function hostBitsAll(cidr: ParsedCidr, bit: 0 | 1): boolean {
  const width = cidr.bytes.length * 8;
  for (let i = cidr.prefixLength; i < width; i++) {
    if ((((cidr.bytes[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) !== bit) return false;
  }
  return true;
}

/** The address part of a CIDR (`198.18.0.100/24` -> `198.18.0.100`; an address alone as it is). */
export function hostOf(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}
