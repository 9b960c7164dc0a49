/**
 * Sends raw UDP datagrams, run inside a lab namespace by the wire e2e test:
 *
 *   ip netns exec hl-<id>-client node --import tsx udp-send.ts '<json>'
 *
 * <json> is a list of {hex, to, port, from?, fromPort?}: each datagram's bytes in hex, the
 * destination, and optionally the source address/port to bind (an address of another host
 * needs net.ipv4.ip_nonlocal_bind=1 in the namespace: that is how the test spoofs a member).
 * Prints the number of datagrams sent and exits.
 */
import { createSocket, type Socket } from 'node:dgram';

interface Datagram {
  hex: string;
  to: string;
  port: number;
  from?: string;
  fromPort?: number;
}

const list = JSON.parse(process.argv[2] ?? '[]') as Datagram[];
const sockets = new Map<string, Socket>();
async function socketFor(d: Datagram): Promise<Socket> {
  const key = `${d.from ?? ''}:${d.fromPort ?? 0}`;
  let s = sockets.get(key);
  if (!s) {
    const sock = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: d.from ?? '0.0.0.0', port: d.fromPort ?? 0 }, () => resolve());
    });
    sockets.set(key, sock);
    s = sock;
  }
  return s;
}
let sent = 0;
for (const d of list) {
  const s = await socketFor(d);
  await new Promise<void>((resolve, reject) =>
    s.send(Buffer.from(d.hex, 'hex'), d.port, d.to, (err) => (err ? reject(err) : resolve())),
  );
  sent++;
  await new Promise((r) => setTimeout(r, 2));
}
for (const s of sockets.values()) s.close();
process.stdout.write(`${sent}\n`);
