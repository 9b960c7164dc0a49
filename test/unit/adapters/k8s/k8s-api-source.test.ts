/**
 * K8sApiSource against a scripted HTTP API server on 127.0.0.1: the parts a healthy real
 * API server cannot show (failed lists, broken watch streams) and the exact requests sent.
 * The full contract runs against a real kube-apiserver in test/integration/k8s-api-source.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { SystemClock } from '../../../../src/adapters/clock.js';
import { ApiError, K8sApiSource } from '../../../../src/adapters/k8s/api-source.js';
import { connectionPool } from '../../../../src/adapters/k8s/connections.js';
import { ConflictError, type WatchEvent } from '../../../../src/core/ports.js';

const base = '/apis/heartline.dev/v1alpha1/namespaces/ns/resources';
const obj = (name: string, rv: string, status?: unknown) => ({
  apiVersion: 'heartline.dev/v1alpha1',
  kind: 'Resource',
  metadata: { name, namespace: 'ns', resourceVersion: rv, uid: `u-${name}` },
  spec: { kind: 'exec' },
  ...(status ? { status } : {}),
});

interface Req {
  method: string;
  url: string;
  contentType: string | undefined;
  body: string;
}

async function server(handle: (req: Req, res: http.ServerResponse) => void) {
  const requests: Req[] = [];
  const srv = http.createServer((q, s) => {
    let body = '';
    q.on('data', (c: Buffer) => (body += c.toString()));
    q.on('end', () => {
      const r = { method: q.method ?? '', url: q.url ?? '', contentType: q.headers['content-type'], body };
      requests.push(r);
      handle(r, s);
    });
  });
  let connections = 0;
  srv.on('connection', () => connections++);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'c', server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, skipTLSVerify: true },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const close = () =>
    new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    });
  return { kc, requests, close, connections: () => connections };
}

const logger = pino({ level: 'silent' });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('K8sApiSource against a scripted API server', () => {
  it('restarts a watch whose list failed or whose stream broke, with backoff, and resumes', async () => {
    let lists = 0;
    let watches = 0;
    const s = await server((req, res) => {
      if (!req.url.startsWith(base)) return void res.writeHead(404).end();
      if (!req.url.includes('watch=true')) {
        lists++;
        if (lists === 1)
          return void res
            .writeHead(500, { 'content-type': 'application/json' })
            .end('{"message":"etcd unavailable"}');
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(
          JSON.stringify({
            apiVersion: 'heartline.dev/v1alpha1',
            kind: 'ResourceList',
            metadata: { resourceVersion: '10' },
            items: [obj('a', '10')],
          }),
        );
      }
      watches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      if (watches === 1) {
        res.write(JSON.stringify({ type: 'ADDED', object: obj('b', '11') }) + '\n');
        setTimeout(() => res.destroy(), 30); // broken stream
      } else {
        res.write(JSON.stringify({ type: 'MODIFIED', object: obj('b', '12') }) + '\n');
      }
    });
    const api = new K8sApiSource(
      { kubeConfig: s.kc, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0, backoffInitialMs: 20 },
    );
    const seen: string[] = [];
    const w = api.watch(
      'Resource',
      (e: WatchEvent) => seen.push(e.type === 'synced' ? 'synced' : `${e.type}:${e.object.metadata.name}`),
      { namespace: 'ns' },
    );
    try {
      for (let i = 0; i < 200 && !seen.includes('updated:b'); i++) await wait(10);
      expect(seen).toEqual(['added:a', 'synced', 'added:b', 'synced', 'updated:b']); // synced again after the restart
      expect(lists).toBe(2);
      expect(watches).toBe(2);
      const watchUrls = s.requests
        .filter((r) => r.url.includes('watch=true'))
        .map((r) => new URL(r.url, 'http://x').searchParams.get('resourceVersion'));
      expect(watchUrls).toEqual(['10', '11']); // resumed from the last version seen, no relist
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });

  it('patchStatus sends one JSON Patch (with a resourceVersion test) only when status differs', async () => {
    let current = obj('a', '5', { nodes: [{ name: 'n1', state: 'running' }] });
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET' && req.url.startsWith(`${base}/a`))
        return void res.end(JSON.stringify(current));
      if (req.method === 'PATCH' && req.url.startsWith(`${base}/a/status`)) {
        current = {
          ...current,
          metadata: { ...current.metadata, resourceVersion: '6' },
          status: { nodes: [{ name: 'n1', state: 'stopped' }] },
        };
        return void res.end(JSON.stringify(current));
      }
      res.writeHead(404).end('{}');
    });
    const api = new K8sApiSource(
      { kubeConfig: s.kc, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    try {
      const same = await api.patchStatus(
        'Resource',
        { namespace: 'ns', name: 'a' },
        { nodes: [{ name: 'n1', state: 'running' }] },
      );
      expect(same.changed).toBe(false);
      expect(s.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
      const changed = await api.patchStatus(
        'Resource',
        { namespace: 'ns', name: 'a' },
        { nodes: [{ name: 'n1', state: 'stopped' }] },
      );
      expect(changed.changed).toBe(true);
      const patches = s.requests.filter((r) => r.method === 'PATCH');
      expect(patches).toHaveLength(1);
      expect(patches[0]!.contentType).toBe('application/json-patch+json');
      expect(JSON.parse(patches[0]!.body)).toEqual([
        { op: 'test', path: '/metadata/resourceVersion', value: '5' },
        { op: 'replace', path: '/status/nodes/0/state', value: 'stopped' },
      ]);
    } finally {
      await api.close();
      await s.close();
    }
  });
});

describe('K8sApiSource patch failures', () => {
  // What kube-apiserver 1.34 answers to a JSON Patch whose `test` op fails (checked by hand).
  const failedTest =
    '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server rejected our request due to an error in our request","reason":"Invalid","details":{},"code":422}';
  const invalid =
    '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Resource.heartline.dev \\"a\\" is invalid: status.nodes[0].state: Unsupported value: \\"bogus\\"","reason":"Invalid","code":422}';

  async function run(patchBody: string, rvAfterPatch: string) {
    let gets = 0;
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET')
        return void res.end(JSON.stringify(obj('a', gets++ === 0 ? '5' : rvAfterPatch)));
      res.writeHead(422).end(patchBody);
    });
    const api = new K8sApiSource(
      { kubeConfig: s.kc, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    try {
      return await api
        .patchStatus('Resource', { namespace: 'ns', name: 'a' }, { nodes: [{ name: 'n1', state: 'bogus' }] })
        .catch((e: unknown) => e);
    } finally {
      await api.close();
      await s.close();
    }
  }

  it('maps a failed resourceVersion test (bare 422, object changed) to ConflictError', async () => {
    expect(await run(failedTest, '6')).toBeInstanceOf(ConflictError);
  });

  it('keeps a schema rejection (422, object unchanged) an ApiError with the server message', async () => {
    const err = await run(invalid, '5');
    expect(err).toBeInstanceOf(ApiError);
    expect(String(err)).toContain(
      'patch status of Resource ns/a: HTTP 422: Resource.heartline.dev "a" is invalid: status.nodes[0].state',
    );
  });
});

describe('K8sApiSource connections and cached writes', () => {
  /** A server holding one Resource `a`, answering list, watch (held open), get, and patches. */
  async function resourceServer(opts: { failFirstPatch?: boolean } = {}) {
    let current = obj('a', '5', { nodes: [{ name: 'n1', state: 'running' }] }) as ReturnType<typeof obj> & {
      metadata: { finalizers?: string[] };
    };
    let rv = 5;
    let failPatch = opts.failFirstPatch ?? false;
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url.includes('watch=true')) return void res.writeHead(200).flushHeaders(); // no events, held open
      if (req.method === 'GET' && req.url.startsWith(`${base}/a`))
        return void res.end(JSON.stringify(current));
      if (req.method === 'GET' && req.url.startsWith(base))
        return void res.end(
          JSON.stringify({
            kind: 'ResourceList',
            metadata: { resourceVersion: String(rv) },
            items: [current],
          }),
        );
      if (req.method === 'PATCH') {
        const ops = JSON.parse(req.body) as { op: string; path: string; value?: unknown }[];
        const test = ops.find((o) => o.op === 'test' && o.path === '/metadata/resourceVersion');
        if (failPatch || (test && test.value !== current.metadata.resourceVersion)) {
          failPatch = false;
          current = { ...current, metadata: { ...current.metadata, resourceVersion: String(++rv) } };
          return void res
            .writeHead(422)
            .end(
              '{"kind":"Status","message":"the server rejected our request due to an error in our request","code":422}',
            );
        }
        const patched = structuredClone(current) as unknown as Record<string, unknown>;
        for (const op of ops) {
          if (op.op === 'test') continue;
          if (op.path === '/metadata/finalizers')
            (patched.metadata as Record<string, unknown>).finalizers = op.value;
          else if (op.path.startsWith('/status'))
            patched.status = { nodes: [{ name: 'n1', state: op.value }] };
        }
        (patched.metadata as Record<string, unknown>).resourceVersion = String(++rv);
        current = patched as unknown as typeof current;
        return void res.end(JSON.stringify(current));
      }
      res.writeHead(404).end('{}');
    });
    const api = new K8sApiSource(
      { kubeConfig: s.kc, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    return { s, api, current: () => current };
  }
  const key = { namespace: 'ns', name: 'a' };
  const calls = (s: { requests: Req[] }) =>
    s.requests.filter((r) => !r.url.includes('watch=true')).map((r) => `${r.method} ${r.url.split('?')[0]}`);

  it('reuses one keep-alive connection for sequential requests instead of one per request', async () => {
    const { s, api } = await resourceServer();
    try {
      for (let i = 0; i < 20; i++) await api.get('Resource', key);
      expect(s.requests).toHaveLength(20);
      expect(s.connections()).toBe(1);
      const stats = connectionPool(s.kc).stats();
      expect(stats.requests).toBe(20);
      expect(stats.requestConnections).toBe(1);
    } finally {
      await api.close();
      await s.close();
    }
  });

  it('gives watches their own connections, outside the request pool', async () => {
    const { s, api } = await resourceServer();
    const w = api.watch('Resource', () => {}, { namespace: 'ns' });
    try {
      for (let i = 0; i < 200 && !s.requests.some((r) => r.url.includes('watch=true')); i++) await wait(5);
      for (let i = 0; i < 5; i++) await api.get('Resource', key);
      const stats = connectionPool(s.kc).stats();
      expect(stats.watches).toBe(1);
      expect(stats.watchConnections).toBe(1);
      expect(stats.requestConnections).toBe(1); // the list and the gets share one connection
      expect(s.connections()).toBe(2);
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });

  it('patches status and finalizers from the watched copy and its own last write, without a GET', async () => {
    const { s, api } = await resourceServer();
    let synced = false;
    const w = api.watch('Resource', (e) => void (synced ||= e.type === 'synced'), { namespace: 'ns' });
    try {
      for (let i = 0; i < 200 && !synced; i++) await wait(5);
      expect(synced).toBe(true);
      expect(await api.addFinalizer('Resource', key, 'heartline.dev/x')).toBe(true);
      // The watch (which sends no events here) still has version 5: the write's answer is newer.
      const r = await api.patchStatus('Resource', key, { nodes: [{ name: 'n1', state: 'stopped' }] });
      expect(r.changed).toBe(true);
      expect(await api.addFinalizer('Resource', key, 'heartline.dev/x')).toBe(false);
      expect(calls(s)).toEqual([`GET ${base}`, `PATCH ${base}/a`, `PATCH ${base}/a/status`]);
      const patches = s.requests
        .filter((q) => q.method === 'PATCH')
        .map((q) => JSON.parse(q.body) as unknown[]);
      expect(patches[0]![0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '5' });
      expect(patches[1]![0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '6' });
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });

  it('retries once from a fresh read when the cached copy was stale', async () => {
    const { s, api, current } = await resourceServer({ failFirstPatch: true });
    let synced = false;
    const w = api.watch('Resource', (e) => void (synced ||= e.type === 'synced'), { namespace: 'ns' });
    try {
      for (let i = 0; i < 200 && !synced; i++) await wait(5);
      const r = await api.patchStatus('Resource', key, { nodes: [{ name: 'n1', state: 'stopped' }] });
      expect(r.changed).toBe(true);
      expect(current().status).toEqual({ nodes: [{ name: 'n1', state: 'stopped' }] });
      expect(calls(s)).toEqual([
        `GET ${base}`,
        `PATCH ${base}/a/status`, // from the watched copy (version 5): rejected, the object moved on
        `GET ${base}/a`, // one fresh read (version 6)
        `PATCH ${base}/a/status`,
      ]);
      const last = JSON.parse(s.requests.filter((q) => q.method === 'PATCH').at(-1)!.body) as unknown[];
      expect(last[0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '6' });
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });
});
