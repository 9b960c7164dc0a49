/**
 * Connection reuse and cached writes of the k8s adapter against the real kube-apiserver (TLS
 * with client certificates). Connections are counted independently of the adapter: the
 * clients talk to the API server through a TCP relay on 127.0.0.1 that counts the connections
 * it accepts (each one a TCP connect plus a TLS handshake end to end).
 */
import { jest } from '@jest/globals';
import https from 'node:https';
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { connectionPool } from '../../src/adapters/k8s/connections.js';
import { K8sLeaseLock } from '../../src/adapters/k8s/lease-lock.js';
import type { ApiObject } from '../../src/core/ports.js';
import { createTestNamespace, deleteNamespace, kubeconfig, mustKubectl, until } from './helpers.js';

jest.setTimeout(60_000);

const log = pino({ level: 'silent' });
const clock = new SystemClock();

/** A TCP relay to `target` on 127.0.0.1 that counts accepted connections. */
async function relay(target: URL) {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(Number(target.port || 443), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    count: () => accepted,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** The test kubeconfig, pointed at the relay (same CA, client certificate and key). */
function viaRelay(kc: KubeConfig, port: number): KubeConfig {
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${port}` })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return out;
}

describe('k8s adapter connections (real kube-apiserver)', () => {
  let ns: string;
  let counter: Awaited<ReturnType<typeof relay>>;
  let kc: KubeConfig;
  let api: K8sApiSource;

  beforeAll(async () => {
    const direct = loadKubeConfig(kubeconfig());
    counter = await relay(new URL(direct.getCurrentCluster()!.server));
    kc = viaRelay(direct, counter.port);
    api = new K8sApiSource({ kubeConfig: kc, clock, logger: log }, { identity: 'conn-test', resyncMs: 0 });
    ns = await createTestNamespace('hl-k8s-conn');
    await mustKubectl(['create', 'secret', 'generic', 's1', '-n', ns, '--from-literal=k=v']);
  });

  afterAll(async () => {
    await api?.close();
    await counter?.close();
    if (ns) await deleteNamespace(ns);
  });

  it('the counter sees every TLS connection (one per request without keep-alive)', async () => {
    const before = counter.count();
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${counter.port}/version`, { ...opts, agent: false }, (res) => {
            res.resume();
            res.on('end', resolve);
          })
          .on('error', reject);
      });
    }
    expect(counter.count() - before).toBe(3);
  });

  it('sequential requests share one keep-alive connection', async () => {
    await api.get('Secret', { namespace: ns, name: 's1' }); // warm: the pool's connection exists
    const before = counter.count();
    const stats0 = connectionPool(kc).stats();
    for (let i = 0; i < 30; i++) expect(await api.get('Secret', { namespace: ns, name: 's1' })).toBeDefined();
    const stats1 = connectionPool(kc).stats();
    expect(stats1.requests - stats0.requests).toBe(30);
    expect(stats1.requestConnections - stats0.requestConnections).toBe(0);
    expect(counter.count() - before).toBe(0);
  });

  it('concurrent requests open at most the pool size, and later requests reuse them', async () => {
    const before = counter.count();
    await Promise.all(Array.from({ length: 40 }, () => api.get('Secret', { namespace: ns, name: 's1' })));
    const opened = counter.count() - before;
    expect(opened).toBeLessThanOrEqual(16);
    for (let i = 0; i < 20; i++) await api.get('Secret', { namespace: ns, name: 's1' });
    expect(counter.count() - before).toBe(opened);
  });

  it('the Lease lock on the same kubeconfig shares the connections', async () => {
    const lock = new K8sLeaseLock(
      { kubeConfig: kc, clock },
      { namespace: ns, name: 'conn-lease', identity: 'conn-test', leaseDurationSeconds: 15 },
    );
    await api.get('Secret', { namespace: ns, name: 's1' });
    const before = counter.count();
    for (let i = 0; i < 10; i++) expect(await lock.tryAcquireOrRenew()).toBe(true);
    await lock.release();
    expect(counter.count() - before).toBe(0);
  });

  it('a watch holds its own connection; requests meanwhile do not open more', async () => {
    const seen: string[] = [];
    const before = counter.count();
    const w = api.watch('Secret', (e) => seen.push(e.type), { namespace: ns });
    try {
      await until('watch synced', () => Promise.resolve(seen.includes('synced')));
      await mustKubectl(['create', 'secret', 'generic', 's2', '-n', ns, '--from-literal=k=v']);
      await until('watch event', () => Promise.resolve(seen.includes('added') && seen.length >= 3));
      for (let i = 0; i < 10; i++) await api.get('Secret', { namespace: ns, name: 's2' });
      // The watch's connection; the list and the gets reuse the warm request connection.
      expect(counter.count() - before).toBe(1);
    } finally {
      w.stop();
    }
  });

  it('writes to a watched object cost one request each: no read before the patch', async () => {
    const name = 'cached-writes';
    await mustKubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'Resource',
        metadata: { name, namespace: ns },
        spec: {
          kind: 'exec',
          exec: { start: ['/etc/heartline/resource.d/web'], stop: ['/etc/heartline/resource.d/web'] },
        },
      }),
    );
    const key = { namespace: ns, name };
    const objects = new Map<string, ApiObject>();
    let synced = false;
    const w = api.watch(
      'Resource',
      (e) => {
        if (e.type === 'synced') synced = true;
        else objects.set(e.object.metadata.name, e.object);
      },
      { namespace: ns },
    );
    try {
      await until('Resource in the watch', () => Promise.resolve(synced && objects.has(name)));
      const before = connectionPool(kc).stats().requests;
      expect(await api.addFinalizer('Resource', key, 'heartline.dev/test')).toBe(true);
      const status = { nodes: [{ name: 'node-a', state: 'running' }] };
      const r = await api.patchStatus('Resource', key, status);
      expect(r.changed).toBe(true);
      expect(connectionPool(kc).stats().requests - before).toBe(2);

      // Someone else writes; whether or not the watch has delivered that yet, the next write lands.
      await mustKubectl([
        'patch',
        'resources.heartline.dev',
        name,
        '-n',
        ns,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { nodes: [{ name: 'node-b', state: 'failed' }] } }),
      ]);
      const next = { nodes: [{ name: 'node-a', state: 'stopped' }] };
      expect((await api.patchStatus('Resource', key, next)).changed).toBe(true);
      expect((await api.get('Resource', key))!.status).toEqual(next);
      expect(await api.removeFinalizer('Resource', key, 'heartline.dev/test')).toBe(true);
      expect((await api.get('Resource', key))!.metadata.finalizers ?? []).toEqual([]);
    } finally {
      w.stop();
    }
  });
});
