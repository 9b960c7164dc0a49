/**
 * A real Kubernetes cluster inside the lab (docs/controlplane.md "The real-kubelet cluster",
 * docs/adr/0018-real-kubelet-lab-cluster.md): the lab's kube-apiserver + etcd in the
 * control-plane namespace plus kube-controller-manager and kube-scheduler, and on every node
 * namespace a containerd (own root, state, socket, mount namespace), a kubelet (own root
 * dir, --hostname-override = node name, node IP = the namespace's 198.18.0.x, cgroup root
 * /hl-<id>-nK) and a kube-proxy (iptables rules inside the node namespace only). Pods on the
 * host network land in the node's namespace; other pods get a CNI bridge with addresses from
 * 198.19.<10+k>.0/24, routed between the lab namespaces only. Images are imported, never
 * pulled: the Heartline image (hack/image/build.sh) and the sandbox image
 * (hack/cluster/pause-image.sh).
 *
 *   const c = await startKubeCluster({ id: 'k1', nodes: 3 });
 *   await c.kubectl(['apply', '-k', 'deploy/overlays/lab']);  ...  await c.stop();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { findBuildScript } from '../controlplane/binaries.js';
import { signLeaf } from '../controlplane/certs.js';
import { startControlPlane, type ControlPlane } from '../controlplane/index.js';
import { ip, killNamespace, logTo, nsRun, sleep } from '../lab/sh.js';
import { down, node as labNode, up, type Lab, type LabHost } from '../lab/topology.js';
import { NodeCgroup, leftoverRoots } from './cgroups.js';

const execFileP = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Service ClusterIPs (inside the lab's 198.18.0.0/15; the `kubernetes` Service is .1). */
export const SERVICE_CIDR = '198.19.255.0/24';
/**
 * The label the shipped agent DaemonSet selects nodes by (deploy/base, `heartline.dev/cluster`
 * = heartline-config/cluster); the lab's HACluster selects its members by the same label, so
 * that agents and members agree (docs/adr/0024). Nodes register with it unless
 * KubeClusterOptions.outside names them.
 */
export const CLUSTER_LABEL = 'heartline.dev/cluster';
/** Where the images are imported from (hack/image/build.sh and hack/cluster/pause-image.sh). */
export const IMAGE_REPO = 'heartline.lab/heartline';
export const PAUSE_IMAGE = 'heartline.lab/pause:1';
export const HTTP_PORT = 8080;
/** deploy/base/config.yaml's cluster: the value of CLUSTER_LABEL its DaemonSet selects. */
const HL_CLUSTER_NAME = 'heartline';

/** Pod CIDR of the node with data address 198.18.0.<octet>. */
export function podCidr(host: LabHost): string {
  return `198.19.${host.ip.split('.')[3]}.0/24`;
}

export interface KubeBinaries {
  kubelet: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubeProxy: string;
  kubeApiserver: string;
  etcd: string;
}

/** Builds (or finds cached) every binary the cluster runs: `hack/build-k8s.sh --node`. */
export async function ensureClusterBinaries(onProgress?: (line: string) => void): Promise<KubeBinaries> {
  const script = findBuildScript(ROOT);
  const out = await new Promise<string>((res, rej) => {
    const child = spawn('bash', [script, '--node'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      for (const l of d.split('\n')) if (l.startsWith('[build-k8s]')) onProgress?.(l);
    });
    child.on('error', rej);
    child.on('close', (code) =>
      code === 0
        ? res(stdout)
        : rej(new Error(`${script} --node failed (${code}):\n${stderr.split('\n').slice(-30).join('\n')}`)),
    );
  });
  const kv = Object.fromEntries(
    out
      .split('\n')
      .map((l) => l.split('='))
      .filter((p) => p.length === 2),
  );
  const need = [
    'kubelet',
    'kube-controller-manager',
    'kube-scheduler',
    'kube-proxy',
    'kube-apiserver',
    'etcd',
  ];
  for (const k of need) if (!kv[k]) throw new Error(`${script} --node did not print ${k}=PATH:\n${out}`);
  return {
    kubelet: kv.kubelet!,
    kubeControllerManager: kv['kube-controller-manager']!,
    kubeScheduler: kv['kube-scheduler']!,
    kubeProxy: kv['kube-proxy']!,
    kubeApiserver: kv['kube-apiserver']!,
    etcd: kv.etcd!,
  };
}

