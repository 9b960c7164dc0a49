/** Splits "host:port" ("[v6]:port" for IPv6). Throws naming the flag and the fix. */
export function parseHostPort(flag: string, value: string): { host: string; port: number } {
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
