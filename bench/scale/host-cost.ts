/**
 * CPU, datagrams and heap per member of the whole member stack but the sockets: M real
 * MemberHosts (core Member, WireCodec with HMAC and Ed25519 signatures, verify budget, the
 * host's ordering) of one cluster built by buildClusterConfig from the objects the scale
 * benchmark creates (bench/scale/run.ts), on a simulated clock, with an in-memory network that
 * hands every datagram to its receiver 1-2 ms later. Time is simulated, so the figures are
 * process CPU time per simulated second: they do not depend on how busy the machine is (a
 * saturated machine still inflates them a little: caches, frequency). What the real load
 * generator adds (UDP send and receive syscalls, the event loop, IPC reports) is measured
 * apart with `--socket-cost` (one loopback socket pair on 127.0.0.1; nothing is configured).
 *
 *   npx tsx bench/scale/host-cost.ts [--members 10] [--vips 1000] [--preferred 100]
 *                                    [--warmup-s 8] [--seconds 4] [--interval-ms 200] [--dead-ms 1000]
 *   npx tsx bench/scale/host-cost.ts --socket-cost [--bytes 600]
 *
 * Prints one JSON line: CPU ms per member per simulated second over the measured window,
 * datagrams sent and received per member per second (by kind), bytes per datagram, heap per
 * member, VIPs held, binds / unbinds in the window (0 / 0 is a steady cluster).
 */
import { createSocket } from 'node:dgram';
import { pino } from 'pino';
import type { Clock, Millis, Peer, Stoppable, Transport } from '../../src/core/ports.js';
import {
  HEARTBEAT_ADDRESS_ANNOTATION,
  HEARTBEAT_PORT_ANNOTATION,
  MEMBER_KEY_ANNOTATION,
  buildClusterConfig,
} from '../../src/runtime/cluster-config.js';
import { MemberHost } from '../../src/runtime/member-host.js';
import type { ApiObject } from '../../src/core/ports.js';
import { memberKeyOf, publicKeyOf } from '../../test/fixtures/member-keys.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

// ------------------------------------------------------------------ socket cost (apart)

async function socketCost(): Promise<void> {
  const bytes = arg('bytes', 600);
  const n = arg('count', 20000);
  const a = createSocket('udp4');
  const b = createSocket('udp4');
  await new Promise<void>((r) => a.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => b.bind(0, '127.0.0.1', r));
  const port = b.address().port;
  const payload = new Uint8Array(bytes);
  let got = 0;
  const done = new Promise<void>((resolve) =>
    b.on('message', () => {
      if (++got >= n) resolve();
    }),
  );
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  // In bursts of 50 (a heartbeat round to 50 peers), letting the receiver drain in between.
  for (let i = 0; i < n; i += 50) {
    for (let j = 0; j < 50; j++) a.send(payload, port, '127.0.0.1');
    await new Promise((r) => setImmediate(r));
  }
  await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
  const c = process.cpuUsage(c0);
  a.close();
  b.close();
  console.log(
    JSON.stringify({
      socketCost: true,
      bytes,
      sent: n,
      received: got,
      cpuMicrosPerDatagram: Math.round(((c.user + c.system) / Math.max(got, 1)) * 100) / 100,
      wallMs: Math.round(performance.now() - w0),
    }),
  );
}

// ------------------------------------------------------------------ simulated clock and network

class StepClock implements Clock {
  t = 0;
  private seq = 0;
  readonly timers = new Map<number, { at: Millis; fn: () => void; every?: Millis }>();
  now(): Millis {
    return this.t;
  }
  after(ms: Millis, fn: () => void): Stoppable {
    const id = this.seq++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { stop: () => void this.timers.delete(id) };
  }
  every(ms: Millis, fn: () => unknown): Stoppable {
    const id = this.seq++;
    this.timers.set(id, { at: this.t + ms, fn: () => void fn(), every: ms });
    return { stop: () => void this.timers.delete(id) };
  }
  sleep(ms: Millis): Promise<void> {
    return new Promise((r) => this.after(ms, r));
  }
  /** Fires every timer due at or before the current time, in order of due time. */
  fire(): void {
    for (;;) {
      let best: [number, { at: Millis; fn: () => void; every?: Millis }] | undefined;
      for (const e of this.timers) if (e[1].at <= this.t && (!best || e[1].at < best[1].at)) best = e;
      if (!best) return;
      const [id, timer] = best;
      if (timer.every !== undefined) timer.at += timer.every;
      else this.timers.delete(id);
      timer.fn();
    }
  }
}

