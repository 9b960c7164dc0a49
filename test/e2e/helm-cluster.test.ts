/**
 * The Helm chart on real kubelets (hack/cluster, docs/adr/0018; the chart: docs/adr/0022) and
 * host services (docs/adr/0023), on a 2-node lab Kubernetes:
 * - `helm install` of deploy/helm/heartline with the lab's image, `cluster.name=web`,
 *   `cluster.namespace=web-ha` and `hostServices.enabled=true`, then examples/two-node-web.yaml
 *   and examples/auth-secret.yaml as a user applies them (two substitutions, both the lab's:
 *   the node names n1/n2 for node-a/node-b, and a random key for REPLACE-ME). The example's
 *   exec Resource runs /etc/heartline/resource.d/apache, here a lab stand-in
 *   (helpers/lab-web-standin.py: the node's own python3, an HTTP server on :8080 answering
 *   with the node's name), started by netd chrooted into the node's root filesystem as uid
 *   65534. The lab's own HTTP service is off: only the Resource answers the client.
 * - `helm upgrade` to a new image tag: the DaemonSet rolls out, every holder hands over (its
 *   Resource stopped, then started on the peer), never two holders, measured like
 *   test/e2e/kubelet-cluster.test.ts (client at 100 Hz, 20 ms address sampler).
 * - the two-node upgrade order of docs/deploy.md: agent updateStrategy OnDelete, the
 *   controller rolled first, then each agent pod deleted in turn; never two holders.
 * - holder power-off: the VIP and the Resource move to the other node, the client reaches it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startKubeCluster, tagImage, HTTP_PORT, type KubeCluster } from '../../hack/cluster/index.js';
import { leftoverRoots } from '../../hack/cluster/cgroups.js';
import { nsRun } from '../../hack/lab/sh.js';
import { labNamespaces } from '../../hack/lab/topology.js';
import { holdersAtEnd, measure, ROOT, waitFor } from './helpers/lab-run.js';

const ID = 'e2ehelm';
const SYSTEM_NS = 'heartline-system';
const WEB_NS = 'web-ha';
const VIP = '198.18.0.100';
const CHART = join(ROOT, 'deploy/helm/heartline');

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of [
    'ip',
    'kubectl',
    'containerd',
    'ctr',
    'runc',
    'nsenter',
    'unshare',
    'go',
    'gcc',
    'python3',
  ]) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed (hack/install.sh)`;
    }
  }
  if (!existsSync('/usr/lib/cni/bridge'))
    return 'CNI plugins missing (apt-get install containernetworking-plugins)';
  return undefined;
}

/** The cached helm (hack/build-helm.sh builds it on a cold cache); throws with the reason. */
function helmBinary(): string {
  const out = execFileSync('bash', [join(ROOT, 'hack/build-helm.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  });
  const m = /^helm=(.+)$/m.exec(out);
  if (!m) throw new Error(`hack/build-helm.sh printed no helm= line: ${out}`);
  return m[1]!;
}

const skip = missing();
if (skip) console.warn(`helm e2e skipped: ${skip}`);
const describeHelm = skip ? describe.skip : describe;

interface PodInfo {
  name: string;
  node: string;
  ready: boolean;
  image: string;
  imageID: string;
}

async function agentPods(c: KubeCluster): Promise<PodInfo[]> {
  const out = await c.kubectl([
    'get',
    'pods',
    '-n',
    SYSTEM_NS,
    '-l',
    'app.kubernetes.io/component=agent',
    '-o',
    'json',
  ]);
  type Item = {
    metadata: { name: string; deletionTimestamp?: string };
    spec: { nodeName?: string; containers: Array<{ image: string }> };
    status: {
      conditions?: Array<{ type: string; status: string }>;
      containerStatuses?: Array<{ imageID: string }>;
    };
  };
  return (JSON.parse(out) as { items: Item[] }).items
    .filter((i) => !i.metadata.deletionTimestamp)
    .map((i) => ({
      name: i.metadata.name,
      node: i.spec.nodeName ?? '',
      ready: i.status.conditions?.some((k) => k.type === 'Ready' && k.status === 'True') ?? false,
      image: i.spec.containers[0]!.image,
      imageID: i.status.containerStatuses?.[0]?.imageID ?? '',
    }));
}

async function vipStatus(c: KubeCluster): Promise<{ holder?: string }> {
  const out = await c.kubectl(['get', 'virtualip', 'web', '-n', WEB_NS, '-o', 'json']);
  return (JSON.parse(out) as { status?: { holder?: string } }).status ?? {};
}

/** status.nodes of Resource webserver: node name -> state. */
async function webserverStates(c: KubeCluster): Promise<Record<string, string>> {
  const out = await c.kubectl(['get', 'resource', 'webserver', '-n', WEB_NS, '-o', 'json']);
  const nodes =
    (JSON.parse(out) as { status?: { nodes?: Array<{ name: string; state: string }> } }).status?.nodes ?? [];
  return Object.fromEntries(nodes.map((n) => [n.name, n.state]));
}

/** GET http://VIP:8080/ from the lab client: the answering node's name. */
async function clientGet(c: KubeCluster): Promise<string> {
  return nsRun(c.lab.client.ns, 'curl', ['-sf', '-m', '2', `http://${VIP}:${HTTP_PORT}/`]);
}

/** The node running the controller that holds the leader Lease (the witness voter). */
async function leaderNode(c: KubeCluster): Promise<string> {
  const lease = JSON.parse(
    await c.kubectl(['get', 'lease', 'heartline-controller', '-n', SYSTEM_NS, '-o', 'json']),
  ) as { spec?: { holderIdentity?: string } };
  const pod = lease.spec?.holderIdentity ?? '';
  const out = await c.kubectl([
    'get',
    'pods',
    '-n',
    SYSTEM_NS,
    '-l',
    'app.kubernetes.io/component=controller',
    '-o',
    'json',
  ]);
  const items = (
    JSON.parse(out) as { items: Array<{ metadata: { name: string }; spec: { nodeName?: string } }> }
  ).items;
  return items.find((i) => pod.includes(i.metadata.name))?.spec.nodeName ?? '';
}

describeHelm(
  'Helm chart on real kubelets: install, upgrade, and examples/two-node-web.yaml with host services (2 nodes)',
  () => {
    let c: KubeCluster | undefined;
    let helmBin = '';
    const cluster = () => {
      if (!c) throw new Error(`cluster ${ID} did not start (see beforeAll)`);
      return c;
    };
    const helm = (args: string[], timeoutMs = 300_000) =>
      nsRun(cluster().lab.cp.ns, helmBin, [...args, '--kubeconfig', cluster().kubeconfig], timeoutMs);

    beforeAll(async () => {
      const say = (m: string) => process.stdout.write(`[helm ${ID}] ${m}\n`);
      const t0 = performance.now();
      helmBin = helmBinary();
      c = await startKubeCluster({ id: ID, nodes: 2, http: false, log: say });
      const k = c;
      const nodes = k.lab.nodes.map((n) => n.name);

      // The node admin's part, on each node: the web server's resource script (root-owned, in the
      // allowlisted directory) and, for the stand-in only, the node's name.
      const standin = await readFile(join(ROOT, 'test/e2e/helpers/lab-web-standin.py'), 'utf8');
      for (const n of k.nodes.values()) {
        const pid = n.containerd!.child.pid!;
        execFileSync(
          'nsenter',
          [
            `--mount=/proc/${pid}/ns/mnt`,
            '--',
            'sh',
            '-c',
            'mkdir -p -m 0755 /etc/heartline/resource.d && cat > /etc/heartline/resource.d/apache && ' +
              `chmod 0755 /etc/heartline/resource.d/apache && echo ${n.host.name} > /etc/heartline/node-name`,
          ],
          { input: standin },
        );
      }

      // The cluster admin's part: label the members, install the chart, apply the example.
      let t = performance.now();
      await k.kubectl(['label', 'node', ...nodes, 'heartline.dev/cluster=web', '--overwrite']);
      await k.kubectl(['create', 'namespace', WEB_NS]);
      // The release namespace, with the Pod Security level the agent needs (docs/deploy.md).
      await k.kubectl(['create', 'namespace', SYSTEM_NS]);
      await k.kubectl(['label', 'namespace', SYSTEM_NS, 'pod-security.kubernetes.io/enforce=privileged']);
      const tag = k.image.ref.slice(k.image.ref.lastIndexOf(':') + 1);
      await helm([
        'install',
        'heartline',
        CHART,
        '-n',
        SYSTEM_NS,
        '--set',
        'image.repository=heartline.lab/heartline',
        '--set',
        `image.tag=${tag}`,
        '--set',
        'cluster.name=web',
        '--set',
        `cluster.namespace=${WEB_NS}`,
        '--set',
        'hostServices.enabled=true',
      ]);
      // The value, not the comment that also names the placeholder.
      const secret = (await readFile(join(ROOT, 'examples/auth-secret.yaml'), 'utf8')).replace(
        "'2': REPLACE-ME",
        `'2': ${randomBytes(32).toString('base64')}`,
      );
      const example = (await readFile(join(ROOT, 'examples/two-node-web.yaml'), 'utf8'))
        .replace(/\bnode-a\b/g, nodes[0]!)
        .replace(/\bnode-b\b/g, nodes[1]!);
      await k.kubectl(['apply', '-n', WEB_NS, '-f', '-'], secret);
      await k.kubectl(['apply', '-n', WEB_NS, '-f', '-'], example);
      say(`helm install + examples applied (${((performance.now() - t) / 1000).toFixed(1)} s)`);
      t = performance.now();
      for (const w of ['ds/heartline-agent', 'deploy/heartline-controller']) {
        await k.kubectl(['rollout', 'status', '-n', SYSTEM_NS, w, '--timeout=240s'], undefined, 250_000);
      }
      say(`rollout status complete (${((performance.now() - t) / 1000).toFixed(1)} s)`);
      await waitFor(
        'VirtualIP web bound on one node, its Resource running there',
        async () => {
          const bound = [];
          for (const n of nodes) if ((await k.boundOn(n)).includes(VIP)) bound.push(n);
          const s = await vipStatus(k);
          return (
            bound.length === 1 && s.holder === bound[0] && (await webserverStates(k))[bound[0]!] === 'running'
          );
        },
        90_000,
        250,
      );
      say(`VIP and Resource up; ${((performance.now() - t0) / 1000).toFixed(1)} s in all`);
    }, 45 * 60_000);

    afterAll(async () => {
      await c?.stop();
      expect(await labNamespaces(ID)).toEqual([]);
      expect(await leftoverRoots(ID)).toEqual([]);
    }, 120_000);

    it('helm install: agents rolled out on both members with the built image, the VIP bound, the webserver Resource running on the holder only, the client reaches it', async () => {
      const k = cluster();
      const agents = await agentPods(k);
      expect(agents.map((p) => p.node).sort()).toEqual(k.lab.nodes.map((n) => n.name));
      expect(agents.every((p) => p.ready && p.imageID.includes(k.image.digest))).toBe(true);
      expect(
        await helm(['status', 'heartline', '-n', SYSTEM_NS, '-o', 'json']).then(
          (s) => JSON.parse(s).info.status,
        ),
      ).toBe('deployed');
      const holder = (await vipStatus(k)).holder!;
      expect(await clientGet(k)).toBe(holder);
      const states = await webserverStates(k);
      expect(states[holder]).toBe('running');
      // The stand-in runs as 65534 from the node's root (it uses the node's python3): the other
      // member does not run it, so only the holder answers on :8080.
      const other = k.lab.nodes.map((n) => n.name).find((n) => n !== holder)!;
      expect(states[other] ?? 'stopped').toBe('stopped');
    }, 60_000);

    it('helm upgrade to a new image tag: the DaemonSet rolls out, every holder hands over with its Resource, never two holders', async () => {
      const k = cluster();
      const ref = await tagImage(k, 'upgrade');
      const m = await measure(k, {
        scenario: 'helm-upgrade',
        profile: 'default',
        observeMs: 5000,
        fault: async () => {
          await helm([
            'upgrade',
            'heartline',
            CHART,
            '-n',
            SYSTEM_NS,
            '--reuse-values',
            '--set',
            'image.tag=upgrade',
          ]);
          for (const w of ['ds/heartline-agent', 'deploy/heartline-controller']) {
            await k.kubectl(['rollout', 'status', '-n', SYSTEM_NS, w, '--timeout=240s'], undefined, 250_000);
          }
        },
      });
      expect(m.summary.dualHolderMs).toBe(0);
      expect(holdersAtEnd(m.samples, VIP)).toHaveLength(1);
      // Each hand-over is planned, but the web server runs on the holder only (Heartbeat's
      // model): the outage is the switchover plus the Resource's stop and its start on the peer
      // (python's start-up; 1.4-1.9 s measured on the loaded 2-core host). 5 s bounds it.
      expect(m.summary.maxOutageMs).toBeLessThan(5000);
      const agents = await agentPods(k);
      expect(agents).toHaveLength(2);
      expect(agents.every((p) => p.ready && p.image === ref)).toBe(true);
      const hist = JSON.parse(await helm(['history', 'heartline', '-n', SYSTEM_NS, '-o', 'json'])) as Array<{
        revision: number;
        status: string;
      }>;
      expect(hist.map((h) => [h.revision, h.status])).toEqual([
        [1, 'superseded'],
        [2, 'deployed'],
      ]);
      await waitFor(
        'the client reaching the webserver Resource on the holder after the upgrade',
        async () => {
          const h = (await vipStatus(k)).holder;
          return h !== undefined && (await clientGet(k)) === h;
        },
        30_000,
        250,
      );
    }, 600_000);

    it('two-node upgrade in order (docs/deploy.md "Upgrades"): agent updateStrategy OnDelete, the controller first, then agent pods one by one; never two holders', async () => {
      const k = cluster();
      const ref = await tagImage(k, 'ordered');
      const nodes = k.lab.nodes.map((n) => n.name);
      const m = await measure(k, {
        scenario: 'helm-upgrade-ordered',
        profile: 'default',
        observeMs: 5000,
        note: 'controller first, then agents one by one',
        fault: async () => {
          await helm([
            'upgrade',
            'heartline',
            CHART,
            '-n',
            SYSTEM_NS,
            '--reuse-values',
            '--set',
            'image.tag=ordered',
            '--set',
            'agent.updateStrategy.type=OnDelete',
            '--set',
            'agent.updateStrategy.rollingUpdate=null',
          ]);
          await k.kubectl(
            ['rollout', 'status', '-n', SYSTEM_NS, 'deploy/heartline-controller', '--timeout=240s'],
            undefined,
            250_000,
          );
          // OnDelete: no agent restarted on its own.
          const before = await agentPods(k);
          if (before.some((p) => p.image === ref))
            throw new Error('an agent restarted before its pod was deleted');
          for (const node of nodes) {
            const pod = (await agentPods(k)).find((p) => p.node === node)!;
            await k.kubectl(
              ['delete', 'pod', '-n', SYSTEM_NS, pod.name, '--wait=true', '--timeout=180s'],
              undefined,
              190_000,
            );
            await waitFor(
              `the new agent on ${node} Ready`,
              async () => (await agentPods(k)).some((p) => p.node === node && p.ready && p.image === ref),
              120_000,
              250,
            );
          }
        },
      });
      expect(m.summary.dualHolderMs).toBe(0);
      expect(holdersAtEnd(m.samples, VIP)).toHaveLength(1);
      expect(m.summary.maxOutageMs).toBeLessThan(5000);
      const agents = await agentPods(k);
      expect(agents.every((p) => p.ready && p.image === ref)).toBe(true);
    }, 600_000);

    it('holder power-off: the VIP and the webserver Resource start on the other node, the client reaches it there', async () => {
      const k = cluster();
      const leader = await leaderNode(k);
      let leaderOnHolder = false;
      const m = await measure(k, {
        scenario: 'helm-two-node-web-power-off',
        profile: 'default',
        // Two members: the witness (the leading controller) must vote. If it ran on the node that
        // died, the survivor waits for the controller Lease to move first (docs/deploy.md).
        observeMs: 25_000,
        note: 'examples/two-node-web.yaml, host services',
        fault: async (holder) => {
          leaderOnHolder = holder === leader;
          await k.powerOff(holder);
        },
      });
      process.stdout.write(`[helm ${ID}] leader controller was on ${leader} (holder ${m.from})\n`);
      expect(m.summary.dualHolderMs).toBe(0);
      expect(m.summary.failoverMs).not.toBeNull();
      expect(m.summary.failoverMs!).toBeLessThan(leaderOnHolder ? 25_000 : 4000);
      const end = holdersAtEnd(m.samples, VIP);
      expect(end).toHaveLength(1);
      expect(end[0]).not.toBe(m.from);
      // The client's last replies came from the survivor's Resource.
      expect(m.probes.filter((p) => p.ok).at(-1)?.node).toBe(end[0]);
      await waitFor(
        `Resource webserver running on ${end[0]}`,
        async () => (await webserverStates(k))[end[0]!] === 'running',
        30_000,
        250,
      );
      expect(await clientGet(k)).toBe(end[0]);
    }, 300_000);
  },
);
