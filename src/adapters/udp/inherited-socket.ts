import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Peer } from '../../core/ports.js';
import { silentLogger } from '../../ops/log.js';
import { UdpTransport } from './udp-transport.js';

/** The environment heartline-netd sets with `--heartbeat-bind` (docs/adr/0020-unprivileged-agent.md). */
export interface HeartbeatSocketEnv {
  /** The inherited socket's file descriptor (4). */
  HEARTLINE_HEARTBEAT_FD?: string;
  /** What netd bound it to: "addr:port", "[addr]:port" for IPv6. */
  HEARTLINE_HEARTBEAT_BIND?: string;
}

/** The inherited heartbeat socket is missing, not what the environment says, or not for this port. */
export class InheritedSocketError extends Error {
  override readonly name = 'InheritedSocketError';
}

function parseBind(value: string): Peer | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const address = m[1] ?? m[2]!;
  const port = Number(m[3]);
  const family = isIP(address);
  if (!family || (family === 6) !== (m[1] !== undefined) || port > 65535) return undefined;
  return { address, port };
}

/**
 * The heartbeat socket heartline-netd bound for this agent and handed over as an inherited
 * file descriptor (`heartline-netd --heartbeat-bind=ADDR:PORT --exec ...`), so that the agent
 * needs no capability to use port 694. It is adopted once (node:dgram `bind({ fd })`) and
 * kept for the life of the process: each `transport(port)` is a view on it whose `close`
 * detaches (leaves its multicast groups, stops delivering) without closing the socket, so a
 * member that stops and starts again (membership change, a failed start) gets it back. One
 * view at a time.
 */
export class InheritedUdpSocket {
  private current: UdpTransport | undefined;

  private constructor(
    private readonly socket: dgram.Socket,
    /** Where netd bound it (the socket's own address, checked against the environment). */
    readonly bound: Peer,
    private readonly logger: Logger,
    private readonly interfaces?: () => ReturnType<typeof networkInterfaces>,
  ) {
    // Always an error listener, also between views: an unhandled 'error' would end the process.
    socket.on('error', (err) => logger.warn({ err }, 'heartbeat socket error'));
  }

  /**
   * The socket's receive buffer as the kernel accounts it (SO_RCVBUF read back: twice what
   * netd asked for). netd sizes it (--heartbeat-rcvbuf); an unprivileged agent could not raise
   * it past net.core.rmem_max.
   */
  get receiveBufferBytes(): number {
    return this.socket.getRecvBufferSize();
  }

  /**
   * The socket named by HEARTLINE_HEARTBEAT_FD, or undefined when the variable is not set (the
   * agent binds its own socket). Rejects, naming the variable, when it is set but unusable.
   */
  static async fromEnvironment(
    env: HeartbeatSocketEnv = process.env,
    init: { logger?: Logger; interfaces?: () => ReturnType<typeof networkInterfaces> } = {},
  ): Promise<InheritedUdpSocket | undefined> {
    const fdText = env.HEARTLINE_HEARTBEAT_FD;
    if (fdText === undefined || fdText === '') return undefined;
    const where = `HEARTLINE_HEARTBEAT_FD=${fdText} (set by heartline-netd --heartbeat-bind)`;
    if (!/^\d{1,4}$/.test(fdText) || Number(fdText) < 3)
      throw new InheritedSocketError(`${where}: not an inherited file descriptor number (3 or more)`);
    const bind = env.HEARTLINE_HEARTBEAT_BIND ?? '';
    const expected = parseBind(bind);
    if (!expected)
      throw new InheritedSocketError(
        `${where}: HEARTLINE_HEARTBEAT_BIND="${bind}" is not ADDR:PORT ([ADDR]:PORT for IPv6): start the agent with heartline-netd --heartbeat-bind`,
      );
    const socket = dgram.createSocket({ type: isIP(expected.address) === 6 ? 'udp6' : 'udp4' });
    const actual = await new Promise<Peer>((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(new InheritedSocketError(`${where}: cannot adopt it: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.bind({ fd: Number(fdText) }, () => {
        socket.off('error', onError);
        const a = socket.address();
        resolve({ address: a.address, port: a.port });
      });
    });
    if (actual.address !== expected.address || actual.port !== expected.port) {
      socket.close();
      throw new InheritedSocketError(
        `${where}: the socket is bound to ${actual.address}:${actual.port}, not ${bind}: it is not the heartbeat socket netd bound`,
      );
    }
    const logger = init.logger ?? silentLogger();
    return new InheritedUdpSocket(socket, actual, logger, init.interfaces);
  }

  /**
   * A transport on the socket for the HACluster's `port`. Rejects when netd bound another
   * port (the message names both and the fix) or when the previous transport is still open.
   */
  transport(port: number): Promise<UdpTransport> {
    if (port !== this.bound.port)
      return Promise.reject(
        new InheritedSocketError(
          `HACluster spec.transport.port is ${port} but heartline-netd bound the heartbeat socket to port ${this.bound.port} (--heartbeat-bind=${this.bound.address}:${this.bound.port}): set both to the same port (in the DaemonSet: netd's --heartbeat-bind and the heartbeat containerPort)`,
        ),
      );
    if (this.current && !this.current.isClosed)
      return Promise.reject(new InheritedSocketError('the inherited heartbeat socket is already in use'));
    this.current = UdpTransport.over(this.socket, {
      logger: this.logger,
      ...(this.interfaces ? { interfaces: this.interfaces } : {}),
    });
    return Promise.resolve(this.current);
  }
}
