/**
 * A real, throw-away Kubernetes control plane (etcd + kube-apiserver, no kubelet, no
 * controller-manager) for integration tests and the lab. See docs/controlplane.md.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { stringify } from 'yaml';
import { ensureBinaries, type ControlPlaneBinaries } from './binaries.js';
import { generateCerts } from './certs.js';

export { ensureBinaries, findBuildScript, type ControlPlaneBinaries } from './binaries.js';

/** The subset of a pino logger the control plane writes to. */
export interface ControlPlaneLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ControlPlaneOptions {
  /** Address etcd and kube-apiserver listen on and the apiserver advertises. Default 127.0.0.1. */
  bindAddress?: string;
  /**
   * Directory for etcd data, certificates, logs and the kubeconfig. Default: a fresh temp dir,
   * removed by stop(). A directory you pass is left in place (logs survive for inspection), but
   * its etcd data is reset on every start: each control plane starts empty.
   */
  dataDir?: string;
  /**
   * Run both processes inside this existing network namespace (`ip netns exec NAME`). Its
   * loopback need not be up, but `bindAddress` must be configured inside it. The readiness
   * probe then runs through `ip netns exec NAME curl`.
   */
  netns?: string;
  log?: ControlPlaneLogger;
  /** Prebuilt binaries; default: {@link ensureBinaries} (builds them if not cached). */
  binaries?: ControlPlaneBinaries;
  /** How long to wait for /readyz. Default 120 s. */
  readyTimeoutMs?: number;
  /** Default 10.96.0.0/24. Dual-stack: an IPv4 and an IPv6 CIDR, comma-separated, IPv4 first. */
  serviceClusterIpRange?: string;
  /** Appended to the kube-apiserver command line (later flags win). */
  extraApiserverArgs?: string[];
  /**
   * Configure the API server for real kubelets and a kube-controller-manager (hack/cluster):
   * Node,RBAC authorization, the NodeRestriction and ServiceAccount admission plugins (pods
   * get their token volume) and the lease endpoint reconciler (the `kubernetes` Service
   * points at this server, for kube-proxy). Default false: no kubelets, as in the tests.
   */
  realNodes?: boolean;
}

/** A running control plane. Everything is owned by this process: call stop() when done. */
export interface ControlPlane {
  /** Kubeconfig with the admin client certificate embedded (context `heartline`). */
  kubeconfigPath: string;
  /** https://bindAddress:port */
  server: string;
  caCertPath: string;
  /** Admin client certificate (O=system:masters) and key. */
  clientCertPath: string;
  clientKeyPath: string;
  dataDir: string;
  bindAddress: string;
  netns: string | undefined;
  ports: { apiserver: number; etcdClient: number; etcdPeer: number };
  /** From spawning etcd to the first passing /readyz. */
  startupMs: number;
  /** Stops kube-apiserver then etcd (SIGTERM, SIGKILL after 5 s) and removes a temp data dir. Idempotent. */
  stop(): Promise<void>;
}

