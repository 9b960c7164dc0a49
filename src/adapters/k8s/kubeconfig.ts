/**
 * Where the API server is and how to authenticate to it, read without @kubernetes/client-node
 * (whose import alone costs the agent about 70 MB of RSS; see docs/adr/0007-agent-rest-client.md).
 *
 * Supported: in-cluster service accounts (the projected token is re-read periodically, as it
 * rotates) and kubeconfig files with the current context's cluster (server,
 * certificate-authority[-data], insecure-skip-tls-verify, tls-server-name) and user
 * (client-certificate[-data] + client-key[-data], token, tokenFile, username + password).
 * Credential plugins (exec, auth-provider), proxies and impersonation are refused with an error
 * that names the field and the way out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';

/** The TLS material for connections to the API server (used for https servers only). */
export interface RestTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** false with insecure-skip-tls-verify. */
  rejectUnauthorized: boolean;
  /** SNI and the name the certificate is checked against (tls-server-name), when not the host. */
  servername?: string;
}

/** A resolved connection to one API server. */
export interface RestConfig {
  /** The API server's base URL (a path prefix, if any, is kept). */
  server: URL;
  tls: RestTls;
  /** The Authorization header for the next request, or undefined (client certificates). */
  authorization(): string | undefined;
  /**
   * After a 401: forget a cached file token so the next `authorization()` re-reads it. True
   * when the credentials may now differ (a retry is worth it).
   */
  invalidate(): boolean;
  /** The context's or service account's namespace, when set. */
  namespace?: string;
  /** Where this came from, for messages (a file and context, or "in-cluster"). */
  source: string;
}

/**
 * A bearer token read from a file and re-read once it is older than `reloadMs` (client-go
 * re-reads projected service-account tokens every minute). A read failure keeps the last token
 * and retries on the next call; without any token yet it throws, naming the file.
 */
export class TokenFile {
  private token: string | undefined;
  private readAt = -Infinity;

  constructor(
    readonly path: string,
    private readonly reloadMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get(): string {
    const t = this.now();
    if (this.token === undefined || t - this.readAt >= this.reloadMs) {
      try {
        const token = readFileSync(this.path, 'utf8').trim();
        if (!token) throw new Error('the file is empty');
        this.token = token;
        this.readAt = t;
      } catch (err) {
        if (this.token === undefined) {
          throw new Error(
            `token file ${this.path}: cannot read a token (${(err as Error).message}); mount the service account token or fix tokenFile in the kubeconfig`,
            { cause: err },
          );
        }
      }
    }
    return this.token!;
  }

  /** The next `get` re-reads the file. */
  forget(): void {
    this.readAt = -Infinity;
  }
}

export interface LoadRestConfigOptions {
  /** An explicit kubeconfig file (--kubeconfig); otherwise $KUBECONFIG, ~/.kube/config, in-cluster. */
  path?: string;
  /** Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Default os.homedir(). */
  home?: string;
  /** Default /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir?: string;
  /** How long a file token is used before it is re-read. Default 60 000 ms. */
  tokenReloadMs?: number;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The kubeconfig asks for something this client does not do by design (a credential plugin, an
 * auth provider, a proxy, impersonation; docs/adr/0007). The controller then falls back to
 * @kubernetes/client-node (docs/adr/0038); the agent stops with the message.
 */
export class UnsupportedKubeconfigError extends Error {
  override readonly name = 'UnsupportedKubeconfigError';
}

/**
 * The API server connection, looked up like kubectl (and client-node's `loadFromDefault`): the
 * given file, else the files in $KUBECONFIG (merged: the first file that names an entry wins),
 * else ~/.kube/config, else the in-cluster service account. Throws naming the file, the field
 * and the fix.
 */
export async function loadRestConfig(opts: LoadRestConfigOptions = {}): Promise<RestConfig> {
  const env = opts.env ?? process.env;
  if (opts.path) return fromKubeconfigFiles([opts.path], opts);
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '');
  if (fromEnv.length > 0) {
    const existing = fromEnv.filter((p) => existsSync(p));
    if (existing.length === 0) {
      throw new Error(
        `KUBECONFIG=${env.KUBECONFIG}: no such file; point KUBECONFIG at a kubeconfig file or unset it to use ~/.kube/config or the in-cluster service account`,
      );
    }
    return fromKubeconfigFiles(existing, opts);
  }
  const home = join(opts.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromKubeconfigFiles([home], opts);
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return inCluster(opts);
  throw new Error(
    'no kubeconfig: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set)',
  );
}

/** The in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the mounted service account. */
export function inCluster(opts: LoadRestConfigOptions = {}): RestConfig {
  const env = opts.env ?? process.env;
  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new Error(
      'in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (they are in a pod); outside a cluster pass --kubeconfig',
    );
  }
  const server = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
  const caPath = join(dir, 'ca.crt');
  const token = new TokenFile(join(dir, 'token'), opts.tokenReloadMs);
  token.get(); // fail at start, naming the file, rather than on the first request
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return {
    server,
    tls: {
      ca: readFileNamed(caPath, 'in-cluster CA (ca.crt of the service account)'),
      rejectUnauthorized: true,
    },
    authorization: () => `Bearer ${token.get()}`,
    invalidate: () => {
      token.forget();
      return true;
    },
    ...(namespace ? { namespace } : {}),
    source: 'in-cluster service account',
  };
}

interface Named<T> {
  name: string;
  value: T;
  /** The kubeconfig file that defined it (relative paths are relative to its directory). */
  file: string;
}

type Fields = Record<string, unknown>;

interface Merged {
  currentContext?: { name: string; file: string };
  contexts: Map<string, Named<Fields>>;
  clusters: Map<string, Named<Fields>>;
  users: Map<string, Named<Fields>>;
}

/** Reads and merges kubeconfig files (first definition of a name wins, as kubectl merges). */
export async function fromKubeconfigFiles(
  files: string[],
  opts: LoadRestConfigOptions = {},
): Promise<RestConfig> {
  // yaml is loaded only when a kubeconfig file is read: an in-cluster agent never pays for it.
  const { parse } = await import('yaml');
  const merged: Merged = { contexts: new Map(), clusters: new Map(), users: new Map() };
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(
        `kubeconfig ${file}: cannot read (${(err as Error).message}); pass an existing file with --kubeconfig or KUBECONFIG`,
        { cause: err },
      );
    }
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (err) {
      throw new Error(`kubeconfig ${file}: not valid YAML (${(err as Error).message}); fix the file`, {
        cause: err,
      });
    }
    mergeKubeconfig(merged, doc ?? {}, file);
  }
  return resolveKubeconfig(merged, files.join(delimiter), opts);
}

