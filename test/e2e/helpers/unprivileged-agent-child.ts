/**
 * Run by test/e2e/netd-least-privilege.test.ts as the agent would be:
 *   heartline-netd --heartbeat-bind=ADDR:PORT --agent-uid=... --exec node --import tsx this-file
 * It reports on stdout, as one JSON line, what it holds (from /proc/self/status), what it can
 * do with the inherited heartbeat socket, what it cannot do on its own (bind a port below
 * 1024), and that netd still does the privileged work (an address) on its request. It also
 * measures heartbeat round trips on the inherited socket and on a socket of its own.
 *
 * argv: PORT ADDR IFACE VIP_CIDR ROUNDS
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { NetdNetworkDriver } from '../../../src/adapters/linux/netd-driver.js';
import { InheritedUdpSocket } from '../../../src/adapters/udp/inherited-socket.js';
import type { Peer, Transport } from '../../../src/core/ports.js';
import { UdpTransport } from '../../../src/adapters/udp/udp-transport.js';

const [portText, addr, iface, vip, roundsText] = process.argv.slice(2);
const port = Number(portText);
const rounds = Number(roundsText);

const status = Object.fromEntries(
  readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .filter((l) => /^(Uid|Gid|Groups|Cap\w+|NoNewPrivs):/.test(l))
    .map((l) => {
      const [k, v] = l.split(':');
      return [k!, v!.trim().replace(/\s+/g, ' ')];
    }),
);

function bind(s: dgram.Socket, p: number, a: string): Promise<string> {
  return new Promise((resolve) => {
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.bind({ port: p, address: a, exclusive: true }, () => resolve('bound'));
  });
}

/** `rounds` ping-pongs from a peer socket to `t`, which echoes; round-trip times in µs, sorted. */
async function roundTrips(t: Transport, n: number): Promise<number[]> {
  const peer = dgram.createSocket('udp4');
  await bind(peer, 0, addr!);
  t.onMessage((d, from: Peer) => void t.send(from, d));
  const to = t.address();
  const out: number[] = [];
  const payload = Buffer.alloc(160); // about a heartbeat's size
  const warmup = Math.min(200, n);
  for (let i = -warmup; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      peer.once('message', () => resolve());
      peer.send(payload, to.port, addr);
    });
    if (i >= 0) out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  peer.close();
  return out.sort((a, b) => a - b);
}
const pct = (xs: number[], q: number) =>
  Math.round(xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]! * 10) / 10;

const inherited = await InheritedUdpSocket.fromEnvironment(process.env);
if (!inherited)
  throw new Error('HEARTLINE_HEARTBEAT_FD is not set: not started by heartline-netd --heartbeat-bind');
const wrongPort = await inherited.transport(port + 1).then(
  () => 'opened',
  (err: Error) => err.message,
);
const first = await inherited.transport(port);
const inUse = await inherited.transport(port).then(
  () => 'opened',
  (err: Error) => err.message,
);
const inheritedRtt = await roundTrips(first, rounds);
await first.close();
// A closed view leaves the socket open for the next one (a member that starts again).
const second = await inherited.transport(port);
const again = await roundTrips(second, 5);
if (again.length !== 5) throw new Error('the reopened transport did not answer');
await second.close();

const own = await UdpTransport.open({ address: addr, port: 0 });
const ownRtt = await roundTrips(own, rounds);
await own.close();

const low = dgram.createSocket('udp4');
const ownLowPortBind = await bind(low, port + 1, addr!);
low.close();

const driver = await NetdNetworkDriver.fromEnvironment();
await driver.add({ cidr: vip!, iface: iface! }, 5, 5000);
const listed = await driver.list();
await driver.remove({ cidr: vip!, iface: iface! });

process.stdout.write(
  `${JSON.stringify({
    status,
    bound: inherited.bound,
    receiveBuffer: inherited.receiveBufferBytes,
    wrongPort,
    inUse,
    roundTripsAfterReopen: again.length,
    ownLowPortBind,
    netdAdded: listed.some((a) => a.cidr === vip),
    rttUs: {
      inherited: { p50: pct(inheritedRtt, 0.5), p99: pct(inheritedRtt, 0.99) },
      own: { p50: pct(ownRtt, 0.5), p99: pct(ownRtt, 0.99) },
    },
  })}\n`,
);
await driver.close();
process.exit(0);
