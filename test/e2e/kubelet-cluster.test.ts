/**
 * Heartline on real kubelets (docs/adr/0018-real-kubelet-lab-cluster.md): a 3-node
 * Kubernetes in the lab (hack/cluster: kube-apiserver, etcd, kube-controller-manager,
 * kube-scheduler; per node containerd + runc, kubelet, kube-proxy), the shipped image and
 * the shipped manifests (`kubectl apply -k deploy/overlays/lab`, which differs from
 * deploy/base only in the image name). Default profile (interval 200 ms, dead 1000 ms), the
 * same measurement as the process lab (client at 100 Hz, 20 ms address sampler): the
 * holder's agent pod deleted, the holder drained, the holder powered off (every process of
 * the node: containerd, shims, pods, kubelet, kube-proxy). Two holders: asserted 0.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { HL_NAMESPACE, VIP_ADDRESS, installHeartline, vipStatus } from '../../hack/cluster/heartline.js';
import { HTTP_PORT, startKubeCluster, tagImage, type KubeCluster } from '../../hack/cluster/index.js';
import { nsRun } from '../../hack/lab/sh.js';
import { leftoverRoots } from '../../hack/cluster/cgroups.js';
import { labNamespaces } from '../../hack/lab/topology.js';
import { holdersAtEnd, measure, waitFor } from './helpers/lab-run.js';

const ID = 'e2ekube';

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'kubectl', 'containerd', 'ctr', 'runc', 'nsenter', 'unshare', 'go', 'gcc']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed (apt-get install containerd runc containernetworking-plugins)`;
    }
  }
  if (!existsSync('/usr/lib/cni/bridge'))
    return 'CNI plugins missing (apt-get install containernetworking-plugins)';
  return undefined;
}

const skip = missing();
if (skip) console.warn(`real-kubelet e2e skipped: ${skip}`);
const describeKube = skip ? describe.skip : describe;

interface PodInfo {
  name: string;
  node: string;
  ready: boolean;
  imageID: string;
}

async function pods(c: KubeCluster, component: 'agent' | 'controller'): Promise<PodInfo[]> {
  const out = await c.kubectl([
    'get',
    'pods',
    '-n',
    HL_NAMESPACE,
    '-l',
    `app.kubernetes.io/component=${component}`,
    '-o',
    'json',
  ]);
  const items = (
    JSON.parse(out) as {
      items: Array<{
        metadata: { name: string; deletionTimestamp?: string };
        spec: { nodeName?: string };
        status: {
          conditions?: Array<{ type: string; status: string }>;
          containerStatuses?: Array<{ imageID: string }>;
        };
      }>;
    }
  ).items;
  return items
    .filter((i) => !i.metadata.deletionTimestamp)
    .map((i) => ({
      name: i.metadata.name,
      node: i.spec.nodeName ?? '',
      ready: i.status.conditions?.some((k) => k.type === 'Ready' && k.status === 'True') ?? false,
      imageID: i.status.containerStatuses?.[0]?.imageID ?? '',
    }));
}

async function agentsReady(c: KubeCluster, nodes: string[]): Promise<void> {
  await waitFor(
    `agent pods Ready on ${nodes.join(', ')}`,
    async () => {
      const p = await pods(c, 'agent');
      return nodes.every((n) => p.some((x) => x.node === n && x.ready));
    },
    120_000,
    500,
  );
}

describeKube('real kubelets: the shipped image and manifests, default profile (3 nodes)', () => {
  let c: KubeCluster | undefined;
  const cluster = () => {
    if (!c) throw new Error(`cluster ${ID} did not start (see beforeAll)`);
    return c;
  };

  beforeAll(async () => {
    const say = (m: string) => process.stdout.write(`[kube ${ID}] ${m}\n`);
    const t0 = performance.now();
    c = await startKubeCluster({ id: ID, nodes: 3, log: say });
    const t = await installHeartline(c, { profile: 'default', log: say });
    say(
      `cluster ${JSON.stringify(c.timings)} s; install ${JSON.stringify(t)} s; ` +
        `${((performance.now() - t0) / 1000).toFixed(1)} s in all`,
    );
    // A cold cache builds five Go binaries and the image first (docs/controlplane.md).
  }, 45 * 60_000);

  afterAll(async () => {
    await c?.stop();
    expect(await labNamespaces(ID)).toEqual([]);
    expect(await leftoverRoots(ID)).toEqual([]);
  }, 120_000);

  it('rolls out: every agent and both controllers Ready, running the built image; the VIP is bound and answers', async () => {
    const k = cluster();
    const agents = await pods(k, 'agent');
    expect(agents.map((p) => p.node).sort()).toEqual(k.lab.nodes.map((n) => n.name));
    expect(agents.every((p) => p.ready)).toBe(true);
    const controllers = await pods(k, 'controller');
    expect(controllers).toHaveLength(2);
    expect(controllers.every((p) => p.ready)).toBe(true);
    for (const p of [...agents, ...controllers]) expect(p.imageID).toContain(k.image.digest);
    const s = await vipStatus(k);
    expect(typeof s.holder).toBe('string');
    expect(await k.boundOn(s.holder as string)).toContain(VIP_ADDRESS);
    // The lab client reaches the VIP, answered by the holder's web service.
    const body = await nsRun(k.lab.client.ns, 'curl', [
      '-sf',
      '-m',
      '2',
      `http://${VIP_ADDRESS}:${HTTP_PORT}/`,
    ]);
    expect(body).toBe(s.holder);
  }, 60_000);

  it('kubectl delete pod of the holder agent: the VIP moves, never two holders, the DaemonSet replaces the pod', async () => {
    const k = cluster();
    const m = await measure(k, {
      scenario: 'kubelet-delete-agent-pod',
      profile: 'default',
      observeMs: 5000,
      fault: async (holder) => {
        const pod = (await pods(k, 'agent')).find((p) => p.node === holder);
        if (!pod) throw new Error(`no agent pod on ${holder}`);
        await k.kubectl(['delete', 'pod', '-n', HL_NAMESPACE, pod.name, '--wait=false']);
      },
    });
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.failoverMs).not.toBeNull();
    // SIGTERM: a planned release (the peers are told), well inside the dead time.
    expect(m.summary.failoverMs!).toBeLessThan(4000);
    const end = holdersAtEnd(m.samples);
    expect(end).toHaveLength(1);
    expect(end[0]).not.toBe(m.from);
    await agentsReady(
      k,
      k.lab.nodes.map((n) => n.name),
    );
  }, 240_000);

  it('kubectl drain of the holder: a planned switchover, never two holders', async () => {
    const k = cluster();
    let drained = '';
    try {
      const m = await measure(k, {
        scenario: 'kubelet-drain',
        profile: 'default',
        observeMs: 5000,
        fault: async (holder) => {
          drained = holder;
          await k.kubectl(
            ['drain', holder, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=90s'],
            undefined,
            120_000,
          );
        },
      });
      expect(m.summary.dualHolderMs).toBe(0);
      expect(m.summary.failoverMs).not.toBeNull();
      expect(m.summary.failoverMs!).toBeLessThan(4000);
      const end = holdersAtEnd(m.samples);
      expect(end).toHaveLength(1);
      expect(end[0]).not.toBe(m.from);
    } finally {
      if (drained) await k.kubectl(['uncordon', drained]);
    }
    await k.kubectl(
      ['rollout', 'status', '-n', HL_NAMESPACE, 'deploy/heartline-controller', '--timeout=120s'],
      undefined,
      130_000,
    );
  }, 300_000);

  it('DaemonSet rolling update to a new image tag: every agent restarts, the holder hands over, never two holders', async () => {
    const k = cluster();
    const ref = await tagImage(k, 'rolling');
    const m = await measure(k, {
      scenario: 'kubelet-rolling-update',
      profile: 'default',
      observeMs: 3000,
      fault: async () => {
        await k.kubectl(['set', 'image', '-n', HL_NAMESPACE, 'ds/heartline-agent', `agent=${ref}`]);
        await k.kubectl(
          ['rollout', 'status', '-n', HL_NAMESPACE, 'ds/heartline-agent', '--timeout=180s'],
          undefined,
          190_000,
        );
      },
    });
    expect(m.summary.dualHolderMs).toBe(0);
    expect(holdersAtEnd(m.samples)).toHaveLength(1);
    // Each restart is a planned release: the client outage stays at planned-switchover size
    // (the process lab's cordon: tens of ms); 1 s bounds it on a loaded host.
    expect(m.summary.maxOutageMs).toBeLessThan(1000);
    const agents = await pods(k, 'agent');
    expect(agents).toHaveLength(k.lab.nodes.length);
    expect(agents.every((p) => p.ready)).toBe(true);
  }, 300_000);

  it('holder power-off (containerd, shims, pods, kubelet, kube-proxy killed, links down): the VIP moves, never two holders', async () => {
    const k = cluster();
    const m = await measure(k, {
      scenario: 'kubelet-power-off',
      profile: 'default',
      observeMs: 5000,
      fault: (holder) => k.powerOff(holder),
    });
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.failoverMs).not.toBeNull();
    expect(m.summary.failoverMs!).toBeLessThan(4000);
    const end = holdersAtEnd(m.samples);
    expect(end).toHaveLength(1);
    expect(end[0]).not.toBe(m.from);
    expect((await k.nodes.get(m.from)!.cgroup.pids()).length).toBe(0);
    await waitFor(
      `VirtualIP status naming ${end[0]}`,
      async () => (await vipStatus(k)).holder === end[0],
      30_000,
      200,
    );
  }, 240_000);
});
