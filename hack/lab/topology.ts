/**
 * The lab: real Linux network namespaces wired as a small L2 network, and the faults we
 * inject into it. Nothing here touches the root namespace: bridges live in a "switch"
 * namespace and every veth pair is created straight between two lab namespaces.
 *
 *   hl-<id>-client (198.18.0.2)   hl-<id>-cp (198.18.0.3)   hl-<id>-n1..nN (198.18.0.11..)
 *            eth0                         eth0                       eth0 [eth1]
 *              \__ pclient         pcp __/                  pn1.. __/    \__ qn1..
 *                          hl-<id>-sw: br0  (198.18.0.0/24)          br1 (198.19.0.0/24)
 *
 * Every namespace is named `hl-<id>-...` so `down(id)` and `downAll()` find leftovers by
 * name alone, even after the process that built the lab died.
 */
import {
  CommandError,
  ip,
  isInstrument,
  killNamespace,
  netnsList,
  nsPids,
  nsRun,
  signal,
  sleep,
} from './sh.js';

/** Prefix of every lab namespace. */
export const NS_PREFIX = 'hl-';
/** Subnet of the data network (br0 / eth0). */
export const DATA_PREFIX = '198.18.0';
/** Subnet of the optional heartbeat network (br1 / eth1). */
export const HB_PREFIX = '198.19.0';
/** Prefix length of both lab subnets. */
export const LAB_PREFIX_LEN = 24;
/** First and last VIP the lab hands out (198.18.0.100 - 198.18.0.199). */
export const VIP_FIRST = `${DATA_PREFIX}.100`;
export const VIP_LAST = `${DATA_PREFIX}.199`;
/** Most nodes a lab can have (node addresses .11-.90 stay below the VIP range). */
export const MAX_NODES = 80;

export interface LabOptions {
  /** Short id, [a-z0-9]{1,10}; namespaces are `hl-<id>-sw`, `hl-<id>-n1`, ... */
  id: string;
  /** Number of node namespaces, 1..MAX_NODES. */
  nodes: number;
  /** Adds br1 and eth1 (198.19.0.0/24) on nodes and control plane: a separate heartbeat network. */
  heartbeatNet?: boolean;
  /**
   * Leave IPv6 enabled in the lab namespaces (kernel link-local addresses only; the lab
   * assigns no IPv6 address). Default false: IPv6 is disabled in every lab namespace.
   */
  ipv6?: boolean;
}

/** One end host (node, client or control plane) of the lab. */
export interface LabHost {
  /** Short name: `n1`, `client`, `cp`. */
  name: string;
  /** Network namespace, `hl-<id>-<name>`. */
  ns: string;
  /** IPv4 address on eth0 (no prefix length). */
  ip: string;
  /** Switch-side port of eth0 in the switch namespace (`p<name>`). */
  port: string;
  /** IPv4 address on eth1 when the lab has a heartbeat network. */
  hbIp?: string;
  /** Switch-side port of eth1 (`q<name>`) when the lab has a heartbeat network. */
  hbPort?: string;
}

/** A lab as built by `up` (or reconstructed by `inspect`). Plain data: safe to serialize. */
export interface Lab {
  id: string;
  /** Switch namespace holding br0 (and br1). */
  sw: string;
  nodes: LabHost[];
  client: LabHost;
  cp: LabHost;
  heartbeatNet: boolean;
  ipv6: boolean;
}

const ID_RE = /^[a-z0-9]{1,10}$/;

function checkId(id: string): void {
  if (!ID_RE.test(id)) {
    throw new Error(
      `lab id "${id}" is invalid: use 1-10 characters from [a-z0-9] (it becomes part of namespace names)`,
    );
  }
}

/** Namespace name for host `name` in lab `id`. */
export function nsName(id: string, name: string): string {
  return `${NS_PREFIX}${id}-${name}`;
}

