import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Peer, Transport } from '../../core/ports.js';

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
  logger?: Logger;
}

/**
 * Heartbeat datagrams over a node:dgram socket. `send` resolves false instead of throwing
 * (bad address or port, socket closed, EHOSTUNREACH, ...); destinations must be IP literals
 * so no DNS lookup ever sits on the heartbeat path. A handler that throws is logged and does
 * not affect other handlers or the socket.
 */
export class UdpTransport implements Transport {
  private readonly handlers: ((datagram: Uint8Array, from: Peer) => void)[] = [];
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly local: Peer;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly logger: Logger,
  ) {
    const bound = socket.address();
    this.local = { address: bound.address, port: bound.port };
    socket.on('message', (msg, rinfo) => {
      const from = { address: rinfo.address, port: rinfo.port };
      for (const handler of this.handlers) {
        try {
          handler(new Uint8Array(msg), from);
        } catch (err) {
          this.logger.error({ err, from }, 'datagram handler failed');
        }
      }
    });
    socket.on('error', (err) => this.logger.warn({ err }, 'udp socket error'));
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
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(
          new Error(
            `cannot bind UDP ${type} ${address}:${port}: ${err.message}; check that the address is configured on this node (HACluster spec.transport.interface) and that nothing else uses the port (spec.transport.port)`,
            { cause: err },
          ),
        );
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        resolve(new UdpTransport(socket, logger));
      });
    });
  }

  address(): Peer {
    return { ...this.local };
  }

  send(to: Peer, datagram: Uint8Array): Promise<boolean> {
    if (this.closed || !isIP(to.address) || !Number.isInteger(to.port) || to.port <= 0 || to.port > 65535) {
      return Promise.resolve(false);
    }
    const copy = Buffer.from(datagram);
    return new Promise((resolve) => {
      try {
        this.socket.send(copy, to.port, to.address, (err) => {
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

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= new Promise((resolve) => this.socket.close(() => resolve()));
    return this.closing;
  }
}
