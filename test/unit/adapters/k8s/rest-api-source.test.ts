/**
 * RestApiSource and its REST client against a scripted HTTP server on 127.0.0.1: what a
 * healthy real API server cannot be made to show on demand (lines split across chunks, 410
 * Gone, ERROR events, broken streams) and the exact requests sent. The ApiSource contract runs
 * against a real kube-apiserver in test/integration/rest-api-source.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { SystemClock } from '../../../../src/adapters/clock.js';
import { ApiError } from '../../../../src/adapters/k8s/api-error.js';
import type { RestConfig } from '../../../../src/adapters/k8s/kubeconfig.js';
import { RestApiSource } from '../../../../src/adapters/k8s/rest-api-source.js';
import { LineSplitter } from '../../../../src/adapters/k8s/rest-client.js';
import { ConflictError, NotFoundError, type WatchEvent } from '../../../../src/core/ports.js';

const base = '/apis/heartline.dev/v1alpha1/namespaces/ns/resources';
const obj = (name: string, rv: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'heartline.dev/v1alpha1',
  kind: 'Resource',
  metadata: { name, namespace: 'ns', resourceVersion: rv, uid: `u-${name}`, labels },
  spec: { kind: 'exec' },
});
const list = (rv: string, items: unknown[]) =>
  JSON.stringify({
    apiVersion: 'heartline.dev/v1alpha1',
    kind: 'ResourceList',
    metadata: { resourceVersion: rv },
    items,
  });
const line = (type: string, object: unknown) => JSON.stringify({ type, object }) + '\n';

interface Req {
  method: string;
  url: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Resolves when the client closed the connection of this request. */
  closed: Promise<void>;
}

