/**
 * RestApiSource (the agent's client-node-free ApiSource) on a real kube-apiserver: the same
 * ApiSource contract as K8sApiSource, with the run's admin kubeconfig (client certificates),
 * plus the credentials an agent has in a pod: a service-account token from the TokenRequest
 * API, read as in-cluster config and as a kubeconfig tokenFile, re-read when it rotates.
 */
import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse } from 'yaml';
import { SystemClock } from '../../src/adapters/clock.js';
import { ApiError } from '../../src/adapters/k8s/api-error.js';
import { ConflictError, type ApiObject } from '../../src/core/ports.js';
import { loadRestConfig } from '../../src/adapters/k8s/kubeconfig.js';
import { RestApiSource } from '../../src/adapters/k8s/rest-api-source.js';
import { apiSourceContract, resourceObject, type SeenEvent } from '../contract/api-source.js';
import { createTestNamespace, deleteNamespace, kubeconfig, mustKubectl } from './helpers.js';

jest.setTimeout(60_000);

const must = mustKubectl;
const logger = pino({ level: 'warn' });

apiSourceContract(
  'RestApiSource on a real kube-apiserver',
  async () => {
    const namespace = await createTestNamespace('hl-rest-api');
    const api = new RestApiSource(
      { config: await loadRestConfig({ path: kubeconfig() }), clock: new SystemClock(), logger },
      { identity: 'contract-test', resyncMs: 0 },
    );
    return {
      api,
      namespace,
      apply: async (_kind, obj) => {
        await must(['apply', '-f', '-'], JSON.stringify(obj));
      },
      remove: async (kind, key) => {
        const resource = kind === 'Secret' ? 'secret' : `${kind.toLowerCase()}s.heartline.dev`;
        await must(['delete', resource, key.name, '-n', key.namespace!, '--wait=false']);
      },
      readEvents: async (ns): Promise<SeenEvent[]> => {
        const out = JSON.parse(await must(['get', 'events.events.k8s.io', '-n', ns, '-o', 'json'])) as {
          items: {
            type: string;
            reason: string;
            note: string;
            action: string;
            regarding: { name: string; kind: string };
          }[];
        };
        return out.items.map((e) => ({
          type: e.type,
          reason: e.reason,
          note: e.note,
          action: e.action,
          regardingName: e.regarding.name,
          regardingKind: e.regarding.kind,
        }));
      },
      settle: () => new Promise((r) => setTimeout(r, 50)),
    };
  },
  (s) => deleteNamespace(s.namespace),
);

