/**
 * The systems under test, each in its own lab (same topology, same HTTP service, same VIP):
 * Heartline (default / fast profile, via hack/lab/cluster.ts) and keepalived (advert_int 1 s /
 * 0.1 s, via ./keepalived.ts). A Target hides the difference for the benchmark loop: start and
 * SIGKILL the node's daemon, restart the node's HTTP service, tell when a node is ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLabCluster, HTTP_PORT, VIP_CIDR, type LabCluster } from '../../hack/lab/cluster.js';
import { signal, sleep } from '../../hack/lab/sh.js';
import { down, up, type Lab } from '../../hack/lab/topology.js';
import { KeepalivedFleet } from './keepalived.js';
import type { ProfileName } from '../../src/core/timing.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const CONFIGS = [
  'heartline-default',
  'heartline-fast',
  'heartline-tight',
  'keepalived-1s',
  'keepalived-0.1s',
] as const;
export type ConfigName = (typeof CONFIGS)[number];
export type HeartlineConfig = Extract<ConfigName, `heartline-${string}`>;

/** The comparisons the reports print (paired by round): each Heartline profile and its keepalived peer. */
export const PAIRS: ReadonlyArray<readonly [ConfigName, ConfigName]> = [
  ['heartline-tight', 'keepalived-0.1s'],
  ['heartline-fast', 'keepalived-0.1s'],
  ['heartline-default', 'keepalived-1s'],
];

const PROFILE_OF: Record<HeartlineConfig, ProfileName> = {
  'heartline-default': 'default',
  'heartline-fast': 'fast',
  'heartline-tight': 'tight',
};

/** What each configuration is, for the results file and the docs. */
export const CONFIG_DESCRIPTIONS: Record<ConfigName, string> = {
  'heartline-default':
    'Heartline, default profile: intervalMs 200, deadMs 1000; quorum majority (3 nodes), autoFailback false, announce 3 GARPs 50 ms apart',
  'heartline-fast':
    'Heartline, fast profile: intervalMs 100, deadMs 300; quorum majority (3 nodes), autoFailback false, announce 3 GARPs 50 ms apart',
  'heartline-tight':
    'Heartline, tight profile: intervalMs 50, deadMs 160; quorum majority (3 nodes), autoFailback false, announce 3 GARPs 50 ms apart',
  'keepalived-1s':
    'keepalived (Debian) VRRPv3 unicast, advert_int 1 s, state BACKUP + nopreempt, priorities 150/100/50, 3 GARPs 50 ms apart, no delayed/refresh GARP',
  'keepalived-0.1s':
    'keepalived (Debian) VRRPv3 unicast, advert_int 0.1 s, state BACKUP + nopreempt, priorities 150/100/50, 3 GARPs 50 ms apart, no delayed/refresh GARP',
};

