/**
 * The Helm chart (deploy/helm/heartline) against the kustomize manifests it mirrors, with the
 * helm binary built from Go modules (hack/build-helm.sh, cached by version):
 * - `helm lint --strict` passes with the default values and with every option turned on;
 * - `helm template` with default values equals `kubectl kustomize deploy/base`, object by
 *   object, and with `hostServices.enabled=true` equals `kubectl kustomize
 *   deploy/overlays/host-services`, so the chart and the base never drift. The one
 *   normalisation: Helm's own labels (app.kubernetes.io/managed-by, app.kubernetes.io/instance,
 *   helm.sh/chart) are removed from metadata.labels, since the base has no release to name;
 *   both carry app.kubernetes.io/part-of: heartline. The chart's crds/ are the base's CRDs
 *   (`helm template --include-crds`). The Namespace is rendered only with namespace.create
 *   (Helm needs the release namespace before the install), checked equal to the base's then.
 * - the values reach the objects that need them (namespace, cluster name, image digest,
 *   metrics auth off, ServiceMonitor), and the renders pass `kubectl apply --dry-run=server`
 *   on the real API server (schema, admission).
 */
import { jest } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { createTestNamespace, deleteNamespace, kubectl } from './helpers.js';

const execFileAsync = promisify(execFile);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = path.join(REPO, 'deploy/helm/heartline');

jest.setTimeout(120_000);

/** The cached helm, built now if needed; undefined (with the reason) when it cannot be built. */
function buildHelm(): { helm?: string; why?: string } {
  try {
    const out = execFileSync('bash', [path.join(REPO, 'hack/build-helm.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 20 * 60_000,
    });
    const m = /^helm=(.+)$/m.exec(out);
    return m ? { helm: m[1]! } : { why: `hack/build-helm.sh printed no helm= line: ${out}` };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return {
      why: `hack/build-helm.sh failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' | ')}`,
    };
  }
}

const built = buildHelm();
if (!built.helm) console.warn(`helm chart tests skipped: helm cannot be built here (${built.why})`);
const describeHelm = built.helm ? describe : describe.skip;

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
};

const HELM_LABELS = ['app.kubernetes.io/managed-by', 'app.kubernetes.io/instance', 'helm.sh/chart'];

function parseObjects(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null && typeof o === 'object');
}

const keyOf = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/**
 * Objects by kind/namespace/name, Helm's own labels removed, and the labels of CRDs: a chart's
 * crds/ are installed as they are, never templated (Helm's rule), so they carry none, while
 * kustomize's `labels` adds part-of to the base's copy. The CRD files themselves are checked
 * equal to crds/ byte for byte (`npm run crds` writes all three copies).
 */
function normalise(objs: Obj[]): Map<string, Obj> {
  const m = new Map<string, Obj>();
  for (const o of objs) {
    const labels = { ...(o.metadata.labels ?? {}) };
    for (const l of HELM_LABELS) delete labels[l];
    if (o.kind === 'CustomResourceDefinition') delete labels['app.kubernetes.io/part-of'];
    const copy = { ...o, metadata: { ...o.metadata, labels } };
    if (Object.keys(labels).length === 0) delete (copy.metadata as { labels?: unknown }).labels;
    m.set(keyOf(o), copy);
  }
  return m;
}

async function helm(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(built.helm!, args, { maxBuffer: 64 << 20, timeout: 120_000 });
  return stdout;
}

async function template(values: string[] = [], namespace = 'heartline-system'): Promise<Obj[]> {
  const set = values.flatMap((v) => ['--set', v]);
  return parseObjects(
    await helm(['template', 'heartline', CHART, '-n', namespace, '--include-crds', ...set]),
  );
}

async function kustomize(dir: string): Promise<Obj[]> {
  const { stdout } = await execFileAsync('kubectl', ['kustomize', path.join(REPO, dir)], {
    maxBuffer: 64 << 20,
  });
  return parseObjects(stdout);
}

