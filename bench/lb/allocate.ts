/**
 * LoadBalancer allocation at scale (issue 14): the real controller (in this process, real
 * K8sApiSource counted by InstrumentedApiSource) against a real kube-apiserver + etcd on
 * 127.0.0.1 (nothing in any network changes). N Services of type LoadBalancer are created in
 * one `kubectl apply`; measured: time until every one has an address in its status, the
 * controller's API requests by verb and kind meanwhile, that every address is distinct, and
 * the requests in a steady window afterwards (expected: none).
 *
 *   npx tsx bench/lb/allocate.ts [--services 1000] [--steady-s 10] [--out bench/results/lb-allocate.json]
 *
 * No agents run (the HACluster's auth Secret is missing on purpose): the VirtualIPs are
 * created and stay unassigned, which is what allocation costs, without the holding.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { K8sLeaseLock } from '../../src/adapters/k8s/lease-lock.js';
import { UdpTransport } from '../../src/adapters/udp/udp-transport.js';
import { Controller } from '../../src/controller/controller.js';
import { InstrumentedApiSource } from '../../src/controller/instrumented-api.js';
import { ControllerMetrics } from '../../src/controller/metrics.js';
import { startControlPlane } from '../../hack/controlplane/index.js';
import { applyCrds, runKubectl } from '../../hack/controlplane/kubectl.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NS = 'hl-lb-bench';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const services = Number(arg('services', '1000'));
const steadyS = Number(arg('steady-s', '10'));
const out = arg('out', path.join(ROOT, 'bench/results/lb-allocate.json'));
const log = pino({ level: process.env.HEARTLINE_BENCH_LOG ?? 'warn' });
const clock = new SystemClock();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    process.stderr.write('bench/lb/allocate: gave up after 15 minutes\n');
    process.exit(2);
  }, 15 * 60_000);
  deadline.unref();
  const cp = await startControlPlane({ log, serviceClusterIpRange: '10.96.0.0/20' });
  let controller: Controller | undefined;
  let transport: UdpTransport | undefined;
  try {
    const kc = cp.kubeconfigPath;
    const must = async (args: string[], input?: string) => {
      const r = await runKubectl(kc, args, { ...(input !== undefined ? { input } : {}), timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`kubectl ${args.slice(0, 3).join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await applyCrds(kc, path.join(ROOT, 'crds'));
    await must(['create', 'namespace', NS]);
    // Four /24s with prefix 24: .0 and .255 of each are refused, 1016 addresses.
    await must(
      ['apply', '-f', '-'],
      [
        {
          apiVersion: 'heartline.dev/v1alpha1',
          kind: 'HACluster',
          metadata: { name: 'web', namespace: NS },
          spec: { nodeSelector: { none: 'none' }, authSecretRef: { name: 'missing', activeKeyId: '1' } },
        },
        {
          apiVersion: 'heartline.dev/v1alpha1',
          kind: 'AddressPool',
          metadata: { name: 'bench', namespace: NS },
          spec: { clusterRef: { name: 'web' }, addresses: ['198.18.16.0/22'] },
        },
      ]
        .map((d) => JSON.stringify(d))
        .join('\n'),
    );
    const kubeConfig = loadKubeConfig(kc);
    transport = await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log });
    const api = new InstrumentedApiSource(
      new K8sApiSource({ kubeConfig, clock, logger: log }, { identity: 'bench' }),
    );
    controller = new Controller(
      {
        api,
        lease: new K8sLeaseLock(
          { kubeConfig, clock },
          { namespace: NS, name: 'heartline-controller', identity: 'bench', leaseDurationSeconds: 15 },
        ),
        clock,
        log,
        metrics: new ControllerMetrics(),
        transport,
        objects: api.writer()!,
      },
      { namespace: NS, witness: { address: '127.0.0.1', port: transport.address().port } },
    );
    controller.start();
    while (!controller.isLeader || !controller.ready().ready) await sleep(50);
    await sleep(2000);
    const before = api.snapshot();

    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: Array.from({ length: services }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `svc-${i}`, namespace: NS },
        spec: {
          type: 'LoadBalancer',
          loadBalancerClass: 'heartline.dev/vip',
          selector: { app: `app-${i}` },
          ports: [{ port: 80, protocol: 'TCP' }],
        },
      })),
    };
    const t0 = performance.now();
    await must(['create', '-f', '-'], JSON.stringify(list));
    const createdMs = performance.now() - t0;
    const reader = new K8sApiSource({ kubeConfig, clock, logger: log }, { identity: 'bench-reader' });
    let ips: string[] = [];
    for (;;) {
      const svcs = await reader.list('Service', { namespace: NS });
      ips = svcs.flatMap(
        (s) =>
          (
            s.status as { loadBalancer?: { ingress?: Array<{ ip: string }> } } | undefined
          )?.loadBalancer?.ingress?.map((x) => x.ip) ?? [],
      );
      if (ips.length >= services) break;
      await sleep(250);
    }
    const allocatedMs = performance.now() - t0;
    const during = diff(api.snapshot(), before);
    const vips = (await reader.list('VirtualIP', { namespace: NS })).length;
    // The VirtualIP reconciler still adds finalizers and writes status: wait until 3 s pass
    // without a request (at most 120 s), then measure the steady window.
    let last = JSON.stringify(api.snapshot());
    let quiet = 0;
    const settleStart = performance.now();
    while (quiet < 3 && performance.now() - settleStart < 120_000) {
      await sleep(1000);
      const now = JSON.stringify(api.snapshot());
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
    const settledMs = performance.now() - t0 - 3000;
    // Events are sent off the reconcile path, rate limited: let the backlog of the burst go
    // out before the steady window (they are the allocation's, not steady-state cost).
    await controller.flushEvents();
    const eventsFlushedMs = performance.now() - t0;
    const toSettle = diff(api.snapshot(), before);
    const s0 = api.snapshot();
    await sleep(steadyS * 1000);
    const steady = diff(api.snapshot(), s0);
    await reader.close();

    const result = {
      at: new Date().toISOString(),
      services,
      createMs: Math.round(createdMs),
      allocatedMs: Math.round(allocatedMs),
      distinctAddresses: new Set(ips).size,
      virtualIPs: vips,
      requestsDuringAllocation: during,
      requestsDuringAllocationTotal: Object.values(during).reduce((a, b) => a + b, 0),
      settledMs: Math.round(settledMs),
      eventsFlushedMs: Math.round(eventsFlushedMs),
      requestsUntilSettled: toSettle,
      requestsUntilSettledTotal: Object.values(toSettle).reduce((a, b) => a + b, 0),
      steadyWindowS: steadyS,
      requestsInSteadyWindow: steady,
    };
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (result.distinctAddresses !== services) throw new Error('two Services got one address');
  } finally {
    await controller?.stop();
    await transport?.close();
    await cp.stop();
  }
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) if (v - (b[k] ?? 0) > 0) d[k] = v - (b[k] ?? 0);
  return d;
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
