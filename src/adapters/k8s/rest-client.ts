/**
 * A minimal Kubernetes REST client on node:http / node:https: JSON requests over a bounded
 * keep-alive pool and watch streams (newline-delimited JSON) over their own connections.
 * It knows nothing about kinds; RestApiSource builds paths with kinds.ts.
 */
import http from 'node:http';
import https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { RestConfig } from './kubeconfig.js';
import { countingAgent } from './counting-agent.js';

/** The API server answered with a status other than 2xx. `body` is its text (usually a Status). */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly code: number,
    readonly body: string,
  ) {
    super(serverMessageOf(body) ?? `HTTP ${code}`);
  }
}

/** The `message` of a Kubernetes Status in `body`, else the body text itself (if any). */
export function serverMessageOf(body: string): string | undefined {
  try {
    const m = (JSON.parse(body) as { message?: unknown } | null)?.message;
    if (typeof m === 'string') return m;
  } catch {
    // not JSON: the text itself
  }
  const text = body.trim();
  return text ? text.slice(0, 1024) : undefined;
}

/**
 * Splits a byte stream into lines. Lines may be split anywhere across chunks, UTF-8 characters
 * included; empty lines are dropped.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending: string[] = [];

  /** The lines completed by `chunk`. */
  push(chunk: Buffer): string[] {
    const text = this.decoder.write(chunk);
    let nl = text.indexOf('\n');
    if (nl < 0) {
      if (text) this.pending.push(text);
      return [];
    }
    const lines: string[] = [];
    let start = 0;
    while (nl >= 0) {
      this.pending.push(text.slice(start, nl));
      const line = this.pending.join('');
      this.pending = [];
      if (line.trim() !== '') lines.push(line);
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    if (start < text.length) this.pending.push(text.slice(start));
    return lines;
  }

  /** What is left once the stream ended (a last line without a newline). */
  end(): string[] {
    this.pending.push(this.decoder.end());
    const line = this.pending.join('');
    this.pending = [];
    return line.trim() !== '' ? [line] : [];
  }
}

export interface RestClientInit {
  /** Most connections open at once for requests; more requests wait for one. Default 16. */
  maxRequestSockets?: number;
  /** An idle request connection is closed after this long (below the server's 90 s). Default 30 000. */
  idleTimeoutMs?: number;
  /** A request with no answer for this long fails. Default 30 000. */
  requestTimeoutMs?: number;
  /** User-Agent header. Default heartline. */
  userAgent?: string;
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  /** Default application/json when there is a body. */
  contentType?: string;
}

export interface WatchHandlers {
  /** The server accepted the watch (HTTP 200). */
  onOpen(): void;
  /** One line of the stream (one JSON watch event). */
  onLine(line: string): void;
  /**
   * The stream ended: `undefined` when the server ended it cleanly, else why (an
   * HttpStatusError for a non-200 answer). Never called after `abort()`.
   */
  onEnd(err: Error | undefined): void;
}

export interface WatchStream {
  /** Ends the stream; no handler is called afterwards. Idempotent. */
  abort(): void;
}

/** What a client has done so far (for tests and diagnostics). */
export interface RestClientStats {
  requests: number;
  requestConnections: number;
  watches: number;
  watchConnections: number;
}

/**
 * JSON over HTTP(S) to one API server. Requests share a bounded keep-alive pool; watches have
 * their own unbounded agent, so a watch never waits for (or occupies) a request slot. Bearer
 * tokens are asked of the config for every request; after a 401 the config may re-read them
 * and the request is sent once more.
 */
export class RestClient {
  private readonly requestAgent: http.Agent;
  private readonly watchAgent: http.Agent;
  private readonly secure: boolean;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private readonly basePath: string;
  private readonly counters: RestClientStats = {
    requests: 0,
    requestConnections: 0,
    watches: 0,
    watchConnections: 0,
  };

