import { isIP } from 'node:net';

/**
 * Splits "host:port" ("[v6]:port" for IPv6; an unbracketed IPv6 address before the last colon
 * is taken too, as `$(HOST_IP):9694` gives on an IPv6 node). Throws naming the flag and the fix.
 */
export function parseHostPort(flag: string, value: string): { host: string; port: number } {
  const v6 = /^(.*:.*):(\d{1,5})$/.exec(value);
  if (v6 && !value.startsWith('[') && isIP(v6[1]!) === 6) {
    const port = Number(v6[2]);
    if (port <= 65535) return { host: v6[1]!, port };
  }
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new Error(`${flag} "${value}" is not host:port; use e.g. 0.0.0.0:694 or [::]:694`);
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

/** "host:port" of a bound socket ("[v6]:port" for IPv6), for URLs and logs. */
export function hostPort(a: { address: string; port: number }): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