describe('RestApiSource with service-account tokens', () => {
  let namespace: string;
  let dir: string;
  let server: URL;
  let caPem: Buffer;

  /** A fresh token of service account `sa` (TokenRequest API). */
  const token = async (sa: string) => (await must(['create', 'token', sa, '-n', namespace])).trim();

  beforeAll(async () => {
    namespace = await createTestNamespace('hl-rest-token');
    dir = mkdtempSync(join(tmpdir(), 'hl-rest-token-'));
    for (const sa of ['reader', 'nobody']) await must(['create', 'serviceaccount', sa, '-n', namespace]);
    await must([
      'create',
      'role',
      'read-resources',
      '-n',
      namespace,
      '--verb=get,list,watch',
      '--resource=resources.heartline.dev',
    ]);
    await must([
      'create',
      'rolebinding',
      'reader',
      '-n',
      namespace,
      '--role=read-resources',
      `--serviceaccount=${namespace}:reader`,
    ]);
    await must(['apply', '-f', '-'], JSON.stringify(resourceObject(namespace, 'r1')));
    const admin = parse(readFileSync(kubeconfig(), 'utf8')) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
    };
    server = new URL(admin.clusters[0]!.cluster.server);
    caPem = Buffer.from(admin.clusters[0]!.cluster['certificate-authority-data'], 'base64');
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await deleteNamespace(namespace);
  });

  const key = () => ({ namespace, name: 'r1' });

  it('works in-cluster (service account files) and re-reads a rotated token', async () => {
    const sa = join(dir, 'sa');
    rmSync(sa, { recursive: true, force: true });
    mkdirSync(sa);
    writeFileSync(join(sa, 'ca.crt'), caPem);
    writeFileSync(join(sa, 'namespace'), namespace);
    writeFileSync(join(sa, 'token'), await token('reader'));
    const config = await loadRestConfig({
      env: {
        KUBERNETES_SERVICE_HOST: server.hostname.replace(/^\[|\]$/g, ''),
        KUBERNETES_SERVICE_PORT: server.port,
      },
      home: join(dir, 'no-home'),
      serviceAccountDir: sa,
      tokenReloadMs: 0, // re-read on every request
    });
    expect(config.namespace).toBe(namespace);
    const api = new RestApiSource(
      { config, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    try {
      expect((await api.get('Resource', key()))?.metadata.name).toBe('r1');
      // The kubelet rotates the projected token: the next request uses the new one, whose
      // account may not read Resources.
      writeFileSync(join(sa, 'token'), await token('nobody'));
      const err = await api.get('Resource', key()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(403);
      expect(String(err)).toContain(`system:serviceaccount:${namespace}:nobody`);
      writeFileSync(join(sa, 'token'), await token('reader'));
      expect((await api.get('Resource', key()))?.metadata.name).toBe('r1');
    } finally {
      await api.close();
    }
  });

  it('re-reads a kubeconfig tokenFile after a 401 (expired token replaced on disk)', async () => {
    const tokenPath = join(dir, 'token-file');
    writeFileSync(tokenPath, 'not-a-valid-token');
    const kc = join(dir, 'kubeconfig-token');
    writeFileSync(
      kc,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'c',
            cluster: { server: server.href, 'certificate-authority-data': caPem.toString('base64') },
          },
        ],
        users: [{ name: 'u', user: { tokenFile: 'token-file' } }], // relative to the kubeconfig
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace } }],
        'current-context': 'x',
      }),
    );
    const config = await loadRestConfig({ path: kc }); // default reload period: a minute
    const api = new RestApiSource(
      { config, clock: new SystemClock(), logger },
      { identity: 't', resyncMs: 0 },
    );
    try {
      const err = await api.get('Resource', key()).catch((e: unknown) => e);
      expect((err as ApiError).code).toBe(401);
      writeFileSync(tokenPath, await token('reader'));
      expect((await api.get('Resource', key()))?.metadata.name).toBe('r1');
    } finally {
      await api.close();
    }
  });
});

// The controller's ObjectWriter since docs/adr/0038 (LoadBalancer Services' VirtualIPs).
describe('RestApiSource as an ObjectWriter', () => {
  let namespace: string;
  let api: RestApiSource;
  beforeAll(async () => {
    namespace = await createTestNamespace('hl-rest-writer');
    api = new RestApiSource(
      { config: await loadRestConfig({ path: kubeconfig() }), clock: new SystemClock(), logger },
      { identity: 'writer-test', resyncMs: 0 },
    );
  });
  afterAll(async () => {
    await api.close();
    await deleteNamespace(namespace);
  });

  it('creates, patches and deletes Heartline objects, mapping 409 and 404', async () => {
    const obj: ApiObject = resourceObject(namespace, 'w1');
    const created = await api.create('Resource', obj);
    expect(created.metadata.uid).toBeTruthy();
    expect(created.metadata.managedFields).toBeUndefined();
    await expect(api.create('Resource', obj)).rejects.toBeInstanceOf(ConflictError);
    const key = { namespace, name: 'w1' };
    const patched = await api.patch('Resource', key, [
      { op: 'add', path: '/metadata/labels', value: { patched: 'yes' } },
    ]);
    expect(patched.metadata.labels).toEqual({ patched: 'yes' });
    await expect(api.delete('Resource', key, { uid: 'not-this-one' })).rejects.toBeInstanceOf(ConflictError);
    expect(await api.delete('Resource', key, { uid: created.metadata.uid! })).toBe(true);
    expect(await api.delete('Resource', key)).toBe(false);
    await expect(
      api.create('Service', { apiVersion: 'v1', kind: 'Service', metadata: { namespace, name: 's' } }),
    ).rejects.toThrow('only Heartline kinds are created');
  });
});
