import { randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, deleteNamespace, kubeconfig, kubectl } from './helpers.js';

jest.setTimeout(60_000);

describe('local control plane', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let ns: string;

  beforeAll(async () => {
    kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig());
    core = kc.makeApiClient(k8s.CoreV1Api);
    ns = await createTestNamespace('controlplane');
  });

  afterAll(async () => {
    if (ns) await deleteNamespace(ns);
  });

  it('reports kube-apiserver v1.34.x', async () => {
    const info = await kc.makeApiClient(k8s.VersionApi).getCode();
    expect(info.gitVersion).toMatch(/^v1\.34\.\d+$/);
    expect(info.major).toBe('1');
    expect(info.minor).toBe('34');
  });

  it('passes /readyz and serves /metrics', async () => {
    const ready = await kubectl(['get', '--raw', '/readyz']);
    expect(ready).toMatchObject({ code: 0, stdout: 'ok' });
    const metrics = await kubectl(['get', '--raw', '/metrics']);
    expect(metrics.code).toBe(0);
    expect(metrics.stdout).toMatch(/^apiserver_request_total\{/m);
  });

  it('round-trips a ConfigMap through @kubernetes/client-node', async () => {
    const name = 'roundtrip';
    const data = { answer: '42', text: 'héllo\nworld' };
    const created = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name, labels: { app: 'heartline-test' } }, data },
    });
    expect(created.metadata?.uid).toBeTruthy();

    const read = await core.readNamespacedConfigMap({ name, namespace: ns });
    expect(read.data).toEqual(data);
    expect(read.metadata?.labels).toEqual({ app: 'heartline-test' });
    expect(read.metadata?.uid).toBe(created.metadata?.uid);

    const updated = await core.replaceNamespacedConfigMap({
      name,
      namespace: ns,
      body: { ...read, data: { ...data, answer: '43' } },
    });
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion));

    const list = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app=heartline-test' });
    expect(list.items.map((c) => [c.metadata?.name, c.data?.answer])).toEqual([[name, '43']]);

    await core.deleteNamespacedConfigMap({ name, namespace: ns });
    await expect(core.readNamespacedConfigMap({ name, namespace: ns })).rejects.toMatchObject({ code: 404 });
  });

  it('enforces CEL validation rules on a CustomResourceDefinition', async () => {
    const plural = `widgets${randomBytes(3).toString('hex')}`;
    const group = 'test.heartline.dev';
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural, singular: plural.slice(0, -1), kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    properties: { min: { type: 'integer' }, max: { type: 'integer' } },
                    'x-kubernetes-validations': [
                      { rule: 'self.min <= self.max', message: 'min must not exceed max' },
                    ],
                  },
                },
              },
            },
          },
        ],
      },
    };
    const applied = await kubectl(['apply', '--server-side', '-f', '-'], { input: JSON.stringify(crd) });
    expect(applied.code).toBe(0);
    try {
      const est = await kubectl([
        'wait',
        '--for',
        'condition=established',
        '--timeout=30s',
        `crd/${plural}.${group}`,
      ]);
      expect(est.code).toBe(0);
      const widget = (name: string, min: number, max: number) =>
        JSON.stringify({
          apiVersion: `${group}/v1`,
          kind: 'Widget',
          metadata: { name, namespace: ns },
          spec: { min, max },
        });

      const good = await kubectl(['create', '-f', '-'], { input: widget('good', 1, 2) });
      expect(good.code).toBe(0);
      const bad = await kubectl(['create', '-f', '-'], { input: widget('bad', 3, 2) });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('min must not exceed max');
    } finally {
      await kubectl(['delete', 'crd', `${plural}.${group}`, '--wait=false']);
    }
  });

  it('gives each test its own namespace and deletes it', async () => {
    const extra = await createTestNamespace('Per Test_NS');
    expect(extra).toMatch(/^per-test-ns-[0-9a-f]{6}$/);
    const got = await core.readNamespace({ name: extra });
    expect(got.metadata?.labels?.['heartline.dev/test']).toBe('true');
    await core.createNamespacedConfigMap({ namespace: extra, body: { metadata: { name: 'leftover' } } });

    await deleteNamespace(extra);
    await expect(core.readNamespace({ name: extra })).rejects.toMatchObject({ code: 404 });
    // The suite's own namespace is untouched.
    expect((await core.readNamespace({ name: ns })).status?.phase).toBe('Active');
  });
});