interface InFlight {
  at: Millis;
  to: string;
  from: Peer;
  bytes: Uint8Array;
}

class LoopNetwork {
  readonly handlers = new Map<string, Array<(d: Uint8Array, from: Peer) => void>>();
  queue: InFlight[] = [];
  sentBytes = 0;
  sent = 0;
  constructor(private readonly clock: StepClock) {}
  transport(address: string, port: number): Transport {
    const key = `${address}:${port}`;
    const self: Peer = { address, port };
    return {
      address: () => self,
      send: (to, datagram) => {
        this.sent++;
        this.sentBytes += datagram.length;
        // 1-2 ms later, as on a LAN with a busy receiver.
        this.queue.push({
          at: this.clock.t + 1 + (this.sent % 2),
          to: `${to.address}:${to.port}`,
          from: self,
          bytes: datagram,
        });
        return Promise.resolve(true);
      },
      onMessage: (h) => {
        const list = this.handlers.get(key) ?? [];
        list.push(h);
        this.handlers.set(key, list);
      },
      close: () => Promise.resolve(),
    };
  }
  deliver(): number {
    const due = this.queue.filter((q) => q.at <= this.clock.t);
    this.queue = this.queue.filter((q) => q.at > this.clock.t);
    for (const q of due) for (const h of this.handlers.get(q.to) ?? []) h(q.bytes.slice(), q.from);
    return due.length;
  }
}

// ------------------------------------------------------------------ the run

