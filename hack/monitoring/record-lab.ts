/**
 * Records Heartline's metrics from a lab run for the alert unit tests (deploy/monitoring,
 * test/unit/monitoring): a 3-node lab cluster (default profile, health-checked Resource) is
 * scraped every 5 s (every agent and the controller, over the lab's plain-HTTP metrics
 * listeners, as the e2e tests scrape them) while it goes through what the alerts are about:
 *
 *   holder's service killed (health checks fail: the VIP moves, planned) and restarted,
 *   three planned moves (the holder annotated heartline.dev/standby, then not),
 *   a minute of junk datagrams sent to the heartbeat port of every node,
 *   the holder powered off (failover), and 90 s later the new holder powered off too
 *   (the last node alone: quorum lost, the VIP has no holder).
 *
 * Writes test/fixtures/monitoring/lab-power-off.json: every sample series of the families in
 * docs/metrics.md (not histogram buckets, not process metrics) with the value at each scrape (null when absent:
 * a powered-off node is not scraped), labelled job and instance as a Prometheus scrape would,
 * and the timeline of what was done when. Root only (network namespaces), about 8 minutes:
 *
 *   sudo npx tsx hack/monitoring/record-lab.ts [--out FILE]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLabCluster, type LabCluster } from '../lab/cluster.js';
import { nsRun, signal } from '../lab/sh.js';
import { powerOff } from '../lab/topology.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRAPE_MS = 5000;
const DURATION_S = 390;
const LAB_ID = 'monrec';

/** One timeline step, at `at` seconds after the recording started. */
interface Step {
  at: number;
  what: string;
  run: (c: LabCluster) => Promise<string | void>;
}

const out = (() => {
  const i = process.argv.indexOf('--out');
  return i >= 0 ? process.argv[i + 1]! : join(ROOT, 'test', 'fixtures', 'monitoring', 'lab-power-off.json');
})();

function log(msg: string): void {
  process.stdout.write(`[record ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** The node that has the VIP bound now (per `ip addr`), waiting up to 20 s for exactly one. */
async function holder(c: LabCluster): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const bound: string[] = [];
    for (const n of c.lab.nodes) if ((await c.boundOn(n.name)).length) bound.push(n.name);
    if (bound.length === 1) return bound[0]!;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('no single holder of the VIP within 20 s');
}

/** Parses the text exposition format into `name{labels}` → value, keeping Heartline's families only. */
export function parseMetrics(text: string, extra: Record<string, string>): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, labelText, value] = m as unknown as [string, string, string | undefined, string];
    if (!/^(heartline_|controller_runtime_|workqueue_)/.test(name)) continue;
    if (/^heartline_(agent|controller)_(process|nodejs)_/.test(name) || name.endsWith('_bucket')) continue;
    const labels: Record<string, string> = { ...extra };
    for (const l of (labelText ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    const key = `${name}{${Object.keys(labels)
      .sort()
      .map((k) => `${k}="${labels[k]}"`)
      .join(',')}}`;
    samples.set(key, Number(value));
  }
  return samples;
}

async function scrape(c: LabCluster): Promise<Map<string, number>> {
  const all = new Map<string, number>();
  const targets = [
    ...c.lab.nodes.map((n) => ({
      url: `http://${n.ip}:9694/metrics`,
      job: 'heartline-agent',
      instance: n.name,
    })),
    { url: `http://${c.lab.cp.ip}:9695/metrics`, job: 'heartline-controller', instance: 'controller' },
  ];
  await Promise.all(
    targets.map(async (t) => {
      try {
        const text = await nsRun(c.lab.client.ns, 'curl', ['-sf', '-m', '2', t.url], 4000);
        for (const [k, v] of parseMetrics(text, { job: t.job, instance: t.instance })) all.set(k, v);
      } catch {
        // down (powered off): absent from this scrape, as for Prometheus
      }
    }),
  );
  return all;
}

const JUNK = `
import socket, time, os, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 60
targets = sys.argv[1:]
while time.time() < end:
    for t in targets:
        s.sendto(os.urandom(64), (t, 694))
    time.sleep(0.05)
`;

