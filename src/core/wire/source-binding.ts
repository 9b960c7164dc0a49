import type { Peer } from '../ports.js';
import { WireError } from './errors.js';

/** An address a member is expected to send from. `port` undefined means any source port. */
export interface ExpectedSource {
  address: string;
  port?: number;
}

function parseV4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/**
 * A canonical text form of an IPv4 or IPv6 address, so that "::ffff:198.18.0.1",
 * "198.18.0.1", "2001:DB8::1" and "2001:db8:0:0::1" compare as they should. The zone
 * ("%eth0") is ignored. Returns undefined for anything that is not an address.
 */
export function canonicalAddress(input: string): string | undefined {
  let s = input.trim().toLowerCase();
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (!s.includes(':')) {
    const v4 = parseV4(s);
    return v4 && v4.join('.');
  }
  // IPv6: up to 8 groups, one "::", optional trailing dotted quad (rewritten as two groups).
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseV4(last);
    if (!v4) return undefined;
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const given = head.length + rest.length;
  let groups: number[];
  if (halves.length === 2) {
    if (given > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - given).fill(0), ...rest];
  } else {
    if (given !== 8) return undefined;
    groups = head;
  }
  // IPv4-mapped (::ffff:a.b.c.d): the socket reports v4 peers this way on dual-stack sockets.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.');
  }
  return groups.map((g) => g.toString(16)).join(':');
}

/**
 * Which source addresses each member may send from (its node addresses, from the cluster
 * configuration). A datagram whose claimed sender does not match where the network says it
 * came from is dropped as `source-mismatch` before any cryptography. This is not
 * authentication (source addresses can be spoofed on a LAN; the HMAC is the defence), but it
 * turns away stray and misconfigured senders cheaply, and a member's key alone no longer
 * lets it speak for another member from its own address.
 */
export class SourceBinding {
  readonly #byMember = new Map<string, { address: string; port?: number }[]>();
  /** Canonical forms of source addresses seen, so the per-datagram check does not re-parse (bounded). */
  readonly #seen = new Map<string, string | undefined>();

  /** `sources`: member id → its addresses. Throws when an address does not parse. */
  constructor(sources: Iterable<readonly [string, readonly ExpectedSource[]]>) {
    for (const [member, list] of sources) {
      const out: { address: string; port?: number }[] = [];
      for (const src of list) {
        const address = canonicalAddress(src.address);
        if (address === undefined) {
          throw new WireError(
            `member "${member}": source address "${src.address}" is not an IPv4 or IPv6 address: fix the node's address`,
          );
        }
        if (src.port !== undefined && !(Number.isInteger(src.port) && src.port > 0 && src.port < 65536)) {
          throw new WireError(
            `member "${member}": source port ${src.port} is not 1..65535: fix transport.port`,
          );
        }
        out.push(src.port === undefined ? { address } : { address, port: src.port });
      }
      this.#byMember.set(member, out);
    }
  }

  /** Whether `from` is an address `member` may send from. A member with no entry matches nothing. */
  matches(member: string, from: Peer): boolean {
    const list = this.#byMember.get(member);
    if (list === undefined || list.length === 0) return false;
    let address = this.#seen.get(from.address);
    if (address === undefined && !this.#seen.has(from.address)) {
      address = canonicalAddress(from.address);
      if (this.#seen.size >= 1024) this.#seen.clear();
      this.#seen.set(from.address, address);
    }
    if (address === undefined) return false;
    for (const e of list) {
      if (e.address === address && (e.port === undefined || e.port === from.port)) return true;
    }
    return false;
  }
}
