import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { pino, type Logger } from 'pino';
import type { JoinedGroup, MulticastLink, MulticastTransport, Peer } from '../../core/ports.js';

export interface UdpTransportInit {
  /** Address family. Default: from `address` (udp6 for an IPv6 literal), else udp4. */
  type?: 'udp4' | 'udp6';
  /** Local address to bind; default the unspecified address of the family. */
  address?: string;
  /** Local port; 0 (default) picks an ephemeral one. Heartline's default is 694. */
  port?: number;
  /**
   * SO_REUSEADDR. Default false: on Linux it lets a second socket bind the same UDP port and
   * steal datagrams, and UDP needs no TIME_WAIT workaround for restarts.
   */
  reuseAddr?: boolean;
  /** For udp6 bound to `::`, refuse IPv4-mapped traffic. Default false. */
  ipv6Only?: boolean;
  /**
   * SO_RCVBUF requested, bytes (the kernel doubles it for its bookkeeping and caps the request
   * at net.core.rmem_max). Default {@link HEARTBEAT_RECEIVE_BUFFER}.
   */
  receiveBufferBytes?: number;
  logger?: Logger;
  /** Where interfaces and their addresses are read (default os.networkInterfaces; tests may narrow it). */
  interfaces?: () => ReturnType<typeof networkInterfaces>;
}

/** A joined multicast link: the group is joined on the receiving socket, `sender` sends on the link. */
interface Joined {
  link: JoinedGroup;
  sender: dgram.Socket;
}

/**
 * The receive buffer a heartbeat socket asks for (SO_RCVBUF, bytes): 2 MiB, which the kernel
 * accounts as 4 MiB of queued datagrams (each counted at its skb's truesize, about 1-2 KB for a
 * heartbeat). The default 208 KiB holds about 150 of them: a cold start or a storm (takeovers,
 * acks and releases from every peer at once) overflowed it while the process waited for a core,
 * and the lost heartbeats let leases expire (docs/benchmarks.md, seventh scale pass). A full
 * buffer costs memory only while datagrams wait. heartline-netd binds the agent's socket with
 * the same size (SO_RCVBUFFORCE: past rmem_max); an unprivileged process gets at most rmem_max.
 */
export const HEARTBEAT_RECEIVE_BUFFER = 2 * 1024 * 1024;

const joinedKey = (g: { group: string; address: string }): string => `${g.group}|${g.address}`;

/** IPv4 224.0.0.0/4. */
function isMulticastV4(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return isIP(address) === 4 && first >= 224 && first <= 239;
}

/**
 * Heartbeat datagrams over a node:dgram socket. `send` resolves false instead of throwing
 * (bad address or port, socket closed, EHOSTUNREACH, ...); destinations must be IP literals
 * so no DNS lookup ever sits on the heartbeat path. A handler that throws is logged and does
 * not affect other handlers or the socket.
 *
 * Multicast links (IPv4): the receiving socket, which must be bound to the unspecified
 * address, joins each group on its interface (IP_ADD_MEMBERSHIP); each link sends from a
 * socket of its own bound to the interface's address, with IP_MULTICAST_IF on it, TTL 1 and
 * loopback off, so several links on several interfaces never share socket options.
 */
export class UdpTransport implements MulticastTransport {
  private readonly handlers: ((datagram: Uint8Array, from: Peer) => void)[] = [];
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly local: Peer;
  private readonly joined = new Map<string, Joined>();
  /** Serialises setMulticast calls (each one awaits socket binds). */
  private multicastChange: Promise<unknown> = Promise.resolve();

