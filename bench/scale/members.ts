/**
 * Load generator for the scale benchmark: runs some members of one HACluster, each the real
 * core Member in a MemberHost with the real WireCodec (HMAC-signed with the cluster's Secret,
 * exactly as an agent signs) on its own UDP socket. Effects are recorded instead of touching
 * the network ("binding" happens in memory), so nothing in any namespace changes.
 *
 * The configuration comes from the API server the way an agent derives it
 * (buildClusterConfig over the HACluster, its VIPs, the Nodes, the Secret and the witness
 * address in HACluster status); it is read once at start and not watched (see
 * docs/benchmarks.md, "Scale", for what that leaves out).
 *
 * Started by bench/scale/run.ts with an IPC channel; environment HL_SCALE_WORKER (JSON):
 * { kubeconfig, namespace, cluster, members: [{ id, address, port }] }. Reports (batched every
 * 50 ms): bind / unbind (wall-clock ms), a peer declared dead, errors.
 */
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { loadRestConfig } from '../../src/adapters/k8s/kubeconfig.js';
import { RestApiSource } from '../../src/adapters/k8s/rest-api-source.js';
import { UdpTransport } from '../../src/adapters/udp/udp-transport.js';
import { buildClusterConfig } from '../../src/runtime/cluster-config.js';
// Test keys (derived from the member name): run.ts publishes the same public keys on the Nodes.
import { memberKeyOf } from '../../test/fixtures/member-keys.js';
import { incarnationFromWallClock } from '../../src/core/incarnation.js';
import { MemberHost } from '../../src/runtime/member-host.js';
import { DropCounters } from '../../src/core/wire/index.js';
import { TakeoverCause } from '../../src/core/messages.js';

export interface WorkerSpec {
  kubeconfig: string;
  namespace: string;
  cluster: string;
  members: Array<{ id: string; address: string; port: number }>;
  /** SO_RCVBUF per member socket; default the agent's (UdpTransport's default). */
  receiveBuffer?: number;
}

export type WorkerReport =
  | { type: 'ready'; pid: number; members: number; at: number }
  | { type: 'error'; message: string }
  /** process.memoryUsage() in MB, every second: where the RSS goes (V8 heap or not). */
  | { type: 'memory'; rssMb: number; heapUsedMb: number; heapTotalMb: number; externalMb: number }
  | {
      type: 'events';
      binds: Array<[member: string, vip: string, epoch: number, at: number]>;
      unbinds: Array<[member: string, vip: string, epoch: number, reason: string, at: number]>;
      dead: Array<[member: string, peer: string, at: number]>;
      sent: number;
      /** Datagrams sent since the last report, by message kind (heartbeat, ack, release, ...). */
      sentByKind: Record<string, number>;
      sendFailed: number;
      received: number;
      /** Datagrams the codec dropped so far in this process, by reason (cumulative, non-zero only). */
      drops: Record<string, number>;
      /** Candidacies started (by cause) and abandoned (by reason, member names and epochs masked), since the last report. */
      candidacies: Record<string, number>;
      abandons: Record<string, number>;
    };

const spec = JSON.parse(process.env.HL_SCALE_WORKER ?? 'null') as WorkerSpec | null;
if (!spec || !process.send) {
  console.error(
    'bench/scale/members.ts is started by bench/scale/run.ts (needs HL_SCALE_WORKER and an IPC channel)',
  );
  process.exit(2);
}
const report = (r: WorkerReport) => process.send?.(r);

const log = pino({ level: process.env.HEARTLINE_LOG_LEVEL ?? 'warn' });
const clock = new SystemClock();
const binds: Array<[string, string, number, number]> = [];
const unbinds: Array<[string, string, number, string, number]> = [];
const dead: Array<[string, string, number]> = [];
let sent = 0;
let sentByKind: Record<string, number> = {};
let sendFailed = 0;
let received = 0;
/** One set of drop counters for every member of this process (the agent keeps one per member). */
const counters = new DropCounters();
let candidacies: Record<string, number> = {};
let abandons: Record<string, number> = {};
/** TakeoverCause's names by number (HolderDead, Released, ...), as the agent's metrics label them. */
const CAUSES = new Map<number, string>(Object.entries(TakeoverCause).map(([name, n]) => [n, name]));
/** A reason in words without the names and numbers in it, so that reasons can be counted. */
const reasonClass = (r: string) => r.replace(/scale-m-\d+/g, 'M').replace(/\d+/g, 'N');
const nonZero = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).filter(([, n]) => n > 0));

