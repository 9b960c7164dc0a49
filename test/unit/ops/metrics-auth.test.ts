/**
 * /metrics behind TokenReview + SubjectAccessReview, against a scripted API server that
 * answers the reviews (the real API server: test/integration/metrics-auth.test.ts). The
 * OpsServer, the authorizer and the agent's REST review adapter run for real.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry, Gauge } from 'prom-client';
import type { RestConfig } from '../../../src/adapters/k8s/kubeconfig.js';
import { restAccessReviewApi } from '../../../src/adapters/k8s/rest-access-review.js';
import { RestClient } from '../../../src/adapters/k8s/rest-client.js';
import { OpsServer, type MetricsServing } from '../../../src/ops/http.js';
import { MetricsAuthorizer, type MetricsAuthorizerInit } from '../../../src/ops/metrics-auth.js';
import { selfSignedCertificate } from '../../../src/ops/self-signed-cert.js';

const logger = pino({ level: 'silent' });
const cert = selfSignedCertificate({ commonName: 'heartline-metrics', hosts: ['127.0.0.1'] });

interface Review {
  kind: 'TokenReview' | 'SubjectAccessReview';
  spec: Record<string, unknown>;
}

/** Users by token; who may get /metrics. Answers like kube-apiserver; `hold` delays answers. */
function scriptedApi() {
  const users = new Map<
    string,
    { username: string; uid: string; groups: string[]; extra?: Record<string, string[]> }
  >();
  const readers = new Set<string>();
  const reviews: Review[] = [];
  let fail: number | undefined;
  let received = 0;
  let hold: Promise<void> | undefined;
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      void (async () => {
        received++;
        await hold;
        const r = JSON.parse(body) as Review & { apiVersion: string };
        reviews.push({ kind: r.kind, spec: r.spec });
        if (fail) {
          res.writeHead(fail, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ kind: 'Status', message: 'scripted failure' }));
          return;
        }
        let status: unknown;
        if (req.url === '/apis/authentication.k8s.io/v1/tokenreviews' && r.kind === 'TokenReview') {
          const u = users.get(r.spec.token as string);
          status = u
            ? { authenticated: true, user: u }
            : { authenticated: false, error: 'invalid bearer token' };
        } else if (
          req.url === '/apis/authorization.k8s.io/v1/subjectaccessreviews' &&
          r.kind === 'SubjectAccessReview'
        ) {
          const attrs = r.spec.nonResourceAttributes as { path: string; verb: string };
          const ok = readers.has(r.spec.user as string) && attrs.path === '/metrics' && attrs.verb === 'get';
          status = ok ? { allowed: true, reason: 'RBAC: allowed' } : { allowed: false };
        } else {
          res.writeHead(404);
          res.end();
          return;
        }
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ...r, status }));
      })();
    });
  });
  return {
    users,
    readers,
    reviews,
    received: () => received,
    failWith: (code: number | undefined) => void (fail = code),
    holdAnswers: () => {
      let release!: () => void;
      hold = new Promise((r) => (release = r));
      return () => {
        hold = undefined;
        release();
      };
    },
    async start(): Promise<RestConfig> {
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      return {
        server: new URL(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`),
        tls: { rejectUnauthorized: true },
        authorization: () => 'Bearer agent-own-token',
        invalidate: () => false,
        source: 'test',
      };
    },
    stop: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

interface Got {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers, ca: cert.cert, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('/metrics behind TokenReview + SubjectAccessReview', () => {
  const api = scriptedApi();
  let config: RestConfig;
  const servers: OpsServer[] = [];
  let clock = 0;

  const registry = new Registry();
  new Gauge({ name: 'heartline_test_gauge', help: 'test', registers: [registry] }).set(7);

  beforeAll(async () => {
    config = await api.start();
    api.users.set('reader-token', {
      username: 'system:serviceaccount:monitoring:prometheus',
      uid: 'u-1',
      groups: ['system:serviceaccounts', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/pod-name': ['prometheus-0'] },
    });
    api.users.set('other-token', { username: 'system:serviceaccount:default:nosy', uid: 'u-2', groups: [] });
    api.readers.add('system:serviceaccount:monitoring:prometheus');
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await api.stop();
  });
  beforeEach(() => void api.reviews.splice(0));

  async function serve(opts: { init?: MetricsAuthorizerInit; insecure?: boolean } = {}) {
    const authorizer = new MetricsAuthorizer(
      { api: restAccessReviewApi(new RestClient(config)), now: () => clock, log: logger },
      opts.init,
    );
    const serving: MetricsServing = opts.insecure
      ? { kind: 'insecure-no-auth' }
      : { kind: 'secure', tls: { cert: cert.cert, key: cert.key }, authorizer };
    const ops = new OpsServer({
      listen: '127.0.0.1:0',
      registry,
      serving,
      healthy: () => true,
      ready: () => ({ ready: false, reason: 'not running as a member yet' }),
      log: logger,
    });
    servers.push(ops);
    const a = await ops.start();
    return { url: `${ops.scheme}://127.0.0.1:${a.port}`, authorizer };
  }

  it('401 without a token, with a malformed header, or with a token the API server does not authenticate', async () => {
    const { url } = await serve();
    const none = await get(`${url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.body).not.toContain('heartline_');
    expect((await get(`${url}/metrics`, { authorization: 'Basic dXNlcjpwdw==' })).status).toBe(401);
    expect((await get(`${url}/metrics`, { authorization: 'Bearer ' })).status).toBe(401);
    expect((await get(`${url}/metrics`, bearer('x'.repeat(9000)))).status).toBe(401);
    expect(api.reviews).toEqual([]); // nothing to review
    const wrong = await get(`${url}/metrics`, bearer('made-up'));
    expect(wrong.status).toBe(401);
    expect(api.reviews).toEqual([{ kind: 'TokenReview', spec: { token: 'made-up' } }]);
  });

  it('403 for an authenticated user RBAC does not let get /metrics', async () => {
    const { url } = await serve();
    const r = await get(`${url}/metrics`, bearer('other-token'));
    expect(r.status).toBe(403);
    expect(r.body).toContain('system:serviceaccount:default:nosy');
    expect(r.body).not.toContain('heartline_');
    expect(api.reviews.map((x) => x.kind)).toEqual(['TokenReview', 'SubjectAccessReview']);
  });

  it('200 with the metrics for a reader; the access review carries the whole user and the non-resource URL', async () => {
    const { url } = await serve();
    const r = await get(`${url}/metrics`, bearer('reader-token'));
    expect(r.status).toBe(200);
    expect(r.body).toContain('heartline_test_gauge 7');
    expect(api.reviews[1]).toEqual({
      kind: 'SubjectAccessReview',
      spec: {
        user: 'system:serviceaccount:monitoring:prometheus',
        uid: 'u-1',
        groups: ['system:serviceaccounts', 'system:authenticated'],
        extra: { 'authentication.kubernetes.io/pod-name': ['prometheus-0'] },
        nonResourceAttributes: { path: '/metrics', verb: 'get' },
      },
    });
    // HEAD is a get too, with no body; other methods are refused before any review.
    expect((await get(`${url}/metrics`, bearer('reader-token'), 'HEAD')).status).toBe(200);
    const post = await get(`${url}/metrics`, bearer('reader-token'), 'POST');
    expect(post.status).toBe(405);
  });

  it('caches answers for ttlMs, by token digest, within maxEntries', async () => {
    const { url, authorizer } = await serve({ init: { ttlMs: 10_000, maxEntries: 2 } });
    clock = 0;
    expect((await get(`${url}/metrics`, bearer('reader-token'))).status).toBe(200);
    expect((await get(`${url}/metrics`, bearer('reader-token'))).status).toBe(200);
    expect((await get(`${url}/metrics`, bearer('made-up'))).status).toBe(401);
    expect((await get(`${url}/metrics`, bearer('made-up'))).status).toBe(401);
    expect(api.reviews.map((x) => x.kind)).toEqual(['TokenReview', 'SubjectAccessReview', 'TokenReview']);
    // Expired: asked again, so a revoked binding stops working within ttlMs.
    api.readers.delete('system:serviceaccount:monitoring:prometheus');
    clock = 10_000;
    try {
      expect((await get(`${url}/metrics`, bearer('reader-token'))).status).toBe(403);
    } finally {
      api.readers.add('system:serviceaccount:monitoring:prometheus');
    }
    // Bounded: a third token pushes the least recently used one out.
    api.reviews.splice(0);
    for (const t of ['t1', 't2', 't3']) await get(`${url}/metrics`, bearer(t));
    expect(authorizer.cacheSizes().tokens).toBe(2);
    await get(`${url}/metrics`, bearer('t1'));
    expect(api.reviews.map((x) => x.spec.token)).toEqual(['t1', 't2', 't3', 't1']);
  });

  it('asks once for concurrent requests with one token, and refuses with 429 past maxInFlight reviews', async () => {
    const { url } = await serve({ init: { maxInFlight: 1 } });
    const release = api.holdAnswers();
    const before = api.received();
    const same = [1, 2, 3].map(() => get(`${url}/metrics`, bearer('reader-token')));
    // Wait until the one review reached the API server, then try another token.
    for (let i = 0; i < 400 && api.received() === before; i++) await new Promise((r) => setTimeout(r, 5));
    const busy = await get(`${url}/metrics`, bearer('other-token'));
    expect(busy.status).toBe(429);
    expect(busy.headers['retry-after']).toBe('1');
    release();
    expect((await Promise.all(same)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(api.reviews.map((x) => x.kind)).toEqual(['TokenReview', 'SubjectAccessReview']);
  });

  it('500 when the API server cannot answer the review (e.g. its own RBAC is missing); not cached', async () => {
    const { url } = await serve();
    api.failWith(403);
    try {
      const r = await get(`${url}/metrics`, bearer('reader-token'));
      expect(r.status).toBe(500);
      expect(r.body).toContain('authentication failed');
    } finally {
      api.failWith(undefined);
    }
    expect((await get(`${url}/metrics`, bearer('reader-token'))).status).toBe(200);
  });

  it('serves the probes to anyone, over the same HTTPS port, with nothing but ok or a generic reason', async () => {
    const { url } = await serve();
    expect(url.startsWith('https://')).toBe(true);
    expect(await get(`${url}/healthz`)).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(`${url}/readyz`)).toMatchObject({ status: 503, body: 'not running as a member yet\n' });
    expect((await get(`${url}/other`)).status).toBe(404);
    expect(api.reviews).toEqual([]);
    // Plain HTTP on the HTTPS port gets nothing.
    await expect(get(url.replace('https:', 'http:') + '/metrics')).rejects.toThrow();
  });

  it('--metrics-insecure-serving-no-auth: plain HTTP, no review', async () => {
    const { url } = await serve({ insecure: true });
    expect(url.startsWith('http://')).toBe(true);
    const r = await get(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.body).toContain('heartline_test_gauge 7');
    expect(api.reviews).toEqual([]);
  });
});