/** The lab's layout for `opts`, without creating anything. */
export function plan(opts: LabOptions): Lab {
  checkId(opts.id);
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
    throw new Error(
      `lab ${opts.id}: nodes=${opts.nodes} is out of range: use an integer from 1 to ${MAX_NODES}`,
    );
  }
  const hb = opts.heartbeatNet ?? false;
  const host = (name: string, octet: number, withHb: boolean): LabHost => ({
    name,
    ns: nsName(opts.id, name),
    ip: `${DATA_PREFIX}.${octet}`,
    port: `p${name}`,
    ...(withHb ? { hbIp: `${HB_PREFIX}.${octet}`, hbPort: `q${name}` } : {}),
  });
  const nodes: LabHost[] = [];
  for (let i = 1; i <= opts.nodes; i++) nodes.push(host(`n${i}`, 10 + i, hb));
  return {
    id: opts.id,
    sw: nsName(opts.id, 'sw'),
    nodes,
    client: host('client', 2, false),
    cp: host('cp', 3, hb),
    heartbeatNet: hb,
    ipv6: opts.ipv6 ?? false,
  };
}

/** Looks a node up by name (`n1`) and fails with a message naming the lab's nodes. */
export function node(lab: Lab, name: string): LabHost {
  const n = lab.nodes.find((h) => h.name === name);
  if (!n) {
    throw new Error(
      `lab ${lab.id} has no node "${name}": nodes are ${lab.nodes.map((h) => h.name).join(', ')}`,
    );
  }
  return n;
}

