/**
 * Service creation to first good client reply (issue 14), in the lab: 3 node namespaces with
 * the real controller and agents (hack/lab, lab id `benchlb`; addresses from 198.18.0.0/15
 * inside namespaces this run creates, all removed at the end). N Services of type
 * LoadBalancer (externalTrafficPolicy Cluster) are created one after another; for each, the
 * time from `kubectl apply` to the EXTERNAL-IP in its status, and to the first HTTP reply
 * the client namespace gets from the lab's HTTP service through that address (curl, every
 * ~20 ms). There is no kube-proxy in the lab: the reply comes from the holder itself.
 *
 *   sudo npx tsx bench/lb/reachable.ts [--services 50] [--out bench/results/lb-reachable.json]
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAB_NAMESPACE, startLabCluster, type LabCluster } from '../../hack/lab/cluster.js';
import { nsRun, sleep } from '../../hack/lab/sh.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const services = Number(arg('services', '50'));
const out = arg('out', path.join(ROOT, 'bench/results/lb-reachable.json'));

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    process.stderr.write('bench/lb/reachable: gave up after 10 minutes\n');
    process.exit(2);
  }, 10 * 60_000);
  deadline.unref();
  let c: LabCluster | undefined;
  try {
    c = await startLabCluster({
      id: 'benchlb',
      nodes: 3,
      profile: 'default',
      quorum: 'majority',
      log: (m) => process.stdout.write(`[lab benchlb] ${m}\n`),
    });
    await c.waitForHolder('web', 120_000);
    await c.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'AddressPool',
        metadata: { name: 'bench', namespace: LAB_NAMESPACE },
        spec: { clusterRef: { name: 'lab' }, addresses: ['198.18.0.150-198.18.0.229'] },
      }),
    );
    const rows: Array<{ service: string; ip: string; externalIpMs: number; firstReplyMs: number }> = [];
    for (let i = 0; i < services; i++) {
      const name = `bench-${i}`;
      const t0 = performance.now();
      await c.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name, namespace: LAB_NAMESPACE },
          spec: {
            type: 'LoadBalancer',
            loadBalancerClass: 'heartline.dev/vip',
            selector: { app: name },
            ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
          },
        }),
      );
      let ip = '';
      while (!ip) {
        if (performance.now() - t0 > 30_000) throw new Error(`${name}: no EXTERNAL-IP after 30 s`);
        ip = (
          await c.kubectl([
            'get',
            'svc',
            name,
            '-n',
            LAB_NAMESPACE,
            '-o',
            'jsonpath={.status.loadBalancer.ingress[0].ip}',
          ])
        ).trim();
      }
      const externalIpMs = performance.now() - t0;
      for (;;) {
        if (performance.now() - t0 > 30_000) throw new Error(`${name}: ${ip} not reachable after 30 s`);
        const ok = await nsRun(
          c.lab.client.ns,
          'curl',
          ['-s', '-o', '/dev/null', '--max-time', '0.2', `http://${ip}:8080/`],
          2000,
        )
          .then(() => true)
          .catch(() => false);
        if (ok) break;
        await sleep(20);
      }
      const firstReplyMs = performance.now() - t0;
      rows.push({
        service: name,
        ip,
        externalIpMs: Math.round(externalIpMs),
        firstReplyMs: Math.round(firstReplyMs),
      });
      process.stdout.write(
        `${name} ${ip}: EXTERNAL-IP ${Math.round(externalIpMs)} ms, first reply ${Math.round(firstReplyMs)} ms\n`,
      );
    }
    const ext = rows.map((r) => r.externalIpMs).sort((a, b) => a - b);
    const rep = rows.map((r) => r.firstReplyMs).sort((a, b) => a - b);
    const result = {
      at: new Date().toISOString(),
      services,
      externalIpMs: { p50: pct(ext, 50), p99: pct(ext, 99), max: ext[ext.length - 1] },
      firstReplyMs: { p50: pct(rep, 50), p99: pct(rep, 99), max: rep[rep.length - 1] },
      distinctAddresses: new Set(rows.map((r) => r.ip)).size,
      rows,
    };
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify({ ...result, rows: undefined }, null, 2)}\n`);
  } finally {
    await c?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
