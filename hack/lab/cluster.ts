/**
 * A whole Heartline cluster inside the lab: the real kube-apiserver + etcd in the
 * control-plane namespace, Node objects for the node namespaces, the CRDs and a cluster's
 * objects, the controller (in the control-plane namespace, also the witness) and one agent
 * per node namespace (under heartline-netd --exec, as in the DaemonSet: netd binds the
 * heartbeat socket and runs the agent as uid AGENT_UID with no capability, docs/adr/0020),
 * plus the lab's HTTP service on every node answering with the node's name.
 *
 *   const c = await startLabCluster({ id: 'e2e1', nodes: 3, profile: 'fast' });
 *   await c.waitForHolder('web');  ...  await c.stop();
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  chmodSync,
  chownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROFILES, type ProfileName } from '../../src/core/timing.js';
import { startControlPlane, type ControlPlane } from '../controlplane/index.js';
import { deployedNodeOptions } from './node-options.js';
import { logTo, nsRun, sleep } from './sh.js';
import { down, up, type Lab, type LabHost } from './topology.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LAB_NAMESPACE = 'heartline-lab';
export const VIP_ADDRESS = '198.18.0.100';
export const VIP_CIDR = `${VIP_ADDRESS}/24`;
export const HTTP_PORT = 8080;
/** The uid (and gid) heartline-netd runs every lab agent as: the DaemonSet's --agent-uid. */
export const AGENT_UID = 65532;
/** The uid (and gid) heartline-netd starts lab Resources as: the DaemonSet's --resource-uid. */
export const RESOURCE_UID = 65534;

/** The lab runs the shipped heartbeat profiles (one definition: PROFILES in src/core/timing.ts). */
export type Profile = ProfileName;

export interface LabClusterOptions {
  id: string;
  nodes: number;
  profile?: Profile;
  quorum?: 'majority' | 'witness' | 'ignore';
  /** Directory for logs (default /tmp/heartline-lab-<id>). */
  logDir?: string;
  /** Extra VirtualIPs beyond `web` (198.18.0.101, ...). Default 0. */
  extraVips?: number;
  /** Add a health-checked Resource to the web VIP (tcp check on the HTTP service). */
  healthCheck?: boolean;
  /** The HACluster's autoFailback (default false): VIPs go back to their preferred node. */
  autoFailback?: boolean;
  /** Start the lab's HTTP service on every node (default true). */
  http?: boolean;
  /**
   * Build the lab's separate heartbeat network (br1, eth1 198.19.0.0/24): every Node gets the
   * annotation heartline.dev/heartbeat-address = its eth1 address, agents bind their heartbeat
   * socket there and the controller's witness publishes its eth1 address, so all heartbeats
   * travel on eth1 while the VIP lives on eth0. Default false.
   */
  heartbeatNet?: boolean;
  /**
   * heartline-netd's `--owner-mode` on every node (docs/fence.md "Kernels"): `fallback` runs
   * the lab as on a kernel before 5.18. Default: $HEARTLINE_NETD_OWNER_MODE, else `auto`.
   */
  netdOwnerMode?: 'auto' | 'proto' | 'fallback';
  /**
   * The HACluster's spec.transport.links (redundant heartbeat links, e.g. unicast on the data
   * network and multicast on eth1 with `heartbeatNet`). Agents then bind their heartbeat
   * socket to 0.0.0.0, so that it receives on every link. Default: one unicast link.
   */
  links?: Array<Record<string, unknown>>;
  log?: (msg: string) => void;
}

export interface Proc {
  name: string;
  host: LabHost;
  child: ChildProcess;
  args: string[];
}

export interface ControllerReplica {
  /** Log file and --identity (default `controller`). */
  name?: string;
  /** UDP port of the witness socket (default 694). */
  witnessPort?: number;
  /** Port of /metrics (default 9695). */
  metricsPort?: number;
}