export interface ImageArchive {
  /** e.g. heartline.lab/heartline:0.1.0 once imported. */
  ref: string;
  /** Manifest digest (sha256:...). */
  digest: string;
  archive: string;
}

/** Builds the Heartline image (hack/image/build.sh) into `outDir`. */
export async function buildImage(outDir: string): Promise<ImageArchive> {
  const { stdout } = await execFileP('bash', [join(ROOT, 'hack/image/build.sh'), '--out', outDir], {
    cwd: ROOT,
    maxBuffer: 64 << 20,
    timeout: 15 * 60_000,
  });
  const m = /image=(\S+) digest=(\S+) archive=(\S+)/.exec(stdout);
  if (!m) throw new Error(`hack/image/build.sh printed no image=... line:\n${stdout}`);
  const tag = m[1]!.split(':')[1]!;
  return { ref: `${IMAGE_REPO}:${tag}`, digest: m[2]!, archive: m[3]! };
}

async function pauseImage(outDir: string): Promise<string> {
  const { stdout } = await execFileP('bash', [join(ROOT, 'hack/cluster/pause-image.sh'), outDir]);
  const m = /archive=(\S+)/.exec(stdout);
  if (!m) throw new Error(`hack/cluster/pause-image.sh printed no archive=...:\n${stdout}`);
  return m[1]!;
}

/** A daemon of the cluster: its process and log file. */
export interface Daemon {
  name: string;
  child: ChildProcess;
  log: string;
}

export interface KubeNode {
  host: LabHost;
  dir: string;
  cgroup: NodeCgroup;
  containerd?: Daemon;
  kubelet?: Daemon;
  proxy?: Daemon;
  http?: Daemon;
  /** True between powerOff and powerOn. */
  off: boolean;
}

export interface KubeClusterOptions {
  /** Lab id, [a-z0-9]{1,10}. */
  id: string;
  nodes: number;
  /** State and logs (default /tmp/heartline-cluster-<id>); containerd/kubelet data removed on stop. */
  dir?: string;
  /** A built image; default: built now with hack/image/build.sh into `<dir>/image`. */
  image?: ImageArchive;
  /** Start the lab's HTTP service (answers with the node name on :8080) on every node. Default true. */
  http?: boolean;
  /**
   * Nodes (names, e.g. `n4`) that register without the CLUSTER_LABEL: Kubernetes nodes that
   * run no agent until someone labels them into the cluster.
   */
  outside?: string[];
  log?: (msg: string) => void;
}

export interface KubeCluster {
  lab: Lab;
  cp: ControlPlane;
  dir: string;
  /** Same as `dir`: logs of every daemon (e2e helpers read it). */
  logDir: string;
  kubeconfig: string;
  image: ImageArchive;
  nodes: Map<string, KubeNode>;
  /** Seconds spent in each start step. */
  timings: Record<string, number>;
  /** kubectl in the control-plane namespace; rejects with stderr on a non-zero exit. */
  kubectl(args: string[], input?: string, timeoutMs?: number): Promise<string>;
  /** Heartline addresses (198.18.0.1xx) bound in a node's namespace. */
  boundOn(node: string): Promise<string[]>;
  /**
   * Power failure of `node`: every task of the node (containerd, shims, pods, kubelet,
   * kube-proxy, HTTP service) frozen at once, its switch ports down, the tasks killed, its own
   * links down. Lab instruments in its namespace survive.
   */
  powerOff(node: string): Promise<void>;
  /** Links up, containerd, kubelet, kube-proxy and the HTTP service started again. */
  powerOn(node: string): Promise<void>;
  stop(): Promise<void>;
}

function daemon(name: string, argv: string[], log: string, env: NodeJS.ProcessEnv = {}): Daemon {
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    cwd: ROOT,
  });
  logTo(child, log);
  return { name, child, log };
}

