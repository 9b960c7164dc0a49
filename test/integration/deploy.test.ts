/**
 * deploy/ against a real kube-apiserver, without a container engine:
 * - `kubectl kustomize` renders the base and the example overlay, and the overlay's values
 *   reach every object that must repeat them;
 * - the rendered manifests pass `kubectl apply --dry-run=server` (schema, defaulting and
 *   admission, Pod Security included);
 * - the security contexts are what docs/deploy.md says (parsed from the rendered YAML);
 * - the RBAC, applied for real, grants what the code calls and no more: `kubectl auth can-i`
 *   as each ServiceAccount, real requests with their tokens, the real controller process
 *   running on the controller's token, and the agent's watches through RestApiSource on the
 *   agent's token.
 *
 * It owns the cluster-scoped heartline-* RBAC objects and the namespaces heartline-system and
 * web-ha (the example overlay's) for its duration, and deletes them afterwards.
 */
import { jest } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { SystemClock } from '../../src/adapters/clock.js';
import { loadRestConfig } from '../../src/adapters/k8s/kubeconfig.js';
import { resolveNetdBinary } from '../../src/adapters/linux/netd-binary.js';
import { restAccessReviewApi } from '../../src/adapters/k8s/rest-access-review.js';
import { RestApiSource } from '../../src/adapters/k8s/rest-api-source.js';
import { RestClient } from '../../src/adapters/k8s/rest-client.js';
import { agentRoot } from '../../hack/lab/cluster.js';
import { generateCrds } from '../../src/api/crd.js';
import type { ApiKind, Stoppable, WatchOptions } from '../../src/core/ports.js';
import { MetricsAuthorizer } from '../../src/ops/metrics-auth.js';
import { VIP_FINALIZER } from '../../src/runtime/cluster-config.js';
import {
  createTestNamespace,
  deleteNamespace,
  insecureGet,
  kubeconfig,
  kubectl,
  mustKubectl,
  until as untilShared,
} from './helpers.js';

const execFileAsync = promisify(execFile);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Releases run by the suite's afterAll (bind mounts of the checkout, see agentRoot). */
const afterAllRelease: Array<() => void> = [];

jest.setTimeout(120_000);

const SYSTEM_NS = 'heartline-system';
const EXAMPLE_NS = 'web-ha';
const AGENT = `system:serviceaccount:${SYSTEM_NS}:heartline-agent`;
const CONTROLLER = `system:serviceaccount:${SYSTEM_NS}:heartline-controller`;
const RBAC_KINDS = new Set([
  'Namespace',
  'ServiceAccount',
  'ConfigMap',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
]);

const ADMISSION_KINDS = new Set(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
const CLUSTER_SCOPED_KINDS = new Set(['ClusterRole', 'ClusterRoleBinding', ...ADMISSION_KINDS]);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, string>> }[];
  ports?: { name: string; containerPort: number; protocol?: string }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number; scheme?: string } };
  readinessProbe?: { httpGet?: { path: string; port: string | number; scheme?: string } };
  securityContext?: {
    runAsUser?: number;
    runAsNonRoot?: boolean;
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  dnsPolicy?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    fsGroup?: number;
    sysctls?: { name: string; value: string }[];
  };
  tolerations?: { key?: string }[];
  containers: Container[];
  volumes?: { name: string; hostPath?: unknown }[];
}
interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    updateStrategy?: { rollingUpdate?: { maxSurge?: number; maxUnavailable?: number } };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

const until = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000) =>
  untilShared(what, fn, timeoutMs, 200);

const must = mustKubectl;

async function render(dir: string): Promise<K8sObject[]> {
  const out = await must(['kustomize', dir]);
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
}

function find<T extends K8sObject = K8sObject>(
  objs: K8sObject[],
  kind: string,
  name: string,
  namespace?: string,
): T {
  const o = objs.find(
    (x) =>
      x.kind === kind &&
      x.metadata.name === name &&
      (namespace === undefined || x.metadata.namespace === namespace),
  );
  if (!o) throw new Error(`rendered output has no ${kind} ${namespace ? `${namespace}/` : ''}${name}`);
  return o as T;
}

const toYaml = (objs: K8sObject[]) => objs.map((o) => stringify(o)).join('---\n');

