/**
 * Datagrams the kernel dropped for one UDP socket because its receive buffer was full: the
 * `drops` column of /proc/net/udp (IPv4) or /proc/net/udp6, on the line whose local address
 * and port are the socket's. The codec counts what it drops; these never reach it, and on a
 * node starved of CPU they are where heartbeats go missing (docs/benchmarks.md, seventh scale
 * pass). The agent exports them as `heartline_datagrams_dropped_total{reason="receive-buffer"}`.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Peer } from '../../core/ports.js';

/** /proc/net/udp's local address: the IPv4 address as a host-order u32 in hex (x86: reversed bytes). */
function hex4(address: string): string {
  return address
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
}

/** /proc/net/udp6's: four host-order u32 words. */
function hex6(address: string): string | undefined {
  const [head = '', tail] = address.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  if (t.length > 0 && t[t.length - 1]!.includes('.')) return undefined; // ::ffff:a.b.c.d: not ours to parse
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return undefined;
  const bytes = groups.flatMap((g) => {
    const n = parseInt(g || '0', 16);
    return [n >> 8, n & 0xff];
  });
  let out = '';
  for (let w = 0; w < 4; w++)
    out += bytes
      .slice(w * 4, w * 4 + 4)
      .reverse()
      .map((b) => b.toString(16).padStart(2, '0').toUpperCase())
      .join('');
  return out;
}

/**
 * The kernel's drop count for the UDP socket bound to `local`, or undefined when no such line
 * is found (not Linux, another namespace, the socket closed) or the file cannot be read.
 * `read` is for tests.
 */
export function udpSocketDrops(
  local: Peer,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): number | undefined {
  const family = isIP(local.address);
  if (family === 0) return undefined;
  const addr = family === 4 ? hex4(local.address) : hex6(local.address);
  if (addr === undefined) return undefined;
  const want = `${addr}:${local.port.toString(16).padStart(4, '0').toUpperCase()}`;
  let text: string;
  try {
    text = read(family === 4 ? '/proc/net/udp' : '/proc/net/udp6');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
    if (f[1] === want && f.length >= 13) {
      const drops = Number(f[12]);
      return Number.isFinite(drops) ? drops : undefined;
    }
  }
  return undefined;
}