function mergeKubeconfig(into: Merged, doc: unknown, file: string): void {
  if (!isFields(doc)) throw new Error(`kubeconfig ${file}: not a mapping; expected a Config object`);
  const cur = doc['current-context'];
  if (into.currentContext === undefined && typeof cur === 'string' && cur !== '')
    into.currentContext = { name: cur, file };
  const section = (list: string, field: string, map: Map<string, Named<Fields>>) => {
    const entries = doc[list];
    if (entries === undefined || entries === null) return;
    if (!Array.isArray(entries)) throw new Error(`kubeconfig ${file}: ${list} is not a list; fix the file`);
    for (const [i, entry] of entries.entries()) {
      if (!isFields(entry) || typeof entry.name !== 'string' || entry.name === '')
        throw new Error(`kubeconfig ${file}: ${list}[${i}].name is missing; give every entry a name`);
      const value = entry[field] ?? {};
      if (!isFields(value))
        throw new Error(`kubeconfig ${file}: ${list}[${i}].${field} is not a mapping; fix the entry`);
      if (!map.has(entry.name)) map.set(entry.name, { name: entry.name, value, file });
    }
  };
  section('contexts', 'context', into.contexts);
  section('clusters', 'cluster', into.clusters);
  section('users', 'user', into.users);
}