export interface LabCluster {
  lab: Lab;
  cp: ControlPlane;
  logDir: string;
  kubeconfig: string;
  agents: Map<string, Proc>;
  controller: Proc | undefined;
  http: Map<string, Proc>;
  /** The keys of the auth Secret heartline-auth (random for each lab; key 1 active). */
  authKeys: ReadonlyMap<number, Uint8Array>;
  /** kubectl in the control-plane namespace. */
  kubectl(args: string[], input?: string): Promise<string>;
  /** The VIP's status as the API server has it. */
  vipStatus(
    name?: string,
  ): Promise<{ holder?: string; epoch?: number; phase?: string; [k: string]: unknown }>;
  waitForHolder(name?: string, timeoutMs?: number, not?: string): Promise<string>;
  startAgent(node: string): Promise<Proc>;
  /**
   * Starts a controller replica in the control-plane namespace. The first one (started by
   * startLabCluster) is `controller`, witness on :694, metrics on :9695; pass another `name`
   * with its own ports for a standby replica (they share the Lease, only one leads).
   */
  startController(opts?: ControllerReplica): Promise<Proc>;
  /** Every controller replica started, in start order. */
  controllers: Proc[];
  /** (Re)starts the lab's HTTP service on `node` (after powerOff killed it). */
  startHttp(node: string): Promise<Proc>;
  /** Heartline addresses bound on a node right now (via `ip -j addr`). */
  boundOn(node: string): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Throws, naming the directory and the fix, when uid AGENT_UID could not run the agent from
 * this checkout: every directory above it must let others in (o+x) and its files be
 * readable, as after a clone with the usual umask 022.
 */
export function checkAgentCanRead(root = ROOT, node = process.execPath): void {
  for (const start of [root, node]) {
    for (let d = dirname(start); ; d = dirname(d)) {
      if ((statSync(d).mode & 0o001) === 0)
        throw new Error(
          `the lab runs its agents as uid ${AGENT_UID} (docs/adr/0020), which cannot enter ${d} (mode ${(statSync(d).mode & 0o777).toString(8)}) on the way to ${start}: chmod o+x ${d}, or put the checkout elsewhere`,
        );
      if (d === dirname(d)) break;
    }
  }
  for (const f of [
    root,
    join(root, 'src', 'cli', 'main.ts'),
    join(root, 'node_modules', 'tsx', 'package.json'),
  ])
    if ((statSync(f).mode & 0o004) === 0)
      throw new Error(
        `the lab runs its agents as uid ${AGENT_UID} (docs/adr/0020), which cannot read ${f}: clone with umask 022 (or chmod -R o+rX the checkout)`,
      );
}

const tsxArgs = (script: string, args: string[]) => ['--import', 'tsx', join(ROOT, script), ...args];

const AGENT_MOUNTS = '/run/heartline-lab';

/**
 * Where uid AGENT_UID reaches this checkout: the checkout itself when every directory above
 * it lets others in; otherwise (a clone inside a 0700 directory, such as mktemp's or /root,
 * which is how CI may clone) a read-only bind mount of it at
 * /run/heartline-lab/src-<pid>-<tag>, which needs no permission on the directories above the
 * checkout. `release` removes the mount (the lab's stop does); mounts left by processes that
 * are gone are removed here. The files inside must still be world-readable (a clone with
 * umask 022); checkAgentCanRead says so if not.
 */
export function agentRoot(tag: string): { path: string; release(): void } {
  try {
    checkAgentCanRead(ROOT);
    return { path: ROOT, release() {} };
  } catch {
    // fall through: a bind mount
  }
  mkdirSync(AGENT_MOUNTS, { recursive: true, mode: 0o755 });
  chmodSync(AGENT_MOUNTS, 0o755);
  for (const e of readdirSync(AGENT_MOUNTS)) {
    const pid = Number(/^src-(\d+)-/.exec(e)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    spawnSync('umount', ['-l', join(AGENT_MOUNTS, e)]);
    rmSync(join(AGENT_MOUNTS, e), { recursive: false, force: true });
  }
  const dir = join(AGENT_MOUNTS, `src-${process.pid}-${tag}`);
  mkdirSync(dir, { recursive: true });
  const release = () => {
    spawnSync('umount', ['-l', dir]);
    try {
      rmdirSync(dir);
    } catch {
      // still busy: removed by the next lab that finds it
    }
  };
  try {
    execFileSync('mount', ['--bind', ROOT, dir]);
    execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
    // The checkout's own directory must let others in (its parents no longer matter).
    const mode = statSync(ROOT).mode & 0o777;
    if ((mode & 0o005) !== 0o005) chmodSync(ROOT, mode | 0o005);
    checkAgentCanRead(dir);
  } catch (err) {
    release();
    throw err;
  }
  return { path: dir, release };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Keys 1 (active) and 2 of the lab's auth Secret: 32 random bytes each, new for every lab. */
export function newAuthKeys(): Map<number, Uint8Array> {
  return new Map([1, 2].map((id) => [id, new Uint8Array(randomBytes(32))]));
}

/** Kubernetes objects for the lab cluster, as kubectl-applicable JSON documents. */
export function labObjects(
  lab: Lab,
  opts: LabClusterOptions,
  authKeys: ReadonlyMap<number, Uint8Array> = newAuthKeys(),
): unknown[] {
  const ns = LAB_NAMESPACE;
  const objs: unknown[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'heartline-auth', namespace: ns },
      data: Object.fromEntries(
        [...authKeys].map(([id, k]) => [String(id), Buffer.from(k).toString('base64')]),
      ),
    },
    {
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'HACluster',
      metadata: { name: 'lab', namespace: ns },
      spec: {
        nodeSelector: { 'heartline.dev/cluster': 'lab' },
        heartbeat: { ...PROFILES[opts.profile ?? 'default'] },
        transport: opts.links ? { port: 694, links: opts.links } : { port: 694, mode: 'unicast' },
        authSecretRef: { name: 'heartline-auth', activeKeyId: '1' },
        quorum: opts.quorum ?? (opts.nodes % 2 === 0 ? 'witness' : 'majority'),
        autoFailback: opts.autoFailback ?? false,
      },
    },
  ];
  const resources: string[] = [];
  if (opts.healthCheck) {
    resources.push('web-check');
    objs.push({
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'Resource',
      metadata: { name: 'web-check', namespace: ns },
      spec: {
        kind: 'exec',
        // A script in the lab's stand-in for /etc/heartline/resource.d (--resource-dir).
        exec: { start: ['/etc/heartline/resource.d/true'], stop: ['/etc/heartline/resource.d/true'] },
        healthCheck: { tcp: { port: HTTP_PORT }, intervalMs: 200, timeoutMs: 100, failureThreshold: 2 },
      },
    });
  }
  objs.push({
    apiVersion: 'heartline.dev/v1alpha1',
    kind: 'VirtualIP',
    metadata: { name: 'web', namespace: ns },
    spec: {
      clusterRef: { name: 'lab' },
      address: VIP_CIDR,
      preferredNodes: lab.nodes.map((n) => n.name),
      announce: { count: 3, intervalMs: 50 },
      ...(resources.length ? { resources } : {}),
    },
  });
  for (let i = 1; i <= (opts.extraVips ?? 0); i++) {
    objs.push({
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'VirtualIP',
      metadata: { name: `vip-${i}`, namespace: ns },
      spec: { clusterRef: { name: 'lab' }, address: `198.18.0.${100 + i}/24` },
    });
  }
  for (const n of lab.nodes) {
    objs.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: n.name,
        labels: { 'heartline.dev/cluster': 'lab', 'kubernetes.io/hostname': n.name },
        ...(opts.heartbeatNet && n.hbIp
          ? { annotations: { 'heartline.dev/heartbeat-address': n.hbIp } }
          : {}),
      },
      status: { addresses: [{ type: 'InternalIP', address: n.ip }] },
    });
  }
  return objs;
}

