/**
 * keepalived (Debian's package) in the lab, for the side-by-side failover benchmark: one
 * keepalived per node namespace, VRRPv3 over unicast on eth0, the same VIP and the same
 * HTTP service as the Heartline lab cluster.
 *
 * Configuration choices, chosen to match Heartline's lab cluster where VRRP allows:
 * - every instance starts BACKUP with `nopreempt`: a recovered higher-priority node does not
 *   take the VIP back (Heartline's `autoFailback: false`); priorities n1 > n2 > n3 play the
 *   part of Heartline's `preferredNodes: [n1, n2, n3]`.
 * - unicast peers (Heartline's lab transport is unicast too), VRRPv3, no authentication.
 * - gratuitous ARP: 3 on becoming master, 50 ms apart (Heartline's `announce: {count: 3,
 *   intervalMs: 50}`), no delayed second burst and no periodic refresh.
 * - `advert_int` 1 s (keepalived's default) or 0.1 s (VRRPv3's centisecond adverts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { logTo, nsPids, signal, sleep } from '../../hack/lab/sh.js';
import type { Lab, LabHost } from '../../hack/lab/topology.js';

export interface KeepalivedOptions {
  /** VRRP advertisement interval, seconds (1 or 0.1). */
  advertIntS: number;
  /** VIP with prefix length, e.g. 198.18.0.100/24. */
  vipCidr: string;
  /** VRRP virtual router id (1-255). */
  vrid?: number;
}

/** Priority of the k-th node (n1 highest): 150, 100, 50, ... */
export function priorityOf(index: number): number {
  return Math.max(1, 150 - 50 * index);
}

/** keepalived.conf for node `self` of `lab`. Pure. */
export function keepalivedConf(lab: Lab, self: LabHost, o: KeepalivedOptions): string {
  const index = lab.nodes.findIndex((n) => n.name === self.name);
  if (index < 0) throw new Error(`keepalived: node ${self.name} is not in lab ${lab.id}`);
  const peers = lab.nodes.filter((n) => n.name !== self.name).map((n) => `    ${n.ip}`);
  return [
    'global_defs {',
    `  router_id ${lab.id}-${self.name}`,
    '  vrrp_version 3',
    '  vrrp_garp_master_delay 0',
    '  vrrp_garp_master_repeat 3',
    '  vrrp_garp_interval 0.05',
    '  vrrp_garp_master_refresh 0',
    '  vrrp_garp_lower_prio_repeat 0',
    '  vrrp_lower_prio_no_advert false',
    '}',
    'vrrp_instance web {',
    '  state BACKUP',
    '  nopreempt',
    '  interface eth0',
    `  virtual_router_id ${o.vrid ?? 51}`,
    `  priority ${priorityOf(index)}`,
    `  advert_int ${o.advertIntS}`,
    `  unicast_src_ip ${self.ip}`,
    '  unicast_peer {',
    ...peers,
    '  }',
    '  virtual_ipaddress {',
    `    ${o.vipCidr} dev eth0`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** keepalived processes (parent and VRRP child) in namespace `ns`. */
export async function keepalivedPids(ns: string): Promise<number[]> {
  const out: number[] = [];
  for (const p of await nsPids(ns)) {
    const comm = await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'keepalived') out.push(p);
  }
  return out;
}

/** One keepalived per node namespace of a lab, with files under `dir`. */
export class KeepalivedFleet {
  private readonly children = new Map<string, ChildProcess>();

  constructor(
    readonly lab: Lab,
    readonly dir: string,
    readonly opts: KeepalivedOptions,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private files(node: string) {
    return {
      conf: join(this.dir, `${node}.conf`),
      pid: join(this.dir, `${node}.pid`),
      vrrpPid: join(this.dir, `${node}-vrrp.pid`),
      log: join(this.dir, `${node}.log`),
    };
  }

  /** Starts keepalived in node `name`'s namespace (foreground parent + VRRP child). */
  async start(name: string): Promise<void> {
    const host = this.lab.nodes.find((n) => n.name === name);
    if (!host) throw new Error(`keepalived: lab ${this.lab.id} has no node ${name}`);
    if ((await keepalivedPids(host.ns)).length > 0) {
      throw new Error(`keepalived: already running in ${host.ns}; kill it first`);
    }
    const f = this.files(name);
    writeFileSync(f.conf, keepalivedConf(this.lab, host, this.opts));
    // Stale pid files from a SIGKILLed run would make keepalived refuse to start if the pid was reused.
    rmSync(f.pid, { force: true });
    rmSync(f.vrrpPid, { force: true });
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        host.ns,
        'keepalived',
        '--dont-fork',
        '--log-console',
        '--log-detail',
        '--no-syslog',
        '--vrrp',
        '--use-file',
        f.conf,
        '--pid',
        f.pid,
        '--vrrp_pid',
        f.vrrpPid,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    logTo(child, f.log);
    this.children.set(name, child);
    // Running once the VRRP child exists (parent + child in the namespace).
    const end = performance.now() + 5000;
    while ((await keepalivedPids(host.ns)).length < 2) {
      if (child.exitCode !== null)
        throw new Error(`keepalived in ${host.ns} exited (${child.exitCode}); see ${f.log}`);
      if (performance.now() > end)
        throw new Error(`keepalived in ${host.ns} did not start its VRRP process in 5 s; see ${f.log}`);
      await sleep(20);
    }
  }

  /** Whether both keepalived processes run in node `name`'s namespace. */
  async running(name: string): Promise<boolean> {
    const host = this.lab.nodes.find((n) => n.name === name)!;
    return (await keepalivedPids(host.ns)).length >= 2;
  }

  /**
   * `kill -9` of every keepalived process of node `name` (frozen first, so the parent cannot
   * respawn its VRRP child in between). Returns the pids killed.
   */
  async sigkill(name: string): Promise<number[]> {
    const host = this.lab.nodes.find((n) => n.name === name)!;
    const pids = await keepalivedPids(host.ns);
    for (const p of pids) signal(p, 'SIGSTOP');
    for (const p of pids) signal(p, 'SIGKILL');
    const end = performance.now() + 3000;
    while ((await keepalivedPids(host.ns)).length > 0 && performance.now() < end) await sleep(5);
    return pids;
  }

  /**
   * Graceful stop of node `name`'s keepalived (`systemctl stop`: SIGTERM to the parent; the
   * VRRP child sends a priority-0 advertisement, so a backup takes over after its skew time,
   * and removes the VIP). Resolves once both processes are gone (SIGKILL after 3 s).
   */
  async stop(name: string): Promise<void> {
    const host = this.lab.nodes.find((n) => n.name === name)!;
    const child = this.children.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null)
      throw new Error(`keepalived: not running on ${name}`);
    child.kill('SIGTERM');
    const end = performance.now() + 3000;
    while ((await keepalivedPids(host.ns)).length > 0 && performance.now() < end) await sleep(5);
    for (const p of await keepalivedPids(host.ns)) signal(p, 'SIGKILL');
  }

  /** Stops every keepalived (SIGTERM: it removes its VIPs), then SIGKILL after 1 s. */
  async stopAll(): Promise<void> {
    for (const c of this.children.values()) if (c.exitCode === null) c.kill('SIGTERM');
    await sleep(1000);
    for (const h of this.lab.nodes) for (const p of await keepalivedPids(h.ns)) signal(p, 'SIGKILL');
  }
}
