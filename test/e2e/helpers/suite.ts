/**
 * One lab cluster per test file: started in beforeAll (until one node holds `web`), torn
 * down in afterAll even when a test or the start failed, and checked to leave no namespace.
 */
import { startLabCluster, type LabCluster, type LabClusterOptions } from '../../../hack/lab/cluster.js';
import { labNamespaces, powerOn } from '../../../hack/lab/topology.js';
import { labMissing, restartAgent, steadyHolder } from './lab-run.js';

export const skipReason = labMissing();
if (skipReason) console.warn(`failover e2e skipped: ${skipReason}`);
/** `describe`, or `describe.skip` when the lab cannot run here (not root, tools missing). */
export const labDescribe = skipReason ? describe.skip : describe;

/** Starts the cluster before the file's tests and stops it after them; returns an accessor. */
export function withLabCluster(
  opts: Omit<LabClusterOptions, 'log'>,
  wait: { status?: boolean } = {},
): () => LabCluster {
  let c: LabCluster | undefined;
  beforeAll(async () => {
    const t0 = performance.now();
    c = await startLabCluster({ ...opts, log: (m) => process.stdout.write(`[lab ${opts.id}] ${m}\n`) });
    const holder = await steadyHolder(c, 120_000, undefined, wait);
    process.stdout.write(
      `[lab ${opts.id}] ${holder} holds web ${((performance.now() - t0) / 1000).toFixed(1)} s after start\n`,
    );
  }, 200_000);
  afterAll(async () => {
    await c?.stop();
    expect(await labNamespaces(opts.id)).toEqual([]);
  }, 60_000);
  return () => {
    if (!c) throw new Error(`lab cluster ${opts.id} did not start (see beforeAll)`);
    return c;
  };
}

/** Brings a powered-off node back: links up, HTTP service and agent restarted, agent ready. */
export async function revive(c: LabCluster, node: string): Promise<void> {
  await powerOn(c.lab, node);
  await c.startHttp(node);
  await restartAgent(c, node);
}