export async function startLabCluster(opts: LabClusterOptions): Promise<LabCluster> {
  const log = opts.log ?? (() => {});
  const agentMount = agentRoot(opts.id);
  const agentSrc = agentMount.path;
  const logDir = opts.logDir ?? `/tmp/heartline-lab-${opts.id}`;
  mkdirSync(logDir, { recursive: true });
  // The node's /etc/heartline/resource.d, shared by the lab's nodes: Resources run from there
  // only, as uid 65534 (readable by it: 0755).
  const resourceDir = join(logDir, 'resource.d');
  mkdirSync(resourceDir, { recursive: true, mode: 0o755 });
  writeFileSync(join(resourceDir, 'true'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const t0 = performance.now();
  const lab = await up({ id: opts.id, nodes: opts.nodes, heartbeatNet: opts.heartbeatNet ?? false }).catch(
    (err: unknown) => {
      agentMount.release();
      throw err;
    },
  );
  log(
    `lab ${opts.id}: ${opts.nodes} node namespaces on a bridge (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  let cp: ControlPlane | undefined;
  const procs: Proc[] = [];
  const agents = new Map<string, Proc>();
  const http = new Map<string, Proc>();
  let controller: Proc | undefined;
  try {
    cp = await startControlPlane({
      netns: lab.cp.ns,
      bindAddress: lab.cp.ip,
      dataDir: join(logDir, 'controlplane'),
    });
    log(`kube-apiserver + etcd up in ${lab.cp.ns} at ${cp.server} (${(cp.startupMs / 1000).toFixed(1)} s)`);
    const kubeconfig = cp.kubeconfigPath;
    const kubectl = (args: string[], input?: string) =>
      new Promise<string>((res, rej) => {
        const child = spawn(
          'ip',
          ['netns', 'exec', lab.cp.ns, 'kubectl', '--kubeconfig', kubeconfig, ...args],
          { stdio: 'pipe' },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) =>
          code === 0 ? res(out) : rej(new Error(`kubectl ${args.join(' ')}: ${err.trim() || out.trim()}`)),
        );
        child.stdin.end(input ?? '');
      });
    await kubectl(['apply', '--server-side', '-f', join(ROOT, 'crds')]);
    await kubectl(['wait', '--for', 'condition=established', '--timeout=60s', 'crd', '--all']);
    const authKeys = newAuthKeys();
    const objs = labObjects(lab, opts, authKeys);
    await kubectl(['apply', '--server-side', '-f', '-'], objs.map((o) => JSON.stringify(o)).join('\n'));
    // Node status is a subresource: set the InternalIPs the agents heartbeat from.
    for (const n of lab.nodes) {
      await kubectl([
        'patch',
        'node',
        n.name,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: n.ip }] } }),
      ]);
    }
    log(
      `applied CRDs, HACluster lab (${opts.profile ?? 'default'} profile), VirtualIP web ${VIP_CIDR}, ${lab.nodes.length} Nodes`,
    );

    const spawnIn = (
      name: string,
      host: LabHost,
      cmd: string,
      args: string[],
      env: Record<string, string> = {},
      cwd = ROOT,
    ): Proc => {
      const child = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
      logTo(child, join(logDir, `${name}.log`));
      const p = { name, host, child, args };
      procs.push(p);
      return p;
    };

    // Each process with the heap flags it is deployed with (deploy/base), after any of our own.
    const nodeOptions = (role: 'agent' | 'controller'): string =>
      [process.env.NODE_OPTIONS, deployedNodeOptions(role)].filter(Boolean).join(' ');
    // From the agents' view of the checkout: the agent runs this binary as netd's launcher
    // client and Resources (uid 65534) run it for the identity self-check.
    const netd = join(agentSrc, 'native', 'build', 'heartline-netd');
    if (!existsSync(netd))
      throw new Error(
        `${netd} is missing: build it with make -C ${join(agentSrc, 'native')} (hack/install.sh does)`,
      );
    // The agents run as AGENT_UID: they get a kubeconfig of their own to read (the control
    // plane's is root's, 0600) and netd gives each its state directory (--agent-state-dir).
    const agentKubeconfig = join(logDir, 'agent-kubeconfig');
    writeFileSync(agentKubeconfig, readFileSync(kubeconfig), { mode: 0o600 });
    chownSync(agentKubeconfig, AGENT_UID, AGENT_UID);
    mkdirSync(join(logDir, 'state'), { recursive: true, mode: 0o755 });
    const startAgent = async (node: string): Promise<Proc> => {
      const host = lab.nodes.find((n) => n.name === node)!;
      // netd binds the heartbeat socket (port 694 needs CAP_NET_BIND_SERVICE) and hands it over.
      const heartbeatAddress = opts.links ? '0.0.0.0' : (opts.heartbeatNet && host.hbIp) || host.ip;
      const p = spawnIn(
        `agent-${node}`,
        host,
        netd,
        [
          ...(opts.netdOwnerMode ? [`--owner-mode=${opts.netdOwnerMode}`] : []),
          `--heartbeat-bind=${heartbeatAddress}:694`,
          `--agent-uid=${AGENT_UID}`,
          `--agent-state-dir=${join(logDir, 'state', node)}`,
          '--agent-nice=-10', // as deployed (deploy/base/agent/daemonset.yaml)
          // Resources run as a third identity, started by netd (the DaemonSet's flags).
          `--resource-uid=${RESOURCE_UID}`,
          '--exec',
          process.execPath,
          '--import',
          'tsx',
          join(agentSrc, 'src', 'cli', 'main.ts'),
          ...[
            'agent',
            '--node',
            node,
            '--namespace',
            LAB_NAMESPACE,
            '--cluster',
            'lab',
            '--kubeconfig',
            agentKubeconfig,
            '--metrics-listen',
            `${host.ip}:9694`,
            '--state-dir',
            join(logDir, 'state', node),
            '--resource-dir',
            resourceDir,
            // The lab scrapes with curl inside its own namespaces: plain HTTP, no token.
            '--metrics-insecure-serving-no-auth',
          ],
        ],
        {
          HEARTLINE_LOG_LEVEL: process.env.HEARTLINE_LOG_LEVEL ?? 'info',
          NODE_OPTIONS: nodeOptions('agent'),
        },
        agentSrc,
      );
      agents.set(node, p);
      return p;
    };
    const controllers: Proc[] = [];
    const startController = async (replica: ControllerReplica = {}): Promise<Proc> => {
      const name = replica.name ?? 'controller';
      // On the heartbeat network the witness listens on every address and publishes its eth1
      // address, so agents' heartbeats to it also travel on eth1 (and come back from there).
      const witnessIp = (opts.heartbeatNet && lab.cp.hbIp) || lab.cp.ip;
      const p = spawnIn(
        name,
        lab.cp,
        process.execPath,
        tsxArgs('src/cli/main.ts', [
          'controller',
          '--kubeconfig',
          kubeconfig,
          '--namespace',
          LAB_NAMESPACE,
          '--lease-namespace',
          LAB_NAMESPACE,
          '--identity',
          name,
          '--witness-listen',
          `${opts.heartbeatNet ? '0.0.0.0' : lab.cp.ip}:${replica.witnessPort ?? 694}`,
          '--witness-address',
          witnessIp,
          '--metrics-listen',
          `${lab.cp.ip}:${replica.metricsPort ?? 9695}`,
          '--metrics-insecure-serving-no-auth',
        ]),
        { NODE_OPTIONS: nodeOptions('controller') },
      );
      controller ??= p;
      controllers.push(p);
      return p;
    };

    const startHttp = async (node: string): Promise<Proc> => {
      const n = lab.nodes.find((h) => h.name === node)!;
      const p = spawnIn(
        `http-${n.name}`,
        n,
        process.execPath,
        tsxArgs('hack/lab/http-resource.ts', ['--name', n.name, '--port', String(HTTP_PORT)]),
      );
      http.set(n.name, p);
      return p;
    };
    if (opts.http ?? true) {
      for (const n of lab.nodes) await startHttp(n.name);
    }
    await startController();
    // Let the controller publish its witness address before agents read the cluster.
    const deadline = performance.now() + 30_000;
    while (performance.now() < deadline) {
      const out = await kubectl([
        'get',
        'hacluster',
        'lab',
        '-n',
        LAB_NAMESPACE,
        '-o',
        'jsonpath={.status.witness.address}',
      ]).catch(() => '');
      if (out.trim()) break;
      await sleep(200);
    }
    for (const n of lab.nodes) await startAgent(n.name);
    log(`controller in ${lab.cp.ns}; agents in ${lab.nodes.map((n) => n.ns).join(', ')} (logs in ${logDir})`);

    const vipStatus = async (name = 'web') => {
      const out = await kubectl(['get', 'virtualip', name, '-n', LAB_NAMESPACE, '-o', 'json']);
      return (JSON.parse(out) as { status?: Record<string, unknown> }).status ?? {};
    };
    const boundOn = async (node: string): Promise<string[]> => {
      const host = lab.nodes.find((n) => n.name === node)!;
      const out = await nsRun(host.ns, 'ip', ['-j', 'addr', 'show']).catch(() => '[]');
      const links = JSON.parse(out || '[]') as Array<{ addr_info?: Array<{ local: string }> }>;
      return links
        .flatMap((l) => (l.addr_info ?? []).map((a) => a.local))
        .filter((a) => /^198\.18\.0\.1\d\d$/.test(a));
    };
    const cluster: LabCluster = {
      lab,
      cp,
      logDir,
      kubeconfig,
      agents,
      get controller() {
        return controller;
      },
      controllers,
      startHttp,
      http,
      authKeys,
      kubectl,
      vipStatus,
      boundOn,
      startAgent,
      startController,
      async waitForHolder(name = 'web', timeoutMs = 60_000, not?: string) {
        const end = performance.now() + timeoutMs;
        for (;;) {
          const s = await vipStatus(name).catch(() => ({}) as Record<string, unknown>);
          if (typeof s.holder === 'string' && s.holder && s.holder !== not) return s.holder;
          if (performance.now() > end) {
            throw new Error(
              `VirtualIP ${name}: no holder${not ? ` other than ${not}` : ''} in status after ${timeoutMs} ms; logs in ${logDir}`,
            );
          }
          await sleep(100);
        }
      },
      async stop() {
        for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
        await sleep(300);
        for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
        await cp?.stop().catch(() => {});
        await down(lab.id);
        agentMount.release();
      },
    };
    writeFileSync(join(logDir, 'lab.json'), JSON.stringify({ lab, kubeconfig, server: cp.server }, null, 2));
    return cluster;
  } catch (err) {
    for (const p of procs) p.child.kill('SIGKILL');
    await cp?.stop().catch(() => {});
    await down(lab.id);
    agentMount.release();
    throw err;
  }
}

/** The lab description written by `startLabCluster` (for `status` from another process). */
export function readLabInfo(
  id: string,
  logDir = `/tmp/heartline-lab-${id}`,
): { lab: Lab; kubeconfig: string; server: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(logDir, 'lab.json'), 'utf8'));
  } catch {
    return undefined;
  }
}
