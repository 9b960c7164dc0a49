import { isIP } from 'node:net';
import type { Clock, Millis, Peer, Transport } from '../../src/core/ports.js';

/** Faults on a directed link (or on every link). Probabilities are in [0, 1]. */
export interface LinkFaults {
  /** Probability that a datagram is dropped. */
  loss?: number;
  /** One-way delay, ms. Default 0 (delivery is still asynchronous). */
  delayMs?: Millis;
  /** Extra uniform random delay in [0, jitterMs). */
  jitterMs?: Millis;
  /** Probability that a datagram is delivered twice (the copy has its own delay). */
  duplicate?: number;
  /** Probability that a datagram is held back by `reorderMs`, letting later ones overtake it. */
  reorder?: number;
  /** Hold-back for reordered datagrams. Default 2 * delayMs + 1. */
  reorderMs?: Millis;
}

export interface SimNetworkInit {
  /** Delivery times are measured on this clock (a SimClock in tests). */
  clock: Clock;
  /** Seed for the fault dice: the same seed and schedule give the same deliveries. */
  seed?: number;
  /** Faults on every link unless a link has its own. */
  faults?: LinkFaults;
}

export interface SimNetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  blocked: number;
  duplicated: number;
  unreachable: number;
}

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const key = (p: Peer): string => `${p.address}|${p.port}`;

/**
 * A simulated datagram network for SimTransports. Hosts are identified by address; faults
 * are per directed host pair (or global), partitions block host pairs in one or both
 * directions. Datagrams to an address/port nobody bound vanish, as with UDP.
 */
export class SimNetwork {
  readonly stats: SimNetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    blocked: 0,
    duplicated: 0,
    unreachable: 0,
  };
  private readonly clock: Clock;
  private readonly random: () => number;
  private defaults: LinkFaults;
  private readonly linkFaults = new Map<string, LinkFaults>();
  private readonly blocked = new Set<string>();
  private readonly bound = new Map<string, SimTransport>();
  private nextPort = 40000;

  constructor(init: SimNetworkInit) {
    this.clock = init.clock;
    this.random = prng(init.seed ?? 1);
    this.defaults = { ...init.faults };
  }

  /** Binds a transport at `address` (an IP literal) and `port` (0 or absent: ephemeral). */
  transport(address: string, port = 0): SimTransport {
    if (!isIP(address)) throw new Error(`SimNetwork: address must be an IP literal, got ${address}`);
    if (port === 0) {
      while (this.bound.has(key({ address, port: this.nextPort }))) this.nextPort++;
      port = this.nextPort++;
    }
    const local = { address, port };
    if (this.bound.has(key(local)))
      throw new Error(`SimNetwork: ${address}:${port} is already bound (EADDRINUSE)`);
    const t = new SimTransport(this, local);
    this.bound.set(key(local), t);
    return t;
  }

  /** Sets faults for every link, or for the directed link from `from` to `to` only. */
  setFaults(faults: LinkFaults, from?: string, to?: string): void {
    if (from !== undefined && to !== undefined) this.linkFaults.set(`${from}>${to}`, { ...faults });
    else this.defaults = { ...faults };
  }

  /** Drops everything from `from` to `to` (a one-way partition). */
  block(from: string, to: string): void {
    this.blocked.add(`${from}>${to}`);
  }

  unblock(from: string, to: string): void {
    this.blocked.delete(`${from}>${to}`);
  }

  /** Cuts every link between a host of `side` and a host of `other`, both ways. */
  partition(side: readonly string[], other: readonly string[]): void {
    for (const a of side)
      for (const b of other) {
        this.block(a, b);
        this.block(b, a);
      }
  }

  /** Removes every block (faults stay). */
  heal(): void {
    this.blocked.clear();
  }

  /** @internal */
  unbind(t: SimTransport): void {
    if (this.bound.get(key(t.local)) === t) this.bound.delete(key(t.local));
  }

  /** @internal */
  route(from: Peer, to: Peer, datagram: Uint8Array): void {
    this.stats.sent++;
    if (this.blocked.has(`${from.address}>${to.address}`)) {
      this.stats.blocked++;
      return;
    }
    const f = this.linkFaults.get(`${from.address}>${to.address}`) ?? this.defaults;
    if (f.loss && this.random() < f.loss) {
      this.stats.dropped++;
      return;
    }
    const copies = f.duplicate && this.random() < f.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const bytes = new Uint8Array(datagram);
    for (let i = 0; i < copies; i++) {
      let delay = (f.delayMs ?? 0) + (f.jitterMs ? this.random() * f.jitterMs : 0);
      if (f.reorder && this.random() < f.reorder) delay += f.reorderMs ?? 2 * (f.delayMs ?? 0) + 1;
      this.clock.after(delay, () => {
        const dest = this.bound.get(key(to));
        if (!dest) {
          this.stats.unreachable++;
          return;
        }
        this.stats.delivered++;
        dest.deliver(bytes, from);
      });
    }
  }
}

/** A Transport on a SimNetwork. */
export class SimTransport implements Transport {
  private readonly handlers: ((datagram: Uint8Array, from: Peer) => void)[] = [];
  private closed = false;

  constructor(
    private readonly network: SimNetwork,
    readonly local: Peer,
  ) {}

  address(): Peer {
    return { ...this.local };
  }

  send(to: Peer, datagram: Uint8Array): Promise<boolean> {
    if (this.closed || !isIP(to.address) || !Number.isInteger(to.port) || to.port <= 0 || to.port > 65535) {
      return Promise.resolve(false);
    }
    this.network.route(this.local, { address: to.address, port: to.port }, datagram);
    return Promise.resolve(true);
  }

  onMessage(handler: (datagram: Uint8Array, from: Peer) => void): void {
    this.handlers.push(handler);
  }

  /** @internal */
  deliver(bytes: Uint8Array, from: Peer): void {
    if (this.closed) return;
    for (const h of this.handlers) h(new Uint8Array(bytes), { ...from });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.network.unbind(this);
    }
    return Promise.resolve();
  }
}