async function hosts(): Promise<void> {
  const M = arg('members', 10);
  const V = arg('vips', 1000);
  const PREFERRED = arg('preferred', 100);
  const WARMUP_S = arg('warmup-s', 8);
  const SECONDS = arg('seconds', 4);
  const intervalMs = arg('interval-ms', 200);
  const deadMs = arg('dead-ms', 1000);
  const NS = 'hl-scale';
  const name = (i: number) => `scale-m-${String(i).padStart(3, '0')}`;
  const address = (i: number) => `198.18.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`;
  const obj = (o: object) => o as ApiObject;
  const config = buildClusterConfig({
    cluster: obj({
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'HACluster',
      metadata: { name: 'scale', namespace: NS, uid: 'u', generation: 1 },
      spec: {
        nodeSelector: { 'heartline.dev/bench': 'scale' },
        authSecretRef: { name: 'auth', activeKeyId: '1' },
        quorum: 'majority',
        heartbeat: {
          intervalMs,
          deadMs,
          warnMs: Math.round(deadMs / 2),
          initDeadMs: Math.max(2 * deadMs, 2000),
        },
      },
    }),
    vips: Array.from({ length: V }, (_, i) =>
      obj({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'VirtualIP',
        metadata: { name: `vip-${String(i).padStart(4, '0')}`, namespace: NS, uid: `v${i}`, generation: 1 },
        spec: {
          clusterRef: { name: 'scale' },
          address: `198.18.${10 + Math.floor(i / 250)}.${(i % 250) + 1}/16`,
          ...(i < PREFERRED ? { preferredNodes: [name(0)] } : {}),
        },
      }),
    ),
    resources: [],
    nodes: Array.from({ length: M }, (_, i) =>
      obj({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: name(i),
          labels: { 'heartline.dev/bench': 'scale' },
          annotations: {
            [HEARTBEAT_ADDRESS_ANNOTATION]: address(i),
            [HEARTBEAT_PORT_ANNOTATION]: '694',
            [MEMBER_KEY_ANNOTATION]: publicKeyOf(name(i)),
          },
        },
      }),
    ),
    secret: obj({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'auth', namespace: NS },
      data: { '1': Buffer.alloc(32, 7).toString('base64') },
    }),
    witness: null,
  });
  const clock = new StepClock();
  const net = new LoopNetwork(clock);
  // The harness alone (the step loop, no member): subtracted from the members' CPU.
  const idle0 = process.cpuUsage();
  for (clock.t = 0; clock.t <= SECONDS * 1000; clock.t += 1) {
    net.deliver();
    clock.fire();
    if (clock.t % 5 === 0) await new Promise((r) => setImmediate(r));
  }
  const idle = process.cpuUsage(idle0);
  const harnessMsPerS = (idle.user + idle.system) / 1000 / SECONDS;
  clock.t = 0;
  const log = pino({ level: 'silent' });
  let binds = 0;
  let unbinds = 0;
  let received = 0;
  const sentByKind: Record<string, number> = {};
  const heap0 = (global.gc?.(), process.memoryUsage().heapUsed);
  const hs = Array.from({ length: M }, (_, i) => {
    const h = new MemberHost(
      {
        clock,
        transport: net.transport(address(i), 694),
        log,
        effects: { bind: () => void binds++, renew: () => {}, unbind: () => void unbinds++ },
        onSend: (kind) => void (sentByKind[kind] = (sentByKind[kind] ?? 0) + 1),
        onReceive: () => void received++,
      },
      { self: name(i), config, incarnation: 1, signingKey: memberKeyOf(name(i)) },
    );
    return h;
  });
  for (const h of hs) h.start();
  const stepMs = 1;
  const endMs = (WARMUP_S + SECONDS) * 1000;
  let cpu0: NodeJS.CpuUsage | undefined;
  let from = { binds: 0, unbinds: 0, received: 0, sent: 0, bytes: 0 };
  let kinds0: Record<string, number> = {};
  const wall0 = performance.now();
  let heapPerMember = 0;
  for (clock.t = 0; clock.t <= endMs; clock.t += stepMs) {
    if (clock.t === WARMUP_S * 1000) {
      await new Promise((r) => setImmediate(r));
      global.gc?.();
      heapPerMember = (process.memoryUsage().heapUsed - heap0) / M;
      from = { binds, unbinds, received, sent: net.sent, bytes: net.sentBytes };
      kinds0 = { ...sentByKind };
      cpu0 = process.cpuUsage();
    }
    net.deliver();
    clock.fire();
    // Let promise callbacks (send results) run, as the event loop would.
    if (clock.t % 5 === 0) await new Promise((r) => setImmediate(r));
  }
  const c = process.cpuUsage(cpu0);
  const held = new Set<string>();
  for (const h of hs) for (const x of h.view().holdings) held.add(x.vip);
  const perS = (n: number) => Math.round((n / SECONDS / M) * 10) / 10;
  const byKind: Record<string, number> = {};
  for (const [k, n] of Object.entries(sentByKind)) byKind[k] = perS(n - (kinds0[k] ?? 0));
  const sent = net.sent - from.sent;
  console.log(
    JSON.stringify({
      members: M,
      vips: V,
      intervalMs,
      deadMs,
      held: held.size,
      holdingsPerMember: {
        min: Math.min(...hs.map((h) => h.view().holdings.length)),
        max: Math.max(...hs.map((h) => h.view().holdings.length)),
      },
      window: { warmupS: WARMUP_S, seconds: SECONDS },
      cpuMsPerMemberPerS:
        Math.round((((c.user + c.system) / 1000 / SECONDS - harnessMsPerS) / M) * 100) / 100,
      harnessCpuMsPerS: Math.round(harnessMsPerS * 100) / 100,
      datagramsSentPerMemberPerS: perS(sent),
      datagramsReceivedPerMemberPerS: perS(received - from.received),
      sentByKindPerMemberPerS: byKind,
      bytesPerDatagram: Math.round((net.sentBytes - from.bytes) / Math.max(sent, 1)),
      heapMbPerMember: global.gc ? Math.round((heapPerMember / 1048576) * 100) / 100 : null,
      churnInWindow: { binds: binds - from.binds, unbinds: unbinds - from.unbinds },
      wallS: Math.round(performance.now() - wall0) / 1000,
      loadavg: (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10),
    }),
  );
  for (const h of hs) void h.stop(1);
}

(process.argv.includes('--socket-cost') ? socketCost() : hosts()).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
