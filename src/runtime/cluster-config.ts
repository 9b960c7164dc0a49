/**
 * From Kubernetes objects (an HACluster, its VirtualIPs and Resources, the Nodes and the
 * auth Secret) to the configuration a member runs with. Pure: the agent and the
 * controller's witness both call it on what their watches delivered, so every member
 * derives the same member list, VIP set, timing and keys from the same objects.
 *
 * Size: one builder, because every field's check names the object and field; the address
 * rule is in address-claims.ts.
 */
import { parseHACluster, parseResource, parseVirtualIP, formatFieldError } from '../api/index.js';
import type { HACluster, Resource, VirtualIP, ResourceSpec, VirtualIPSpec } from '../api/index.js';
import { cidrContains, parseCidr, parseIp } from '../api/net.js';
import { deriveTiming, TimingError, type Timing } from '../core/timing.js';
import {
  MEMBER_KEY_PREFIX,
  MemberKeys,
  activeKeyProblem,
  parseMemberPublicKey,
  namedKeyIds,
  readAuthSecret,
  type AuthSecretLike,
  type KeyringKey,
} from '../core/wire/index.js';
import type { VipSpec } from '../core/member.js';
import type { QuorumMode } from '../core/lease-holder.js';
import type { ApiObject } from '../core/ports.js';
import { resolveAddressClaims, type AddressClaimant, type NodeAddressOf } from './address-claims.js';

/**
 * Annotation on a Node: the address its agent heartbeats from, when not the InternalIP.
 * Comma-separated for several heartbeat networks: the first is the heartbeat address,
 * every entry may be picked by a unicast link's `network` and is a valid source.
 */
export const HEARTBEAT_ADDRESS_ANNOTATION = 'heartline.dev/heartbeat-address';
/**
 * Annotation on a Node: the UDP port its agent heartbeats on, when not the HACluster's
 * spec.transport.port. For test rigs that run several agents on one address; production
 * nodes use the cluster port.
 */
export const HEARTBEAT_PORT_ANNOTATION = 'heartline.dev/heartbeat-port';
/**
 * Annotation on a Node: the public key its agent signs heartbeats with (`ed25519:<base64>`),
 * written by that agent (docs/adr/0021). The admission policy heartline-agent-member-key lets
 * an agent write it on its own Node only.
 */
export const MEMBER_KEY_ANNOTATION = 'heartline.dev/member-key';
/** Annotation on a Node: "true" puts the node in standby (its VIPs move away, planned). */
export const STANDBY_ANNOTATION = 'heartline.dev/standby';
/**
 * Annotation on a VirtualIP: the member it should move to (`kubectl heartline move`,
 * docs/adr/0031). While that member is alive, healthy, eligible and not in standby it holds
 * the VIP; the holder hands it over by the planned path. Removing it keeps the VIP where it is.
 */
export const MOVE_TO_ANNOTATION = 'heartline.dev/move-to';
/** Finalizer the controller puts on VirtualIPs so that deletion releases them everywhere first. */
export const VIP_FINALIZER = 'heartline.dev/release';
/** The id (`namespace/name`) of Resource `name` of VIP `vip`: a VIP's Resources live in its namespace. */
export function resourceIdOf(vip: string, name: string): string {
  return `${vip.split('/')[0]}/${name}`;
}
/** Member id of the controller's witness voter. */
export const WITNESS_ID = 'heartline-controller';

export interface MemberAddress {
  id: string;
  /** Its first unicast destination (its heartbeat address with the default link). */
  address: string;
  port: number;
  /** Unicast destinations, one per unicast link that found one, deduplicated. Absent: [address]. */
  unicast?: string[];
  /** Every address it may send from (its Node's addresses). Absent: [address]. */
  sources?: string[];
  /**
   * Its public key (`ed25519:<base64>`, checked): what its datagrams must be signed with.
   * Absent until its agent published one; until then nothing it sends is accepted.
   */
  publicKey?: string;
}

/** One heartbeat link as members run it (spec.transport, the one-link form turned into a link). */
export type LinkConfig =
  { mode: 'unicast'; network?: string } | { mode: 'multicast'; group: string; interface?: string };