async function main(s: WorkerSpec): Promise<void> {
  // The agent's ApiSource (no @kubernetes/client-node), so that this process's RSS is an agent's.
  const api = new RestApiSource(
    { config: await loadRestConfig({ path: s.kubeconfig }), clock, logger: log },
    { identity: `scale-worker-${process.pid}` },
  );
  const cluster = await api.get('HACluster', { namespace: s.namespace, name: s.cluster });
  if (!cluster) throw new Error(`HACluster ${s.namespace}/${s.cluster} not found`);
  const authRef = (cluster.spec as { authSecretRef: { name: string } }).authSecretRef.name;
  const config = buildClusterConfig({
    cluster,
    vips: await api.list('VirtualIP', { namespace: s.namespace }),
    resources: [],
    nodes: await api.list('Node'),
    secret: await api.get('Secret', { namespace: s.namespace, name: authRef }),
    witness: (cluster.status as { witness?: { address: string; port: number } } | undefined)?.witness ?? null,
  });
  await api.close();
  const hosts: MemberHost[] = [];
  const incarnation = incarnationFromWallClock(Date.now());
  for (const m of s.members) {
    const transport = await UdpTransport.open({
      address: m.address,
      port: m.port,
      logger: log,
      ...(s.receiveBuffer ? { receiveBufferBytes: s.receiveBuffer } : {}),
    });
    const host = new MemberHost(
      {
        clock,
        transport,
        log: log.child({ member: m.id }),
        counters,
        effects: {
          bind: (cmd) => void binds.push([m.id, cmd.vip, cmd.epoch, Date.now()]),
          renew: () => {},
          unbind: (cmd) => void unbinds.push([m.id, cmd.vip, cmd.epoch, cmd.reason, Date.now()]),
        },
        observer: (e) => {
          if (e.type === 'liveness' && e.change.to === 'dead') dead.push([m.id, e.change.member, Date.now()]);
          else if (e.type === 'candidate') {
            const c = CAUSES.get(e.cause) ?? String(e.cause);
            candidacies[c] = (candidacies[c] ?? 0) + 1;
          } else if (e.type === 'abandon') {
            const c = reasonClass(e.reason);
            abandons[c] = (abandons[c] ?? 0) + 1;
          }
        },
        onSend: (kind, ok) => {
          sent++;
          sentByKind[kind] = (sentByKind[kind] ?? 0) + 1;
          if (!ok) sendFailed++;
        },
        onReceive: () => void received++,
      },
      { self: m.id, config, incarnation, signingKey: memberKeyOf(m.id) },
    );
    hosts.push(host);
  }
  // Start them together, as nodes booting at about the same time.
  for (const h of hosts) h.start();
  report({ type: 'ready', pid: process.pid, members: hosts.length, at: Date.now() });
  setInterval(() => {
    if (binds.length + unbinds.length + dead.length === 0 && sent === 0 && received === 0) return;
    report({
      type: 'events',
      binds: binds.splice(0),
      unbinds: unbinds.splice(0),
      dead: dead.splice(0),
      sent,
      sentByKind,
      sendFailed,
      received,
      drops: nonZero(counters.snapshot()),
      candidacies,
      abandons,
    });
    sent = sendFailed = received = 0;
    sentByKind = {};
    candidacies = {};
    abandons = {};
  }, 50);
  const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
  setInterval(() => {
    const m = process.memoryUsage();
    report({
      type: 'memory',
      rssMb: mb(m.rss),
      heapUsedMb: mb(m.heapUsed),
      heapTotalMb: mb(m.heapTotal),
      externalMb: mb(m.external),
    });
  }, 1000);
}

process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so that --cpu-prof (HL_SCALE_PROFILE) writes its profile.
process.on('SIGTERM', () => process.exit(0));
main(spec).catch((err: unknown) => {
  report({ type: 'error', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  setTimeout(() => process.exit(1), 200);
});
