/**
 * The line protocol spoken with heartline-netd (native/heartline-netd.c), as pure functions:
 * one request per line `OP id args...`, one reply per request `id OK ...` / `id ERR message`,
 * and unsolicited events `* EXPIRED ifname cidr late_ms=N` when the fence removes an address.
 */
import type { OwnedAddress } from '../../core/ports.js';

/**
 * Protocol version heartline-netd reports in its HELLO reply. 2: fence deadlines may be
 * absolute, `@microseconds` on CLOCK_MONOTONIC (docs/adr/0040-absolute-fence-deadlines.md).
 */
export const NETD_PROTOCOL_VERSION = 2;

/**
 * The absolute fence deadline token, `@US` on CLOCK_MONOTONIC, for a deadline `deadlineMs`
 * after `monotonicNs` (a `process.hrtime.bigint()` reading: libuv's hrtime is CLOCK_MONOTONIC
 * on Linux, the clock heartline-netd's fence runs on). Rounded down to the microsecond: never
 * later than asked. Throws on a deadline outside (0, one day]. Pure.
 */
export function absoluteDeadline(monotonicNs: bigint, deadlineMs: number): string {
  if (!(deadlineMs > 0 && deadlineMs <= 86_400_000))
    throw new RangeError(`deadlineMs must be in (0, 86400000], got ${deadlineMs}`);
  return `@${monotonicNs / 1000n + BigInt(Math.floor(deadlineMs * 1000))}`;
}

/**
 * How heartline-netd marks the addresses it adds (docs/adr/0013-netd-owner-mode.md):
 * `proto` sets IFA_PROTO 0x48 (Linux >= 5.18), `fallback` sets the prefix-route metric
 * 1212960324 (for 5.4-5.17, which drop IFA_PROTO). `auto` (the default) probes the kernel.
 */
export type NetdOwnerMode = 'proto' | 'fallback';
export const NETD_OWNER_MODES = ['auto', 'proto', 'fallback'] as const;
export type NetdOwnerModeChoice = (typeof NETD_OWNER_MODES)[number];

/** The owner mode a HELLO reply reports (`heartline-netd 2 <pid> <mode>`); undefined from an older netd. */
export function helloOwnerMode(fields: readonly string[]): NetdOwnerMode | undefined {
  const mode = fields[3];
  return mode === 'proto' || mode === 'fallback' ? mode : undefined;
}

export type NetdOp = 'HELLO' | 'ADD' | 'RENEW' | 'DEL' | 'LIST' | 'SWEEP' | 'ANNOUNCE' | 'IFACE' | 'LINK';

export type NetdLine =
  | { kind: 'ok'; id: number; fields: string[] }
  | { kind: 'err'; id: number | undefined; message: string }
  /** `lateMs`: how long after its deadline netd removed it (absent from older netd builds). */
  | { kind: 'expired'; addr: OwnedAddress; lateMs?: number }
  | { kind: 'garbage'; line: string };

/** A token that cannot break the line protocol: non-empty, no whitespace, printable ASCII. */
export function isSafeToken(token: string): boolean {
  return /^[\x21-\x7e]{1,64}$/.test(token);
}

/** Formats a request line (with its newline). Throws if a token would break the framing. */
export function formatRequest(op: NetdOp, id: number, args: readonly (string | number)[]): string {
  const tokens = args.map(String);
  const bad = tokens.find((t) => !isSafeToken(t));
  if (bad !== undefined)
    throw new RangeError(`${op}: argument ${JSON.stringify(bad)} is empty or has spaces`);
  return [op, String(id), ...tokens].join(' ') + '\n';
}

/** Parses one line from heartline-netd's stdout. */
export function parseLine(line: string): NetdLine {
  const m = /^(\S+) (OK|ERR|EXPIRED)(?: (.*))?$/.exec(line.trimEnd());
  if (!m) return { kind: 'garbage', line };
  const [, idText, verb, rest = ''] = m;
  if (idText === '*' && verb === 'EXPIRED') {
    const [iface, cidr, late] = rest.split(' ');
    const lateMs = /^late_ms=(\d+(?:\.\d+)?)$/.exec(late ?? '')?.[1];
    if (iface && cidr)
      return {
        kind: 'expired',
        addr: { iface, cidr },
        ...(lateMs !== undefined ? { lateMs: Number(lateMs) } : {}),
      };
    return { kind: 'garbage', line };
  }
  const id = /^\d+$/.test(idText!) ? Number(idText) : undefined;
  if (verb === 'ERR') return { kind: 'err', id, message: rest };
  if (verb === 'OK' && id !== undefined)
    return { kind: 'ok', id, fields: rest === '' ? [] : rest.split(' ') };
  return { kind: 'garbage', line };
}

/** Parses the `ifname cidr ifname cidr ...` list of LIST and SWEEP replies. */
export function parseAddressPairs(fields: readonly string[]): OwnedAddress[] {
  if (fields.length % 2 !== 0)
    throw new RangeError(`odd number of fields in address list: ${fields.join(' ')}`);
  const out: OwnedAddress[] = [];
  for (let i = 0; i < fields.length; i += 2) out.push({ iface: fields[i]!, cidr: fields[i + 1]! });
  return out;
}

export { hostOf } from '../../api/net.js';