  private readonly onDatagram = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const from = { address: rinfo.address, port: rinfo.port };
    for (const handler of this.handlers) {
      try {
        handler(new Uint8Array(msg), from);
      } catch (err) {
        this.logger.error({ err, from }, 'datagram handler failed');
      }
    }
  };
  private readonly onSocketError = (err: Error): void => this.logger.warn({ err }, 'udp socket error');

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly logger: Logger,
    private readonly interfaces: () => ReturnType<typeof networkInterfaces>,
    /** false: `close` leaves the socket open (it belongs to an InheritedUdpSocket). */
    private readonly ownsSocket = true,
  ) {
    const bound = socket.address();
    this.local = { address: bound.address, port: bound.port };
    socket.on('message', this.onDatagram);
    socket.on('error', this.onSocketError);
  }

  /**
   * A transport over a socket someone else bound and keeps (InheritedUdpSocket): `close`
   * leaves the multicast groups it joined and stops delivering, but does not close the socket.
   */
  static over(
    socket: dgram.Socket,
    init: Pick<UdpTransportInit, 'logger' | 'interfaces'> = {},
  ): UdpTransport {
    const logger = (init.logger ?? pino({ name: 'heartline.udp' })).child({ component: 'udp' });
    return new UdpTransport(socket, logger, init.interfaces ?? networkInterfaces, false);
  }

  /** Binds a socket; rejects with an error naming the address, port and likely fix. */
  static open(init: UdpTransportInit = {}): Promise<UdpTransport> {
    const type = init.type ?? (init.address && isIP(init.address) === 6 ? 'udp6' : 'udp4');
    const address = init.address ?? (type === 'udp6' ? '::' : '0.0.0.0');
    const port = init.port ?? 0;
    const logger = (init.logger ?? pino({ name: 'heartline.udp' })).child({ component: 'udp' });
    const socket = dgram.createSocket({
      type,
      reuseAddr: init.reuseAddr ?? false,
      ipv6Only: init.ipv6Only ?? false,
      recvBufferSize: init.receiveBufferBytes ?? HEARTBEAT_RECEIVE_BUFFER,
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(
          new Error(
            `cannot bind UDP ${type} ${address}:${port}: ${err.message}; check that the address is configured on this node (the agent's --listen-address) and that nothing else uses the port (spec.transport.port)`,
            { cause: err },
          ),
        );
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        resolve(new UdpTransport(socket, logger, init.interfaces ?? networkInterfaces));
      });
    });
  }

  address(): Peer {
    return { ...this.local };
  }

  /** The receive buffer as the kernel accounts it (SO_RCVBUF read back: twice what was asked). */
  receiveBufferBytes(): number {
    return this.socket.getRecvBufferSize();
  }

  /** Whether `close` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  send(to: Peer, datagram: Uint8Array): Promise<boolean> {
    if (this.closed || !isIP(to.address) || !Number.isInteger(to.port) || to.port <= 0 || to.port > 65535) {
      return Promise.resolve(false);
    }
    const copy = Buffer.from(datagram);
    if (isMulticastV4(to.address)) {
      const links = [...this.joined.values()].filter((j) => j.link.group === to.address);
      if (links.length === 0) return Promise.resolve(false);
      return Promise.all(links.map((j) => this.sendOn(j.sender, copy, to))).then((ok) => ok.includes(true));
    }
    return this.sendOn(this.socket, copy, to);
  }

  private sendOn(socket: dgram.Socket, copy: Buffer, to: Peer): Promise<boolean> {
    return new Promise((resolve) => {
      try {
        socket.send(copy, to.port, to.address, (err) => {
          if (err) this.logger.debug({ err, to }, 'udp send failed');
          resolve(!err);
        });
      } catch (err) {
        this.logger.debug({ err, to }, 'udp send failed');
        resolve(false);
      }
    });
  }

  onMessage(handler: (datagram: Uint8Array, from: Peer) => void): void {
    this.handlers.push(handler);
  }

  setMulticast(links: readonly MulticastLink[], defaultAddress?: string): Promise<JoinedGroup[]> {
    const run = this.multicastChange.then(() => this.applyMulticast(links, defaultAddress));
    this.multicastChange = run.catch(() => undefined);
    return run;
  }

  /** The interface and IPv4 address of `link`; throws naming the group and the fix. */
  private resolveLink(link: MulticastLink, defaultAddress: string | undefined): JoinedGroup {
    const where = `multicast group ${link.group}`;
    if (!isMulticastV4(link.group)) {
      throw new Error(`${where}: not an IPv4 multicast address; use e.g. 239.192.0.94`);
    }
    const all = this.interfaces();
    if (link.interface !== undefined) {
      const list = all[link.interface];
      if (!list) {
        throw new Error(
          `${where}: interface ${link.interface} does not exist on this node (it has ${Object.keys(all).join(', ')}); fix the link's interface`,
        );
      }
      const v4 = list.find((a) => a.family === 'IPv4');
      if (!v4) {
        throw new Error(
          `${where}: interface ${link.interface} has no IPv4 address; give it one or pick another interface`,
        );
      }
      return { group: link.group, interface: link.interface, address: v4.address };
    }
    for (const [name, list] of Object.entries(all)) {
      if (defaultAddress !== undefined && list?.some((a) => a.address === defaultAddress)) {
        return { group: link.group, interface: name, address: defaultAddress };
      }
    }
    throw new Error(
      `${where}: no interface given and this node's heartbeat address ${defaultAddress ?? '(none)'} is on none of its interfaces; set the link's interface`,
    );
  }

  private async applyMulticast(
    links: readonly MulticastLink[],
    defaultAddress: string | undefined,
  ): Promise<JoinedGroup[]> {
    if (this.closed) throw new Error('transport closed');
    const wanted = new Map<string, JoinedGroup>();
    for (const l of links) {
      const g = this.resolveLink(l, defaultAddress);
      wanted.set(joinedKey(g), g);
    }
    if (wanted.size > 0 && this.local.address !== '0.0.0.0') {
      throw new Error(
        `multicast needs the heartbeat socket bound to 0.0.0.0, not ${this.local.address}: start the agent with --listen-address 0.0.0.0 (the default), or under heartline-netd with --heartbeat-bind=0.0.0.0:PORT`,
      );
    }
    const added: Joined[] = [];
    try {
      for (const [key, link] of wanted) {
        if (this.joined.has(key)) continue;
        const sender = await this.openSender(link);
        try {
          this.socket.addMembership(link.group, link.address);
        } catch (err) {
          sender.close();
          throw new Error(
            `multicast group ${link.group} on ${link.interface} (${link.address}): cannot join: ${(err as Error).message}`,
            { cause: err },
          );
        }
        added.push({ link, sender });
      }
      if (this.closed) throw new Error('transport closed');
    } catch (err) {
      for (const j of added) {
        try {
          this.socket.dropMembership(j.link.group, j.link.address);
        } catch {
          // closed meanwhile: the kernel dropped the membership with the socket
        }
        j.sender.close();
      }
      throw err;
    }
    for (const j of added) this.joined.set(joinedKey(j.link), j);
    for (const [key, j] of this.joined) {
      if (wanted.has(key)) continue;
      this.joined.delete(key);
      try {
        this.socket.dropMembership(j.link.group, j.link.address);
      } catch (err) {
        this.logger.debug({ err, group: j.link.group }, 'leaving multicast group failed');
      }
      j.sender.close();
    }
    return [...this.joined.values()].map((j) => ({ ...j.link }));
  }

  private openSender(link: JoinedGroup): Promise<dgram.Socket> {
    const sender = dgram.createSocket({ type: 'udp4' });
    sender.on('error', (err) => this.logger.warn({ err, group: link.group }, 'multicast socket error'));
    // Nothing is addressed to a sender socket; whatever arrives (a stray unicast) is dropped.
    sender.on('message', () => undefined);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        sender.close();
        reject(
          new Error(
            `multicast group ${link.group} on ${link.interface}: cannot bind a sender to ${link.address}: ${err.message}`,
            { cause: err },
          ),
        );
      };
      sender.once('error', onError);
      sender.bind({ address: link.address, port: 0, exclusive: true }, () => {
        sender.off('error', onError);
        try {
          sender.setMulticastInterface(link.address);
          sender.setMulticastTTL(1);
          sender.setMulticastLoopback(false);
        } catch (err) {
          onError(err as Error);
          return;
        }
        resolve(sender);
      });
    });
  }

  close(): Promise<void> {
    this.closed = true;
    for (const j of this.joined.values()) {
      if (!this.ownsSocket) {
        try {
          this.socket.dropMembership(j.link.group, j.link.address);
        } catch (err) {
          this.logger.debug({ err, group: j.link.group }, 'leaving multicast group failed');
        }
      }
      j.sender.close();
    }
    this.joined.clear();
    if (!this.ownsSocket) {
      this.socket.off('message', this.onDatagram);
      this.socket.off('error', this.onSocketError);
      this.closing ??= Promise.resolve();
    }
    this.closing ??= new Promise((resolve) => this.socket.close(() => resolve()));
    return this.closing;
  }
}