/** `kubectl auth can-i` as `user`: true for "yes" (exit 0), false for "no" (exit 1). */
async function canI(user: string, args: string[]): Promise<boolean> {
  const r = await kubectl(['auth', 'can-i', `--as=${user}`, ...args]);
  if (r.code !== 0 && r.stdout.trim() !== 'no')
    throw new Error(`kubectl auth can-i ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.code === 0;
}

/** A kubeconfig for the run's API server that authenticates with a token of the ServiceAccount. */
async function serviceAccountKubeconfig(dir: string, sa: string): Promise<string> {
  const token = (await must(['create', 'token', sa, '-n', SYSTEM_NS, '--duration=10m'])).trim();
  const admin = parse(await readFile(kubeconfig(), 'utf8')) as {
    clusters: { name: string; cluster: Record<string, string> }[];
  };
  const cluster = admin.clusters[0]!.cluster;
  const file = path.join(dir, `${sa}.kubeconfig`);
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster }],
      users: [{ name: sa, user: { token } }],
      contexts: [{ name: sa, context: { cluster: 'test', user: sa } }],
      'current-context': sa,
    }),
    { mode: 0o600 },
  );
  return file;
}

/** The `kubectl auth can-i` and rendered values the overlay must keep in step with its ConfigMap. */
function configOf(objs: K8sObject[]): {
  cluster: string;
  namespace: string;
  authSecret: string;
  adminGroup: string;
} {
  const cm = find(objs, 'ConfigMap', 'heartline-config', SYSTEM_NS) as K8sObject & {
    data: { cluster: string; namespace: string; authSecret: string; adminGroup: string };
  };
  return cm.data;
}

function expectConsistent(objs: K8sObject[]): void {
  const cfg = configOf(objs);
  const agentRole = find(objs, 'Role', 'heartline-agent') as K8sObject & { rules: Rule[] };
  expect({
    agentRole: agentRole.metadata.namespace,
    agentBinding: find(objs, 'RoleBinding', 'heartline-agent').metadata.namespace,
    controllerBinding: find(objs, 'RoleBinding', 'heartline-controller').metadata.namespace,
    clusterName: agentRole.rules.find((r) => r.resources?.includes('haclusters'))?.resourceNames,
    secretName: agentRole.rules.find((r) => r.resources?.includes('secrets'))?.resourceNames,
    controllerSecretName: (
      find(objs, 'ClusterRole', 'heartline-controller') as K8sObject & { rules: Rule[] }
    ).rules.find((r) => r.resources?.includes('secrets'))?.resourceNames,
    // Agents only on nodes labelled into the cluster: no agent, no credential.
    agentNodes: (
      find(objs, 'DaemonSet', 'heartline-agent') as K8sObject & {
        spec: { template: { spec: { nodeSelector?: Record<string, string> } } };
      }
    ).spec.template.spec.nodeSelector,
  }).toEqual({
    agentRole: cfg.namespace,
    agentBinding: cfg.namespace,
    controllerBinding: cfg.namespace,
    clusterName: [cfg.cluster],
    secretName: [cfg.authSecret],
    controllerSecretName: [cfg.authSecret],
    agentNodes: { 'kubernetes.io/os': 'linux', 'heartline.dev/cluster': cfg.cluster },
  });
  // Everything else stays in heartline-system.
  for (const o of objs) {
    if (['Deployment', 'DaemonSet', 'ServiceAccount', 'ConfigMap'].includes(o.kind))
      expect(o.metadata.namespace).toBe(SYSTEM_NS);
  }
}

function podFrom(w: Workload, name: string, namespace: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: w.spec.template.metadata.labels },
    spec: w.spec.template.spec,
  };
}

const HACLUSTER = {
  apiVersion: 'heartline.dev/v1alpha1',
  kind: 'HACluster',
  metadata: { name: 'heartline', namespace: SYSTEM_NS },
  spec: {
    nodeSelector: { 'heartline.dev/none': 'deploy-test' },
    authSecretRef: { name: 'heartline-auth', activeKeyId: '1' },
    quorum: 'witness',
  },
};
const VIP = {
  apiVersion: 'heartline.dev/v1alpha1',
  kind: 'VirtualIP',
  metadata: { name: 'web', namespace: SYSTEM_NS },
  spec: { clusterRef: { name: 'heartline' }, address: '198.18.0.100/24' },
};

const AUTH_SECRET = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'heartline-auth', namespace: SYSTEM_NS },
  stringData: { '1': 'deploy-test-only-key-0123456789abcdef' },
};
const OTHER_SECRET = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'other', namespace: SYSTEM_NS },
  stringData: { x: 'y' },
};

/** A scraper identity this test binds to heartline-metrics-reader (deleted in afterAll). */
const SCRAPER = 'metrics-scraper';
const SCRAPER_BINDING = 'heartline-deploy-test-scraper';

/** A token of a ServiceAccount bound to heartline-metrics-reader, as a user's Prometheus would be. */
async function scraperToken(): Promise<string> {
  await must(
    ['apply', '-f', '-'],
    [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SCRAPER, namespace: SYSTEM_NS } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: SCRAPER_BINDING },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'heartline-metrics-reader',
        },
        subjects: [{ kind: 'ServiceAccount', name: SCRAPER, namespace: SYSTEM_NS }],
      },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n'),
  );
  return (await must(['create', 'token', SCRAPER, '-n', SYSTEM_NS, '--duration=10m'])).trim();
}

/** The auth Secret, HACluster and VirtualIP the agent and controller checks read (idempotent). */
const applyClusterObjects = () =>
  must(['apply', '-f', '-'], [AUTH_SECRET, HACLUSTER, VIP].map((o) => JSON.stringify(o)).join('\n'));

describe('deploy/ on a real API server', () => {
  let base: K8sObject[];
  let example: K8sObject[];
  let tmp: string;
  let psaNs: string | undefined;
  let createdSystemNs = false;
  let createdExampleNs = false;
  /** Neither namespace existed before this run: it may create and delete them. */
  let owned = false;
  let controller: ChildProcess | undefined;
  const api: RestApiSource[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hl-deploy-'));
    base = await render('deploy/base');
    example = await render('deploy/overlays/example');
    const existing = await kubectl([
      'get',
      'namespace',
      SYSTEM_NS,
      EXAMPLE_NS,
      '--ignore-not-found',
      '-o',
      'name',
    ]);
    if (existing.stdout.trim() !== '') {
      throw new Error(
        `namespace(s) ${existing.stdout.trim().replace(/\n/g, ', ')} already exist on the test API server; this test owns them: delete them first`,
      );
    }
    owned = true;
  });

  afterAll(async () => {
    for (const release of afterAllRelease.splice(0)) release();
    if (controller && controller.exitCode === null) controller.kill('SIGKILL');
    await Promise.all(api.map((a) => a.close()));
    // Only what this run applied: createdSystemNs is set by the first real apply.
    const clusterScoped = createdSystemNs ? base.filter((o) => CLUSTER_SCOPED_KINDS.has(o.kind)) : [];
    if (clusterScoped.length > 0) {
      await kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], {
        input: toYaml(clusterScoped),
      });
      await kubectl(['delete', 'clusterrolebinding', SCRAPER_BINDING, '--ignore-not-found', '--wait=false']);
    }
    if (createdSystemNs) await deleteNamespace(SYSTEM_NS);
    if (createdExampleNs) await deleteNamespace(EXAMPLE_NS);
    if (psaNs) await deleteNamespace(psaNs);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  describe('rendering', () => {
    it('renders the base: CRDs equal to the generator, one namespace, both workloads', () => {
      const crds = base.filter((o) => o.kind === 'CustomResourceDefinition');
      const generated = generateCrds();
      expect(crds.map((c) => c.metadata.name).sort()).toEqual(generated.map((c) => c.name).sort());
      for (const g of generated) {
        expect(find(base, 'CustomResourceDefinition', g.name).spec).toEqual(g.object.spec);
      }
      expect(base.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)).toEqual([SYSTEM_NS]);
      expect(find(base, 'Deployment', 'heartline-controller', SYSTEM_NS)).toBeDefined();
      expect(find(base, 'DaemonSet', 'heartline-agent', SYSTEM_NS)).toBeDefined();
      for (const w of base.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet') as Workload[]) {
        for (const c of w.spec.template.spec.containers) expect(c.securityContext).toBeDefined();
      }
    });

    it('keeps the base and the example overlay consistent with their heartline-config', () => {
      expectConsistent(base);
      expectConsistent(example);
      expect(configOf(base)).toEqual({
        cluster: 'heartline',
        namespace: SYSTEM_NS,
        authSecret: 'heartline-auth',
        adminGroup: 'heartline:admins',
      });
      expect(configOf(example)).toEqual({
        cluster: 'web',
        namespace: EXAMPLE_NS,
        authSecret: 'heartline-auth',
        adminGroup: 'heartline:admins',
      });
      // The overlay changes configuration only: same objects (by kind and name) as the base.
      const ids = (objs: K8sObject[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
      expect(ids(example)).toEqual(ids(base));
    });

    it('agent DaemonSet: hostNetwork, netd as PID 1 with its capabilities only, the agent as uid 65532, read-only root, no escalation', () => {
      const ds = find<Workload>(base, 'DaemonSet', 'heartline-agent', SYSTEM_NS);
      const pod = ds.spec.template.spec;
      expect(pod).toMatchObject({
        hostNetwork: true,
        dnsPolicy: 'ClusterFirstWithHostNet',
        serviceAccountName: 'heartline-agent',
      });
      expect(pod.hostPID ?? false).toBe(false);
      expect(pod.hostIPC ?? false).toBe(false);
      // Two host paths only: the incarnation counter's directory (docs/adr/0015), and the
      // directory of the programs Resources may run, read-only (docs/security.md).
      expect((pod.volumes ?? []).filter((v) => v.hostPath)).toEqual([
        { name: 'state', hostPath: { path: '/var/lib/heartline', type: 'DirectoryOrCreate' } },
        { name: 'resource-d', hostPath: { path: '/etc/heartline/resource.d', type: 'DirectoryOrCreate' } },
      ]);
      expect(pod.containers).toHaveLength(1);
      const c = pod.containers[0]!;
      expect(c.volumeMounts?.find((m) => m.name === 'resource-d')).toEqual({
        name: 'resource-d',
        mountPath: '/etc/heartline/resource.d',
        readOnly: true,
      });
      // The kubelet writes the service-account token 0640 root:<fsGroup> when the pod has an
      // fsGroup (KEP-2451), 0600 for the containers' runAsUser when every container sets one,
      // and 0644 otherwise. fsGroup 65532: the agent (65532:65532, run by netd) reads it,
      // Resources (65534, no supplementary group) cannot. Proven on real kubelets by
      // test/e2e/kubelet-cluster.test.ts (the agent authenticates with it).
      expect(pod.containers.every((x) => x.securityContext?.runAsUser !== undefined)).toBe(true);
      expect(pod.securityContext?.fsGroup).toBe(65532);
      expect(c.command).toEqual(expect.arrayContaining(['--agent-gid=65532', '--resource-gid=65534']));
      expect(
        c.command?.filter((a) => a.startsWith('--resource-uid=0') || a.startsWith('--resource-gid=0')),
      ).toEqual([]);
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
      });
      expect(c.securityContext?.privileged ?? false).toBe(false);
      expect(c.securityContext?.capabilities?.drop).toEqual(['ALL']);
      // netd's: it keeps NET_ADMIN, NET_RAW, KILL, SETUID and SETGID (it starts Resources); the
      // others serve once at start (docs/adr/0020-unprivileged-agent.md); the agent holds none.
      expect([...(c.securityContext?.capabilities?.add ?? [])].sort()).toEqual([
        'CHOWN',
        'IPC_LOCK',
        'KILL',
        'NET_ADMIN',
        'NET_BIND_SERVICE',
        'NET_RAW',
        'SETGID',
        'SETPCAP',
        'SETUID',
        'SYS_NICE',
      ]);
      // docs/fence.md: heartline-netd must be PID 1 with the agent as its child; netd binds
      // the heartbeat socket and runs the agent as 65532 (docs/adr/0020).
      const exec = c.command?.indexOf('--exec') ?? -1;
      expect(c.command?.[0]).toBe('heartline-netd');
      expect(c.command?.slice(1, exec)).toEqual([
        '--heartbeat-bind=$(HOST_IP):694',
        '--agent-uid=65532',
        '--agent-gid=65532',
        '--agent-state-dir=/var/lib/heartline',
        '--agent-nice=-10',
        '--resource-uid=65534',
        '--resource-gid=65534',
      ]);
      expect(c.command?.slice(exec, exec + 3)).toEqual(['--exec', 'heartline', 'agent']);
      expect(c.command).toEqual(
        expect.arrayContaining([
          '--cluster=$(HEARTLINE_CLUSTER)',
          '--namespace=$(HEARTLINE_NAMESPACE)',
          '--node=$(NODE_NAME)',
          // The node's address, never 0.0.0.0 (not reachable through the VIPs).
          '--metrics-listen=$(HOST_IP):9694',
          '--state-dir=/var/lib/heartline',
        ]),
      );
      expect(c.command?.filter((a) => a.startsWith('--metrics-insecure'))).toEqual([]);
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
      // docs/fence.md "Kernels": netd probes which address mark the kernel keeps.
      expect(env.HEARTLINE_NETD_OWNER_MODE?.value).toBe('auto');
      expect(env.NODE_NAME?.valueFrom).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
      expect(env.HOST_IP?.valueFrom).toEqual({ fieldRef: { fieldPath: 'status.hostIP' } });
      expect(env.HEARTLINE_CLUSTER?.valueFrom).toEqual({
        configMapKeyRef: { name: 'heartline-config', key: 'cluster' },
      });
      expect(env.HEARTLINE_NAMESPACE?.valueFrom).toEqual({
        configMapKeyRef: { name: 'heartline-config', key: 'namespace' },
      });
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics', scheme: 'HTTPS' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics', scheme: 'HTTPS' });
      expect(c.ports).toEqual(
        expect.arrayContaining([
          { name: 'metrics', containerPort: 9694, protocol: 'TCP' },
          { name: 'heartbeat', containerPort: 694, protocol: 'UDP' },
        ]),
      );
      expect(pod.tolerations?.map((t) => t.key)).toContain('node-role.kubernetes.io/control-plane');
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
      // Never two agents on one node, not even during a rollout.
      expect(ds.spec.updateStrategy?.rollingUpdate?.maxSurge).toBe(0);
    });

    it("the agent container's command and capabilities: netd binds the heartbeat port and runs the agent with CapEff 0; without NET_BIND_SERVICE or SETUID nothing starts", async () => {
      // Root limited to the manifest's capabilities, as the container runtime starts it
      // (bounding set = capabilities.add, nothing inheritable, no_new_privs for
      // allowPrivilegeEscalation: false), in a private network namespace, running the
      // manifest's netd flags with a stand-in agent that adopts the socket on fd 4.
      const ds = find<Workload>(base, 'DaemonSet', 'heartline-agent', SYSTEM_NS);
      const c = ds.spec.template.spec.containers[0]!;
      const port = c.ports?.find((p) => p.name === 'heartbeat')?.containerPort;
      expect(port).toBe(694);
      const command = c.command!;
      const netdFlags = command.slice(1, command.indexOf('--exec'));
      expect(netdFlags).toContain(`--heartbeat-bind=$(HOST_IP):${port}`);
      // uids 65532 and 65534 execute netd (the launcher client): from where they reach the
      // checkout (a bind mount when it is in a 0700 directory, as CI may clone it).
      const reach = agentRoot(`deploy-${process.pid}`);
      afterAllRelease.push(() => reach.release());
      const netd = path.join(reach.path, path.relative(REPO, await resolveNetdBinary()));
      const state = await mkdtemp(path.join(os.tmpdir(), 'hl-deploy-state-'));
      const agent = [
        "const l=require('fs').readFileSync('/proc/self/status','utf8').split(String.fromCharCode(10));",
        "const f=k=>l.find(x=>x.startsWith(k+':')).slice(k.length+1).trim();",
        "const d=require('dgram').createSocket('udp4');d.on('error',e=>{console.log(e.code);process.exit(1)});",
        'd.bind({fd:Number(process.env.HEARTLINE_HEARTBEAT_FD)},()=>{',
        "console.log('uid',parseInt(f('Uid')),'CapEff',f('CapEff'),'NoNewPrivs',f('NoNewPrivs'),'port',d.address().port);d.close();",
        // A Resource through netd's launcher, as the agent starts them: what is it?
        'const L=process.env.HEARTLINE_LAUNCHER,F=Number(process.env.HEARTLINE_LAUNCHER_FD);',
        "const r=require('child_process').spawnSync(L,['--run','--launcher-fd='+F,'--',L,'--self-status'],{stdio:['ignore','pipe','inherit','ignore','ignore',F],encoding:'utf8',cwd:'/'});",
        "const g=k=>r.stdout.split(String.fromCharCode(10)).find(x=>x.startsWith(k+':')).slice(k.length+1).trim();",
        "console.log('resource uid',parseInt(g('Uid')),'CapPrm',g('CapPrm'),'CapBnd',g('CapBnd'),'NoNewPrivs',g('NoNewPrivs'))})",
      ].join('');
      const runAs = async (caps: string[]) => {
        const bounding = ['-all', ...caps.map((cap) => `+${cap.toLowerCase()}`)].join(',');
        // The kubelet expands $(HOST_IP); this private namespace has no node address.
        const flags = netdFlags.map((f) =>
          f.startsWith('--agent-state-dir=')
            ? `--agent-state-dir=${state}/s`
            : f.replace('$(HOST_IP)', '0.0.0.0'),
        );
        const r = await execFileAsync(
          'unshare',
          [
            '-n',
            'setpriv',
            '--bounding-set',
            bounding,
            '--inh-caps=-all',
            '--no-new-privs',
            netd,
            ...flags,
            '--exec',
            process.execPath,
            '-e',
            agent,
          ],
          { timeout: 20_000 },
        ).catch((err: { code: number; stdout: string; stderr: string }) => err);
        return { code: 'code' in r ? r.code : 0, stdout: r.stdout.trim(), stderr: r.stderr };
      };
      try {
        const caps = c.securityContext?.capabilities?.add ?? [];
        const ok = await runAs(caps);
        expect(ok.stdout).toBe(
          [
            `uid 65532 CapEff 0000000000000000 NoNewPrivs 1 port ${port}`,
            'resource uid 65534 CapPrm 0000000000000000 CapBnd 0000000000000000 NoNewPrivs 1',
          ].join('\n'),
        );
        // Exactly those five (0x30e0): SYS_NICE (bit 23) and IPC_LOCK (bit 14) are gone.
        expect(ok.stderr).toMatch(
          /capabilities kept: NET_ADMIN NET_RAW KILL SETUID SETGID \(effective 0x00000000000030e0\)/,
        );
        // The fence wins the CPU and never waits on a page fault (docs/adr/0039); SYS_NICE and
        // IPC_LOCK serve once, before the line above drops them.
        expect(ok.stderr).toMatch(/fence priority: SCHED_FIFO 10; memory locked/);
        expect(ok.stderr).toMatch(/agent priority: nice -10/);
        const noNice = await runAs(caps.filter((cap) => cap !== 'SYS_NICE' && cap !== 'IPC_LOCK'));
        expect(noNice.stderr).toMatch(/fence priority: normal \(no CAP_SYS_NICE/);
        expect(noNice.stderr).toMatch(/--agent-nice=-10: Permission denied .*the agent runs at nice 0/);
        expect(noNice.code).toBe(0);
        // Without SETPCAP the Resources' bounding set could not be emptied: netd does not start.
        const noSetpcap = await runAs(caps.filter((cap) => cap !== 'SETPCAP'));
        expect(noSetpcap.code).toBe(1);
        expect(noSetpcap.stderr).toMatch(
          /--resource-uid: emptying the capability bounding set .*needs CAP_SETPCAP/,
        );
        const noBind = await runAs(caps.filter((cap) => cap !== 'NET_BIND_SERVICE'));
        expect(noBind.code).toBe(1);
        expect(noBind.stderr).toMatch(
          /cannot bind the heartbeat socket: Permission denied \(a port below 1024 needs CAP_NET_BIND_SERVICE\)/,
        );
        const noSetuid = await runAs(caps.filter((cap) => cap !== 'SETUID'));
        expect(noSetuid.code).toBe(126);
        expect(noSetuid.stderr).toMatch(/setresuid \(needs CAP_SETUID\) failed/);
      } finally {
        await rm(state, { recursive: true, force: true });
      }
    });

    it('controller Deployment: 2 replicas, non-root, no capabilities, witness at the pod IP, probes on 9695', () => {
      const d = find<Workload>(base, 'Deployment', 'heartline-controller', SYSTEM_NS);
      expect(d.spec.replicas).toBe(2);
      const pod = d.spec.template.spec;
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.serviceAccountName).toBe('heartline-controller');
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
      expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
      expect(pod.securityContext?.sysctls).toEqual([
        { name: 'net.ipv4.ip_unprivileged_port_start', value: '0' },
      ]);
      const c = pod.containers[0]!;
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.securityContext?.capabilities?.add).toBeUndefined();
      expect(c.args).toEqual(
        expect.arrayContaining([
          'controller',
          '--witness-address=$(POD_IP)',
          '--witness-listen=0.0.0.0:694',
          '--namespace=$(HEARTLINE_NAMESPACE)',
          '--metrics-listen=$(POD_IP):9695',
        ]),
      );
      expect(c.args?.filter((a) => a.startsWith('--metrics-insecure'))).toEqual([]);
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
      expect(env.POD_IP?.valueFrom).toEqual({ fieldRef: { fieldPath: 'status.podIP' } });
      expect(env.POD_NAMESPACE?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics', scheme: 'HTTPS' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics', scheme: 'HTTPS' });
      expect(c.ports).toEqual(
        expect.arrayContaining([
          { name: 'metrics', containerPort: 9695, protocol: 'TCP' },
          { name: 'witness', containerPort: 694, protocol: 'UDP' },
        ]),
      );
    });
    it('the image provides what the manifests run (Dockerfile and deploy/image/heartline)', async () => {
      const dockerfile = await readFile('Dockerfile', 'utf8');
      const installed = [...dockerfile.matchAll(/^COPY .* (\/usr\/local\/bin\/\S+)$/gm)].map((m) => m[1]);
      const workloads = base.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet') as Workload[];
      const programs = workloads.flatMap((w) => w.spec.template.spec.containers.map((c) => c.command![0]!));
      const netdCommand = find<Workload>(base, 'DaemonSet', 'heartline-agent').spec.template.spec
        .containers[0]!.command!;
      const netdChild = netdCommand[netdCommand.indexOf('--exec') + 1]!;
      for (const p of new Set([...programs, netdChild])) expect(installed).toContain(`/usr/local/bin/${p}`);
      // The entry script runs the same file as package.json's bin, from where the Dockerfile puts dist.
      const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { bin: { heartline: string } };
      const script = await readFile('deploy/image/heartline', 'utf8');
      expect(script).toContain(`\${HEARTLINE_HOME:-/opt/heartline}/${pkg.bin.heartline}"`);
      expect(dockerfile).toMatch(/HEARTLINE_HOME=\/opt\/heartline/);
      expect(dockerfile).toMatch(/COPY --from=build \/src\/dist\/src\/ dist\/src\//);
    });
  });

  describe('on the API server', () => {
    beforeAll(async () => {
      // RBAC (and what it needs) for real; the rest only through the dry runs below.
      if (!owned) throw new Error(`${SYSTEM_NS} or ${EXAMPLE_NS} belongs to someone else on this API server`);
      createdSystemNs = true;
      await must(['apply', '-f', '-'], toYaml(base.filter((o) => RBAC_KINDS.has(o.kind))));
      await must(['create', 'namespace', EXAMPLE_NS]);
      createdExampleNs = true;
    });

    it('accepts the whole base and the example overlay in a server-side dry run', async () => {
      for (const [name, objs] of [
        ['deploy/base', base],
        ['deploy/overlays/example', example],
      ] as const) {
        // As users install it (client-side apply). The only tolerated warnings are about the
        // last-applied annotation on objects this run applied another way (the CRDs).
        const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: toYaml(objs) });
        const stderr = r.stderr
          .split('\n')
          .filter((l) => l.trim() !== '' && !/^Warning: .*last-applied-configuration/.test(l));
        expect({ name, code: r.code, stderr }).toEqual({ name, code: 0, stderr: [] });
        expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(objs.length);
      }
    });

    it('Pod Security: the controller passes "restricted"; the agent needs the privileged label heartline-system carries', async () => {
      psaNs = await createTestNamespace('hl-deploy-psa');
      await must(['label', 'namespace', psaNs, 'pod-security.kubernetes.io/enforce=restricted']);
      const d = find<Workload>(base, 'Deployment', 'heartline-controller', SYSTEM_NS);
      const ds = find<Workload>(base, 'DaemonSet', 'heartline-agent', SYSTEM_NS);
      const dry = (pod: K8sObject) =>
        kubectl(['create', '--dry-run=server', '-f', '-'], { input: stringify(pod) });

      const ctl = await dry(podFrom(d, 'controller-psa', psaNs));
      expect({ code: ctl.code, stderr: ctl.stderr.trim() }).toEqual({ code: 0, stderr: '' });
      const agentRestricted = await dry(podFrom(ds, 'agent-psa', psaNs));
      expect(agentRestricted.code).not.toBe(0);
      expect(agentRestricted.stderr).toContain('violates PodSecurity "restricted');
      expect(agentRestricted.stderr).toContain('hostNetwork=true');
      const agentSystem = await dry(podFrom(ds, 'agent-psa', SYSTEM_NS));
      expect({ code: agentSystem.code, stderr: agentSystem.stderr.trim() }).toEqual({ code: 0, stderr: '' });
    });

    it('agent RBAC: reads its own HACluster, VIPs, Resources, Nodes and one Secret; writes Events, Resource status and Node annotations', async () => {
      const n = ['-n', SYSTEM_NS];
      const yes = [
        ['watch', 'virtualips.heartline.dev', ...n],
        ['list', 'resources.heartline.dev', ...n],
        ['watch', 'haclusters.heartline.dev/heartline', ...n],
        ['get', 'secrets/heartline-auth', ...n],
        ['watch', 'secrets/heartline-auth', ...n],
        ['watch', 'nodes'],
        // Its member key on its own Node only: the heartline-agent-member-key policy.
        ['patch', 'nodes'],
        ['create', 'events.events.k8s.io', ...n],
        ['patch', 'resources.heartline.dev', '--subresource=status', ...n],
        // /metrics authentication and authorization (deploy/base/metrics-rbac.yaml).
        ['create', 'tokenreviews.authentication.k8s.io'],
        ['create', 'subjectaccessreviews.authorization.k8s.io'],
      ];
      const no = [
        ['get', '/metrics'],
        // LoadBalancer Services are the controller's business only.
        ['create', 'virtualips.heartline.dev', ...n],
        ['watch', 'services', '--all-namespaces'],
        ['create', 'localsubjectaccessreviews.authorization.k8s.io', ...n],
        ['patch', 'virtualips.heartline.dev', '--subresource=status', ...n],
        ['patch', 'resources.heartline.dev', ...n],
        ['patch', 'virtualips.heartline.dev', ...n],
        ['update', 'haclusters.heartline.dev', '--subresource=status', ...n],
        ['get', 'haclusters.heartline.dev/other', ...n],
        ['list', 'haclusters.heartline.dev', ...n],
        ['get', 'secrets/other', ...n],
        ['list', 'secrets', ...n],
        ['update', 'secrets/heartline-auth', ...n],
        ['get', 'secrets/heartline-auth', '-n', 'kube-system'],
        ['watch', 'virtualips.heartline.dev', '-n', 'default'],
        ['get', 'leases.coordination.k8s.io/heartline-controller', ...n],
        ['create', 'leases.coordination.k8s.io', ...n],
        ['update', 'leases.coordination.k8s.io/heartline-controller', ...n],
        ['update', 'nodes'],
        ['patch', 'nodes', '--subresource=status'],
        ['delete', 'nodes'],
        ['create', 'events', ...n],
        ['create', 'pods', ...n],
      ];
      const got = async (list: string[][]) =>
        Object.fromEntries(
          await Promise.all(list.map(async (a) => [a.join(' '), await canI(AGENT, a)] as const)),
        );
      expect(await got(yes)).toEqual(Object.fromEntries(yes.map((a) => [a.join(' '), true])));
      expect(await got(no)).toEqual(Object.fromEntries(no.map((a) => [a.join(' '), false])));
    });

    it('controller RBAC: CRDs and the auth Secret of its namespace, status and finalizers, its Lease, the agent pods, LoadBalancer Services; nothing else', async () => {
      const n = ['-n', SYSTEM_NS];
      const yes = [
        ['watch', 'haclusters.heartline.dev', ...n],
        ['list', 'virtualips.heartline.dev', ...n],
        ['watch', 'resources.heartline.dev', ...n],
        ['patch', 'virtualips.heartline.dev', '--subresource=status', ...n],
        ['patch', 'haclusters.heartline.dev', '--subresource=status', ...n],
        ['patch', 'virtualips.heartline.dev', ...n],
        ['get', 'secrets/heartline-auth', ...n],
        ['list', 'secrets/heartline-auth', ...n],
        ['watch', 'secrets/heartline-auth', ...n],
        ['watch', 'nodes'],
        ['create', 'events.events.k8s.io', ...n],
        ['create', 'leases.coordination.k8s.io', ...n],
        ['get', 'leases.coordination.k8s.io/heartline-controller', ...n],
        ['update', 'leases.coordination.k8s.io/heartline-controller', ...n],
        // The agent pods (--agent-pods, docs/adr/0024), in its own namespace only.
        ['watch', 'pods', ...n],
        ['list', 'pods', ...n],
        ['create', 'tokenreviews.authentication.k8s.io'],
        ['create', 'subjectaccessreviews.authorization.k8s.io'],
        // LoadBalancer Services (docs/adr/0028): pools and one VirtualIP per address in its
        // namespace; Services, their status, EndpointSlices and Events in every namespace.
        ['watch', 'addresspools.heartline.dev', ...n],
        ['patch', 'addresspools.heartline.dev', '--subresource=status', ...n],
        ['create', 'virtualips.heartline.dev', ...n],
        ['delete', 'virtualips.heartline.dev', ...n],
        ['watch', 'services', '--all-namespaces'],
        ['patch', 'services', '--subresource=status', '-n', 'default'],
        ['watch', 'endpointslices.discovery.k8s.io', '--all-namespaces'],
        ['create', 'events.events.k8s.io', '-n', 'default'],
      ];
      const no = [
        ['get', '/metrics'],
        ['delete', 'nodes'],
        ['patch', 'nodes'],
        ['get', 'secrets/any', '-n', 'kube-system'],
        ['get', 'secrets/other', ...n],
        ['list', 'secrets', ...n],
        ['watch', 'secrets', ...n],
        ['list', 'secrets', '-n', 'default'],
        ['list', 'secrets', '--all-namespaces'],
        ['create', 'secrets', ...n],
        ['update', 'secrets/heartline-auth', ...n],
        ['delete', 'virtualips.heartline.dev', '-n', 'default'],
        ['create', 'virtualips.heartline.dev', '-n', 'default'],
        ['patch', 'services', '-n', 'default'],
        ['create', 'services', '-n', 'default'],
        ['patch', 'addresspools.heartline.dev', ...n],
        ['patch', 'resources.heartline.dev', '--subresource=status', ...n],
        ['watch', 'virtualips.heartline.dev', '-n', 'default'],
        ['update', 'leases.coordination.k8s.io/other', ...n],
        ['get', 'leases.coordination.k8s.io/heartline-controller', '-n', 'kube-system'],
        ['delete', 'leases.coordination.k8s.io/heartline-controller', ...n],
        ['create', 'pods', ...n],
        ['delete', 'pods', ...n],
        ['list', 'pods', '-n', 'default'],
        ['list', 'pods', '--all-namespaces'],
      ];
      const got = async (list: string[][]) =>
        Object.fromEntries(
          await Promise.all(list.map(async (a) => [a.join(' '), await canI(CONTROLLER, a)] as const)),
        );
      expect(await got(yes)).toEqual(Object.fromEntries(yes.map((a) => [a.join(' '), true])));
      expect(await got(no)).toEqual(Object.fromEntries(no.map((a) => [a.join(' '), false])));
    });

    it('heartline-metrics-reader grants get /metrics and nothing else; bound, it lets a scraper in', async () => {
      const reader = find(base, 'ClusterRole', 'heartline-metrics-reader') as K8sObject & {
        rules: unknown[];
      };
      expect(reader.rules).toEqual([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
      expect(
        base.filter(
          (o) =>
            (o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding') &&
            (o as K8sObject & { roleRef: { name: string } }).roleRef.name === 'heartline-metrics-reader',
        ),
      ).toEqual([]);
      await scraperToken();
      const scraper = `system:serviceaccount:${SYSTEM_NS}:${SCRAPER}`;
      expect(await canI(scraper, ['get', '/metrics'])).toBe(true);
      expect(await canI(scraper, ['get', '/healthz/etcd'])).toBe(false);
      expect(await canI(scraper, ['list', 'secrets', '-n', SYSTEM_NS])).toBe(false);
      expect(await canI(scraper, ['create', 'tokenreviews.authentication.k8s.io'])).toBe(false);
    });

    it("the agent's /metrics reviews work through its REST client on the agent's token", async () => {
      const config = await loadRestConfig({ path: await serviceAccountKubeconfig(tmp, 'heartline-agent') });
      const authorizer = new MetricsAuthorizer({ api: restAccessReviewApi(new RestClient(config)) });
      const scraper = await scraperToken();
      expect(await authorizer.decide(`Bearer ${scraper}`, 'get', '/metrics')).toEqual({
        status: 200,
        user: `system:serviceaccount:${SYSTEM_NS}:${SCRAPER}`,
      });
      const controllerToken = (
        await must(['create', 'token', 'heartline-controller', '-n', SYSTEM_NS])
      ).trim();
      expect(await authorizer.decide(`Bearer ${controllerToken}`, 'get', '/metrics')).toMatchObject({
        status: 403,
        user: CONTROLLER,
      });
      expect(await authorizer.decide('Bearer not-a-token', 'get', '/metrics')).toMatchObject({ status: 401 });
    });

    it('the example overlay moves the namespaced grants and names to its HACluster', async () => {
      await must(
        ['apply', '-f', '-'],
        toYaml(example.filter((o) => RBAC_KINDS.has(o.kind) && o.kind !== 'Namespace')),
      );
      try {
        const n = ['-n', EXAMPLE_NS];
        expect(await canI(AGENT, ['watch', 'secrets/heartline-auth', ...n])).toBe(true);
        expect(await canI(AGENT, ['get', 'secrets/other', ...n])).toBe(false);
        expect(await canI(AGENT, ['list', 'secrets', ...n])).toBe(false);
        expect(await canI(AGENT, ['watch', 'haclusters.heartline.dev/web', ...n])).toBe(true);
        expect(await canI(AGENT, ['get', 'haclusters.heartline.dev/heartline', ...n])).toBe(false);
        expect(await canI(CONTROLLER, ['watch', 'secrets/heartline-auth', ...n])).toBe(true);
        expect(await canI(CONTROLLER, ['list', 'secrets', ...n])).toBe(false);
        expect(
          await canI(CONTROLLER, ['patch', 'virtualips.heartline.dev', '--subresource=status', ...n]),
        ).toBe(true);
      } finally {
        // Back to the base's configuration for the tests that follow.
        await must(['apply', '-f', '-'], toYaml(base.filter((o) => o.kind === 'ConfigMap')));
      }
    });

    it('a Secret watch by name is authorized by resourceNames (real requests on the agent token)', async () => {
      await applyClusterObjects();
      await must(['apply', '-f', '-'], JSON.stringify(OTHER_SECRET));
      const agentKc = await serviceAccountKubeconfig(tmp, 'heartline-agent');
      const as = (args: string[]) => kubectl([`--kubeconfig=${agentKc}`, ...args]);
      const byName = await as([
        'get',
        'secrets',
        '-n',
        SYSTEM_NS,
        '--field-selector=metadata.name=heartline-auth',
        '-o',
        'name',
      ]);
      expect({ code: byName.code, out: byName.stdout.trim() }).toEqual({
        code: 0,
        out: 'secret/heartline-auth',
      });
      const all = await as(['get', 'secrets', '-n', SYSTEM_NS, '-o', 'name']);
      expect(all.code).not.toBe(0);
      expect(all.stderr).toContain('forbidden');
      const other = await as(['get', 'secret', 'other', '-n', SYSTEM_NS]);
      expect(other.code).not.toBe(0);
      expect(other.stderr).toContain('forbidden');
    });

    it("the agent's watches and Events work through its RestApiSource on the agent's token", async () => {
      await applyClusterObjects();
      const config = await loadRestConfig({ path: await serviceAccountKubeconfig(tmp, 'heartline-agent') });
      const source = new RestApiSource(
        { config, clock: new SystemClock(), logger: pino({ level: 'silent' }) },
        {
          identity: 'deploy-test-node',
          reportingController: 'heartline.dev/agent',
          resyncMs: 0,
          backoffMaxMs: 1000,
        },
      );
      api.push(source);
      // The same watches as Agent.start() and its auth Secret watch (src/agent/agent.ts).
      const watches: [ApiKind, WatchOptions][] = [
        ['HACluster', { namespace: SYSTEM_NS, fieldSelector: 'metadata.name=heartline' }],
        ['VirtualIP', { namespace: SYSTEM_NS }],
        ['Resource', { namespace: SYSTEM_NS }],
        ['Node', {}],
        ['Secret', { namespace: SYSTEM_NS, fieldSelector: 'metadata.name=heartline-auth' }],
      ];
      const seen = new Map<ApiKind, string[]>();
      const synced = new Set<ApiKind>();
      const handles: Stoppable[] = watches.map(([kind, opts]) =>
        source.watch(
          kind,
          (e) => {
            if (e.type === 'synced') synced.add(kind);
            else seen.set(kind, [...(seen.get(kind) ?? []), e.object.metadata.name]);
          },
          opts,
        ),
      );
      try {
        await until('every agent watch to sync', async () => synced.size === watches.length, 20_000);
        expect(seen.get('HACluster')).toEqual(['heartline']);
        expect(seen.get('Secret')).toEqual(['heartline-auth']);
        expect(seen.get('VirtualIP')).toEqual(['web']);
        const obj = await must(['get', 'vip', 'web', '-n', SYSTEM_NS, '-o', 'json']);
        await source.event({
          regarding: JSON.parse(obj),
          type: 'Normal',
          reason: 'DeployTest',
          note: 'agent token can create Events',
          action: 'Test',
        });
        const events = await must([
          'get',
          'events.events.k8s.io',
          '-n',
          SYSTEM_NS,
          '-o',
          'jsonpath={.items[*].reason}',
        ]);
        expect(events.split(' ')).toContain('DeployTest');
        await expect(
          source.patchStatus('VirtualIP', { namespace: SYSTEM_NS, name: 'web' }, { phase: 'Bound' }),
        ).rejects.toThrow(/HTTP 403/);
      } finally {
        for (const h of handles) h.stop();
      }
    });

    it('the real controller runs on its token: leads, gets ready, writes status and the finalizer, never forbidden', async () => {
      await applyClusterObjects();
      const kc = await serviceAccountKubeconfig(tmp, 'heartline-controller');
      const d = find<Workload>(base, 'Deployment', 'heartline-controller', SYSTEM_NS);
      const leaseName = d.spec.template.spec.containers[0]!.args!.find((a) =>
        a.startsWith('--lease-name='),
      )!.split('=')[1]!;
      controller = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'src/cli/main.ts',
          'controller',
          `--kubeconfig=${kc}`,
          `--namespace=${SYSTEM_NS}`,
          `--lease-namespace=${SYSTEM_NS}`,
          `--lease-name=${leaseName}`,
          '--identity=deploy-test',
          '--witness-listen=127.0.0.1:0',
          '--witness-address=127.0.0.1',
          '--metrics-listen=127.0.0.1:0',
        ],
        {
          cwd: process.cwd(),
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, HEARTLINE_LOG_LEVEL: 'info' },
        },
      );
      const lines: string[] = [];
      let buf = '';
      controller.stdout!.on('data', (b: Buffer) => {
        buf += b.toString();
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        lines.push(...parts);
      });
      let stderr = '';
      controller.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<number | null>((resolve) =>
        controller!.once('exit', (code) => resolve(code)),
      );
      try {
        const started = await until('"controller started"', async () =>
          lines
            .map((l) => JSON.parse(l) as { msg: string; metrics?: string })
            .find((l) => l.msg === 'controller started'),
        );
        // HTTPS by default (self-signed); the probes need no token.
        expect(started.metrics).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        const ready = await until('/readyz 200 (every watch listed)', async () => {
          const r = await insecureGet(`${started.metrics}/readyz`);
          return r.status === 200 ? r.body : undefined;
        });
        expect(ready.trim()).toBe('leader');
        // /metrics: the controller reviews tokens on its own ServiceAccount's RBAC.
        expect((await insecureGet(`${started.metrics}/metrics`)).status).toBe(401);
        const agentToken = (await must(['create', 'token', 'heartline-agent', '-n', SYSTEM_NS])).trim();
        expect((await insecureGet(`${started.metrics}/metrics`, { token: agentToken })).status).toBe(403);
        const scrape = await insecureGet(`${started.metrics}/metrics`, { token: await scraperToken() });
        expect(scrape.status).toBe(200);
        expect(scrape.body).toContain('heartline_controller_leader 1');
        const holder = await must([
          'get',
          'lease',
          leaseName,
          '-n',
          SYSTEM_NS,
          '-o',
          'jsonpath={.spec.holderIdentity}',
        ]);
        expect(holder).toBe('deploy-test');
        await until('HACluster status.witness', async () => {
          const r = await kubectl([
            'get',
            'hac',
            'heartline',
            '-n',
            SYSTEM_NS,
            '-o',
            'jsonpath={.status.witness.address}',
          ]);
          return r.stdout === '127.0.0.1';
        });
        // It read the auth Secret by name (its only Secret grant): the condition says valid.
        await until('HACluster condition AuthSecretInvalid=False', async () => {
          const r = await kubectl([
            'get',
            'hac',
            'heartline',
            '-n',
            SYSTEM_NS,
            '-o',
            'jsonpath={.status.conditions[?(@.type=="AuthSecretInvalid")].status}',
          ]);
          return r.stdout === 'False';
        });
        await until('the VirtualIP finalizer and status', async () => {
          const r = await kubectl(['get', 'vip', 'web', '-n', SYSTEM_NS, '-o', 'json']);
          const o = JSON.parse(r.stdout) as {
            metadata: { finalizers?: string[] };
            status?: { conditions?: unknown[] };
          };
          return (
            (o.metadata.finalizers ?? []).includes(VIP_FINALIZER) && (o.status?.conditions ?? []).length > 0
          );
        });
        controller.kill('SIGTERM');
        expect(await exited).toBe(0);
        const denied = [...lines, ...stderr.split('\n')].filter((l) => /forbidden|HTTP 403/i.test(l));
        expect(denied).toEqual([]);
      } finally {
        if (controller.exitCode === null) controller.kill('SIGKILL');
        // Let the namespace go without a controller to remove the finalizer.
        await kubectl([
          'patch',
          'vip',
          'web',
          '-n',
          SYSTEM_NS,
          '--type=merge',
          '-p',
          '{"metadata":{"finalizers":null}}',
        ]);
      }
    });

    describe('admission policies (deploy/base/admission)', () => {
      let ns: string;
      const NODE = 'hl-deploy-test-n1';
      const OTHER = 'hl-deploy-test-n2';
      const resource = (name: string) => ({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'Resource',
        metadata: { name, namespace: ns },
        spec: {
          kind: 'exec',
          exec: {
            start: ['/etc/heartline/resource.d/web', 'start'],
            stop: ['/etc/heartline/resource.d/web', 'stop'],
          },
        },
      });
      const asUser = (user: string, group: string) => [`--as=${user}`, `--as-group=${group}`];

      beforeAll(async () => {
        ns = await createTestNamespace('hl-admission');
        // The policies, their bindings and the ConfigMap they read, for real.
        await must(
          ['apply', '-f', '-'],
          toYaml(base.filter((o) => ADMISSION_KINDS.has(o.kind) || o.kind === 'ConfigMap')),
        );
        // RBAC lets alice (devs) and bob (heartline:admins) write Resources and HAClusters in
        // the test namespace, so that what refuses alice below is the policy, not RBAC.
        await must(
          ['apply', '-f', '-'],
          toYaml([
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'Role',
              metadata: { name: 'heartline-writer', namespace: ns },
              rules: [{ apiGroups: ['heartline.dev'], resources: ['*'], verbs: ['*'] }],
            },
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'RoleBinding',
              metadata: { name: 'heartline-writer', namespace: ns },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'heartline-writer' },
              subjects: [
                { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' },
                { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'bob' },
              ],
            },
            // The agent's Role is in heartline-system; here it may patch Resource status too.
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'RoleBinding',
              metadata: { name: 'heartline-agent', namespace: ns },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'heartline-writer' },
              subjects: [{ kind: 'ServiceAccount', name: 'heartline-agent', namespace: SYSTEM_NS }],
            },
          ]),
        );
      });

      afterAll(async () => {
        await kubectl(['delete', 'pod', 'agent-n1', '-n', SYSTEM_NS, '--ignore-not-found', '--wait=false']);
        await kubectl(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']);
        await kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], {
          input: toYaml(base.filter((o) => ADMISSION_KINDS.has(o.kind))),
        });
        if (ns) await deleteNamespace(ns);
      });

      it('only the admin group (and system:masters) may create, change or delete Resources, HAClusters and AddressPools', async () => {
        // Policies take effect a moment after they are created: wait for the first refusal.
        const refused = await until('the heartline-admins-only policy to refuse alice', async () => {
          const r = await kubectl(['create', '-f', '-', ...asUser('alice', 'devs')], {
            input: JSON.stringify(resource('by-alice')),
          });
          return r.code !== 0 && /heartline-admins-only/.test(r.stderr) ? r.stderr : false;
        });
        expect(refused).toMatch(
          /only members of group heartline:admins \(heartline-config\/adminGroup\) may create resources/,
        );
        const hac = { ...HACLUSTER, metadata: { name: 'by-alice', namespace: ns } };
        const r1 = await kubectl(['create', '-f', '-', ...asUser('alice', 'devs')], {
          input: JSON.stringify(hac),
        });
        expect(r1.code).not.toBe(0);
        expect(r1.stderr).toMatch(/heartline-admins-only/);
        // A member of the group may; so may the API server's superuser group (this kubeconfig).
        await must(
          ['create', '-f', '-', ...asUser('bob', 'heartline:admins')],
          JSON.stringify(resource('by-bob')),
        );
        await must(['create', '-f', '-'], JSON.stringify(resource('by-admin')));
        // Change and delete are refused to alice too.
        const r2 = await kubectl([
          'label',
          'resource',
          'by-bob',
          '-n',
          ns,
          'x=y',
          ...asUser('alice', 'devs'),
        ]);
        expect(r2.stderr).toMatch(/heartline-admins-only/);
        const r3 = await kubectl(['delete', 'resource', 'by-bob', '-n', ns, ...asUser('alice', 'devs')]);
        expect(r3.stderr).toMatch(/heartline-admins-only/);
        // AddressPools decide which LAN addresses Services may claim: admins only too.
        const pool = {
          apiVersion: 'heartline.dev/v1alpha1',
          kind: 'AddressPool',
          metadata: { name: 'by-alice', namespace: ns },
          spec: { clusterRef: { name: 'web' }, addresses: ['198.18.30.0/28'] },
        };
        const r4 = await kubectl(['create', '-f', '-', ...asUser('alice', 'devs')], {
          input: JSON.stringify(pool),
        });
        expect(r4.stderr).toMatch(/only members of group heartline:admins .* may create addresspools/);
        // VirtualIPs are not covered: an application team may declare its own addresses.
        const vip = { ...VIP, metadata: { name: 'by-alice', namespace: ns } };
        await must(['create', '-f', '-', ...asUser('alice', 'devs')], JSON.stringify(vip));
      });

      it("an agent may change only its own node's entry of a Resource's status, and only its own Node's member key", async () => {
        // A pod-bound token, as the DaemonSet's pods get: the API server records the pod's node
        // in the token's user info (authentication.kubernetes.io/node-name).
        for (const name of [NODE, OTHER]) {
          await must(
            ['apply', '-f', '-'],
            JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name } }),
          );
        }
        await must(
          ['apply', '-f', '-'],
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'agent-n1', namespace: SYSTEM_NS },
            spec: {
              nodeName: NODE,
              serviceAccountName: 'heartline-agent',
              containers: [{ name: 'agent', image: 'heartline:never-pulled' }],
            },
          }),
        );
        const token = (
          await must([
            'create',
            'token',
            'heartline-agent',
            '-n',
            SYSTEM_NS,
            '--bound-object-kind=Pod',
            '--bound-object-name=agent-n1',
            '--duration=10m',
          ])
        ).trim();
        const admin = parse(await readFile(kubeconfig(), 'utf8')) as {
          clusters: { name: string; cluster: Record<string, string> }[];
        };
        const agentConfig = path.join(tmp, 'agent-bound.kubeconfig');
        await writeFile(
          agentConfig,
          stringify({
            apiVersion: 'v1',
            kind: 'Config',
            clusters: [{ name: 'test', cluster: admin.clusters[0]!.cluster }],
            users: [{ name: 'agent', user: { token } }],
            contexts: [{ name: 'agent', context: { cluster: 'test', user: 'agent' } }],
            'current-context': 'agent',
          }),
          { mode: 0o600 },
        );
        const whoami = JSON.parse(
          await must(['auth', 'whoami', '-o', 'json', `--kubeconfig=${agentConfig}`]),
        ) as { status: { userInfo: { extra?: Record<string, string[]> } } };
        expect(whoami.status.userInfo.extra?.['authentication.kubernetes.io/node-name']).toEqual([NODE]);

        await must(['create', '-f', '-'], JSON.stringify(resource('web')));
        const entry = (name: string, state: string) => ({ name, state });
        const setStatus = (nodes: unknown[], config?: string) =>
          kubectl([
            'patch',
            'resource',
            'web',
            '-n',
            ns,
            '--subresource=status',
            '--type=merge',
            '-p',
            JSON.stringify({ status: { nodes } }),
            ...(config ? [`--kubeconfig=${config}`] : []),
          ]);
        expect((await setStatus([entry(NODE, 'starting'), entry(OTHER, 'running')])).code).toBe(0);
        // Its own entry: allowed (policies may need a moment to take effect, so retry the refusals).
        const own = await setStatus([entry(NODE, 'running'), entry(OTHER, 'running')], agentConfig);
        expect(own.stderr).toBe('');
        expect(own.code).toBe(0);
        const refusals = [
          [entry(NODE, 'running'), entry(OTHER, 'failed')], // another node's entry changed
          [entry(NODE, 'running')], // another node's entry removed
          [entry(NODE, 'running'), entry(OTHER, 'running'), entry('hl-deploy-test-n3', 'running')], // one added
        ];
        for (const nodes of refusals) {
          const r = await until('the heartline-agent-own-node policy to refuse', async () => {
            const x = await setStatus(nodes, agentConfig);
            return x.code !== 0 ? x : false;
          });
          expect(r.stderr).toMatch(/heartline-agent-own-node/);
          expect(r.stderr).toMatch(new RegExp(`the agent on node ${NODE} may change only its own entry`));
        }
        // Nothing of the refused writes landed.
        const after = JSON.parse(await must(['get', 'resource', 'web', '-n', ns, '-o', 'json'])) as {
          status: { nodes: unknown[] };
        };
        expect(after.status.nodes).toEqual([entry(NODE, 'running'), entry(OTHER, 'running')]);

        // Its public member key on its own Node: allowed; on another Node, any other
        // annotation, or a label (which could put a node into or out of the cluster): refused.
        const key = (fill: number) => `ed25519:${Buffer.alloc(32, fill).toString('base64')}`;
        const asAgent = (args: string[]) => kubectl([...args, `--kubeconfig=${agentConfig}`]);
        const ownKey = await until('the agent to annotate its own Node', async () => {
          const x = await asAgent([
            'annotate',
            'node',
            NODE,
            '--overwrite',
            `heartline.dev/member-key=${key(1)}`,
          ]);
          return x.code === 0 ? x : false;
        });
        expect(ownKey.stderr).toBe('');
        const nodeRefusals: Array<[string[], RegExp]> = [
          [
            ['annotate', 'node', OTHER, '--overwrite', `heartline.dev/member-key=${key(2)}`],
            new RegExp(`the agent on node ${NODE} may annotate only its own Node`),
          ],
          [
            ['annotate', 'node', NODE, '--overwrite', 'heartline.dev/heartbeat-address=198.18.0.99'],
            /may change only the annotation heartline.dev\/member-key/,
          ],
          [
            ['label', 'node', NODE, '--overwrite', 'heartline.dev/cluster=web'],
            /may not change a Node's labels/,
          ],
          [
            ['label', 'node', OTHER, '--overwrite', 'heartline.dev/cluster=web'],
            /may annotate only its own Node/,
          ],
          [['delete', 'node', OTHER], /forbidden/],
        ];
        for (const [args, why] of nodeRefusals) {
          const r = await until(`the agent to be refused: kubectl ${args.join(' ')}`, async () => {
            const x = await asAgent(args);
            return x.code !== 0 ? x : false;
          });
          expect(r.stderr).toMatch(why);
        }
        const nodes = JSON.parse(await must(['get', 'node', NODE, OTHER, '-o', 'json'])) as {
          items: Array<{
            metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
          }>;
        };
        const ownNode = nodes.items.find((n) => n.metadata.name === NODE)!;
        const other = nodes.items.find((n) => n.metadata.name === OTHER)!;
        expect(ownNode.metadata.annotations?.['heartline.dev/member-key']).toBe(key(1));
        expect(ownNode.metadata.annotations?.['heartline.dev/heartbeat-address']).toBeUndefined();
        expect(ownNode.metadata.labels?.['heartline.dev/cluster']).toBeUndefined();
        expect(other.metadata.annotations?.['heartline.dev/member-key']).toBeUndefined();
        expect(other.metadata.labels?.['heartline.dev/cluster']).toBeUndefined();
      });
    });
  });
});
