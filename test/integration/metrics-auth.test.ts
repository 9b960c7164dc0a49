/**
 * /metrics behind TokenReview + SubjectAccessReview on the real kube-apiserver, for both
 * review adapters (the agent's REST client and the controller's client-node): over HTTPS with
 * the self-signed certificate made at start, no token → 401, a token of a ServiceAccount
 * without the metrics-reader binding → 403, with it → 200 and the metrics; the reviewing
 * process needs the rules of deploy/base/metrics-rbac.yaml (without them: 500); and the
 * plain-HTTP opt-out serves without any of this.
 *
 * The RBAC rules are read from deploy/base/metrics-rbac.yaml and applied under names of this
 * test's own (deploy.test.ts owns the heartline-* objects).
 */
import { jest } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { k8sAccessReviewApi } from '../../src/adapters/k8s/access-review.js';
import { loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { loadRestConfig } from '../../src/adapters/k8s/kubeconfig.js';
import { restAccessReviewApi } from '../../src/adapters/k8s/rest-access-review.js';
import { RestClient } from '../../src/adapters/k8s/rest-client.js';
import { OpsServer } from '../../src/ops/http.js';
import type { AccessReviewApi } from '../../src/ops/metrics-auth.js';
import { metricsServing } from '../../src/ops/metrics-serving.js';
import {
  createTestNamespace,
  deleteNamespace,
  insecureGet,
  kubeconfig,
  kubectl,
  mustKubectl,
} from './helpers.js';

jest.setTimeout(60_000);

const log = pino({ level: 'silent' });

interface Rbac {
  kind: string;
  metadata: { name: string };
  rules?: unknown[];
}

describe('/metrics authentication and authorization on the real API server', () => {
  let ns: string;
  let tmp: string;
  let authRole: string;
  let readerRole: string;
  const tokens: Record<string, string> = {};
  const kubeconfigs: Record<string, string> = {};
  const servers: OpsServer[] = [];
  const registry = new Registry();
  new Counter({ name: 'heartline_metrics_auth_test_total', help: 'test', registers: [registry] }).inc(3);

  /** A kubeconfig for the run's API server that authenticates with a token of `sa`. */
  async function saKubeconfig(sa: string): Promise<string> {
    const admin = parse(await readFile(kubeconfig(), 'utf8')) as {
      clusters: { name: string; cluster: Record<string, string> }[];
    };
    const file = path.join(tmp, `${sa}.kubeconfig`);
    await writeFile(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'test', cluster: admin.clusters[0]!.cluster }],
        users: [{ name: sa, user: { token: tokens[sa] } }],
        contexts: [{ name: sa, context: { cluster: 'test', user: sa } }],
        'current-context': sa,
      }),
      { mode: 0o600 },
    );
    return file;
  }

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hl-metrics-auth-'));
    ns = await createTestNamespace('hl-metrics-auth');
    authRole = `${ns}-metrics-auth`;
    readerRole = `${ns}-metrics-reader`;
    const shipped = parseAllDocuments(await readFile('deploy/base/metrics-rbac.yaml', 'utf8')).map(
      (d) => d.toJS() as Rbac,
    );
    const rules = (name: string) =>
      shipped.find((o) => o.kind === 'ClusterRole' && o.metadata.name === name)!.rules;
    const binding = (role: string, sa: string) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${ns}-${sa}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    });
    const sas = ['reviewer', 'unprivileged-reviewer', 'scraper', 'nosy'];
    const objects = [
      ...sas.map((name) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } })),
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: authRole },
        rules: rules('heartline-metrics-auth'),
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: readerRole },
        rules: rules('heartline-metrics-reader'),
      },
      binding(authRole, 'reviewer'),
      binding(readerRole, 'scraper'),
    ];
    await mustKubectl(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
    for (const sa of sas) {
      tokens[sa] = (await mustKubectl(['create', 'token', sa, '-n', ns, '--duration=10m'])).trim();
      kubeconfigs[sa] = await saKubeconfig(sa);
    }
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (ns) {
      await kubectl([
        'delete',
        'clusterrolebinding',
        `${ns}-reviewer`,
        `${ns}-scraper`,
        '--ignore-not-found',
        '--wait=false',
      ]);
      await kubectl(['delete', 'clusterrole', authRole, readerRole, '--ignore-not-found', '--wait=false']);
      await deleteNamespace(ns);
    }
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** The ops server as the CLI builds it from its flags, reviewing on `reviewer`'s token through `adapter`. */
  async function serve(adapter: 'rest' | 'client-node', reviewer: string, insecure = false) {
    const api = async (): Promise<AccessReviewApi> =>
      adapter === 'rest'
        ? restAccessReviewApi(new RestClient(await loadRestConfig({ path: kubeconfigs[reviewer]! })))
        : k8sAccessReviewApi(loadKubeConfig(kubeconfigs[reviewer]));
    const reviews = await api();
    const serving = await metricsServing(
      { metricsListen: '127.0.0.1:0', ...(insecure ? { metricsInsecureServingNoAuth: true } : {}) },
      () => reviews,
      log,
    );
    const ops = new OpsServer({
      listen: '127.0.0.1:0',
      registry,
      serving,
      healthy: () => true,
      ready: () => ({ ready: true, reason: 'member running' }),
      log,
    });
    servers.push(ops);
    const a = await ops.start();
    return {
      url: `${ops.scheme}://127.0.0.1:${a.port}`,
      ca: serving.kind === 'secure' ? serving.tls.cert : undefined,
    };
  }

  describe.each(['rest', 'client-node'] as const)('reviews through the %s adapter', (adapter) => {
    it('HTTPS with the self-signed certificate: 401 without a valid token, 403 without the reader binding, 200 with it', async () => {
      const { url, ca } = await serve(adapter, 'reviewer');
      expect(url).toMatch(/^https:/);
      // The certificate made at start verifies when pinned, for the address served.
      const none = await insecureGet(`${url}/metrics`, { ca: ca! });
      expect(none.status).toBe(401);
      expect(none.body).not.toContain('heartline_');
      expect((await insecureGet(`${url}/metrics`, { token: 'not-a-token' })).status).toBe(401);
      // A real ServiceAccount token with its signature altered.
      expect(
        (await insecureGet(`${url}/metrics`, { token: `${tokens.scraper!.slice(0, -4)}AAAA` })).status,
      ).toBe(401);
      const nosy = await insecureGet(`${url}/metrics`, { token: tokens.nosy!, ca: ca! });
      expect(nosy.status).toBe(403);
      expect(nosy.body).toContain(`system:serviceaccount:${ns}:nosy`);
      expect(nosy.body).not.toContain('heartline_');
      const ok = await insecureGet(`${url}/metrics`, { token: tokens.scraper!, ca: ca! });
      expect(ok.status).toBe(200);
      expect(ok.body).toContain('heartline_metrics_auth_test_total 3');
      // The probes need no token and say nothing but ok / a generic reason.
      expect(await insecureGet(`${url}/healthz`, { ca: ca! })).toEqual({ status: 200, body: 'ok\n' });
      expect(await insecureGet(`${url}/readyz`, { ca: ca! })).toEqual({
        status: 200,
        body: 'member running\n',
      });
    });

    it('500 when the serving process itself may not create reviews (the RBAC in metrics-rbac.yaml is needed)', async () => {
      const { url } = await serve(adapter, 'unprivileged-reviewer');
      const r = await insecureGet(`${url}/metrics`, { token: tokens.scraper! });
      expect(r.status).toBe(500);
      expect(r.body).not.toContain('heartline_');
    });
  });

  it('--metrics-insecure-serving-no-auth serves plain HTTP to anyone', async () => {
    const { url } = await serve('rest', 'unprivileged-reviewer', true);
    expect(url).toMatch(/^http:/);
    const r = await insecureGet(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.body).toContain('heartline_metrics_auth_test_total 3');
  });
});
