import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface OpsServerInit {
  /** host:port to listen on, e.g. "0.0.0.0:9694"; port 0 picks a free one. */
  listen: string;
  registry: Registry;
  /** Liveness: the process's loops are turning. */
  healthy: () => boolean;
  /** Readiness: the role can do its job (e.g. agent has its configuration and socket). */
  ready: () => { ready: boolean; reason: string };
}

/** Serves /metrics (Prometheus text), /healthz and /readyz. */
export class OpsServer {
  private readonly server: Server;

  constructor(private readonly init: OpsServerInit) {
    this.server = createServer((req, res) => {
      void this.handle(req.url ?? '/').then(
        ({ status, type, body }) => {
          res.writeHead(status, { 'content-type': type });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        },
      );
    });
  }

  private async handle(url: string): Promise<{ status: number; type: string; body: string }> {
    const path = url.split('?')[0];
    if (path === '/metrics') {
      return { status: 200, type: this.init.registry.contentType, body: await this.init.registry.metrics() };
    }
    if (path === '/healthz') {
      const ok = this.init.healthy();
      return { status: ok ? 200 : 503, type: 'text/plain', body: ok ? 'ok\n' : 'unhealthy\n' };
    }
    if (path === '/readyz') {
      const r = this.init.ready();
      return { status: r.ready ? 200 : 503, type: 'text/plain', body: `${r.reason}\n` };
    }
    return { status: 404, type: 'text/plain', body: 'not found\n' };
  }

  async start(): Promise<AddressInfo> {
    const idx = this.init.listen.lastIndexOf(':');
    const host = this.init.listen.slice(0, idx) || '0.0.0.0';
    const port = Number(this.init.listen.slice(idx + 1));
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host.replace(/^\[|\]$/g, ''), () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
