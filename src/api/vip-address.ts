/**
 * Which addresses a VirtualIP may carry: the rules, each stated once and turned into the
 * CRD's CEL rule, zod's refinement (`heartline validate`) and the agent's run-time check
 * (buildClusterConfig parses every VirtualIP with the same schema). A rule has a
 * TypeScript test and a CEL test side by side; its message is written once, as parts,
 * and rendered in both languages, so the API server and `heartline validate` print the
 * same words. test/integration/api-rules.test.ts runs many addresses through both.
 *
 * Why refuse rather than bind with IFA_F_NOPREFIXROUTE: docs/adr/0010-vip-address-rules.md.
 */
import { hostBitsAll, isMulticast, parseCidr, type ParsedCidr } from './net.js';

/** A piece of a message: literal text, or a value computed from the address. */
type Part = string | { v: keyof typeof VALUES };

const A = 'cidr(self).ip()';
const N = 'cidr(self).prefixLength()';
const V4 = `${A}.family() == 4`;
/**
 * The address as the user wrote it. Messages quote the user's text, never `string(ip)`
 * or `string(int)`: the API server's cost estimate cannot bound the length of a computed
 * string, and refuses a CRD whose rule concatenates one.
 */
const T = "self.split('/')[0]";

/**
 * The last digit of a network address's text, and of a broadcast address's, plus one
 * (minus one): the first (last) host. No carry: a network address ends in an even digit
 * (or `::`), a broadcast address in an odd one.
 */
const UP: Record<string, string> = { '0': '1', '2': '3', '4': '5', '6': '7', '8': '9', c: 'd', C: 'D' };
const DOWN: Record<string, string> = { '1': '0', '3': '2', '5': '4', '7': '6', '9': '8' };
const celMap = (m: Record<string, string>) =>
  `{${Object.entries(m)
    .map(([k, v]) => `'${k}': '${v}'`)
    .join(', ')}}`;
const text = (raw: string) => raw.slice(0, raw.indexOf('/'));
const lastDigit = (raw: string, m: Record<string, string>) =>
  text(raw).slice(0, -1) + (m[text(raw).slice(-1)] ?? '?');

/** The values a message can quote, in TypeScript and in CEL. */
const VALUES = {
  quoted: { ts: (_c: ParsedCidr, raw: string) => JSON.stringify(raw), cel: `'"' + self + '"'` },
  addr: { ts: (_c: ParsedCidr, raw: string) => text(raw), cel: T },
  prefix: { ts: (_c: ParsedCidr, raw: string) => raw.slice(raw.indexOf('/') + 1), cel: "self.split('/')[1]" },
  minPrefix: { ts: (c: ParsedCidr) => String(minPrefix(c)), cel: `(${V4} ? '8' : '16')` },
  typicalPrefix: { ts: (c: ParsedCidr) => (c.family === 4 ? '24' : '64'), cel: `(${V4} ? '24' : '64')` },
  next: {
    ts: (_c: ParsedCidr, raw: string) => (text(raw).endsWith('::') ? `${text(raw)}1` : lastDigit(raw, UP)),
    cel: `(${T}.endsWith('::') ? ${T} + '1' : ${T}.substring(0, size(${T}) - 1) + ${celMap(UP)}[${T}.substring(size(${T}) - 1)])`,
  },
  prev: {
    ts: (_c: ParsedCidr, raw: string) => lastDigit(raw, DOWN),
    cel: `${T}.substring(0, size(${T}) - 1) + ${celMap(DOWN)}[${T}.substring(size(${T}) - 1)]`,
  },
} as const;

const minPrefix = (c: ParsedCidr) => (c.family === 4 ? 8 : 16);
const EXAMPLE = 'e.g. 198.18.0.100/24 or 2001:db8::100/64';

/** One address rule. Rules are tried in order; the first that refuses gives the message. */
export interface AddressRule {
  /** Short name, used in docs/api.md. */
  id: string;
  /** True when the rule refuses the address. */
  refuses: (c: ParsedCidr) => boolean;
  /** CEL twin of `refuses`, evaluated where `isCIDR(self)` holds. */
  cel: string;
  /** What is wrong and how to fix it. */
  message: Part[];
}

const eq = (c: ParsedCidr, bytes: number[]) => c.bytes.every((b, i) => b === bytes[i]);
const METADATA_V6 = [0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54];
/** 2^k for k = 0..32, to find the v4 host part in CEL (which has no shifts). */
const POW2 = `[${Array.from({ length: 33 }, (_, k) => 2 ** k).join(', ')}]`;

