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
  return { kc, requests, close };
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