async function tail(file: string, n = 20): Promise<string> {
  const t = await readFile(file, 'utf8').catch(() => '(no log)');
  return t.trimEnd().split('\n').slice(-n).join('\n');
}

async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  hint: () => Promise<string> = async () => '',
  everyMs = 200,
): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (performance.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${await hint()}`);
    await sleep(everyMs);
  }
}

const secs = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;

export async function startKubeCluster(opts: KubeClusterOptions): Promise<KubeCluster> {
  const log = opts.log ?? (() => {});
  const dir = opts.dir ?? `/tmp/heartline-cluster-${opts.id}`;
  const timings: Record<string, number> = {};
  let t = performance.now();
  const bin = await ensureClusterBinaries((l) => log(l));
  timings.binaries = secs(t);
  await teardownLeftovers(opts.id, dir);
  await mkdir(dir, { recursive: true });
  t = performance.now();
  const image = opts.image ?? (await buildImage(join(dir, 'image')));
  const pause = await pauseImage(join(dir, 'image'));
  timings.images = secs(t);
  log(`images: ${image.ref} ${image.digest}, ${PAUSE_IMAGE} (${timings.images} s)`);

  t = performance.now();
  const lab = await up({ id: opts.id, nodes: opts.nodes });
  let cp: ControlPlane | undefined;
  const cpDaemons: Daemon[] = [];
  const nodes = new Map<string, KubeNode>();
  // The mount points of the nodes' private /var/lib/heartline and /etc/heartline (startNode)
  // are made on the host when missing: removed again at the end if this cluster made them.
  const madeMountPoints = ['/var/lib/heartline', '/etc/heartline'].filter((d) => !existsSync(d));
  const stopAll = async () => {
    for (const n of nodes.values()) await killNode(lab, n).catch(() => undefined);
    for (const d of cpDaemons) d.child.kill('SIGKILL');
    await cp?.stop().catch(() => undefined);
    await down(lab.id);
    for (const n of nodes.values()) await n.cgroup.remove().catch(() => undefined);
    for (const n of nodes.values()) await removeNodeData(n.dir);
    // rmdir, not rm -r: only empty directories go (the nodes' tmpfs mounts are gone with them).
    for (const d of madeMountPoints) await rmdir(d).catch(() => undefined);
  };
  try {
    // Pod networks: node nK's pods in 198.19.<10+k>.0/24 behind its cni0; every other lab
    // namespace routes that prefix to the node's data address.
    for (const h of [...lab.nodes, lab.cp, lab.client]) {
      await nsRun(h.ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
      for (const n of lab.nodes) {
        if (n !== h) await ip('-n', h.ns, 'route', 'add', podCidr(n), 'via', n.ip);
      }
    }
    // Service ClusterIPs: a route so the host-network pods' connections get as far as
    // kube-proxy's DNAT in OUTPUT (which reroutes them); a real node's default route does that.
    for (const n of lab.nodes) await ip('-n', n.ns, 'route', 'add', SERVICE_CIDR, 'dev', 'eth0');
    timings.lab = secs(t);

    t = performance.now();
    cp = await startControlPlane({
      netns: lab.cp.ns,
      bindAddress: lab.cp.ip,
      dataDir: join(dir, 'controlplane'),
      realNodes: true,
      serviceClusterIpRange: SERVICE_CIDR,
      binaries: { kubeApiserver: bin.kubeApiserver, etcd: bin.etcd },
      log: {
        info: () => {},
        warn: (o, m) => log(`${m} ${JSON.stringify(o)}`),
        error: (o, m) => log(`${m} ${JSON.stringify(o)}`),
      },
    });
    timings.apiserver = secs(t);
    log(`kube-apiserver + etcd in ${lab.cp.ns} at ${cp.server} (${timings.apiserver} s)`);
    const pki = join(cp.dataDir, 'pki');
    const admin = cp.kubeconfigPath;
    const cpExec = (name: string, argv: string[]) =>
      daemon(name, ['ip', 'netns', 'exec', lab.cp.ns, ...argv], join(dir, `${name}.log`));
    cpDaemons.push(
      cpExec('kube-controller-manager', [
        bin.kubeControllerManager,
        `--kubeconfig=${admin}`,
        `--authentication-kubeconfig=${admin}`,
        `--authorization-kubeconfig=${admin}`,
        `--service-account-private-key-file=${join(pki, 'service-account.key')}`,
        `--root-ca-file=${join(pki, 'ca.crt')}`,
        '--use-service-account-credentials=true',
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        '--leader-elect=false',
        `--bind-address=${lab.cp.ip}`,
        '--secure-port=10257',
        '--v=1',
      ]),
      cpExec('kube-scheduler', [
        bin.kubeScheduler,
        `--kubeconfig=${admin}`,
        `--authentication-kubeconfig=${admin}`,
        `--authorization-kubeconfig=${admin}`,
        '--leader-elect=false',
        `--bind-address=${lab.cp.ip}`,
        '--secure-port=10259',
        '--v=1',
      ]),
    );

    const kubectl = (args: string[], input?: string, timeoutMs = 120_000) =>
      new Promise<string>((res, rej) => {
        const child = spawn('ip', ['netns', 'exec', lab.cp.ns, 'kubectl', '--kubeconfig', admin, ...args], {
          stdio: 'pipe',
          timeout: timeoutMs,
          cwd: ROOT,
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code, sig) =>
          code === 0
            ? res(out)
            : rej(
                new Error(
                  `kubectl ${args.join(' ')}: ${sig ? `killed by ${sig} ` : ''}${err.trim() || out.trim()}`,
                ),
              ),
        );
        child.on('error', rej);
        // kubectl may exit before reading its input (killed at teardown): not an error of ours.
        child.stdin.on('error', () => undefined);
        child.stdin.end(input ?? '');
      });

    t = performance.now();
    const ca = join(pki, 'ca.crt');
    for (const h of lab.nodes) {
      const ndir = join(dir, h.name);
      await mkdir(ndir, { recursive: true });
      nodes.set(h.name, {
        host: h,
        dir: ndir,
        cgroup: await NodeCgroup.create(`/hl-${lab.id}-${h.name}`),
        off: false,
      });
    }
    await Promise.all(
      [...nodes.values()].map(async (n) => {
        await writeNodeFiles(n, pki, cp!.server, ca);
        await startNode(n, bin, log);
        await Promise.all([importImage(n, image.archive, IMAGE_REPO), importImage(n, pause)]);
        startKubelet(n, bin, !(opts.outside ?? []).includes(n.host.name));
        if (opts.http ?? true) startHttp(n);
      }),
    );
    timings.nodes = secs(t);
    log(
      `containerd + kubelet + kube-proxy on ${lab.nodes.map((h) => h.name).join(', ')}; images imported (${timings.nodes} s)`,
    );
    t = performance.now();
    await waitUntil(
      `${lab.nodes.length} Nodes Ready`,
      async () => {
        const out = await kubectl(['get', 'nodes', '-o', 'json']);
        const items = (
          JSON.parse(out) as {
            items: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }>;
          }
        ).items;
        const ready = items.filter((i) =>
          i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === lab.nodes.length;
      },
      180_000,
      async () => {
        const n = [...nodes.values()][0]!;
        return `; kubectl get nodes: ${await kubectl(['get', 'nodes', '-o', 'wide']).catch((e: Error) => e.message)}\n${n.kubelet?.log}:\n${await tail(n.kubelet?.log ?? '')}`;
      },
      500,
    );
    timings.nodesReady = secs(t);
    log(`${lab.nodes.length} Nodes Ready (${timings.nodesReady} s)`);

    const cluster: KubeCluster = {
      lab,
      cp,
      dir,
      logDir: dir,
      kubeconfig: admin,
      image,
      nodes,
      timings,
      kubectl,
      async boundOn(name) {
        const host = labNode(lab, name);
        const out = await nsRun(host.ns, 'ip', ['-j', 'addr', 'show']).catch(() => '[]');
        const links = JSON.parse(out || '[]') as Array<{ addr_info?: Array<{ local: string }> }>;
        return links
          .flatMap((l) => (l.addr_info ?? []).map((a) => a.local))
          .filter((a) => /^198\.18\.0\.1\d\d$/.test(a));
      },
      async powerOff(name) {
        const n = nodes.get(name);
        if (!n) throw new Error(`cluster ${lab.id} has no node ${name}`);
        await n.cgroup.freeze();
        await ip('-n', lab.sw, 'link', 'set', n.host.port, 'down');
        await n.cgroup.kill();
        await killNamespace(n.host.ns, true);
        await ip('-n', n.host.ns, 'link', 'set', 'eth0', 'down');
        n.off = true;
      },
      async powerOn(name) {
        const n = nodes.get(name);
        if (!n) throw new Error(`cluster ${lab.id} has no node ${name}`);
        await ip('-n', n.host.ns, 'link', 'set', 'eth0', 'up');
        await ip('-n', lab.sw, 'link', 'set', n.host.port, 'up');
        await startNode(n, bin, log);
        startKubelet(n, bin, !(opts.outside ?? []).includes(n.host.name));
        if (opts.http ?? true) startHttp(n);
        n.off = false;
      },
      async stop() {
        await stopAll();
      },
    };
    await writeFile(
      join(dir, 'cluster.json'),
      JSON.stringify({ lab, kubeconfig: admin, server: cp.server, image, timings }, null, 2),
    );
    return cluster;
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

/** Certificates, kubeconfig, containerd config, CNI config, kubelet config of one node. */
async function writeNodeFiles(n: KubeNode, pki: string, server: string, ca: string): Promise<void> {
  const { dir, host } = n;
  const b64 = async (f: string) => (await readFile(f)).toString('base64');
  // The kubelet as system:node:<name> (Node authorizer, NodeRestriction); kube-proxy as
  // system:kube-proxy (the bootstrap system:node-proxier binding).
  for (const [file, cn, org] of [
    ['kubeconfig', `system:node:${host.name}`, 'system:nodes'],
    ['kube-proxy.kubeconfig', 'system:kube-proxy', ''],
  ] as const) {
    const name = `${file.replace('.kubeconfig', '').replace('kubeconfig', 'kubelet')}-${host.name}`;
    await signLeaf(
      pki,
      name,
      `${org ? `/O=${org}` : ''}/CN=${cn}`,
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth',
      7,
    );
    await writeFile(
      join(dir, file),
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'lab', cluster: { server, 'certificate-authority-data': await b64(ca) } }],
        users: [
          {
            name: cn,
            user: {
              'client-certificate-data': await b64(join(pki, `${name}.crt`)),
              'client-key-data': await b64(join(pki, `${name}.key`)),
            },
          },
        ],
        contexts: [{ name: 'lab', context: { cluster: 'lab', user: cn } }],
        'current-context': 'lab',
      }),
      { mode: 0o600 },
    );
  }
  await mkdir(join(dir, 'cni'), { recursive: true });
  await writeFile(
    join(dir, 'cni', '10-lab.conflist'),
    JSON.stringify({
      cniVersion: '0.4.0',
      name: 'lab',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: podCidr(host) }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: join(dir, 'cni-ipam'),
          },
        },
      ],
    }),
  );
  const c = join(dir, 'containerd');
  await writeFile(
    join(dir, 'containerd.toml'),
    `version = 2
root = "${c}/root"
state = "${c}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${dir}/containerd.sock"
[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${c}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  # Some kernels (this lab's VM among them) refuse a negative oom_score_adj with EIO, which
  # fails every sandbox (the kubelet asks for -998). Clamp to containerd's own value instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni"
`,
  );
  await writeFile(join(dir, 'resolv.conf'), '# the lab has no DNS server\nnameserver 127.0.0.1\n');
  await writeFile(
    join(dir, 'kubelet.yaml'),
    stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: host.ip,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10248,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: ca },
      },
      authorization: { mode: 'Webhook' },
      cgroupDriver: 'cgroupfs',
      cgroupRoot: n.cgroup.root,
      cgroupsPerQOS: true,
      enforceNodeAllocatable: ['pods'],
      failSwapOn: false,
      failCgroupV1: false,
      resolvConf: join(dir, 'resolv.conf'),
      containerRuntimeEndpoint: `unix://${dir}/containerd.sock`,
      podLogsDir: join(dir, 'pod-logs'),
      clusterDomain: 'cluster.local',
      serializeImagePulls: false,
      // Imported images cannot be pulled again: never garbage-collect them.
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      // Nodes share the machine's disk and memory: evict only when they are really gone.
      evictionHard: {
        'memory.available': '50Mi',
        'nodefs.available': '1%',
        'imagefs.available': '1%',
        'nodefs.inodesFree': '1%',
      },
      maxPods: 30,
      nodeStatusReportFrequency: '10s',
      protectKernelDefaults: false,
      localStorageCapacityIsolation: true,
    }),
  );
}