export interface Target {
  config: ConfigName;
  lab: Lab;
  logDir: string;
  /** SIGKILL the node's daemon (keepalived parent + VRRP child / the Heartline agent's node process). */
  killDaemon(node: string): Promise<void>;
  /**
   * Planned switchover away from `node` (the operator's way to move the VIP off a node it is
   * about to service): Heartline, the node annotated heartline.dev/standby=true; keepalived,
   * a graceful stop (SIGTERM: priority-0 advertisement). Resolves once the request is made.
   */
  planMove(node: string): Promise<void>;
  /** Undoes planMove (annotation removed / keepalived started again); the node rejoins as a backup. */
  undoPlanMove(node: string): Promise<void>;
  /** What planMove and undoPlanMove do, for the results file. */
  readonly planMoveAction: string;
  /** Starts the node's daemon again. */
  startDaemon(node: string): Promise<void>;
  /** Starts the node's HTTP service (after a power-off) and resolves once it listens. */
  startHttp(node: string): Promise<void>;
  /** Whether the node's daemon runs. */
  daemonRunning(node: string): Promise<boolean>;
  /**
   * Heartline only: when no node has the VIP bound but the VirtualIP's status names a holder,
   * restarts that holder's agent (SIGKILL + start) and returns its name. A repair between
   * trials, reported in the results; never done during a trial.
   */
  unstick?(): Promise<string | undefined>;
  /** Resolves once a (re)started daemon on `node` has joined its peers (or throws after timeoutMs). */
  waitJoined(node: string, sinceStart: number, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** Spawns the lab's HTTP service (hack/lab/http-resource.ts) in `ns`; resolves once it listens. */
async function spawnHttp(ns: string, name: string, logFile: string): Promise<ChildProcess> {
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'hack/lab/http-resource.ts'),
      '--name',
      name,
      '--port',
      String(HTTP_PORT),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stderr!.pipe(out);
  await new Promise<void>((res, rej) => {
    const t = setTimeout(
      () => rej(new Error(`HTTP service in ${ns} did not listen within 30 s; see ${logFile}`)),
      30_000,
    );
    createInterface({ input: child.stdout! }).on('line', (l) => {
      out.write(`${l}\n`);
      if (l.includes('"listening"')) {
        clearTimeout(t);
        res();
      }
    });
    child.once('exit', (c) => {
      clearTimeout(t);
      rej(new Error(`HTTP service in ${ns} exited (${String(c)}); see ${logFile}`));
    });
  });
  return child;
}

function alive(c: ChildProcess | undefined): boolean {
  return !!c && c.exitCode === null && c.signalCode === null;
}

/** Node pids of the children of `pid` (from /proc/PID/task/PID/children). */
async function childrenOf(pid: number): Promise<number[]> {
  const txt = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return txt.trim().split(/\s+/).filter(Boolean).map(Number);
}

function count(file: string, needle: string): number {
  try {
    return readFileSync(file, 'utf8').split(needle).length - 1;
  } catch {
    return 0;
  }
}

export async function startHeartline(
  config: HeartlineConfig,
  id: string,
  log: (m: string) => void,
): Promise<Target> {
  const logDir = `/tmp/heartline-bench-${id}`;
  const cluster: LabCluster = await startLabCluster({
    id,
    nodes: 3,
    profile: PROFILE_OF[config],
    logDir,
    log: (m) => log(`[${config}] ${m}`),
  });
  const extraHttp = new Map<string, ChildProcess>();
  const joinedCount = new Map<string, number>();
  const agentLog = (node: string) => join(logDir, `agent-${node}.log`);
  const target: Target = {
    config,
    lab: cluster.lab,
    logDir,
    async killDaemon(node) {
      const netd = cluster.agents.get(node)?.child;
      if (!alive(netd)) throw new Error(`${config}: agent of ${node} is not running`);
      const kids = await childrenOf(netd!.pid!);
      if (kids.length !== 1)
        throw new Error(
          `${config}: heartline-netd (pid ${netd!.pid}) of ${node} has children [${kids.join(',')}], expected the agent`,
        );
      signal(kids[0]!, 'SIGKILL');
    },
    planMoveAction: 'kubectl annotate node N heartline.dev/standby=true; recovery: the annotation removed',
    async planMove(node) {
      await cluster.kubectl(['annotate', '--overwrite', 'node', node, 'heartline.dev/standby=true']);
    },
    async undoPlanMove(node) {
      await cluster.kubectl(['annotate', 'node', node, 'heartline.dev/standby-']);
    },
    async startDaemon(node) {
      const netd = cluster.agents.get(node)?.child;
      const end = performance.now() + 5000;
      // heartline-netd fences and exits after its agent died; wait for it before starting anew.
      while (alive(netd) && performance.now() < end) await sleep(10);
      if (alive(netd))
        throw new Error(`${config}: heartline-netd of ${node} still runs 5 s after its agent died`);
      joinedCount.set(node, count(agentLog(node), '"msg":"member started"'));
      await cluster.startAgent(node);
    },
    async startHttp(node) {
      const h = cluster.lab.nodes.find((n) => n.name === node)!;
      extraHttp.set(node, await spawnHttp(h.ns, node, join(logDir, `http-${node}.log`)));
    },
    async daemonRunning(node) {
      return alive(cluster.agents.get(node)?.child);
    },
    async unstick() {
      // The holder is the VirtualIP's status holder, or else the agent whose log ends in
      // failed renewals (it believes it holds the VIP that its fence removed).
      const st = await cluster.vipStatus('web').catch(() => ({}) as { holder?: string });
      let holder = typeof st.holder === 'string' && st.holder ? st.holder : undefined;
      if (!holder) {
        for (const n of cluster.lab.nodes) {
          const tail = readFileSync(agentLog(n.name), 'utf8').slice(-3000).trim().split('\n').at(-1) ?? '';
          if (tail.includes('renew failed')) holder = n.name;
        }
      }
      if (!holder || !alive(cluster.agents.get(holder)?.child)) return undefined;
      if ((await cluster.boundOn(holder)).length > 0) return undefined;
      await target.killDaemon(holder);
      const started = performance.now();
      await target.startDaemon(holder);
      await target.waitJoined(holder, started, 60_000);
      return holder;
    },
    async waitJoined(node, _sinceStart, timeoutMs) {
      // "member started" is logged once the agent has read its cluster and opened its socket;
      // then give its peers two heartbeat intervals to hear it.
      const before = joinedCount.get(node) ?? 0;
      const end = performance.now() + timeoutMs;
      while (count(agentLog(node), '"msg":"member started"') <= before) {
        if (!alive(cluster.agents.get(node)?.child))
          throw new Error(`${config}: agent of ${node} exited while starting; see ${agentLog(node)}`);
        if (performance.now() > end)
          throw new Error(
            `${config}: agent of ${node} did not start within ${timeoutMs} ms; see ${agentLog(node)}`,
          );
        await sleep(50);
      }
      await sleep(config === 'heartline-default' ? 500 : 300);
    },
    async stop() {
      for (const c of extraHttp.values()) if (alive(c)) c.kill('SIGKILL');
      await cluster.stop();
    },
  };
  return target;
}

export async function startKeepalived(
  config: 'keepalived-1s' | 'keepalived-0.1s',
  id: string,
  log: (m: string) => void,
): Promise<Target> {
  const logDir = `/tmp/heartline-bench-${id}`;
  mkdirSync(logDir, { recursive: true });
  const lab = await up({ id, nodes: 3 });
  const advertIntS = config === 'keepalived-1s' ? 1 : 0.1;
  const fleet = new KeepalivedFleet(lab, logDir, { advertIntS, vipCidr: VIP_CIDR });
  const http = new Map<string, ChildProcess>();
  try {
    for (const n of lab.nodes)
      http.set(n.name, await spawnHttp(n.ns, n.name, join(logDir, `http-${n.name}.log`)));
    // Start in priority order a moment apart, so n1 (highest) becomes the first master.
    for (const n of lab.nodes) await fleet.start(n.name);
    log(`[${config}] lab ${id}: 3 nodes, keepalived advert_int ${advertIntS} s (logs in ${logDir})`);
  } catch (err) {
    await fleet.stopAll().catch(() => undefined);
    for (const c of http.values()) c.kill('SIGKILL');
    await down(id);
    throw err;
  }
  return {
    config,
    lab,
    logDir,
    async killDaemon(node) {
      const pids = await fleet.sigkill(node);
      if (pids.length < 2)
        throw new Error(
          `${config}: expected keepalived parent and VRRP child on ${node}, killed [${pids.join(',')}]`,
        );
    },
    planMoveAction:
      'keepalived stopped gracefully (SIGTERM: priority-0 advertisement); recovery: started again',
    planMove: (node) => fleet.stop(node),
    undoPlanMove: (node) => fleet.start(node),
    startDaemon: (node) => fleet.start(node),
    async startHttp(node) {
      const h = lab.nodes.find((n) => n.name === node)!;
      http.set(node, await spawnHttp(h.ns, node, join(logDir, `http-${node}.log`)));
    },
    daemonRunning: (node) => fleet.running(node),
    async waitJoined(_node, sinceStart, _timeoutMs) {
      // A BACKUP that has started hears the master's next advert within one advert_int.
      const ready = sinceStart + 2 * advertIntS * 1000 + 200;
      while (performance.now() < ready) await sleep(20);
    },
    async stop() {
      await fleet.stopAll().catch(() => undefined);
      for (const c of http.values()) if (alive(c)) c.kill('SIGKILL');
      await down(id);
    },
  };
}
