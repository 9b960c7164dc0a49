/**
 * The failover demo (README's run command): a 3-node cluster in network namespaces with a
 * real kube-apiserver, a client probing the VIP at 100 Hz, the holder powered off, and the
 * client's view of the failover.
 *
 *   npx tsx hack/lab/demo.ts [--profile default|fast] [--nodes 3] [--keep]
 */
import { analyze } from './analyze.js';
import { labNow } from './clock.js';
import {
  startLabCluster,
  LAB_NAMESPACE,
  VIP_ADDRESS,
  HTTP_PORT,
  type Profile,
  type LabCluster,
} from './cluster.js';
import { kubectlHeartline } from './plugin.js';
import { startProber } from './prober.js';
import { startSampler } from './sampler.js';
import { onStopSignal, sleep } from './sh.js';
import { powerOff } from './topology.js';

const argv = process.argv.slice(2);
const value = (f: string, d: string) => {
  const i = argv.indexOf(f);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : d;
};
const profile = value('--profile', 'default') as Profile;
const nodes = Number(value('--nodes', '3'));
const say = (msg: string) => process.stdout.write(`${msg}\n`);

let cluster: LabCluster | undefined;
const cleanup = async () => {
  if (cluster && !argv.includes('--keep')) {
    say('tearing down the lab');
    await cluster.stop();
  }
};
onStopSignal(() => void cleanup().then(() => process.exit(130)));

try {
  say(`== Heartline failover demo: ${nodes} nodes, ${profile} profile`);
  cluster = await startLabCluster({ id: 'demo', nodes, profile, log: (m) => say(`   ${m}`) });
  const t0 = performance.now();
  const holder = await cluster.waitForHolder('web');
  const st = await cluster.vipStatus('web');
  say(
    `== VirtualIP web ${VIP_ADDRESS} held by ${holder} at epoch ${String(st.epoch)} (${Math.round(performance.now() - t0)} ms after agents started)`,
  );
  say((await cluster.kubectl(['get', 'vip,hac', '-n', 'heartline-lab'])).trimEnd().replace(/^/gm, '   '));

  const sampler = await startSampler({ nodes: cluster.lab.nodes });
  const prober = await startProber({ ns: cluster.lab.client.ns, target: VIP_ADDRESS, port: HTTP_PORT });
  await sleep(1000);
  const before = prober.records.filter((r) => r.ok);
  const by = new Map<string, number>();
  for (const r of before) by.set(r.node ?? '?', (by.get(r.node ?? '?') ?? 0) + 1);
  say(
    `== client (${cluster.lab.client.ip}) -> http://${VIP_ADDRESS}:${HTTP_PORT}/ at 100 Hz: ${[...by].map(([n, c]) => `${c} replies from ${n}`).join(', ')}`,
  );

  say(`== powering off ${holder} (processes killed, links down)`);
  const faultAt = labNow();
  await powerOff(cluster.lab, holder);
  await sleep(profile === 'fast' ? 2000 : 4000);
  const probes = await prober.stop();
  const samples = await sampler.stop();
  const report = analyze({ probes, samples, vip: VIP_ADDRESS, faultAt, from: holder });
  const after = await cluster.waitForHolder('web', 10_000, holder).catch(() => 'none');
  const st2 = await cluster.vipStatus('web');
  say('== what the client saw');
  const f = report.failover;
  say(
    `   failover ${holder} -> ${f.to ?? 'nobody'}: first good reply ${f.failoverMs?.toFixed(0) ?? '-'} ms after power-off`,
  );
  say(`   probes after the fault: ${report.probesAfterFault.ok} ok, ${report.probesAfterFault.lost} lost`);
  say(
    `   time with two holders: ${report.dualHolderProvenMs.toFixed(0)} ms (as sampled ${report.dualHolderMs.toFixed(1)}); time with no holder: ${report.noHolderMs.toFixed(0)} ms`,
  );
  say(
    `   status: holder ${after}, epoch ${String(st2.epoch)}, lastFailover ${JSON.stringify(st2.lastFailover ?? null)}`,
  );
  // What the on-call engineer sees: the crm_mon-like view, from the API and the live agents.
  for (let i = 0; i < 50; i++) {
    const h = JSON.parse(await cluster.kubectl(['get', 'hac', 'lab', '-n', LAB_NAMESPACE, '-o', 'json'])) as {
      status?: { members?: Array<{ name: string; state: string }> };
    };
    if (h.status?.members?.find((m) => m.name === holder)?.state === 'dead') break;
    await sleep(100);
  }
  say(`== kubectl heartline status -n ${LAB_NAMESPACE}`);
  const hl = await kubectlHeartline(cluster, ['status', '-n', LAB_NAMESPACE]);
  say((hl.stdout + hl.stderr).trimEnd().replace(/^/gm, '   '));
  await cleanup();
  process.exitCode = report.dualHolderProvenMs > 0 || f.failoverMs === undefined ? 1 : 0;
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  await cleanup();
  process.exitCode = 1;
}