async function sysctl(ns: string, settings: Record<string, string | number>): Promise<void> {
  await nsRun(ns, 'sysctl', ['-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

async function wire(lab: Lab, h: LabHost, iface: 'eth0' | 'eth1'): Promise<void> {
  const port = iface === 'eth0' ? h.port : h.hbPort;
  const addr = iface === 'eth0' ? h.ip : h.hbIp;
  const bridge = iface === 'eth0' ? 'br0' : 'br1';
  if (!port || !addr) return;
  await ip('link', 'add', iface, 'netns', h.ns, 'type', 'veth', 'peer', 'name', port, 'netns', lab.sw);
  await ip('-n', lab.sw, 'link', 'set', port, 'master', bridge, 'up');
  await ip('-n', h.ns, 'addr', 'add', `${addr}/${LAB_PREFIX_LEN}`, 'dev', iface);
  await ip('-n', h.ns, 'link', 'set', iface, 'up');
}

/**
 * Builds lab `opts.id`. Any leftover of a lab with the same id is torn down first, so `up`
 * is safe to rerun. On failure, whatever was built is torn down before the error is thrown.
 */
export async function up(opts: LabOptions): Promise<Lab> {
  const lab = plan(opts);
  await down(lab.id);
  try {
    const hosts = [lab.client, lab.cp, ...lab.nodes];
    for (const ns of [lab.sw, ...hosts.map((h) => h.ns)]) {
      await ip('netns', 'add', ns);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      if (!lab.ipv6) {
        await sysctl(ns, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
      }
    }
    // Nodes: answer ARP only for their own addresses on the asking link, and never use a
    // VIP as the source of their own ARP requests (it would poison peers' caches while the
    // VIP moves). Nonlocal bind lets services bind a VIP before it arrives.
    for (const n of lab.nodes) {
      await sysctl(n.ns, {
        'net.ipv4.ip_nonlocal_bind': 1,
        'net.ipv4.conf.all.arp_ignore': 1,
        'net.ipv4.conf.all.arp_announce': 2,
        'net.ipv4.conf.default.arp_ignore': 1,
        'net.ipv4.conf.default.arp_announce': 2,
      });
    }
    // Client: gratuitous ARP creates an entry even for an address it has not talked to yet
    // (an existing entry is updated by a GARP with or without this).
    await sysctl(lab.client.ns, { 'net.ipv4.conf.all.arp_accept': 1, 'net.ipv4.conf.default.arp_accept': 1 });
    // A dumb switch: no STP delay, no IGMP snooping (multicast heartbeats flood like on a
    // plain switch instead of depending on a querier that the lab does not have).
    const bridges = lab.heartbeatNet ? ['br0', 'br1'] : ['br0'];
    for (const br of bridges) {
      await ip(
        '-n',
        lab.sw,
        'link',
        'add',
        br,
        'type',
        'bridge',
        'stp_state',
        '0',
        'forward_delay',
        '0',
        'mcast_snooping',
        '0',
      );
      await ip('-n', lab.sw, 'link', 'set', br, 'up');
    }
    for (const h of hosts) {
      await wire(lab, h, 'eth0');
      await wire(lab, h, 'eth1');
    }
    return lab;
  } catch (err) {
    await down(lab.id).catch(() => undefined);
    throw err;
  }
}

/** Host part of a lab namespace name: `sw`, `client`, `cp` or `n<k>`. */
const HOST_RE = '(?:sw|client|cp|n[0-9]+)';

/**
 * Names of lab namespaces for `id` (or of every lab when `id` is undefined). Only names of
 * the lab's exact shape `hl-<id>-(sw|client|cp|n<k>)` match, so namespaces that other tools
 * name `hl-...` in their own way are never touched.
 */
export async function labNamespaces(id?: string): Promise<string[]> {
  const re = new RegExp(`^${NS_PREFIX}${id ?? '[a-z0-9]{1,10}'}-${HOST_RE}$`);
  return (await netnsList()).filter((n) => re.test(n));
}

/** Ids of every lab with at least one namespace left. */
export async function listLabs(): Promise<string[]> {
  const ids = new Set<string>();
  for (const ns of await labNamespaces()) {
    const m = /^hl-([a-z0-9]+)-/.exec(ns);
    if (m?.[1]) ids.add(m[1]);
  }
  return [...ids].sort();
}

/**
 * Tears lab `id` down: SIGKILLs every process in its namespaces (instruments included),
 * then deletes the namespaces (which destroys their veths and bridges). Finds what to remove
 * by name, so it also cleans up after a crashed run. Idempotent; returns the namespaces
 * deleted.
 */
export async function down(id: string): Promise<string[]> {
  checkId(id);
  const names = await labNamespaces(id);
  for (const ns of names) await killNamespace(ns, false);
  for (const ns of names) {
    try {
      await ip('netns', 'del', ns);
    } catch (err) {
      // Raced with another down(): gone is what we wanted.
      if (!(err instanceof CommandError) || (await labNamespaces(id)).includes(ns)) throw err;
    }
  }
  return names;
}

/**
 * Tears down every lab: every namespace named like `hl-<id>-(sw|client|cp|n<k>)`. Other
 * `hl-` namespaces (other tools' tests) are left alone. Returns the ids removed.
 */
export async function downAll(): Promise<string[]> {
  const ids = await listLabs();
  for (const id of ids) await down(id);
  return ids;
}

/**
 * Rebuilds the Lab description of a running lab from its namespaces (for tools that did not
 * build it, e.g. a CLI applying a fault). Undefined when no switch namespace exists.
 */
export async function inspect(id: string): Promise<Lab | undefined> {
  checkId(id);
  const names = await labNamespaces(id);
  if (!names.includes(nsName(id, 'sw'))) return undefined;
  const count = names.filter((n) => /-n\d+$/.test(n)).length;
  const brs = await ip('-n', nsName(id, 'sw'), '-o', 'link', 'show', 'type', 'bridge');
  const v6 =
    (await nsRun(nsName(id, 'sw'), 'sysctl', ['-n', 'net.ipv6.conf.all.disable_ipv6'])).trim() === '0';
  return plan({ id, nodes: count, heartbeatNet: /\bbr1\b/.test(brs), ipv6: v6 });
}

// ---------------------------------------------------------------- faults

function ifaces(lab: Lab, h: LabHost): Array<{ iface: string; port: string }> {
  const out = [{ iface: 'eth0', port: h.port }];
  if (lab.heartbeatNet && h.hbPort) out.push({ iface: 'eth1', port: h.hbPort });
  return out;
}

/**
 * Power failure of node `name`: the node's processes are frozen (SIGSTOP) so none can react,
 * its switch ports go down (the node vanishes from the network), the processes are
 * SIGKILLed, then its own links go down. Lab instruments (sampler processes started with
 * the instrument marker) survive. Addresses stay configured on the down links, as in a
 * machine whose power is cut. Returns the pids killed.
 */
export async function powerOff(lab: Lab, name: string): Promise<number[]> {
  const h = node(lab, name);
  const pids = (await nsPids(h.ns)).filter((p) => p !== process.pid);
  const victims: number[] = [];
  for (const p of pids) if (!(await isInstrument(p))) victims.push(p);
  for (const p of victims) signal(p, 'SIGSTOP');
  for (const { port } of ifaces(lab, h)) await ip('-n', lab.sw, 'link', 'set', port, 'down');
  const killed = new Set(victims);
  for (const p of victims) signal(p, 'SIGKILL');
  for (const p of await killNamespace(h.ns, true)) killed.add(p);
  for (const { iface } of ifaces(lab, h)) await ip('-n', h.ns, 'link', 'set', iface, 'down');
  return [...killed];
}

/**
 * Waits until `iface` in `ns` reports operstate UP: the kernel's link watcher has run and
 * the device passes traffic (it can lag `ip link set up` by up to a second after other
 * link events). Throws after `timeoutMs`, naming the link.
 */
export async function waitOperUp(ns: string, iface: string, timeoutMs = 3000): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const [link] = JSON.parse(await ip('-n', ns, '-j', 'link', 'show', 'dev', iface)) as Array<{
      operstate?: string;
    }>;
    if (link?.operstate === 'UP') return;
    if (performance.now() > end) {
      throw new Error(
        `link ${iface} in ${ns} is still ${link?.operstate ?? 'missing'} ${timeoutMs} ms after being set up: check its peer is up`,
      );
    }
    await sleep(10);
  }
}

async function portsUp(lab: Lab, h: LabHost): Promise<void> {
  for (const { iface, port } of ifaces(lab, h)) {
    await ip('-n', h.ns, 'link', 'set', iface, 'up');
    await ip('-n', lab.sw, 'link', 'set', port, 'up');
  }
  for (const { iface, port } of ifaces(lab, h)) {
    await waitOperUp(h.ns, iface);
    await waitOperUp(lab.sw, port);
  }
}

/**
 * Brings a powered-off node's links back up (both ends) and waits until they pass traffic.
 * Its processes must be restarted by the caller.
 */
export async function powerOn(lab: Lab, name: string): Promise<void> {
  await portsUp(lab, node(lab, name));
}

/** Sets the node-side interface `iface` (eth0 or eth1) of node `name` administratively down. */
export async function linkDown(lab: Lab, name: string, iface = 'eth0'): Promise<void> {
  await ip('-n', node(lab, name).ns, 'link', 'set', iface, 'down');
}

/** Sets the node-side interface `iface` of node `name` up again and waits until it passes traffic. */
export async function linkUp(lab: Lab, name: string, iface = 'eth0'): Promise<void> {
  const h = node(lab, name);
  await ip('-n', h.ns, 'link', 'set', iface, 'up');
  await waitOperUp(h.ns, iface);
}

/**
 * One-way drop: node `name` can no longer send IP packets to `peerIp` (a blackhole route in
 * its namespace; sends fail locally, with EINVAL for UDP). Packets from the peer still
 * arrive. ARP is unaffected.
 */
export async function blackhole(lab: Lab, name: string, peerIp: string): Promise<void> {
  await ip('-n', node(lab, name).ns, 'route', 'add', 'blackhole', `${peerIp}/32`);
}

/** Removes a blackhole added by `blackhole`. Removing an absent one is not an error. */
export async function unblackhole(lab: Lab, name: string, peerIp: string): Promise<void> {
  try {
    await ip('-n', node(lab, name).ns, 'route', 'del', 'blackhole', `${peerIp}/32`);
  } catch (err) {
    if (!(err instanceof CommandError) || !/No such process|not found/i.test(err.stderr)) throw err;
  }
}

/**
 * Split the nodes into groups that cannot exchange IP packets with each other, while every
 * node still reaches the client and control plane: blackhole routes, both ways, for every
 * address (eth0 and eth1) of nodes in other groups. This is the dangerous partition (the
 * holder still serves clients). Nodes not named in any group are untouched.
 */
export async function split(lab: Lab, groups: string[][]): Promise<void> {
  for (const [a, b] of splitPairs(lab, groups)) await blackhole(lab, a.name, b);
}

/** Undoes `split` for the same groups. */
export async function unsplit(lab: Lab, groups: string[][]): Promise<void> {
  for (const [a, b] of splitPairs(lab, groups)) await unblackhole(lab, a.name, b);
}

function splitPairs(lab: Lab, groups: string[][]): Array<[LabHost, string]> {
  const pairs: Array<[LabHost, string]> = [];
  groups.forEach((g, gi) => {
    for (const name of g) {
      const a = node(lab, name);
      groups.forEach((other, oi) => {
        if (oi === gi) return;
        for (const peer of other) {
          const b = node(lab, peer);
          pairs.push([a, b.ip]);
          if (b.hbIp) pairs.push([a, b.hbIp]);
        }
      });
    }
  });
  return pairs;
}

/** Cuts nodes off the network at the switch: their switch-side ports go down (carrier lost on their side). */
export async function partition(lab: Lab, names: string[]): Promise<void> {
  for (const name of names) {
    for (const { port } of ifaces(lab, node(lab, name))) await ip('-n', lab.sw, 'link', 'set', port, 'down');
  }
}

/** Undoes `partition`: the switch-side ports come back up; resolves once both ends pass traffic. */
export async function heal(lab: Lab, names: string[]): Promise<void> {
  for (const name of names) await portsUp(lab, node(lab, name));
}

/** Freezes process `pid` (SIGSTOP). */
export function pause(pid: number): void {
  signal(pid, 'SIGSTOP');
}

/** Thaws process `pid` (SIGCONT). */
export function resume(pid: number): void {
  signal(pid, 'SIGCONT');
}

// ---------------------------------------------------------------- small helpers

/** Adds `cidr` (e.g. 198.18.0.100/24) on `iface` of node `name`, by hand (tests, demos). */
export async function addAddress(lab: Lab, name: string, cidr: string, iface = 'eth0'): Promise<void> {
  await ip('-n', node(lab, name).ns, 'addr', 'add', cidr, 'dev', iface);
}

/** Removes `cidr` from `iface` of node `name`; removing an absent address is not an error. */
export async function delAddress(lab: Lab, name: string, cidr: string, iface = 'eth0'): Promise<void> {
  try {
    await ip('-n', node(lab, name).ns, 'addr', 'del', cidr, 'dev', iface);
  } catch (err) {
    if (!(err instanceof CommandError) || !/Cannot assign requested address/i.test(err.stderr)) throw err;
  }
}

/**
 * Sends `count` gratuitous ARP requests for `ipAddr` from node `name` (iputils `arping -U`).
 * The first goes out within a few ms of the call; arping then waits 1 s after each packet,
 * so the promise resolves about `count` seconds later. Requires the iputils-arping package
 * and `ipAddr` bound on `iface`.
 */
export async function garp(lab: Lab, name: string, ipAddr: string, count = 1, iface = 'eth0'): Promise<void> {
  await nsRun(
    node(lab, name).ns,
    'arping',
    ['-q', '-U', '-c', String(count), '-I', iface, ipAddr],
    5000 + count * 1000,
  );
}

/** Whether `toIp` answers one ping from host namespace `ns` within `timeoutSec`. */
export async function ping(ns: string, toIp: string, timeoutSec = 1): Promise<boolean> {
  try {
    await nsRun(ns, 'ping', ['-n', '-q', '-c', '1', '-W', String(timeoutSec), toIp]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pings `toIp` from `ns` until one reply arrives or `withinMs` passes. Use after healing a
 * fault: a neighbour entry that failed during the fault keeps dropping packets until its
 * resolution round ends (up to 3 s with default ARP settings).
 */
export async function reachable(ns: string, toIp: string, withinMs = 5000): Promise<boolean> {
  const end = performance.now() + withinMs;
  while (performance.now() < end) {
    if (await ping(ns, toIp, 1)) return true;
    await sleep(50);
  }
  return false;
}

/** Waits until `ns` has no process left (or `timeoutMs` passes); true when it is empty. */
export async function waitQuiet(ns: string, timeoutMs = 2000): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if ((await nsPids(ns)).length === 0) return true;
    await sleep(20);
  }
  return false;
}
