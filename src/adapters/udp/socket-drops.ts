/**
 * Datagrams the kernel dropped for one UDP socket because its receive buffer was full: the
 * `drops` column of /proc/net/udp (IPv4) or /proc/net/udp6, on the line whose local address
 * and port are the socket's. The codec counts what it drops; these never reach it, and on a
 * node starved of CPU they are where heartbeats go missing (docs/benchmarks.md, seventh scale
 * pass). The agent exports them as `heartline_datagrams_dropped_total{reason="receive-buffer"}`.
 */
import { readFileSync } from 'node:fs';
import { parseIp } from '../../api/net.js';
import type { Peer } from '../../core/ports.js';

/**
 * How /proc/net/udp{,6} write an address: each 32-bit word in host byte order, in hex (on the
 * little-endian hosts Heartline runs on, every 4 bytes reversed): 127.0.0.1 is 0100007F.
 */
function procHex(bytes: number[]): string {
  let out = '';
  for (let w = 0; w < bytes.length; w += 4)
    out += bytes
      .slice(w, w + 4)
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
  const ip = parseIp(local.address);
  if (!ip) return undefined;
  const addr = procHex(ip.bytes);
  const want = `${addr}:${local.port.toString(16).padStart(4, '0').toUpperCase()}`;
  let text: string;
  try {
    text = read(ip.family === 4 ? '/proc/net/udp' : '/proc/net/udp6');
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