async function server(handle: (req: Req, res: http.ServerResponse) => void) {
  const requests: Req[] = [];
  const srv = http.createServer((q, s) => {
    let body = '';
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    q.on('data', (c: Buffer) => (body += c.toString()));
    q.on('end', () => {
      const url = q.url ?? '';
      const r = {
        method: q.method ?? '',
        url,
        query: new URL(url, 'http://x').searchParams,
        headers: q.headers,
        body,
        closed,
      };
      requests.push(r);
      handle(r, s);
    });
  });
  let connections = 0;
  srv.on('connection', () => connections++);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const config = (over: Partial<RestConfig> = {}): RestConfig => ({
    server: new URL(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`),
    tls: { rejectUnauthorized: true },
    authorization: () => undefined,
    invalidate: () => false,
    source: 'test',
    ...over,
  });
  const close = () =>
    new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    });
  return { config, requests, close, connections: () => connections };
}

const logger = pino({ level: 'silent' });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, fn: () => boolean, ms = 3000): Promise<void> {
  for (let t = 0; t < ms; t += 5) {
    if (fn()) return;
    await wait(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}
const describeEvent = (e: WatchEvent) =>
  e.type === 'synced' ? 'synced' : `${e.type}:${e.object.metadata.name}@${e.object.metadata.resourceVersion}`;
const watches = (s: { requests: Req[] }) => s.requests.filter((r) => r.query.get('watch') === 'true');
const lists = (s: { requests: Req[] }) =>
  s.requests.filter((r) => r.method === 'GET' && r.query.get('watch') !== 'true');

describe('LineSplitter', () => {
  it('yields the same lines wherever the stream is cut, multi-byte characters included', () => {
    const text = `${line('ADDED', { note: 'café ✓ 🚀' })}\n${line('MODIFIED', { x: 1 })}{"tail":true}`;
    const bytes = Buffer.from(text);
    const expected = [
      line('ADDED', { note: 'café ✓ 🚀' }).trim(),
      line('MODIFIED', { x: 1 }).trim(),
      '{"tail":true}',
    ];
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b += 7) {
        const s = new LineSplitter();
        const got = [
          ...s.push(bytes.subarray(0, a)),
          ...s.push(bytes.subarray(a, b)),
          ...s.push(bytes.subarray(b)),
          ...s.end(),
        ];
        expect(got).toEqual(expected);
      }
    }
  });
});

describe('RestApiSource watch', () => {
  it('assembles events split across chunks and sends the watch parameters', async () => {
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.query.get('watch') !== 'true') return void res.end(list('10', [obj('a', '10')]));
      res.writeHead(200);
      const bytes = Buffer.from(
        line('ADDED', obj('b', '11', { note: 'café-✓' })) + line('MODIFIED', obj('a', '12')),
      );
      // Cut inside the first event, inside the multi-byte character, and between events.
      const cuts = [5, bytes.indexOf('✓') + 1, bytes.indexOf('\n') + 1, bytes.length];
      let from = 0;
      const next = (i: number): void => {
        if (i >= cuts.length) return;
        res.write(bytes.subarray(from, cuts[i]));
        from = cuts[i]!;
        setTimeout(() => next(i + 1), 15);
      };
      next(0);
    });
    const api = new RestApiSource(
      { config: s.config(), clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    const seen: WatchEvent[] = [];
    const w = api.watch('Resource', (e) => seen.push(e), {
      namespace: 'ns',
      labelSelector: 'tier=web',
      fieldSelector: 'metadata.name!=z',
    });
    try {
      await until('both events', () => seen.length >= 4);
      expect(seen.map(describeEvent)).toEqual(['added:a@10', 'synced', 'added:b@11', 'updated:a@12']);
      expect((seen[2] as { object: { metadata: { labels: unknown } } }).object.metadata.labels).toEqual({
        note: 'café-✓',
      });
      const [l] = lists(s);
      expect(l!.query.get('labelSelector')).toBe('tier=web');
      expect(l!.query.get('fieldSelector')).toBe('metadata.name!=z');
      const [q] = watches(s);
      expect(q!.url.split('?')[0]).toBe(base);
      expect(Object.fromEntries(q!.query)).toEqual({
        watch: 'true',
        resourceVersion: '10',
        allowWatchBookmarks: 'true',
        timeoutSeconds: expect.stringMatching(/^\d+$/),
        labelSelector: 'tier=web',
        fieldSelector: 'metadata.name!=z',
      });
      const timeout = Number(q!.query.get('timeoutSeconds'));
      expect(timeout).toBeGreaterThanOrEqual(300);
      expect(timeout).toBeLessThan(600);
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });

  it('after a broken stream or an ERROR event, restarts with backoff from the last version (bookmarks count)', async () => {
    let n = 0;
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.query.get('watch') !== 'true') return void res.end(list('10', [obj('a', '10')]));
      res.writeHead(200);
      n++;
      if (n === 1) {
        res.write(
          line('ADDED', obj('b', '11')) +
            line('BOOKMARK', { kind: 'Resource', metadata: { resourceVersion: '15' } }),
        );
        setTimeout(() => res.destroy(), 30); // connection lost mid-stream
      } else if (n === 2) {
        res.write(line('ERROR', { kind: 'Status', status: 'Failure', message: 'etcd timeout', code: 500 }));
      } else {
        res.write(line('MODIFIED', obj('b', '16')));
      }
    });
    const api = new RestApiSource(
      { config: s.config(), clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0, backoffInitialMs: 40 },
    );
    const seen: string[] = [];
    const w = api.watch('Resource', (e) => seen.push(describeEvent(e)), { namespace: 'ns' });
    try {
      await until('updated b', () => seen.includes('updated:b@16'));
      expect(seen).toEqual(['added:a@10', 'synced', 'added:b@11', 'synced', 'synced', 'updated:b@16']);
      expect(lists(s)).toHaveLength(1); // resumed, never relisted
      expect(watches(s).map((q) => q.query.get('resourceVersion'))).toEqual(['10', '15', '15']);
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });

  it.each([
    ['an ERROR event with code 410', 'event'],
    ['a watch answered with HTTP 410', 'status'],
  ])('relists at once after %s, deleting what the new list lacks', async (_what, how) => {
    let listed = 0;
    let watched = 0;
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.query.get('watch') !== 'true') {
        listed++;
        return void res.end(
          listed === 1
            ? list('10', [obj('a', '10'), obj('b', '10')])
            : list('30', [obj('a', '25'), obj('c', '28')]),
        );
      }
      watched++;
      const gone = {
        kind: 'Status',
        status: 'Failure',
        reason: 'Expired',
        message: 'too old resource version: 10 (20)',
        code: 410,
      };
      if (watched === 1 && how === 'status') return void res.writeHead(410).end(JSON.stringify(gone));
      res.writeHead(200).flushHeaders();
      if (watched === 1) res.write(line('ERROR', gone)); // the server then keeps the stream open
    });
    const api = new RestApiSource(
      { config: s.config(), clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0, backoffInitialMs: 60_000 }, // a backoff would stall the test
    );
    const seen: string[] = [];
    const w = api.watch('Resource', (e) => seen.push(describeEvent(e)), { namespace: 'ns' });
    try {
      await until('second watch', () => watched >= 2 && seen.at(-1) === 'synced');
      const relisted = ['deleted:b@10', 'updated:a@25', 'added:c@28', 'synced'];
      // A stream that opened reported synced before it expired; a refused watch never did.
      expect(seen).toEqual(['added:a@10', 'added:b@10', ...(how === 'event' ? ['synced'] : []), ...relisted]);
      expect(watches(s).map((q) => q.query.get('resourceVersion'))).toEqual(['10', '30']);
      if (how === 'event') await watches(s)[0]!.closed; // the expired stream was closed by the client
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });

  it('stop() closes the stream and nothing is delivered afterwards', async () => {
    let stream: http.ServerResponse | undefined;
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.query.get('watch') !== 'true') return void res.end(list('10', []));
      res.writeHead(200).flushHeaders();
      stream = res;
    });
    const api = new RestApiSource(
      { config: s.config(), clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    const seen: string[] = [];
    const w = api.watch('Resource', (e) => seen.push(describeEvent(e)), { namespace: 'ns' });
    try {
      await until('synced', () => seen.includes('synced'));
      stream!.write(line('ADDED', obj('a', '11')));
      await until('added', () => seen.includes('added:a@11'));
      w.stop();
      await watches(s)[0]!.closed;
      if (!stream!.destroyed) stream!.write(line('ADDED', obj('b', '12')));
      await wait(50);
      expect(seen).toEqual(['synced', 'added:a@11']);
      expect(watches(s)).toHaveLength(1);
    } finally {
      await api.close();
      await s.close();
    }
  });

  it('re-delivers the cache on resync', async () => {
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.query.get('watch') !== 'true') return void res.end(list('10', [obj('a', '10')]));
      res.writeHead(200).flushHeaders();
    });
    const api = new RestApiSource(
      { config: s.config(), clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 30 },
    );
    const seen: string[] = [];
    const w = api.watch('Resource', (e) => seen.push(describeEvent(e)), { namespace: 'ns' });
    try {
      await until('two resyncs', () => seen.filter((e) => e === 'resync:a@10').length >= 2);
      expect(seen[0]).toBe('added:a@10');
      expect(seen).toContain('synced');
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });
});

describe('RestApiSource requests', () => {
  it('maps errors with the server message: 404, 403, 409, failed version test, transport', async () => {
    const status = (code: number, message: string) =>
      JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code });
    let patchCode = 409;
    let rv = 5;
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET' && req.url.startsWith(`${base}/missing`))
        return void res.writeHead(404).end(status(404, 'not found'));
      if (req.method === 'GET' && req.url.startsWith(`${base}/secret`))
        return void res
          .writeHead(403)
          .end(status(403, 'resources "secret" is forbidden: User "x" cannot get'));
      if (req.method === 'GET') return void res.end(JSON.stringify(obj('a', String(rv))));
      if (patchCode === 422) rv++; // someone else wrote first: the version test fails
      res
        .writeHead(patchCode)
        .end(status(patchCode, 'Operation cannot be fulfilled: the object has been modified'));
    });
    const config = s.config();
    const api = new RestApiSource(
      { config, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    try {
      expect(await api.get('Resource', { namespace: 'ns', name: 'missing' })).toBeUndefined();
      const forbidden = await api
        .get('Resource', { namespace: 'ns', name: 'secret' })
        .catch((e: unknown) => e);
      expect(forbidden).toBeInstanceOf(ApiError);
      expect(String(forbidden)).toBe(
        'ApiError: get Resource ns/secret: HTTP 403: resources "secret" is forbidden: User "x" cannot get',
      );
      const key = { namespace: 'ns', name: 'a' };
      await expect(
        api.patchStatus('Resource', key, { x: 1 }, { expectResourceVersion: '5' }),
      ).rejects.toBeInstanceOf(ConflictError);
      patchCode = 422;
      await expect(api.addFinalizer('Resource', key, 'f')).rejects.toBeInstanceOf(ConflictError);
      patchCode = 404;
      await expect(api.patchStatus('Resource', key, { x: 2 })).rejects.toBeInstanceOf(NotFoundError);
    } finally {
      await api.close();
      await s.close();
    }
    const down = new RestApiSource(
      { config, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    const err = await down.list('Node').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(String(err)).toMatch(/list Node: .*ECONNREFUSED/);
  });

  it('retries once with fresh credentials after a 401', async () => {
    let token = 'old';
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.headers.authorization !== 'Bearer new')
        return void res.writeHead(401).end('{"message":"Unauthorized"}');
      res.end(JSON.stringify(obj('a', '5')));
    });
    const config = s.config({
      authorization: () => `Bearer ${token}`,
      invalidate: () => {
        token = 'new';
        return true;
      },
    });
    const api = new RestApiSource(
      { config, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    try {
      expect((await api.get('Resource', { namespace: 'ns', name: 'a' }))?.metadata.name).toBe('a');
      expect(s.requests.map((r) => r.headers.authorization)).toEqual(['Bearer old', 'Bearer new']);
    } finally {
      await api.close();
      await s.close();
    }
  });

  it('creates events.k8s.io/v1 Events with MicroTime, reporter and the regarding object', async () => {
    const s = await server((req, res) =>
      res.writeHead(201, { 'content-type': 'application/json' }).end(req.body),
    );
    const api = new RestApiSource(
      { config: s.config(), clock: new SystemClock(), logger },
      { identity: 'node-a', reportingController: 'heartline.dev/agent', resyncMs: 0 },
    );
    try {
      await api.event({
        regarding: obj('a', '7'),
        type: 'Warning',
        reason: 'StartFailed',
        note: 'x'.repeat(2000),
        action: 'Start',
      });
      const [r] = s.requests;
      expect(r!.method).toBe('POST');
      expect(r!.url).toBe('/apis/events.k8s.io/v1/namespaces/ns/events');
      expect(r!.headers['content-type']).toBe('application/json');
      const body = JSON.parse(r!.body) as Record<string, unknown> & {
        metadata: { name: string };
        note: string;
      };
      expect(body).toMatchObject({
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { namespace: 'ns' },
        eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
        reportingController: 'heartline.dev/agent',
        reportingInstance: 'node-a',
        action: 'Start',
        reason: 'StartFailed',
        type: 'Warning',
        regarding: {
          apiVersion: 'heartline.dev/v1alpha1',
          kind: 'Resource',
          name: 'a',
          namespace: 'ns',
          uid: 'u-a',
          resourceVersion: '7',
        },
      });
      expect(body.metadata.name).toMatch(/^a\.[0-9a-f]{16}$/);
      expect(body.note).toHaveLength(1024);
    } finally {
      await api.close();
      await s.close();
    }
  });

  it('reuses one keep-alive connection for requests; a watch gets its own', async () => {
    const s = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.query.get('watch') === 'true') return void res.writeHead(200).flushHeaders();
      if (req.url.startsWith(`${base}/a`)) return void res.end(JSON.stringify(obj('a', '5')));
      res.end(list('5', [obj('a', '5')]));
    });
    const api = new RestApiSource(
      { config: s.config(), clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    let synced = false;
    const w = api.watch('Resource', (e) => void (synced ||= e.type === 'synced'), { namespace: 'ns' });
    try {
      await until('synced', () => synced);
      for (let i = 0; i < 20; i++) await api.get('Resource', { namespace: 'ns', name: 'a' });
      expect(api.stats()).toEqual({ requests: 21, requestConnections: 1, watches: 1, watchConnections: 1 });
      expect(s.connections()).toBe(2);
      // Writes start from the watched copy: no GET before the patch.
      const before = s.requests.length;
      await api.addFinalizer('Resource', { namespace: 'ns', name: 'a' }, 'f').catch(() => undefined);
      expect(s.requests.slice(before).map((r) => r.method)[0]).toBe('PATCH');
    } finally {
      w.stop();
      await api.close();
      await s.close();
    }
  });
});