export interface VipConfig extends VipSpec {
  spec: VirtualIPSpec;
  /** Being deleted, or refused (`refused`): members release it and never bind it. */
  deleting: boolean;
  /** Why the address rule refuses it (runtime/address-claims.ts), if it does. */
  refused?: string;
  /** Resources in start order (missing ones reported in `problems`). */
  resources: Array<{ name: string; spec: ResourceSpec }>;
}

export interface ClusterConfig {
  /** "namespace/name" of the HACluster. */
  clusterId: string;
  namespace: string;
  name: string;
  port: number;
  /** Heartbeat links, in spec order; every message goes over each. Absent: one unicast link. */
  links?: LinkConfig[];
  members: MemberAddress[];
  witness: MemberAddress | null;
  quorum: QuorumMode;
  timing: Timing;
  autoFailback: boolean;
  /** spec.healthCheckTargets: networks Resources' http/tcp checks may reach besides the node's own addresses. */
  healthCheckTargets?: string[];
  keys: KeyringKey[];
  activeKeyId: number;
  vips: VipConfig[];
  /** Members whose Node asks for standby (drain). */
  standby: Set<string>;
  /** Generation of `members` (status.membership); 0 when none is published (members from labels). */
  generation?: number;
  /**
   * The member set the controller converges to, sorted (docs/adr/0024): the Nodes matching
   * spec.nodeSelector, or with an empty selector the Nodes that run the agent. Undefined when
   * the selector is empty and who runs the agent is not known here (an agent: it then takes
   * its members from the published set only).
   */
  candidates?: string[];
  /** Things that are wrong but not fatal, for logs and status (each names the object and fix). */
  problems: string[];
}

/** The configuration cannot be built; the message names the object, the field and the fix. */
export class ClusterConfigError extends Error {
  override readonly name: string = 'ClusterConfigError';
}

export interface ClusterObjects {
  cluster: ApiObject;
  vips: readonly ApiObject[];
  resources: readonly ApiObject[];
  nodes: readonly ApiObject[];
  secret: ApiObject | undefined;
  /** Where the controller's witness listens and its public key (from the HACluster's status), if any. */
  witness?: { address: string; port: number; publicKey?: string } | null;
  /**
   * The member set the controller published (the HACluster's status.membership), if any: the
   * members are then these Nodes, whatever their labels (docs/protocol.md "Membership changes").
   */
  membership?: { generation: number; members: readonly string[] } | null;
  /**
   * The Nodes that run the agent (the controller: from the agent DaemonSet's pods,
   * controller/agent-nodes.ts), if known. With an empty spec.nodeSelector these are the
   * candidates; with a selector, a selected Node missing here is reported (it never votes).
   */
  agentNodes?: ReadonlySet<string>;
}

function labelsMatch(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function selectorEmpty(selector: Record<string, string> | undefined | null): boolean {
  return !selector || Object.keys(selector).length === 0;
}

/**
 * The Nodes the member set converges to (docs/adr/0024), in `nodes`' order: those matching
 * spec.nodeSelector; with an empty selector, those that run the agent (`agentNodes`), or
 * undefined when that is not known.
 */
function memberCandidates(
  cluster: HACluster,
  nodes: readonly ApiObject[],
  agentNodes: ReadonlySet<string> | undefined,
): string[] | undefined {
  const sel = cluster.spec.nodeSelector;
  if (selectorEmpty(sel)) {
    if (!agentNodes) return undefined;
    return nodes.filter((n) => agentNodes.has(n.metadata.name)).map((n) => n.metadata.name);
  }
  return nodes.filter((n) => labelsMatch(sel, n.metadata.labels)).map((n) => n.metadata.name);
}

/**
 * Whether `node` may be a member of `cluster` by its labels (spec.nodeSelector), from the raw
 * objects, without the auth Secret: the agent asks this before it reads the Secret, so that
 * a node that is not a member never fetches the cluster's key. An empty selector selects
 * every Node that runs the agent (docs/adr/0024), so for the agent asking it is true. A
 * malformed selector counts as no match (buildClusterConfig reports the HACluster's error).
 */
export function selectsNode(cluster: ApiObject, node: ApiObject | undefined): boolean {
  if (!node) return false;
  const sel = (cluster.spec as { nodeSelector?: unknown } | undefined)?.nodeSelector;
  if (sel === undefined || sel === null) return true;
  if (typeof sel !== 'object' || Array.isArray(sel)) return false;
  return labelsMatch(sel as Record<string, string>, node.metadata.labels);
}

interface NodeLike {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean };
  status?: { addresses?: Array<{ type: string; address: string }> };
}