  constructor(
    private readonly config: RestConfig,
    init: RestClientInit = {},
  ) {
    this.secure = config.server.protocol === 'https:';
    this.requestTimeoutMs = init.requestTimeoutMs ?? 30_000;
    this.userAgent = init.userAgent ?? 'heartline';
    this.basePath = config.server.pathname.replace(/\/+$/, '');
    const tls: https.AgentOptions = {
      rejectUnauthorized: config.tls.rejectUnauthorized,
      ...(config.tls.ca ? { ca: config.tls.ca } : {}),
      ...(config.tls.cert ? { cert: config.tls.cert } : {}),
      ...(config.tls.key ? { key: config.tls.key } : {}),
      ...(config.tls.servername ? { servername: config.tls.servername } : {}),
    };
    const make = (options: https.AgentOptions, count: () => void): http.Agent =>
      countingAgent(this.secure, this.secure ? { ...tls, ...options } : options, count);
    this.requestAgent = make(
      {
        keepAlive: true,
        scheduling: 'lifo',
        maxSockets: init.maxRequestSockets ?? 16,
        timeout: init.idleTimeoutMs ?? 30_000,
      },
      () => void this.counters.requestConnections++,
    );
    this.watchAgent = make(
      { keepAlive: true, scheduling: 'lifo' },
      () => void this.counters.watchConnections++,
    );
  }

  stats(): RestClientStats {
    return { ...this.counters };
  }

  /**
   * Sends one request and resolves with the parsed JSON answer (undefined for an empty body).
   * Rejects with HttpStatusError for a non-2xx answer, or with the transport error.
   */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    let r = await this.send(method, path, opts);
    if (r.status === 401 && this.config.invalidate()) r = await this.send(method, path, opts);
    if (r.status < 200 || r.status > 299) throw new HttpStatusError(r.status, r.body);
    if (r.body.trim() === '') return undefined as T;
    return JSON.parse(r.body) as T;
  }

  /** Opens a watch stream on `path` with `query` (watch=true is added). */
  watch(
    path: string,
    query: Record<string, string | undefined>,
    h: WatchHandlers,
    idleTimeoutMs: number,
  ): WatchStream {
    this.counters.watches++;
    let done = false;
    const finish = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      h.onEnd(err);
    };
    let req: http.ClientRequest;
    try {
      req = this.open('GET', path, { ...query, watch: 'true' }, this.watchAgent, undefined);
    } catch (err) {
      queueMicrotask(() => finish(err as Error));
      return { abort: () => void (done = true) };
    }
    req.setTimeout(idleTimeoutMs, () =>
      req.destroy(new Error(`watch ${path}: no data for ${idleTimeoutMs} ms; restarting it`)),
    );
    req.on('error', (err) => finish(err));
    req.on('response', (res) => {
      res.on('error', (err) => finish(err));
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          finish(new HttpStatusError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))),
        );
        return;
      }
      res.socket?.setKeepAlive(true, 30_000);
      if (done) return;
      h.onOpen();
      const lines = new LineSplitter();
      res.on('data', (chunk: Buffer) => {
        for (const line of lines.push(chunk)) {
          if (done) return;
          h.onLine(line);
        }
      });
      res.on('close', () => {
        if (done) return;
        if (!res.complete) return finish(new Error(`watch ${path}: connection closed mid-stream`));
        for (const line of lines.end()) {
          if (done) return;
          h.onLine(line);
        }
        finish(undefined);
      });
    });
    req.end();
    return {
      abort: () => {
        if (done) return;
        done = true;
        req.destroy();
      },
    };
  }

  /** Closes idle connections; requests and watches in flight finish normally. */
  closeIdle(): void {
    for (const agent of [this.requestAgent, this.watchAgent])
      for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
  }

  private send(
    method: string,
    path: string,
    opts: RequestOptions,
  ): Promise<{ status: number; body: string }> {
    this.counters.requests++;
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    return new Promise((resolve, reject) => {
      let req: http.ClientRequest;
      try {
        req = this.open(
          method,
          path,
          opts.query ?? {},
          this.requestAgent,
          body ? { type: opts.contentType ?? 'application/json', length: body.length } : undefined,
        );
      } catch (err) {
        reject(err as Error);
        return;
      }
      req.setTimeout(this.requestTimeoutMs, () =>
        req.destroy(new Error(`${method} ${path}: no answer within ${this.requestTimeoutMs} ms`)),
      );
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      });
      req.end(body);
    });
  }

  private open(
    method: string,
    path: string,
    query: Record<string, string | undefined>,
    agent: http.Agent,
    body: { type: string; length: number } | undefined,
  ): http.ClientRequest {
    const url = new URL(this.config.server.origin + this.basePath + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json', 'user-agent': this.userAgent };
    const auth = this.config.authorization();
    if (auth) headers.authorization = auth;
    if (body) {
      headers['content-type'] = body.type;
      headers['content-length'] = body.length;
    }
    const options: https.RequestOptions = { method, agent, headers };
    return this.secure ? https.request(url, options) : http.request(url, options);
  }
}
