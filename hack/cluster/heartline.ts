/**
 * Heartline installed on the real-kubelet lab cluster the way an admin installs it:
 * `kubectl apply -k deploy/overlays/lab` (deploy/base with the lab's image name), then an
 * auth Secret, an HACluster selecting the lab's nodes and a VirtualIP, as a user would
 * write them (docs/deploy.md). Waits for `kubectl rollout status` of the agent DaemonSet and
 * the controller Deployment.
 */
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLUSTER_LABEL, type KubeCluster } from './index.js';
import { PROFILES } from '../../src/core/timing.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** deploy/base/config.yaml: the HACluster the shipped install serves. */
export const HL_NAMESPACE = 'heartline-system';
export const HL_CLUSTER = 'heartline';
export const VIP_NAME = 'web';
export const VIP_ADDRESS = '198.18.0.100';

export { PROFILES };

export interface InstallOptions {
  profile?: keyof typeof PROFILES;
  /** Default: witness for an even number of lab nodes, else majority. */
  quorum?: 'majority' | 'witness';
  log?: (msg: string) => void;
}

/** Seconds each install step took. */
export interface InstallTimings {
  apply: number;
  rollout: number;
  bound: number;
}

/** The user's objects: auth Secret, HACluster over the lab's nodes, VirtualIP `web`. */
export function userObjects(
  c: KubeCluster,
  profile: keyof typeof PROFILES,
  quorum: 'majority' | 'witness' = c.lab.nodes.length % 2 === 0 ? 'witness' : 'majority',
): unknown[] {
  const key = () => randomBytes(32).toString('base64');
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'heartline-auth', namespace: HL_NAMESPACE },
      data: { '1': key() },
    },
    {
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'HACluster',
      metadata: { name: HL_CLUSTER, namespace: HL_NAMESPACE },
      spec: {
        // The agent DaemonSet's own selector: members and agents agree (docs/adr/0024).
        nodeSelector: { [CLUSTER_LABEL]: HL_CLUSTER },
        heartbeat: PROFILES[profile],
        transport: { port: 694, mode: 'unicast' },
        authSecretRef: { name: 'heartline-auth', activeKeyId: '1' },
        quorum,
        autoFailback: false,
      },
    },
    {
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'VirtualIP',
      metadata: { name: VIP_NAME, namespace: HL_NAMESPACE },
      spec: {
        clusterRef: { name: HL_CLUSTER },
        address: `${VIP_ADDRESS}/24`,
        preferredNodes: c.lab.nodes.map((n) => n.name),
        announce: { count: 3, intervalMs: 50 },
      },
    },
  ];
}

/** The VirtualIP's status as the API server has it. */
export async function vipStatus(c: KubeCluster, name = VIP_NAME): Promise<Record<string, unknown>> {
  const out = await c.kubectl(['get', 'virtualip', name, '-n', HL_NAMESPACE, '-o', 'json']);
  return (JSON.parse(out) as { status?: Record<string, unknown> }).status ?? {};
}

/** `kubectl apply -k deploy/overlays/lab`, the user's objects, rollouts complete, the VIP bound on one node. */
export async function installHeartline(c: KubeCluster, opts: InstallOptions = {}): Promise<InstallTimings> {
  const log = opts.log ?? (() => {});
  let t = performance.now();
  const secs = () => Math.round((performance.now() - t) / 100) / 10;
  // CRDs first: the same kustomization, applied twice, is what `kubectl apply -k` users do
  // when the CRDs are new (the HACluster objects below need them Established).
  await c.kubectl(['apply', '--server-side', '-k', join(ROOT, 'deploy/overlays/lab')]);
  await c.kubectl(['wait', '--for=condition=established', '--timeout=60s', 'crd', '--all']);
  await c.kubectl(
    ['apply', '--server-side', '-f', '-'],
    userObjects(c, opts.profile ?? 'fast', opts.quorum)
      .map((o) => JSON.stringify(o))
      .join('\n'),
  );
  const apply = secs();
  log(`kubectl apply -k deploy/overlays/lab + Secret, HACluster, VirtualIP (${apply} s)`);
  t = performance.now();
  await c.kubectl(
    ['rollout', 'status', '-n', HL_NAMESPACE, 'ds/heartline-agent', '--timeout=240s'],
    undefined,
    250_000,
  );
  await c.kubectl(
    ['rollout', 'status', '-n', HL_NAMESPACE, 'deploy/heartline-controller', '--timeout=240s'],
    undefined,
    250_000,
  );
  const rollout = secs();
  log(`rollout status: agent DaemonSet and controller Deployment complete (${rollout} s)`);
  t = performance.now();
  const end = performance.now() + 60_000;
  for (;;) {
    const bound: string[] = [];
    for (const n of c.lab.nodes) if ((await c.boundOn(n.name)).includes(VIP_ADDRESS)) bound.push(n.name);
    const s = await vipStatus(c).catch(() => ({}) as Record<string, unknown>);
    if (bound.length === 1 && s.holder === bound[0]) break;
    if (performance.now() > end) {
      throw new Error(
        `VirtualIP ${VIP_NAME}: bound on [${bound.join(', ')}], status ${JSON.stringify(s)} after 60 s`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const bound = secs();
  log(`VirtualIP ${VIP_NAME} bound on one node (${bound} s)`);
  return { apply, rollout, bound };
}