/** The address a node's agent heartbeats from: the annotation's first entry, else its first InternalIP (IPv4 first). */
export function nodeAddress(node: ApiObject): string | undefined {
  return nodeAddresses(node).heartbeat;
}

/**
 * A node's addresses for heartbeats: `heartbeat` (see nodeAddress), and `all`, every address
 * it may heartbeat from: the annotation's entries, then its InternalIPs and ExternalIPs.
 * `bad` lists annotation entries that are not IP addresses (left out).
 */
export function nodeAddresses(node: ApiObject): { heartbeat?: string; all: string[]; bad: string[] } {
  const n = node as unknown as NodeLike;
  const ann = (n.metadata.annotations?.[HEARTBEAT_ADDRESS_ANNOTATION] ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const bad = ann.filter((a) => !parseIp(a));
  const annotated = ann.filter((a) => parseIp(a));
  const typed = (type: string) =>
    (n.status?.addresses ?? []).filter((a) => a.type === type && parseIp(a.address)).map((a) => a.address);
  const internal = typed('InternalIP');
  const heartbeat = annotated[0] ?? internal.find((a) => !a.includes(':')) ?? internal[0];
  const all = [...new Set([...annotated, ...internal, ...typed('ExternalIP')])];
  return { ...(heartbeat ? { heartbeat } : {}), all, bad };
}

/** The cluster's links: spec.transport.links, or the one-link form (mode, group, interface). */
export function transportLinks(spec: HACluster['spec']['transport']): LinkConfig[] {
  const links = spec.links ?? [
    { mode: spec.mode ?? 'unicast', group: spec.group, interface: spec.interface },
  ];
  return links.map((l) =>
    l.mode === 'multicast'
      ? { mode: 'multicast', group: l.group!, ...(l.interface ? { interface: l.interface } : {}) }
      : { mode: 'unicast', ...('network' in l && l.network ? { network: l.network } : {}) },
  );
}

/**
 * Where a member is reached on each unicast link: its heartbeat address, or its first address
 * inside the link's network. Links that find no address are reported in `missing` (by index).
 */
function unicastAddresses(
  links: readonly LinkConfig[],
  addrs: { heartbeat?: string; all: string[] },
): { unicast: string[]; missing: number[] } {
  const unicast: string[] = [];
  const missing: number[] = [];
  links.forEach((l, i) => {
    if (l.mode !== 'unicast') return;
    let a: string | undefined = addrs.heartbeat;
    if (l.network) {
      const net = parseCidr(l.network)!;
      a = addrs.all.find((x) => cidrContains(net, parseIp(x)!));
    }
    if (a === undefined) missing.push(i);
    else if (!unicast.includes(a)) unicast.push(a);
  });
  return { unicast, missing };
}

/**
 * Every address of every Node (InternalIP, ExternalIP and the heartbeat-address annotation's
 * entries, see nodeAddresses): the address rule refuses a VirtualIP on any of them.
 */
export function addressesOfNodes(nodes: readonly ApiObject[]): NodeAddressOf[] {
  return nodes.flatMap((node) =>
    nodeAddresses(node).all.map((address) => ({
      node: (node as unknown as NodeLike).metadata.name,
      address,
    })),
  );
}

/**
 * A VirtualIP as the address rule sees it from the objects alone: `held` when its status
 * names a holder, `blocked` while the controller's condition AddressConflict is True.
 */
export function addressClaimant(vip: VirtualIP): AddressClaimant {
  const conflict = vip.status?.conditions?.find((c) => c.type === 'AddressConflict');
  return {
    id: `${vip.metadata.namespace ?? 'default'}/${vip.metadata.name}`,
    address: vip.spec.address,
    created: vip.metadata.creationTimestamp,
    held: Boolean(vip.status?.holder),
    blocked: conflict?.status === 'True',
  };
}

/** Whether the node asks its VIPs to move away: cordoned (kubectl drain) or annotated standby. */
export function nodeStandby(node: ApiObject): boolean {
  const n = node as unknown as NodeLike;
  return n.spec?.unschedulable === true || n.metadata.annotations?.[STANDBY_ANNOTATION] === 'true';
}

/**
 * The auth Secret (or its reference) breaks the Secret's rules (src/core/wire/auth-secret.ts):
 * missing, a bad key, or an activeKeyId it does not hold. Callers keep the keys they run with.
 */
export class AuthSecretError extends ClusterConfigError {
  override readonly name = 'AuthSecretError';
}

function decodeSecretKeys(
  secret: ApiObject | undefined,
  cluster: HACluster,
): { keys: KeyringKey[]; active: number } {
  const ref = cluster.spec.authSecretRef;
  const ns = cluster.metadata.namespace ?? 'default';
  const where = `HACluster ${ns}/${cluster.metadata.name}`;
  if (!secret) {
    throw new AuthSecretError(
      `${where}: spec.authSecretRef.name: Secret "${ref.name}" not found in namespace ${ns}; create it with heartline keygen --name ${ref.name} --namespace ${ns} --key-id ${ref.activeKeyId} | kubectl apply -f -`,
    );
  }
  const { keys, problems } = readAuthSecret(secret as AuthSecretLike);
  const messages = problems.map((p) => `Secret ${ns}/${ref.name}: ${p.path}: ${p.message}`);
  const active = activeKeyProblem(ref.activeKeyId, ref.name, namedKeyIds(secret as AuthSecretLike));
  if (active) messages.push(`${where}: spec.authSecretRef.activeKeyId: ${active}`);
  if (messages.length > 0) throw new AuthSecretError(messages.join('; '));
  return { keys, active: Number(ref.activeKeyId) };
}

/**
 * The member key a Node publishes (annotation heartline.dev/member-key), checked; a missing
 * or malformed one is a problem (its datagrams drop as unknown-member-key until it is fixed).
 */
function memberPublicKey(node: ApiObject, problems: string[]): string | undefined {
  const text = node.metadata.annotations?.[MEMBER_KEY_ANNOTATION];
  const name = node.metadata.name;
  if (text === undefined) {
    problems.push(
      `Node ${name}: no annotation ${MEMBER_KEY_ANNOTATION} yet: its agent publishes its key when it starts; until then the other members drop what it sends (unknown-member-key)`,
    );
    return undefined;
  }
  try {
    parseMemberPublicKey(text);
    return text;
  } catch (err) {
    problems.push(
      `Node ${name}: annotation ${MEMBER_KEY_ANNOTATION}: ${(err as Error).message}; delete the annotation and restart the node's agent, which writes it (${MEMBER_KEY_PREFIX}<base64>)`,
    );
    return undefined;
  }
}

/** Builds the configuration. Throws ClusterConfigError when the cluster itself is unusable. */
export function buildClusterConfig(objs: ClusterObjects): ClusterConfig {
  const parsed = parseHACluster(objs.cluster);
  const ns = objs.cluster.metadata.namespace ?? 'default';
  if (!parsed.ok) {
    throw new ClusterConfigError(
      `HACluster ${ns}/${objs.cluster.metadata.name}: ${parsed.errors.map(formatFieldError).join('; ')}`,
    );
  }
  const cluster = parsed.value;
  const problems: string[] = [];
  const port = cluster.spec.transport.port;
  let timing: Timing;
  try {
    // The schema ran the same HEARTBEAT_RULES; this refuses only what the schema cannot see.
    timing = deriveTiming({
      intervalMs: cluster.spec.heartbeat.intervalMs,
      warnMs: cluster.spec.heartbeat.warnMs,
      deadMs: cluster.spec.heartbeat.deadMs,
      initDeadMs: cluster.spec.heartbeat.initDeadMs,
    });
  } catch (err) {
    if (!(err instanceof TimingError)) throw err;
    throw new ClusterConfigError(
      `HACluster ${ns}/${objs.cluster.metadata.name}: spec.heartbeat.${err.field}: ${err.message}`,
    );
  }

  const links = transportLinks(cluster.spec.transport);
  const linkName = (i: number) =>
    cluster.spec.transport.links ? `spec.transport.links[${i}]` : 'spec.transport';
  const members: MemberAddress[] = [];
  const standby = new Set<string>();
  const sortedNodes = [...objs.nodes].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const candidates = memberCandidates(cluster, sortedNodes, objs.agentNodes);
  if (candidates && objs.agentNodes && !selectorEmpty(cluster.spec.nodeSelector)) {
    for (const name of candidates.filter((n) => !objs.agentNodes!.has(n)))
      problems.push(
        `Node ${name}: matches spec.nodeSelector but runs no agent, so it counts as a voter that never votes; label it for the agent DaemonSet (heartline.dev/cluster=${objs.cluster.metadata.name} in the shipped install) or narrow spec.nodeSelector to the same label`,
      );
  }
  if (!candidates && !objs.membership) {
    problems.push(
      `HACluster ${ns}/${objs.cluster.metadata.name}: spec.nodeSelector is empty, so the members are the Nodes that run the agent, which the controller publishes in status.membership; no member runs until it does`,
    );
  }
  const published = objs.membership ? new Set(objs.membership.members) : undefined;
  const selected = new Set(candidates ?? []);
  for (const name of published ?? []) {
    if (!sortedNodes.some((n) => n.metadata.name === name)) {
      // Still a voter until the controller publishes a set without it: unreachable (dead).
      problems.push(
        `Node ${name}: in status.membership (generation ${objs.membership?.generation}) but not found; the controller removes it in the next generation`,
      );
      members.push({ id: name, address: '', port, unicast: [], sources: [] });
    }
  }
  for (const node of sortedNodes) {
    if (published ? !published.has(node.metadata.name) : !selected.has(node.metadata.name)) continue;
    const addrs = nodeAddresses(node);
    if (addrs.bad.length) {
      problems.push(
        `Node ${node.metadata.name}: annotation ${HEARTBEAT_ADDRESS_ANNOTATION}: ${addrs.bad.map((a) => JSON.stringify(a)).join(', ')} is not an IP address; list IP addresses, comma-separated`,
      );
    }
    const { unicast, missing } = unicastAddresses(links, addrs);
    for (const i of missing) {
      const l = links[i] as { network?: string };
      problems.push(
        l.network
          ? `Node ${node.metadata.name}: no address in ${linkName(i)}.network ${l.network}, so that link does not reach it; add its address there to annotation ${HEARTBEAT_ADDRESS_ANNOTATION} (comma-separated)`
          : `Node ${node.metadata.name}: no InternalIP, so ${linkName(i)} does not reach it; set status.addresses or annotation ${HEARTBEAT_ADDRESS_ANNOTATION}`,
      );
    }
    const address = unicast[0] ?? addrs.heartbeat ?? addrs.all[0];
    if (!address) {
      problems.push(
        `Node ${node.metadata.name}: no InternalIP; set status.addresses or annotation ${HEARTBEAT_ADDRESS_ANNOTATION}`,
      );
      continue;
    }
    const portAnn = node.metadata.annotations?.[HEARTBEAT_PORT_ANNOTATION];
    let memberPort = port;
    if (portAnn !== undefined) {
      const p = Number(portAnn);
      if (!/^\d{1,5}$/.test(portAnn) || p < 1 || p > 65535) {
        problems.push(
          `Node ${node.metadata.name}: annotation ${HEARTBEAT_PORT_ANNOTATION}="${portAnn}" is not a port; set 1..65535 or remove it`,
        );
      } else memberPort = p;
    }
    const publicKey = memberPublicKey(node, problems);
    members.push({
      id: node.metadata.name,
      address,
      port: memberPort,
      unicast,
      sources: addrs.all,
      ...(publicKey ? { publicKey } : {}),
    });
    if (nodeStandby(node)) standby.add(node.metadata.name);
  }
  // The controller's witness is a peer whenever it has published its address: a voter in
  // quorum "witness" (the core's quorumOf decides), otherwise a non-voting observer that
  // members heartbeat to so the controller can report holders and liveness.
  let witnessKey: string | undefined;
  if (objs.witness?.publicKey !== undefined) {
    try {
      parseMemberPublicKey(objs.witness.publicKey);
      witnessKey = objs.witness.publicKey;
    } catch (err) {
      problems.push(
        `HACluster ${ns}/${objs.cluster.metadata.name}: status.witness.publicKey: ${(err as Error).message}; the controller rewrites it`,
      );
    }
  }
  const witness = objs.witness
    ? {
        id: WITNESS_ID,
        address: objs.witness.address,
        port: objs.witness.port,
        ...(witnessKey ? { publicKey: witnessKey } : {}),
      }
    : null;

  const { keys, active } = decodeSecretKeys(objs.secret, cluster);

  const resources = new Map<string, Resource>();
  for (const r of objs.resources) {
    if ((r.metadata.namespace ?? 'default') !== ns) continue;
    const p = parseResource(r);
    if (p.ok) resources.set(r.metadata.name, p.value);
    else problems.push(`Resource ${ns}/${r.metadata.name}: ${p.errors.map(formatFieldError).join('; ')}`);
  }

  const vips: VipConfig[] = [];
  const claimants: AddressClaimant[] = [];
  for (const obj of objs.vips) {
    if ((obj.metadata.namespace ?? 'default') !== ns) continue;
    const p = parseVirtualIP(obj);
    if (!p.ok) {
      problems.push(`VirtualIP ${ns}/${obj.metadata.name}: ${p.errors.map(formatFieldError).join('; ')}`);
      continue;
    }
    const vip: VirtualIP = p.value;
    claimants.push(addressClaimant(vip));
    if (vip.spec.clusterRef.name !== objs.cluster.metadata.name) continue;
    const bySelector = vip.spec.nodeSelector
      ? objs.nodes
          .filter((n) => labelsMatch(vip.spec.nodeSelector, n.metadata.labels))
          .map((n) => n.metadata.name)
      : undefined;
    // eligibleNodes (externalTrafficPolicy Local: nodes with a ready endpoint) narrows it further.
    const listed = vip.spec.eligibleNodes;
    const eligible = listed ? (bySelector ?? listed).filter((n) => listed.includes(n)) : bySelector;
    const res: VipConfig['resources'] = [];
    for (const name of vip.spec.resources ?? []) {
      const r = resources.get(name);
      if (r) res.push({ name, spec: r.spec });
      else
        problems.push(
          `VirtualIP ${ns}/${vip.metadata.name}: spec.resources: Resource "${name}" not found; create it or remove it from the list`,
        );
    }
    const moveTo = moveTargetOf(obj, `${ns}/${vip.metadata.name}`, objs.cluster, members, eligible, problems);
    vips.push({
      vip: `${ns}/${vip.metadata.name}`,
      preferredNodes: vip.spec.preferredNodes ?? [],
      eligible,
      ...(moveTo !== undefined ? { moveTo } : {}),
      epochFloor: vip.status?.epoch ?? 0,
      spec: vip.spec,
      deleting: Boolean(obj.metadata.deletionTimestamp),
      resources: res,
    });
  }
  vips.sort((a, b) => a.vip.localeCompare(b.vip));
  // One address, one VirtualIP (address-claims.ts): a refused VIP stays known (wire ids,
  // observed holdings) but, like a deleted one, members release it and never bind it.
  const verdicts = resolveAddressClaims(claimants, addressesOfNodes(objs.nodes));
  for (const v of vips) {
    const verdict = verdicts.get(v.vip);
    if (!verdict || verdict.ok) continue;
    v.refused = verdict.message;
    v.deleting = true;
    problems.push(`VirtualIP ${v.vip}: not bound: ${verdict.message}`);
  }

  return {
    clusterId: `${ns}/${objs.cluster.metadata.name}`,
    namespace: ns,
    name: objs.cluster.metadata.name,
    port,
    links,
    members,
    witness,
    quorum: cluster.spec.quorum,
    timing,
    autoFailback: cluster.spec.autoFailback,
    healthCheckTargets: cluster.spec.healthCheckTargets ?? [],
    keys,
    activeKeyId: active,
    vips,
    standby,
    generation: objs.membership?.generation ?? 0,
    ...(candidates ? { candidates } : {}),
    problems,
  };
}

/**
 * Why `node` cannot be a move target of a VIP of a cluster with these members (eligible:
 * the VIP's nodeSelector matches), or undefined if it can. The CLI refuses with this
 * message; a member ignores such an annotation and reports it as a problem.
 */
export function moveTargetProblem(
  node: string,
  members: readonly { id: string }[],
  eligible: readonly string[] | undefined,
): string | undefined {
  if (!members.some((m) => m.id === node))
    return `${node} is not a member (members: ${members.map((m) => m.id).join(', ') || 'none'})`;
  if (eligible && !eligible.includes(node))
    return `${node} does not match the VirtualIP's spec.nodeSelector (eligible: ${eligible.join(', ') || 'none'})`;
  return undefined;
}

function moveTargetOf(
  obj: ApiObject,
  vip: string,
  cluster: ApiObject,
  members: readonly MemberAddress[],
  eligible: readonly string[] | undefined,
  problems: string[],
): string | undefined {
  const target = obj.metadata.annotations?.[MOVE_TO_ANNOTATION];
  if (target === undefined || target === '') return undefined;
  const why = moveTargetProblem(target, members, eligible);
  if (why === undefined) return target;
  problems.push(
    `VirtualIP ${vip}: annotation ${MOVE_TO_ANNOTATION}="${target}" is ignored: ${why} of HACluster ${cluster.metadata.name}; move it to an eligible member or remove the annotation (kubectl heartline move ${obj.metadata.name} --clear)`,
  );
  return undefined;
}

/** The verification keys of `members` that published one (see MemberAddress.publicKey). */
export function memberKeysOf(members: readonly MemberAddress[]): MemberKeys {
  return MemberKeys.fromText(members.flatMap((m) => (m.publicKey ? [[m.id, m.publicKey] as const] : [])));
}

/**
 * Whether `b` may change the member set of `a` in place (Member.setMembers): the controller
 * published a later generation, and nothing else that makes a life changed (cluster, quorum
 * mode, failback, timing, the voting witness). From no generation to the first one only when
 * the member set stays the same.
 */
export function inPlaceMembership(a: ClusterConfig, b: ClusterConfig): boolean {
  const witness = (c: ClusterConfig) => (c.quorum === 'witness' ? (c.witness?.id ?? '') : '');
  const ids = (c: ClusterConfig) => c.members.map((m) => m.id).join(',');
  const ga = a.generation ?? 0;
  const gb = b.generation ?? 0;
  return (
    gb > ga &&
    (ga > 0 || ids(a) === ids(b)) &&
    a.clusterId === b.clusterId &&
    witness(a) === witness(b) &&
    a.quorum === b.quorum &&
    a.autoFailback === b.autoFailback &&
    JSON.stringify(a.timing) === JSON.stringify(b.timing)
  );
}

/** Whether two configurations need a new member (membership, quorum or timing changed). */
export function sameMembership(a: ClusterConfig, b: ClusterConfig): boolean {
  // The witness is part of the member's life only where it votes; elsewhere it is an
  // observer that merely receives our heartbeats, and its (re)appearance must not restart us.
  const ids = (c: ClusterConfig) =>
    [...c.members.map((m) => m.id), c.quorum === 'witness' ? (c.witness?.id ?? '') : ''].join(',');
  return (
    a.clusterId === b.clusterId &&
    ids(a) === ids(b) &&
    a.quorum === b.quorum &&
    a.autoFailback === b.autoFailback &&
    JSON.stringify(a.timing) === JSON.stringify(b.timing)
  );
}
