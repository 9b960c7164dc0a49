import { isIP } from 'node:net';
import type {
  Clock,
  JoinedGroup,
  Millis,
  MulticastLink,
  MulticastTransport,
  Peer,
} from '../../src/core/ports.js';

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

const isMulticastV4 = (a: string): boolean => isIP(a) === 4 && Number(a.split('.')[0]) >> 4 === 14;

/** Leading characters two addresses share: the source a multi-homed host picks for a destination. */
function sharedPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
}

/**
 * A simulated datagram network for SimTransports. Hosts are identified by address; faults
 * are per directed host pair (or global), partitions block host pairs in one or both
 * directions. Datagrams to an address/port nobody bound vanish, as with UDP.
 *
 * A transport may have several addresses (a host on several networks: one socket on the
 * unspecified address), each on an interface (eth0, eth1, ... in order). It sends unicast
 * from the address closest to the destination, and may join IPv4 multicast groups on an
 * interface: a datagram to a group reaches every other transport that joined it at the
 * destination port, from the sender's address on its link. Blocks and faults apply between
 * the sender's link address and the receiver's, for unicast and multicast alike.
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
  private readonly groups = new Map<string, Array<{ transport: SimTransport; address: string }>>();
  private nextPort = 40000;

  constructor(init: SimNetworkInit) {
    this.clock = init.clock;
    this.random = prng(init.seed ?? 1);
    this.defaults = { ...init.faults };
  }

  /**
   * Binds a transport at `address` (an IP literal, or several: one per interface, eth0
   * first) and `port` (0 or absent: ephemeral). `address()` reports the first address.
   */
  transport(address: string | readonly string[], port = 0): SimTransport {
    const addresses = typeof address === 'string' ? [address] : [...address];
    for (const a of addresses) {
      if (!isIP(a)) throw new Error(`SimNetwork: address must be an IP literal, got ${a}`);
    }
    if (addresses.length === 0) throw new Error('SimNetwork: a transport needs an address');
    if (port === 0) {
      while (addresses.some((a) => this.bound.has(key({ address: a, port: this.nextPort })))) this.nextPort++;
      port = this.nextPort++;
    }
    for (const a of addresses) {
      if (this.bound.has(key({ address: a, port })))
        throw new Error(`SimNetwork: ${a}:${port} is already bound (EADDRINUSE)`);
    }
    const t = new SimTransport(this, addresses, port);
    for (const a of addresses) this.bound.set(key({ address: a, port }), t);
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
    for (const a of t.addresses) {
      const k = key({ address: a, port: t.local.port });
      if (this.bound.get(k) === t) this.bound.delete(k);
    }
    this.setGroups(t, []);
  }

  /** @internal The groups `t` joined become exactly `joined`. */
  setGroups(t: SimTransport, joined: readonly JoinedGroup[]): void {
    for (const [group, members] of this.groups) {
      const rest = members.filter((m) => m.transport !== t);
      if (rest.length) this.groups.set(group, rest);
      else this.groups.delete(group);
    }
    for (const j of joined) {
      this.groups.set(j.group, [...(this.groups.get(j.group) ?? []), { transport: t, address: j.address }]);
    }
  }

  /** @internal */
  route(from: Peer, to: Peer, datagram: Uint8Array, sender?: SimTransport): void {
    if (isMulticastV4(to.address)) {
      for (const m of this.groups.get(to.address) ?? []) {
        if (m.transport.local.port !== to.port || m.transport === sender) continue;
        this.routeTo(from, m.address, m.transport, datagram);
      }
      return;
    }
    this.routeTo(from, to.address, undefined, datagram, to);
  }

  /** Delivers to `dest` (or to whoever binds `to` at delivery time), through the faults between the two addresses. */
  private routeTo(
    from: Peer,
    toAddress: string,
    dest: SimTransport | undefined,
    datagram: Uint8Array,
    to?: Peer,
  ): void {
    this.stats.sent++;
    if (this.blocked.has(`${from.address}>${toAddress}`)) {
      this.stats.blocked++;
      return;
    }
    const f = this.linkFaults.get(`${from.address}>${toAddress}`) ?? this.defaults;
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
        const target = dest ?? (to && this.bound.get(key(to)));
        if (!target) {
          this.stats.unreachable++;
          return;
        }
        this.stats.delivered++;
        target.deliver(bytes, from);
      });
    }
  }
}

/** A Transport on a SimNetwork, with multicast links on its interfaces (eth0, eth1, ...: its addresses in order). */
export class SimTransport implements MulticastTransport {
  private readonly handlers: ((datagram: Uint8Array, from: Peer) => void)[] = [];
  private closed = false;
  private joined: JoinedGroup[] = [];
  readonly local: Peer;

  constructor(
    private readonly network: SimNetwork,
    readonly addresses: readonly string[],
    port: number,
  ) {
    this.local = { address: addresses[0]!, port };
  }

  address(): Peer {
    return { ...this.local };
  }

  send(to: Peer, datagram: Uint8Array): Promise<boolean> {
    if (this.closed || !isIP(to.address) || !Number.isInteger(to.port) || to.port <= 0 || to.port > 65535) {
      return Promise.resolve(false);
    }
    if (isMulticastV4(to.address)) {
      const links = this.joined.filter((j) => j.group === to.address);
      for (const j of links) {
        this.network.route({ address: j.address, port: this.local.port }, { ...to }, datagram, this);
      }
      return Promise.resolve(links.length > 0);
    }
    const source = [...this.addresses].sort(
      (a, b) => sharedPrefix(b, to.address) - sharedPrefix(a, to.address),
    )[0]!;
    this.network.route(
      { address: source, port: this.local.port },
      { address: to.address, port: to.port },
      datagram,
    );
    return Promise.resolve(true);
  }

  setMulticast(links: readonly MulticastLink[], defaultAddress?: string): Promise<JoinedGroup[]> {
    if (this.closed) return Promise.reject(new Error('transport closed'));
    const joined: JoinedGroup[] = [];
    for (const l of links) {
      if (!isMulticastV4(l.group)) {
        return Promise.reject(new Error(`multicast group ${l.group}: not an IPv4 multicast address`));
      }
      const i = l.interface !== undefined ? Number(/^eth(\d+)$/.exec(l.interface)?.[1] ?? -1) : -1;
      const address =
        l.interface !== undefined ? this.addresses[i] : this.addresses.find((a) => a === defaultAddress);
      if (address === undefined) {
        return Promise.reject(
          new Error(
            `multicast group ${l.group}: ${l.interface !== undefined ? `interface ${l.interface} does not exist on this node` : `no interface given and this node's heartbeat address ${defaultAddress ?? '(none)'} is on none of its interfaces`}`,
          ),
        );
      }
      const name = `eth${this.addresses.indexOf(address)}`;
      if (!joined.some((j) => j.group === l.group && j.address === address)) {
        joined.push({ group: l.group, interface: name, address });
      }
    }
    this.joined = joined;
    this.network.setGroups(this, joined);
    return Promise.resolve(joined.map((j) => ({ ...j })));
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