function steps(): Step[] {
  let killedHttp = '';
  let firstOff = '';
  return [
    {
      at: 20,
      what: "holder's HTTP service killed (its tcp health check fails)",
      run: async (c) => {
        killedHttp = await holder(c);
        signal(c.http.get(killedHttp)!.child.pid!, 'SIGKILL');
        return killedHttp;
      },
    },
    { at: 35, what: 'HTTP service restarted', run: async (c) => void (await c.startHttp(killedHttp)) },
    ...[50, 70, 90].flatMap((at): Step[] => {
      let node = '';
      return [
        {
          at,
          what: 'holder annotated heartline.dev/standby=true (planned move)',
          run: async (c) => {
            node = await holder(c);
            await c.kubectl(['annotate', '--overwrite', 'node', node, 'heartline.dev/standby=true']);
            return node;
          },
        },
        {
          at: at + 10,
          what: 'standby annotation removed',
          run: async (c) => void (await c.kubectl(['annotate', 'node', node, 'heartline.dev/standby-'])),
        },
      ];
    }),
    {
      at: 110,
      what: 'junk datagrams (64 random bytes, 20/s per node) to UDP 694 of every node for 60 s',
      run: async (c) => {
        void nsRun(c.lab.client.ns, 'python3', ['-c', JUNK, ...c.lab.nodes.map((n) => n.ip)], 70_000).catch(
          (err: unknown) => log(`junk sender: ${(err as Error).message}`),
        );
      },
    },
    {
      at: 180,
      what: 'holder powered off',
      run: async (c) => {
        firstOff = await holder(c);
        await powerOff(c.lab, firstOff);
        return firstOff;
      },
    },
    {
      at: 270,
      what: 'new holder powered off (one node left: no quorum)',
      run: async (c) => {
        const h = await holder(c);
        await powerOff(c.lab, h);
        return h;
      },
    },
  ];
}

async function main(): Promise<void> {
  const c = await startLabCluster({
    id: LAB_ID,
    nodes: 3,
    profile: 'default',
    healthCheck: true,
    log: (m) => log(`lab: ${m}`),
  });
  // Interrupted: tear the lab down all the same (namespaces, processes, mounts).
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      log(`${sig}: stopping the lab`);
      void c.stop().finally(() => process.exit(130));
    });
  try {
    log(`holder: ${await holder(c)}`);
    // Let the cluster settle (the controller's status, every peer heard) before recording.
    await new Promise((r) => setTimeout(r, 10_000));
    const scrapes: Array<Map<string, number>> = [];
    const events: Array<{ at: number; what: string; node?: string }> = [];
    const todo = steps();
    const t0 = performance.now();
    const pending: Array<Promise<void>> = [];
    for (let i = 0; i * (SCRAPE_MS / 1000) <= DURATION_S; i++) {
      const at = i * (SCRAPE_MS / 1000);
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + at * 1000 - performance.now())));
      scrapes.push(await scrape(c));
      while (todo.length && todo[0]!.at <= at) {
        const s = todo.shift()!;
        log(`t=${at}s ${s.what}`);
        pending.push(
          s.run(c).then((node) => {
            events.push({ at, what: s.what, ...(node ? { node } : {}) });
          }),
        );
        await pending[pending.length - 1];
      }
      if (i % 6 === 0) log(`t=${at}s scraped ${scrapes[scrapes.length - 1]!.size} samples`);
    }
    await Promise.all(pending);
    const keys = [...new Set(scrapes.flatMap((s) => [...s.keys()]))].sort();
    const series: Record<string, Array<number | null>> = {};
    for (const k of keys) series[k] = scrapes.map((s) => s.get(k) ?? null);
    mkdirSync(dirname(out), { recursive: true });
    const head = JSON.stringify(
      {
        description:
          'Heartline metrics scraped every 5 s from a 3-node lab cluster (default profile: interval 200 ms, dead 1000 ms) by hack/monitoring/record-lab.ts',
        recordedAt: new Date().toISOString(),
        scrapeIntervalSeconds: SCRAPE_MS / 1000,
        scrapes: scrapes.length,
        events,
      },
      null,
      1,
    ).slice(0, -2);
    // One series per line: a new recording's diff reads series by series.
    const lines = Object.entries(series).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
    writeFileSync(out, `${head},\n "series": {\n  ${lines.join(',\n  ')}\n }\n}\n`);
    log(`wrote ${out}: ${keys.length} series x ${scrapes.length} scrapes`);
  } finally {
    await c.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
