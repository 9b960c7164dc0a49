/**
 * Measures control plane start-up (spawn etcd → kube-apiserver /readyz ok) over several runs:
 *
 *   npx tsx hack/controlplane/measure.ts [runs=5]
 *
 * Prints one JSON line per run and a summary. Binaries must build first if not cached; that
 * time is reported separately as buildMs.
 */
import pino from 'pino';
import { ensureBinaries, startControlPlane } from './index.js';

const runs = Number(process.argv[2] ?? 5);
const log = pino({ name: 'measure', level: 'warn' }, pino.destination({ dest: 2, sync: true }));
const t0 = performance.now();
const binaries = await ensureBinaries();
const buildMs = Math.round(performance.now() - t0);
const startups: number[] = [];
for (let i = 0; i < runs; i++) {
  const cp = await startControlPlane({ binaries, log });
  startups.push(cp.startupMs);
  console.log(JSON.stringify({ run: i + 1, startupMs: cp.startupMs }));
  await cp.stop();
}
const sorted = [...startups].sort((a, b) => a - b);
console.log(
  JSON.stringify({
    buildMs,
    runs,
    firstMs: startups[0],
    medianMs: sorted[Math.floor(sorted.length / 2)],
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
  }),
);
