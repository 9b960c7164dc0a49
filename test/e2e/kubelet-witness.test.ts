/**
 * Two-node clusters on real kubelets (docs/deploy.md "Two-node clusters: where the controller
 * runs"): quorum witness, the controller's two replicas on the two nodes. Power off the node
 * that runs the leading controller: its witness dies with it, the survivor has 1 of 3 votes
 * until the other replica's Lease takeover, so the VIP is down for about the leader lease. Then
 * the documented mitigation without a third node, a shorter lease (--lease-duration=4000
 * --renew-period=1000), and the same power-off again. Lab id e2ekwit, default profile.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HL_NAMESPACE, installHeartline } from '../../hack/cluster/heartline.js';
import { startKubeCluster, type KubeCluster } from '../../hack/cluster/index.js';
import { leftoverRoots } from '../../hack/cluster/cgroups.js';
import { labNamespaces } from '../../hack/lab/topology.js';
import { holdersAtEnd, measure, waitFor } from './helpers/lab-run.js';

const ID = 'e2ekwit';

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'kubectl', 'containerd', 'ctr', 'runc', 'nsenter', 'unshare', 'go', 'gcc']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed`;
    }
  }
  if (!existsSync('/usr/lib/cni/bridge'))
    return 'CNI plugins missing (apt-get install containernetworking-plugins)';
  return undefined;
}

const skip = missing();
if (skip) console.warn(`real-kubelet witness e2e skipped: ${skip}`);
const describeKube = skip ? describe.skip : describe;

/** The node of the controller pod that holds the leader Lease, and of every controller pod. */
async function controllers(c: KubeCluster): Promise<{ leaderNode?: string; nodes: string[] }> {
  const lease = JSON.parse(
    await c.kubectl(['get', 'lease', 'heartline-controller', '-n', HL_NAMESPACE, '-o', 'json']),
  ) as { spec?: { holderIdentity?: string } };
  const pods = (
    JSON.parse(
      await c.kubectl([
        'get',
        'pods',
        '-n',
        HL_NAMESPACE,
        '-l',
        'app.kubernetes.io/component=controller',
        '-o',
        'json',
      ]),
    ) as {
      items: Array<{ metadata: { name: string; deletionTimestamp?: string }; spec: { nodeName?: string } }>;
    }
  ).items.filter((p) => !p.metadata.deletionTimestamp);
  // The identity is `<hostname>_<pid>`; a pod's hostname is its name.
  const holder = lease.spec?.holderIdentity?.replace(/_\d+$/, '');
  return {
    leaderNode: pods.find((p) => p.metadata.name === holder)?.spec.nodeName,
    nodes: pods.map((p) => p.spec.nodeName ?? ''),
  };
}

/** Leadership and witness lines of the controller pods' logs on the nodes other than `except`. */
async function controllerLog(c: KubeCluster, except: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of c.nodes.values()) {
    if (n.host.name === except) continue;
    const root = join(n.dir, 'pod-logs');
    for (const d of await readdir(root).catch(() => [])) {
      if (!d.includes('heartline-controller')) continue;
      for (const f of await readdir(join(root, d, 'controller')).catch(() => [])) {
        const text = await readFile(join(root, d, 'controller', f), 'utf8').catch(() => '');
        for (const l of text.split('\n'))
          if (/lead|witness|lease|observing|quorum/i.test(l))
            out.push(`${n.host.name} ${l.slice(l.indexOf('{'))}`);
      }
    }
  }
  return out.slice(-25);
}

/**
 * Each lease setting gets a fresh cluster. On one cluster for both settings, the second
 * power-off (leader on n1, the standby replica on n2, which the first scenario had powered off
 * and on) never recovered within 30 s; a fresh cluster recovered in 4.5 s. Not diagnosed: the
 * suspect is the lab's power-on of a node (its pod-network pods), not the scenario.
 */
const SETTINGS = [
  {
    name: 'default lease (15 s): the VIP waits for the other replica to lead',
    scenario: 'kubelet-witness-leader-node-off',
    args: [] as string[],
    // The documented figure: about the lease (13–17 s) plus the status round trip.
    check: (outageMs: number) => expect(outageMs).toBeGreaterThan(5000),
  },
  {
    name: 'shorter lease (--lease-duration=4000 --renew-period=1000): the wait shrinks to a few seconds',
    scenario: 'kubelet-witness-leader-node-off-short-lease',
    args: ['--lease-duration=4000', '--renew-period=1000'],
    check: (outageMs: number) => expect(outageMs).toBeLessThan(12_000),
  },
];

for (const setting of SETTINGS) {
  describeKube(`real kubelets, two nodes with the controller witness, ${setting.scenario}`, () => {
    let c: KubeCluster | undefined;
    const say = (m: string) => process.stdout.write(`[kube ${ID}] ${m}\n`);

    beforeAll(async () => {
      c = await startKubeCluster({ id: ID, nodes: 2, log: say });
      await installHeartline(c, { profile: 'default', quorum: 'witness', log: say });
      if (setting.args.length) {
        await c.kubectl([
          'patch',
          'deployment',
          'heartline-controller',
          '-n',
          HL_NAMESPACE,
          '--type=json',
          '-p',
          JSON.stringify(
            setting.args.map((value) => ({
              op: 'add',
              path: '/spec/template/spec/containers/0/args/-',
              value,
            })),
          ),
        ]);
        await c.kubectl(
          ['rollout', 'status', '-n', HL_NAMESPACE, 'deploy/heartline-controller', '--timeout=180s'],
          undefined,
          190_000,
        );
      }
    }, 45 * 60_000);

    afterAll(async () => {
      await c?.stop();
      expect(await labNamespaces(ID)).toEqual([]);
      expect(await leftoverRoots(ID)).toEqual([]);
    }, 120_000);

    it(
      setting.name,
      async () => {
        const k = c;
        if (!k) throw new Error(`cluster ${ID} did not start (see beforeAll)`);
        const where = await waitFor(
          'controller replicas on both nodes, one leading',
          async () => {
            const w = await controllers(k);
            return w.leaderNode && new Set(w.nodes).size === 2 ? w : undefined;
          },
          60_000,
          500,
        );
        const leaderNode = where.leaderNode!;
        const m = await measure(k, {
          scenario: setting.scenario,
          profile: 'default',
          observeMs: 30_000,
          fault: () => k.powerOff(leaderNode),
        });
        say(`leader controller on ${leaderNode}, VIP held by ${m.from}: ${JSON.stringify(m.summary)}`);
        say(`surviving controller's log: ${(await controllerLog(k, leaderNode)).join(' | ')}`);
        expect(m.summary.dualHolderMs).toBe(0);
        const end = holdersAtEnd(m.samples);
        expect(end).toHaveLength(1);
        expect(end[0]).not.toBe(leaderNode);
        setting.check(m.summary.maxOutageMs);
      },
      400_000,
    );
  });
}
