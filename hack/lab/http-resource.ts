/**
 * The lab's service behind a VIP: answers every HTTP request with the node's name, so the
 * prober can tell who answered. Run inside a node namespace:
 *
 *   ip netns exec hl-<id>-n1 npx tsx hack/lab/http-resource.ts --name n1 --port 8080
 *
 * Prints one JSON line `{"listening":{"host":...,"port":...}}` on stdout once it accepts
 * connections, and exits 0 on SIGTERM/SIGINT after closing the listener.
 */
import { createServer, type Server } from 'node:http';
import { pathToFileURL } from 'node:url';

export interface HttpResourceOptions {
  /** Body of every response (the node name). */
  name: string;
  port?: number;
  host?: string;
}

/** Starts the server; resolves once it is listening. Keep-alive is off: one request per connection. */
export function startHttpResource(opts: HttpResourceOptions): Promise<Server> {
  const body = Buffer.from(opts.name);
  const server = createServer((req, res) => {
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': body.length,
      connection: 'close',
    });
    res.end(body);
    req.resume();
  });
  server.keepAliveTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.port ?? 8080, host: opts.host ?? '0.0.0.0', backlog: 1024 }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function parseArgs(argv: string[]): HttpResourceOptions {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const name = get('--name');
  if (!name) throw new Error('http-resource: --name is required (the body to answer with, e.g. --name n1)');
  const portArg = get('--port') ?? '8080';
  const port = Number(portArg);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`http-resource: --port ${portArg} is not a TCP port: use 1-65535`);
  }
  return { name, port, host: get('--host') ?? '0.0.0.0' };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const server = await startHttpResource(opts);
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ listening: addr })}\n`);
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