export const ADDRESS_RULES: readonly AddressRule[] = [
  {
    id: 'unspecified',
    refuses: (c) => c.bytes.every((b) => b === 0),
    cel: `${A}.isUnspecified()`,
    message: [
      { v: 'quoted' },
      ' is the unspecified address, which means "any" and cannot be held; set the virtual IP itself, ',
      EXAMPLE,
    ],
  },
  {
    id: 'this-network',
    refuses: (c) => c.family === 4 && c.bytes[0] === 0,
    cel: `cidr('0.0.0.0/8').containsIP(${A})`,
    message: [
      { v: 'quoted' },
      ' is in 0.0.0.0/8 ("this network"), which no host may use as its address; set the virtual IP itself, ',
      EXAMPLE,
    ],
  },
  {
    id: 'limited-broadcast',
    refuses: (c) => c.family === 4 && c.bytes.every((b) => b === 255),
    cel: `${A} == ip('255.255.255.255')`,
    message: [
      { v: 'quoted' },
      ' is the limited broadcast address; a virtual IP must be a unicast host address, ',
      EXAMPLE,
    ],
  },
  {
    id: 'multicast',
    refuses: (c) => isMulticast(c),
    cel: `cidr('224.0.0.0/4').containsIP(${A}) || cidr('ff00::/8').containsIP(${A})`,
    message: [
      { v: 'quoted' },
      ' is a multicast address (224.0.0.0/4, ff00::/8); a virtual IP must be a unicast host address, ',
      EXAMPLE,
    ],
  },
  {
    id: 'loopback',
    refuses: (c) => (c.family === 4 ? c.bytes[0] === 127 : eq(c, [...new Array<number>(15).fill(0), 1])),
    cel: `${A}.isLoopback()`,
    message: [
      { v: 'quoted' },
      " is a loopback address (127.0.0.0/8, ::1), which no other host can reach; use an address of the nodes' subnet, ",
      EXAMPLE,
    ],
  },
  {
    id: 'cloud-metadata',
    refuses: (c) => (c.family === 4 ? eq(c, [169, 254, 169, 254]) : eq(c, METADATA_V6)),
    cel: `${A} == ip('169.254.169.254') || ${A} == ip('fd00:ec2::254')`,
    message: [
      { v: 'quoted' },
      " is the cloud metadata address (169.254.169.254, fd00:ec2::254); holding it would answer metadata requests of every machine on the link; use an address of the nodes' subnet, ",
      EXAMPLE,
    ],
  },
  {
    id: 'link-local',
    refuses: (c) =>
      c.family === 4
        ? c.bytes[0] === 169 && c.bytes[1] === 254
        : c.bytes[0] === 0xfe && ((c.bytes[1] ?? 0) & 0xc0) === 0x80,
    cel: `${A}.isLinkLocalUnicast()`,
    message: [
      { v: 'quoted' },
      " is a link-local address (169.254.0.0/16, fe80::/10), which every interface may use for itself; use an address of the nodes' subnet, ",
      EXAMPLE,
    ],
  },
  {
    id: 'short-prefix',
    refuses: (c) => c.prefixLength < minPrefix(c),
    cel: `${N} < (${V4} ? 8 : 16)`,
    message: [
      { v: 'quoted' },
      ': prefix /',
      { v: 'prefix' },
      ' is shorter than /',
      { v: 'minPrefix' },
      ': the holder would route that whole /',
      { v: 'prefix' },
      " to this interface; give the subnet's own prefix, e.g. ",
      { v: 'addr' },
      '/',
      { v: 'typicalPrefix' },
    ],
  },
  {
    // IPv6 /127 (RFC 6164) and /128, IPv4 /31 (RFC 3021) and /32 have no network address.
    id: 'network-address',
    refuses: (c) => c.prefixLength < (c.family === 4 ? 31 : 127) && hostBitsAll(c, 0),
    cel: `${N} < (${V4} ? 31 : 127) && cidr(self).masked() == cidr(self)`,
    message: [
      { v: 'quoted' },
      ' is the network address of its prefix; pick a host address such as ',
      { v: 'next' },
      '/',
      { v: 'prefix' },
    ],
  },
  {
    id: 'broadcast-address',
    refuses: (c) => c.family === 4 && c.prefixLength < 31 && hostBitsAll(c, 1),
    cel: `${V4} && ${N} < 31 && [${T}.split('.')].all(o, (int(o[0]) * 16777216 + int(o[1]) * 65536 + int(o[2]) * 256 + int(o[3]) + 1) % ${POW2}[32 - ${N}] == 0)`,
    message: [
      { v: 'quoted' },
      ' is the broadcast address of its prefix; pick a host address such as ',
      { v: 'prev' },
      '/',
      { v: 'prefix' },
    ],
  },
];

function renderTs(parts: Part[], c: ParsedCidr, raw: string): string {
  return parts.map((p) => (typeof p === 'string' ? p : VALUES[p.v].ts(c, raw))).join('');
}

const celString = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function renderCel(parts: Part[]): string {
  const merged: Part[] = [];
  for (const p of parts) {
    const last = merged[merged.length - 1];
    if (typeof p === 'string' && typeof last === 'string') merged[merged.length - 1] = last + p;
    else merged.push(p);
  }
  return merged.map((p) => (typeof p === 'string' ? celString(p) : VALUES[p.v].cel)).join(' + ');
}

/** The first rule that refuses a parsed address, if any. */
export function refusingRule(c: ParsedCidr): AddressRule | undefined {
  return ADDRESS_RULES.find((r) => r.refuses(c));
}

/**
 * Why a VirtualIP may not carry `address` (the message of the first rule that refuses
 * it), or undefined when it may. An address that is not a CIDR at all is reported by the
 * schema's CIDR rule, not here: undefined.
 */
export function addressProblem(address: string): string | undefined {
  const c = parseCidr(address);
  const rule = c && refusingRule(c);
  return c && rule ? renderTs(rule.message, c, address) : undefined;
}

/** The static message of the combined CRD rule (used only if its messageExpression fails). */
export const ADDRESS_RULE_MESSAGE =
  'address must be a unicast host address a node can hold: not unspecified, broadcast, multicast, loopback, link-local or the cloud metadata address, not the network or broadcast address of its prefix, and with a prefix of at least /8 (IPv4) or /16 (IPv6); ' +
  EXAMPLE;

/** The CEL rule: every address rule at once. */
export const ADDRESS_CEL = `!isCIDR(self) || !(${ADDRESS_RULES.map((r) => `(${r.cel})`).join(' || ')})`;

/** The CEL message: the first refusing rule's message, as {@link addressProblem} gives it. */
export const ADDRESS_CEL_MESSAGE = ADDRESS_RULES.reduceRight(
  (rest, r) => `(${r.cel}) ? ${renderCel(r.message)} : ${rest}`,
  celString(ADDRESS_RULE_MESSAGE),
);
