import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { MetricsAuthorizer } from './metrics-auth.js';

/**
 * How /metrics is served. `secure`: HTTPS with `tls`, and only to bearer tokens that
 * `authorizer` admits (TokenReview + SubjectAccessReview). `insecure-no-auth`: plain HTTP and
 * no authentication at all, for a listener only trusted parties can reach.
 */
export type MetricsServing =
  | {
      kind: 'secure';
      tls: TlsPair;
      authorizer: MetricsAuthorizer;
      /**
       * Re-reads the certificate and key (files given on the command line); called every
       * `reloadEveryMs` while serving. A changed pair that makes a valid TLS context replaces
       * the served one; a failure is logged and the served pair kept.
       */
      reload?: () => Promise<TlsPair>;
      /** Default 60 000. */
      reloadEveryMs?: number;
    }
  | { kind: 'insecure-no-auth' };

export interface TlsPair {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface OpsServerInit {
  /** host:port to listen on, e.g. "127.0.0.1:9694"; port 0 picks a free one; an empty host means every address. */
  listen: string;
  registry: Registry;
  serving: MetricsServing;
  /** Liveness: the process's loops are turning. */
  healthy: () => boolean;
  /**
   * Readiness: the role can do its job. `reason` is served to anyone who reaches the port
   * (the kubelet's probes need no credentials): keep it generic, with no node, object or
   * address names.
   */
  ready: () => { ready: boolean; reason: string };
  log?: Logger;
}

interface Answer {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

const text = (status: number, body: string, headers?: Record<string, string>): Answer => ({
  status,
  type: 'text/plain; charset=utf-8',
  body: `${body}\n`,
  ...(headers ? { headers } : {}),
});

/**
 * Serves /metrics (Prometheus text), /healthz and /readyz on one port. The probes are open
 * and say only ok or not, with a generic reason; /metrics is guarded as `serving` says.
 */
export class OpsServer {
  private readonly server: Server;
  private reloadTimer: NodeJS.Timeout | undefined;

  constructor(private readonly init: OpsServerInit) {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      void this.handle(req).then(
        (a) => {
          res.writeHead(a.status, { 'content-type': a.type, ...a.headers });
          res.end(req.method === 'HEAD' ? undefined : a.body);
        },
        (err: unknown) => {
          this.init.log?.error({ err }, 'ops endpoint failed');
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('internal error\n');
        },
      );
    };
    const serving = init.serving;
    this.server =
      serving.kind === 'secure'
        ? createHttpsServer({ cert: serving.tls.cert, key: serving.tls.key }, handler)
        : createHttpServer(handler);
    // Slow or idle clients cannot hold connections for long.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 5_000;
  }

  /** "https" or "http". */
  get scheme(): 'https' | 'http' {
    return this.init.serving.kind === 'secure' ? 'https' : 'http';
  }

  private async handle(req: IncomingMessage): Promise<Answer> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return text(404, 'not found');
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return text(405, 'method not allowed', { allow: 'GET, HEAD' });
    if (path === '/healthz') {
      const ok = this.init.healthy();
      return text(ok ? 200 : 503, ok ? 'ok' : 'unhealthy');
    }
    if (path === '/readyz') {
      const r = this.init.ready();
      return text(r.ready ? 200 : 503, r.reason);
    }
    const serving = this.init.serving;
    if (serving.kind === 'secure') {
      const d = await serving.authorizer.decide(req.headers.authorization, 'get', path);
      switch (d.status) {
        case 200:
          break;
        case 401:
          this.init.log?.debug(
            { reason: d.reason, from: req.socket.remoteAddress },
            'metrics scrape unauthenticated',
          );
          return text(401, 'Unauthorized', { 'www-authenticate': 'Bearer' });
        case 403:
          this.init.log?.debug({ user: d.user, from: req.socket.remoteAddress }, 'metrics scrape forbidden');
          return text(403, `Forbidden: user "${d.user}" may not get ${path}`);
        case 429:
          return text(429, 'Too many authentication requests in flight', { 'retry-after': '1' });
        case 500:
          return text(500, `Internal error: ${d.reason}`);
      }
    }
    return { status: 200, type: this.init.registry.contentType, body: await this.init.registry.metrics() };
  }

  async start(): Promise<AddressInfo> {
    const idx = this.init.listen.lastIndexOf(':');
    const host = this.init.listen.slice(0, idx).replace(/^\[|\]$/g, '');
    const port = Number(this.init.listen.slice(idx + 1));
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) =>
        reject(
          new Error(
            `cannot listen on ${this.init.listen} (--metrics-listen): ${err.message}; give an address of this host and a free port`,
            { cause: err },
          ),
        );
      this.server.once('error', fail);
      const done = () => {
        this.server.off('error', fail);
        resolve();
      };
      if (host) this.server.listen(port, host, done);
      else this.server.listen(port, done);
    });
    const serving = this.init.serving;
    if (serving.kind === 'secure' && serving.reload) {
      const reload = serving.reload;
      let current = serving.tls;
      let busy = false;
      this.reloadTimer = setInterval(() => {
        if (busy) return;
        busy = true;
        void reload()
          .then((next) => {
            if (sameBytes(next.cert, current.cert) && sameBytes(next.key, current.key)) return;
            (this.server as HttpsServer).setSecureContext({ cert: next.cert, key: next.key });
            current = next;
            this.init.log?.info('metrics TLS certificate reloaded');
          })
          .catch((err: unknown) =>
            this.init.log?.warn({ err }, 'metrics TLS certificate not reloaded; serving the previous one'),
          )
          .finally(() => (busy = false));
      }, serving.reloadEveryMs ?? 60_000);
      this.reloadTimer.unref();
    }
    return this.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    clearInterval(this.reloadTimer);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

const sameBytes = (a: string | Buffer, b: string | Buffer): boolean => Buffer.from(a).equals(Buffer.from(b));