function resolveKubeconfig(m: Merged, where: string, opts: LoadRestConfigOptions): RestConfig {
  if (!m.currentContext) {
    throw new Error(
      `kubeconfig ${where}: current-context is not set; set it (kubectl config use-context NAME)`,
    );
  }
  const ctxName = m.currentContext.name;
  const ctx = m.contexts.get(ctxName);
  if (!ctx) {
    throw new Error(
      `kubeconfig ${where}: current-context "${ctxName}" names no entry in contexts; add it or use another context`,
    );
  }
  const clusterName = str(ctx.value.cluster);
  const cluster = clusterName ? m.clusters.get(clusterName) : undefined;
  if (!cluster) {
    throw new Error(
      `kubeconfig ${ctx.file}: context "${ctxName}" names cluster "${clusterName ?? ''}", which is not in clusters; fix contexts[${ctxName}].context.cluster`,
    );
  }
  const userName = str(ctx.value.user);
  const user = userName ? m.users.get(userName) : undefined;
  if (userName && !user) {
    throw new Error(
      `kubeconfig ${ctx.file}: context "${ctxName}" names user "${userName}", which is not in users; fix contexts[${ctxName}].context.user`,
    );
  }
  const c = cluster.value;
  const at = (what: string) => `kubeconfig ${cluster.file}: clusters[${cluster.name}].cluster.${what}`;
  const serverText = str(c.server);
  if (!serverText) throw new Error(`${at('server')} is missing; set the API server URL`);
  let server: URL;
  try {
    server = new URL(serverText);
  } catch {
    throw new Error(`${at('server')} "${serverText}" is not a URL; use e.g. https://10.0.0.1:6443`);
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:')
    throw new Error(`${at('server')} "${serverText}": only https:// and http:// servers are supported`);
  if (c['proxy-url'] !== undefined) {
    throw new UnsupportedKubeconfigError(
      `${at('proxy-url')} is set: heartline agent does not use proxies; remove proxy-url and reach the API server directly`,
    );
  }
  const tls: RestTls = { rejectUnauthorized: c['insecure-skip-tls-verify'] !== true };
  const ca = material(c, 'certificate-authority', cluster.file, at);
  if (ca) tls.ca = ca;
  const sni = str(c['tls-server-name']);
  if (sni) tls.servername = sni;

  let authorization: () => string | undefined = () => undefined;
  let invalidate = () => false;
  if (user) {
    const u = user.value;
    const uat = (what: string) => `kubeconfig ${user.file}: users[${user.name}].user.${what}`;
    for (const [field, fix] of [
      [
        'exec',
        'heartline agent does not run credential plugins; give the user a client certificate (client-certificate-data, client-key-data), a token or a tokenFile, or run the agent in-cluster with its service account',
      ],
      [
        'auth-provider',
        'auth providers are not supported; give the user a client certificate, a token or a tokenFile, or run the agent in-cluster with its service account',
      ],
      ['as', 'impersonation is not supported; use the identity directly'],
      ['as-groups', 'impersonation is not supported; use the identity directly'],
      ['as-uid', 'impersonation is not supported; use the identity directly'],
      ['as-user-extra', 'impersonation is not supported; use the identity directly'],
    ] as const) {
      if (u[field] !== undefined && u[field] !== null)
        throw new UnsupportedKubeconfigError(`${uat(field)} is set: ${fix}`);
    }
    const cert = material(u, 'client-certificate', user.file, uat);
    const key = material(u, 'client-key', user.file, uat);
    if (cert && !key) throw new Error(`${uat('client-key')} is missing; a client certificate needs its key`);
    if (key && !cert)
      throw new Error(`${uat('client-certificate')} is missing; a client key needs its certificate`);
    if (cert) tls.cert = cert;
    if (key) tls.key = key;
    const token = str(u.token);
    const tokenFile = str(u.tokenFile);
    const username = str(u.username);
    if (token) {
      authorization = () => `Bearer ${token}`;
    } else if (tokenFile) {
      const tf = new TokenFile(relativeTo(user.file, tokenFile), opts.tokenReloadMs);
      tf.get();
      authorization = () => `Bearer ${tf.get()}`;
      invalidate = () => {
        tf.forget();
        return true;
      };
    } else if (username) {
      const basic = `Basic ${Buffer.from(`${username}:${str(u.password) ?? ''}`).toString('base64')}`;
      authorization = () => basic;
    }
  }
  const namespace = str(ctx.value.namespace);
  return {
    server,
    tls,
    authorization,
    invalidate,
    ...(namespace ? { namespace } : {}),
    source: `kubeconfig ${where} (context ${ctxName})`,
  };
}

/** `<field>-data` (base64) or `<field>` (a file, relative to the kubeconfig's directory). */
function material(
  fields: Fields,
  field: string,
  file: string,
  at: (what: string) => string,
): Buffer | undefined {
  const data = str(fields[`${field}-data`]);
  if (data) {
    const buf = Buffer.from(data, 'base64');
    if (buf.length === 0) throw new Error(`${at(`${field}-data`)} is not base64 PEM; fix the value`);
    return buf;
  }
  const path = str(fields[field]);
  if (path) return readFileNamed(relativeTo(file, path), at(field));
  return undefined;
}

function readFileNamed(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${what}: cannot read ${path} (${(err as Error).message}); fix the path`, {
      cause: err,
    });
  }
}

function relativeTo(kubeconfigFile: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dirname(kubeconfigFile), path);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
