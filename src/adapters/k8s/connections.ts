/**
 * Keep-alive connections to the API server, shared by every client built on one KubeConfig.
 *
 * @kubernetes/client-node 1.x builds a new https.Agent for every request
 * (`KubeConfig.applySecurityAuthentication` -> `createAgent`), so every request paid a TCP
 * connection and a TLS handshake (key parsing, SecureContext, certificate checks): about 60 %
 * of the controller's CPU in the scale benchmark. Here client-node still computes the agent
 * options exactly as it would (CA, client certificate and key, servername, skip-verify, proxy
 * choice); the agent it built is then swapped for a long-lived keep-alive agent created with
 * the same options, one per distinct set of options, so a rotated certificate or CA gets a new
 * agent on the next request while unchanged options reuse open connections. Proxy agents are
 * left as client-node made them.
 *
 * Requests and watches use separate agents: a watch holds its connection for minutes, so it
 * must never wait for (or occupy) a slot of the bounded request pool; the watch agent has no
 * socket limit and only lets a restarted watch reuse the connection of the one that ended.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { countingAgent } from './counting-agent.js';
import {
  createConfiguration,
  ServerConfiguration,
  type ApiConstructor,
  type ApiType,
  type KubeConfig,
  type RequestContext,
  type SecurityAuthentication,
} from '@kubernetes/client-node';

/** What a pool has done so far (for tests and diagnostics). */
export interface ConnectionStats {
  /** API requests (not watches) that went through the pool. */
  requests: number;
  /** Connections opened for requests (each one a TCP connect and a TLS handshake). */
  requestConnections: number;
  /** Watches started through the pool. */
  watches: number;
  /** Connections opened for watches. */
  watchConnections: number;
  /** Requests whose agent is not pooled (a proxy agent), so they connect as client-node does. */
  unpooled: number;
}

export interface ConnectionPoolInit {
  /** Most connections open at once for requests; more requests wait for a free one. Default 16. */
  maxRequestSockets?: number;
  /**
   * An idle request connection is closed after this long. Below kube-apiserver's own idle
   * timeout (90 s), so the client never reuses a connection the server is closing. Default 30 000.
   */
  idleTimeoutMs?: number;
}

type Role = 'request' | 'watch';

/** A stable digest of agent options (Buffers by content), to tell whether they changed. */
function fingerprint(options: object): string {
  const h = createHash('sha256');
  for (const k of Object.keys(options).sort()) {
    const v = (options as Record<string, unknown>)[k];
    if (v === undefined || typeof v === 'function') continue;
    h.update(`${k}\0`);
    h.update(Buffer.isBuffer(v) ? v : (JSON.stringify(v) ?? String(v)));
    h.update('\0');
  }
  return h.digest('hex');
}

/** The keep-alive agents of one KubeConfig; see the module comment. */
export class ConnectionPool {
  private readonly agents = new Map<Role, { fingerprint: string; agent: http.Agent }>();
  private readonly counters: ConnectionStats = {
    requests: 0,
    requestConnections: 0,
    watches: 0,
    watchConnections: 0,
    unpooled: 0,
  };
  private readonly maxRequestSockets: number;
  private readonly idleTimeoutMs: number;

  constructor(init: ConnectionPoolInit = {}) {
    this.maxRequestSockets = init.maxRequestSockets ?? 16;
    this.idleTimeoutMs = init.idleTimeoutMs ?? 30_000;
  }

  stats(): ConnectionStats {
    return { ...this.counters };
  }

  /** The pooled agent to use instead of `fresh`, the one client-node built for a request. */
  forRequest(fresh: http.Agent | https.Agent): http.Agent {
    this.counters.requests++;
    return this.pooled('request', fresh);
  }

  /** The pooled agent to use instead of `fresh`, the one client-node built for a watch. */
  forWatch(fresh: http.Agent | https.Agent): http.Agent {
    this.counters.watches++;
    return this.pooled('watch', fresh);
  }

  /** Closes idle connections (in-flight requests and watches finish normally). */
  closeIdle(): void {
    for (const { agent } of this.agents.values()) closeFree(agent);
  }

  private pooled(role: Role, fresh: http.Agent | https.Agent): http.Agent {
    // Exactly client-node's plain agents; proxy agents (other classes) keep their own behaviour.
    const secure = fresh.constructor === https.Agent;
    if (!secure && fresh.constructor !== http.Agent) {
      if (role === 'request') this.counters.unpooled++;
      return fresh;
    }
    const base = (fresh as https.Agent).options as https.AgentOptions;
    const print = `${secure ? 'https' : 'http'}:${fingerprint(base)}`;
    const cur = this.agents.get(role);
    if (cur?.fingerprint === print) return cur.agent;
    // Options changed (or first use): a new agent; the old one's connections finish and idle out.
    const options: https.AgentOptions = {
      ...base,
      keepAlive: true,
      scheduling: 'lifo',
      ...(role === 'request' ? { maxSockets: this.maxRequestSockets, timeout: this.idleTimeoutMs } : {}),
    };
    const count =
      role === 'request'
        ? () => void this.counters.requestConnections++
        : () => void this.counters.watchConnections++;
    const agent = countingAgent(secure, options, count);
    if (cur) closeFree(cur.agent);
    this.agents.set(role, { fingerprint: print, agent });
    return agent;
  }
}

function closeFree(agent: http.Agent): void {
  for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
}

const pools = new WeakMap<KubeConfig, ConnectionPool>();

/** The pool shared by every client made with `kc` through this module. */
export function connectionPool(kc: KubeConfig): ConnectionPool {
  let pool = pools.get(kc);
  if (!pool) {
    pool = new ConnectionPool();
    pools.set(kc, pool);
  }
  return pool;
}

/**
 * client-node's authentication for `kc` (headers, tokens, TLS material: unchanged), with the
 * per-request agent replaced by the pool's keep-alive agent.
 */
class PooledAuthentication implements SecurityAuthentication {
  constructor(private readonly kc: KubeConfig) {}

  getName(): string {
    return 'heartline-pooled-kubeconfig';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.kc.applySecurityAuthentication(context);
    const fresh = context.getAgent();
    if (fresh) context.setAgent(connectionPool(this.kc).forRequest(fresh));
  }
}

/** Like `kc.makeApiClient(type)`, but requests reuse the KubeConfig's keep-alive connections. */
export function makeApiClient<T extends ApiType>(kc: KubeConfig, type: ApiConstructor<T>): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new Error(
      `kubeconfig: context "${kc.getCurrentContext()}" names no cluster; set current-context to a context with a cluster`,
    );
  }
  return new type(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: new PooledAuthentication(kc) },
    }),
  );
}

/**
 * A view of `kc` for client-node's `Watch` (which reads the agent from `applyToFetchOptions`)
 * whose watches use the pool's watch agent; everything else is `kc` itself.
 */
export function watchKubeConfig(kc: KubeConfig): KubeConfig {
  const view = Object.create(kc) as KubeConfig;
  view.applyToFetchOptions = async (opts) => {
    const init = await kc.applyToFetchOptions(opts);
    const fresh = init.agent;
    if (fresh instanceof http.Agent) init.agent = connectionPool(kc).forWatch(fresh);
    return init;
  };
  return view;
}