const execFileP = promisify(execFile);
const STOP_GRACE_MS = 5000;
interface LiveRecord {
  groups: number[];
  dataDir: string;
  removeDir: boolean;
}
const live = new Set<LiveRecord>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: kill hard and remove what is left.
  process.on('exit', () => {
    for (const cp of live) {
      for (const g of cp.groups) killGroup(g, 'SIGKILL');
      if (cp.removeDir) rmSync(cp.dataDir, { recursive: true, force: true });
    }
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function stopGroup(pgid: number): Promise<void> {
  if (!killGroup(pgid, 'SIGTERM')) return;
  const deadline = Date.now() + STOP_GRACE_MS;
  while (killGroup(pgid, 0) && Date.now() < deadline) await sleep(50);
  if (!killGroup(pgid, 'SIGKILL')) return;
  for (let i = 0; i < 40 && killGroup(pgid, 0); i++) await sleep(50);
}

/** Three distinct free TCP ports on loopback (ports are per network namespace, so good enough for a netns too). */
async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      await new Promise<void>((res, rej) => s.once('error', rej).listen(0, '127.0.0.1', () => res()));
      servers.push(s);
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function defaultLogger(): ControlPlaneLogger {
  return pino({ name: 'controlplane' }, pino.destination({ dest: 2, sync: true }));
}

interface Spawned {
  child: ChildProcess;
  pgid: number;
  logFile: string;
  name: string;
}

function spawnLogged(name: string, argv: string[], logFile: string, netns: string | undefined): Spawned {
  const fd = openSync(logFile, 'a');
  const [cmd, ...args] = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
  try {
    // Own process group (detached) so stop() can signal the whole tree; `ip netns exec` execs in place.
    const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${name} (${cmd}): see ${logFile}`);
    return { child, pgid: child.pid, logFile, name };
  } finally {
    closeSync(fd);
  }
}

type Probe = () => Promise<boolean>;

function makeProbe(url: string, ca: string, cert: string, key: string, netns: string | undefined): Probe {
  if (netns) {
    return async () => {
      try {
        const { stdout } = await execFileP('ip', [
          'netns',
          'exec',
          netns,
          'curl',
          '-s',
          '--max-time',
          '2',
          '--cacert',
          ca,
          '--cert',
          cert,
          '--key',
          key,
          url,
        ]);
        return stdout.trim() === 'ok';
      } catch {
        return false;
      }
    };
  }
  const tls = { ca: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key) };
  return () =>
    new Promise<boolean>((resolve) => {
      const req = https.get(url, { ...tls, timeout: 2000, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'ok'));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
}

class EarlyExit extends Error {
  constructor(
    readonly proc: Spawned,
    readonly portClash: boolean,
  ) {
    super(
      `${proc.name} exited before the control plane was ready (exit ${proc.child.exitCode}); ${proc.logFile}:\n${tail(proc.logFile)}`,
    );
  }
}

/**
 * Starts etcd and kube-apiserver (building them first if needed), waits until /readyz passes
 * and writes an admin kubeconfig. Ports are picked at random; a start that loses a port race
 * is retried with new ports (3 attempts). The processes are killed on stop(), and also when
 * this process exits or receives SIGINT/SIGTERM.
 */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? defaultLogger();
  const bindAddress = opts.bindAddress ?? '127.0.0.1';
  if (!net.isIP(bindAddress)) {
    throw new Error(
      `startControlPlane: bindAddress "${bindAddress}" is not an IP address; pass e.g. 127.0.0.1`,
    );
  }
  const binaries =
    opts.binaries ?? (await ensureBinaries({ onProgress: (line) => log.info({ line }, 'build') }));
  const removeDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'hl-controlplane-')));
  await mkdir(dataDir, { recursive: true });
  const record: LiveRecord = { groups: [], dataDir, removeDir };
  live.add(record);
  installExitHook();
  let lastErr: unknown;
  try {
    const pkiDir = path.join(dataDir, 'pki');
    mkdirSync(pkiDir, { recursive: true });
    const range = opts.serviceClusterIpRange ?? '10.96.0.0/24';
    const certs = await generateCerts(pkiDir, { bindAddress, serviceIp: firstServiceIp(range) });
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        return await startOnce({ ...opts, bindAddress, range }, binaries, dataDir, certs, log, record);
      } catch (err) {
        lastErr = err;
        if (!(err instanceof EarlyExit && err.portClash)) throw err;
        log.warn({ attempt, proc: err.proc.name }, 'port taken, retrying with new ports');
      }
    }
    throw lastErr;
  } catch (err) {
    for (const g of record.groups) killGroup(g, 'SIGKILL');
    live.delete(record);
    if (removeDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

function firstServiceIp(range: string): string {
  const cidr = range.split(',')[0]!.trim();
  const [base] = cidr.split('/');
  if (!base || !net.isIPv4(base)) {
    throw new Error(`serviceClusterIpRange "${cidr}" must be an IPv4 CIDR such as 10.96.0.0/24`);
  }
  const o = base.split('.').map(Number) as [number, number, number, number];
  return `${o[0]}.${o[1]}.${o[2]}.${o[3] + 1}`;
}

async function startOnce(
  opts: ControlPlaneOptions & { bindAddress: string; range: string },
  bin: ControlPlaneBinaries,
  dataDir: string,
  certs: Awaited<ReturnType<typeof generateCerts>>,
  log: ControlPlaneLogger,
  record: LiveRecord,
): Promise<ControlPlane> {
  const { bindAddress, netns } = opts;
  const [apiPort, etcdClient, etcdPeer] = (await freePorts(3)) as [number, number, number];
  const etcdUrl = `http://${hostPort(bindAddress, etcdClient)}`;
  const peerUrl = `http://${hostPort(bindAddress, etcdPeer)}`;
  const etcdDir = path.join(dataDir, 'etcd');
  rmSync(etcdDir, { recursive: true, force: true });
  const started = performance.now();
  const etcd = spawnLogged(
    'etcd',
    [
      bin.etcd,
      '--name=heartline',
      `--data-dir=${etcdDir}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=heartline=${peerUrl}`,
      '--initial-cluster-state=new',
      // Throw-away data: skip fsync, which dominates write latency on shared disks.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
    path.join(dataDir, 'etcd.log'),
    netns,
  );
  record.groups.push(etcd.pgid);
  const server = `https://${hostPort(bindAddress, apiPort)}`;
  // kube-apiserver retries etcd by itself, so both start at once.
  const apiserver = spawnLogged(
    'kube-apiserver',
    [
      bin.kubeApiserver,
      `--bind-address=${bindAddress}`,
      `--advertise-address=${bindAddress}`,
      `--secure-port=${apiPort}`,
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${path.join(dataDir, 'pki')}`,
      `--tls-cert-file=${certs.servingCert}`,
      `--tls-private-key-file=${certs.servingKey}`,
      `--client-ca-file=${certs.caCert}`,
      `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
      `--service-account-key-file=${certs.serviceAccountPub}`,
      `--service-account-signing-key-file=${certs.serviceAccountKey}`,
      `--service-cluster-ip-range=${opts.range}`,
      '--allow-privileged=true',
      ...(opts.realNodes
        ? ['--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction']
        : [
            '--authorization-mode=RBAC',
            // No kubelets: nothing should publish this apiserver's address as the kubernetes Service endpoint.
            '--endpoint-reconciler-type=none',
            // No controller-manager creates the `default` ServiceAccount, which this plugin would require for Pods.
            '--disable-admission-plugins=ServiceAccount',
          ]),
      '--profiling=false',
      ...(opts.extraApiserverArgs ?? []),
    ],
    path.join(dataDir, 'kube-apiserver.log'),
    netns,
  );
  record.groups.push(apiserver.pgid);

  let stopping = false;
  const stopProcs = async () => {
    await stopGroup(apiserver.pgid);
    await stopGroup(etcd.pgid);
  };
  const probe = makeProbe(`${server}/readyz`, certs.caCert, certs.adminCert, certs.adminKey, netns);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 120_000);
  for (;;) {
    for (const p of [etcd, apiserver]) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) {
        await stopProcs();
        record.groups.length = 0;
        const clash = /address already in use/i.test(tail(p.logFile, 200));
        throw new EarlyExit(p, clash);
      }
    }
    if (await probe()) break;
    if (Date.now() > deadline) {
      await stopProcs();
      record.groups.length = 0;
      throw new Error(
        `kube-apiserver at ${server} not ready after ${opts.readyTimeoutMs ?? 120_000} ms; ` +
          `${apiserver.logFile}:\n${tail(apiserver.logFile)}\n${etcd.logFile}:\n${tail(etcd.logFile)}`,
      );
    }
    await sleep(100);
  }
  const startupMs = Math.round(performance.now() - started);

  const kubeconfigPath = path.join(dataDir, 'kubeconfig');
  const b64 = async (f: string) => (await readFile(f)).toString('base64');
  await writeFile(
    kubeconfigPath,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'heartline', cluster: { server, 'certificate-authority-data': await b64(certs.caCert) } },
      ],
      users: [
        {
          name: 'heartline-admin',
          user: {
            'client-certificate-data': await b64(certs.adminCert),
            'client-key-data': await b64(certs.adminKey),
          },
        },
      ],
      contexts: [{ name: 'heartline', context: { cluster: 'heartline', user: 'heartline-admin' } }],
      'current-context': 'heartline',
    }),
    { mode: 0o600 },
  );
  log.info({ server, startupMs, kubeconfigPath, netns, dataDir }, 'control plane ready');

  const onSignal = (signal: NodeJS.Signals) => {
    void stop().finally(() => {
      // Re-raise once the last handler is done, so the default action (exit) still happens.
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      await stopProcs();
      live.delete(record);
      if (record.removeDir) rmSync(dataDir, { recursive: true, force: true });
      log.info({ server }, 'control plane stopped');
    })();
    return stopped;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  for (const p of [etcd, apiserver]) {
    p.child.once('exit', (code, signal) => {
      if (!stopping)
        log.error(
          { proc: p.name, code, signal, logFile: p.logFile },
          'control plane process exited unexpectedly',
        );
    });
  }

  return {
    kubeconfigPath,
    server,
    caCertPath: certs.caCert,
    clientCertPath: certs.adminCert,
    clientKeyPath: certs.adminKey,
    dataDir,
    bindAddress,
    netns,
    ports: { apiserver: apiPort, etcdClient, etcdPeer },
    startupMs,
    stop,
  };
}