function expectSameObjects(chart: Obj[], base: Obj[]): void {
  const c = normalise(chart);
  const b = normalise(base);
  expect([...c.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [k, o] of b) {
    // One object at a time, so a failure names the object that drifted.
    expect({ [k]: c.get(k) }).toEqual({ [k]: o });
  }
}

const withoutNamespace = (objs: Obj[]) => objs.filter((o) => o.kind !== 'Namespace');

function find(objs: Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind} ${name} not rendered`);
  return o;
}

type Container = {
  image: string;
  command?: string[];
  args?: string[];
  readinessProbe: { httpGet: { scheme: string } };
  securityContext: { capabilities: { add?: string[] } };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
};
type PodSpec = { nodeSelector: Record<string, string>; containers: Container[]; volumes: unknown[] };
const podSpec = (o: Obj) => (o as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;

describeHelm('Helm chart deploy/helm/heartline', () => {
  it('helm lint --strict passes with the default values and with every option on', async () => {
    const out = await helm(['lint', '--strict', CHART]);
    expect(out).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
    const all = await helm([
      'lint',
      '--strict',
      CHART,
      '--set',
      'hostServices.enabled=true',
      '--set',
      'metrics.serviceMonitor.enabled=true',
      '--set',
      'metrics.auth=false',
      '--set',
      'image.digest=sha256:' + 'a'.repeat(64),
      '--set',
      'agent.priorityClassName=',
    ]);
    expect(all).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it("the chart's crds/ are the generated CRDs (crds/, npm run crds)", async () => {
    const names = (await readdir(path.join(REPO, 'crds'))).filter((f) => f.endsWith('.yaml')).sort();
    expect((await readdir(path.join(CHART, 'crds'))).sort()).toEqual(names);
    for (const f of names) {
      expect(await readFile(path.join(CHART, 'crds', f), 'utf8')).toBe(
        await readFile(path.join(REPO, 'crds', f), 'utf8'),
      );
    }
  });

  it('default values render exactly deploy/base (`kubectl kustomize`), object by object, but its Namespace', async () => {
    const [chart, base] = await Promise.all([template(), kustomize('deploy/base')]);
    expect(base.length).toBeGreaterThan(20);
    // The one object left out by default: Helm stores the release in the release namespace,
    // so it exists before the install (the user creates and labels it, docs/deploy.md); a
    // chart that rendered it would fail there ("namespaces ... not found") or collide with it.
    expectSameObjects(chart, withoutNamespace(base));
    // namespace.create=true renders exactly the base's Namespace (for a namespace.name other
    // than the release namespace).
    expectSameObjects(await template(['namespace.create=true']), base);
  });

  it('hostServices.enabled=true renders exactly deploy/overlays/host-services', async () => {
    const [chart, overlay] = await Promise.all([
      template(['hostServices.enabled=true']),
      kustomize('deploy/overlays/host-services'),
    ]);
    expectSameObjects(chart, withoutNamespace(overlay));
    const agent = podSpec(find(chart, 'DaemonSet', 'heartline-agent')).containers[0]!;
    expect(agent.command).toContain('--resource-root=/host');
    expect(agent.securityContext.capabilities.add).toContain('SYS_CHROOT');
    expect(agent.volumeMounts).toEqual(
      expect.arrayContaining([
        { name: 'host-root', mountPath: '/host', readOnly: true },
        { name: 'init-d', mountPath: '/etc/init.d', readOnly: true },
      ]),
    );
    // Only in host-services mode: the default agent has neither.
    const plain = podSpec(find(await template(), 'DaemonSet', 'heartline-agent')).containers[0]!;
    expect(plain.command).not.toContain('--resource-root=/host');
    expect(plain.securityContext.capabilities.add).not.toContain('SYS_CHROOT');
  });

  it('values reach every object: namespace, cluster, image digest, member label, metrics auth off, ServiceMonitor', async () => {
    const digest = 'sha256:' + 'b'.repeat(64);
    const objs = await template(
      [
        'cluster.name=web',
        'cluster.namespace=web-ha',
        'image.repository=registry.example/heartline',
        `image.digest=${digest}`,
        'metrics.auth=false',
        'metrics.serviceMonitor.enabled=true',
        'agent.priorityClassName=node-critical-custom',
        'namespace.create=true',
      ],
      'ha-system',
    );
    for (const o of objs) {
      if (o.metadata.namespace)
        expect([keyOf(o), o.metadata.namespace]).toEqual([
          keyOf(o),
          expect.stringMatching(/^(ha-system|web-ha)$/),
        ]);
    }
    expect(find(objs, 'Namespace', 'ha-system')).toBeDefined();
    expect(find(objs, 'Role', 'heartline-agent').metadata.namespace).toBe('web-ha');
    expect(JSON.stringify(find(objs, 'Role', 'heartline-agent'))).toContain('"resourceNames":["web"]');
    const ds = find(objs, 'DaemonSet', 'heartline-agent');
    const spec = podSpec(ds);
    expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', 'heartline.dev/cluster': 'web' });
    expect(spec.containers[0]!.image).toBe(`registry.example/heartline@${digest}`);
    expect(spec.containers[0]!.command).toContain('--metrics-insecure-serving-no-auth');
    expect(spec.containers[0]!.readinessProbe.httpGet.scheme).toBe('HTTP');
    expect((spec as unknown as { priorityClassName: string }).priorityClassName).toBe('node-critical-custom');
    const ctl = podSpec(find(objs, 'Deployment', 'heartline-controller')).containers[0]!;
    expect(ctl.args).toContain('--metrics-insecure-serving-no-auth');
    // Without auth there is nothing for the metrics RBAC to do.
    expect(objs.some((o) => o.metadata.name === 'heartline-metrics-auth')).toBe(false);
    expect(find(objs, 'ServiceMonitor', 'heartline-agent')).toBeDefined();
    expect(find(objs, 'Service', 'heartline-agent-metrics')).toBeDefined();
    // The admission policies name the agent's ServiceAccount in the release namespace.
    expect(JSON.stringify(find(objs, 'ValidatingAdmissionPolicy', 'heartline-agent-own-node'))).toContain(
      'system:serviceaccount:ha-system:heartline-agent',
    );
    expect(JSON.stringify(find(objs, 'ConfigMap', 'heartline-config'))).toContain('"namespace":"web-ha"');
  });

  it('the renders pass kubectl apply --dry-run=server on the real API server', async () => {
    const ns = await createTestNamespace('helm-chart');
    try {
      for (const values of [[], ['hostServices.enabled=true'], ['metrics.auth=false']]) {
        const objs = (await template(values, ns)).filter((o) => o.kind !== 'CustomResourceDefinition');
        const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], {
          input: objs.map((o) => JSON.stringify(o)).join('\n'),
          timeoutMs: 60_000,
        });
        expect({ values, code: r.code, stderr: r.stderr }).toEqual({ values, code: 0, stderr: '' });
      }
    } finally {
      await deleteNamespace(ns);
    }
  });
});