/**
 * Starts containerd (in a private mount namespace, so every mount it and the kubelet make
 * dies with them) and kube-proxy in the node's network namespace and cgroup; waits until
 * containerd answers.
 */
async function startNode(n: KubeNode, bin: KubeBinaries, log: (m: string) => void): Promise<void> {
  const netns = `--net=/run/netns/${n.host.ns}`;
  // Private to this node: /run/containerd (shim sockets, runc state, fifos), /var/lib/cni
  // (libcni's result cache, which pods killed by a power-off never clean up), and the agent's
  // host paths /var/lib/heartline (its incarnation counter and member key: one per node, as on
  // separate machines) and /etc/heartline (resource.d), never the host's own.
  const tmpfs = (d: string) => `mkdir -p ${d} && mount -t tmpfs -o mode=0711 tmpfs ${d}`;
  const script = `${n.cgroup.enterCommand()} && ${tmpfs('/run/containerd')} && ${tmpfs('/var/lib/cni')} && ${tmpfs('/var/lib/heartline')} && ${tmpfs('/etc/heartline')} && exec containerd --config ${n.dir}/containerd.toml`;
  n.containerd = daemon(
    'containerd',
    ['nsenter', netns, '--', 'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script],
    join(n.dir, 'containerd.log'),
  );
  const sock = join(n.dir, 'containerd.sock');
  await waitUntil(
    `containerd on ${n.host.name} (${sock})`,
    async () => {
      if (n.containerd!.child.exitCode !== null) throw new Error('exited');
      await execFileP('ctr', ['--address', sock, 'version'], { timeout: 5000 });
      return true;
    },
    30_000,
    async () => `; ${n.containerd!.log}:\n${await tail(n.containerd!.log)}`,
  ).catch(async (err: Error) => {
    if (n.containerd!.child.exitCode !== null) {
      throw new Error(
        `containerd on ${n.host.name} exited (${n.containerd!.child.exitCode}):\n${await tail(n.containerd!.log)}`,
      );
    }
    throw err;
  });
  n.proxy = daemon(
    'kube-proxy',
    [
      'nsenter',
      netns,
      `--mount=/proc/${n.containerd.child.pid}/ns/mnt`,
      '--',
      'sh',
      '-c',
      `${n.cgroup.enterCommand()} && exec ${bin.kubeProxy} --kubeconfig=${n.dir}/kube-proxy.kubeconfig --hostname-override=${n.host.name} --bind-address=${n.host.ip} --cluster-cidr=198.19.0.0/16 --proxy-mode=iptables --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 --metrics-bind-address=${n.host.ip}:10249 --healthz-bind-address=${n.host.ip}:10256 --v=1`,
    ],
    join(n.dir, 'kube-proxy.log'),
  );
  log(`${n.host.name}: containerd up`);
}

/**
 * The kubelet, in the node's network namespace, cgroup and containerd's mount namespace;
 * registering with the CLUSTER_LABEL when `member` (it only sets labels on registration: a
 * node restarted later keeps the ones it has).
 */
function startKubelet(n: KubeNode, bin: KubeBinaries, member: boolean): void {
  const pid = n.containerd?.child.pid;
  if (!pid) throw new Error(`${n.host.name}: containerd is not running`);
  n.kubelet = daemon(
    'kubelet',
    [
      'nsenter',
      `--net=/run/netns/${n.host.ns}`,
      `--mount=/proc/${pid}/ns/mnt`,
      '--',
      'sh',
      '-c',
      `${n.cgroup.enterCommand()} && exec ${bin.kubelet} --config=${n.dir}/kubelet.yaml --kubeconfig=${n.dir}/kubeconfig --root-dir=${n.dir}/kubelet --hostname-override=${n.host.name} --node-ip=${n.host.ip}${member ? ` --node-labels=${CLUSTER_LABEL}=${HL_CLUSTER_NAME}` : ''} --v=1`,
    ],
    join(n.dir, 'kubelet.log'),
  );
}

/** The lab's web service stand-in on the node (hack/lab/http-resource.ts), in the node's cgroup. */
function startHttp(n: KubeNode): void {
  n.http = daemon(
    'http',
    [
      'nsenter',
      `--net=/run/netns/${n.host.ns}`,
      '--',
      'sh',
      '-c',
      `${n.cgroup.enterCommand()} && exec ${process.execPath} --import tsx ${join(ROOT, 'hack/lab/http-resource.ts')} --name ${n.host.name} --port ${HTTP_PORT}`,
    ],
    join(n.dir, 'http.log'),
  );
}

async function importImage(n: KubeNode, archive: string, baseName?: string): Promise<void> {
  const args = ['--address', join(n.dir, 'containerd.sock'), '-n', 'k8s.io', 'images', 'import', '--digests'];
  if (baseName) args.push('--base-name', baseName);
  try {
    await execFileP('ctr', [...args, archive], { timeout: 300_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ctr images import ${archive} on ${n.host.name} failed: ${e.stderr ?? e.message}`);
  }
}

/**
 * Gives the imported Heartline image a second tag on every running node (`ctr images tag`):
 * a new image reference for a DaemonSet rolling update without a rebuild. Returns the new
 * reference.
 */
export async function tagImage(c: KubeCluster, tag: string): Promise<string> {
  const ref = `${IMAGE_REPO}:${tag}`;
  for (const n of c.nodes.values()) {
    if (n.off) continue;
    await execFileP('ctr', [
      '--address',
      join(n.dir, 'containerd.sock'),
      '-n',
      'k8s.io',
      'images',
      'tag',
      '--force',
      c.image.ref,
      ref,
    ]);
  }
  return ref;
}

/** Kills everything of a node (power-off without the link choreography). */
async function killNode(lab: Lab, n: KubeNode): Promise<void> {
  await n.cgroup.freeze().catch(() => undefined);
  await n.cgroup.kill();
  await killNamespace(n.host.ns, false);
}

/**
 * Deletes a node's containerd and kubelet data once nothing runs there. Their mounts lived
 * in the node's private mount namespace, gone with its last process; a mount still visible
 * here under `dir` means something is wrong, and nothing is deleted.
 */
async function removeNodeData(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
  if (mounts.length) throw new Error(`not deleting ${dir}: still mounted here: ${mounts.join(', ')}`);
  await rm(join(dir, 'containerd'), { recursive: true, force: true });
  await rm(join(dir, 'kubelet'), { recursive: true, force: true });
}

/**
 * Removes what a crashed run of cluster `id` left: processes in its node cgroups, the lab's
 * namespaces (and their processes), the cgroups, containerd and kubelet data.
 */
export async function teardownLeftovers(id: string, dir = `/tmp/heartline-cluster-${id}`): Promise<void> {
  for (const root of await leftoverRoots(id)) {
    const cg = await NodeCgroup.create(root);
    await cg.freeze().catch(() => undefined);
    await cg.kill();
    await cg.remove();
  }
  await down(id);
  if (existsSync(dir)) {
    for (const e of await readdir(dir)) {
      if (/^n\d+$/.test(e)) {
        await removeNodeData(join(dir, e));
      }
    }
  }
}
