/**
 * Members and the agent DaemonSet agree (docs/adr/0024), against the real API server: the
 * controller watches the agent pods (--agent-pods) and an HACluster with an empty
 * nodeSelector gets exactly the Nodes those pods run on, including a DaemonSet pod the
 * scheduler has not bound yet; other Nodes, other apps' pods and pods of other namespaces do
 * not count; a pod replaced within the grace period changes nothing. With a selector, a
 * selected Node without an agent pod is named in the Degraded condition with the fix.
 */
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { K8sLeaseLock } from '../../src/adapters/k8s/lease-lock.js';
import { UdpTransport } from '../../src/adapters/udp/udp-transport.js';
import { Controller } from '../../src/controller/controller.js';
import { ControllerMetrics } from '../../src/controller/metrics.js';
import {
  createTestNamespace,
  deleteNamespace,
  kubectl,
  kubeconfig,
  mustKubectl,
  sleep,
  until,
} from './helpers.js';

jest.setTimeout(120_000);

const log = pino({ level: process.env.HEARTLINE_TEST_LOG ?? 'silent' });
const clock = new SystemClock();
const AGENT_LABELS = { 'app.kubernetes.io/name': 'heartline', 'app.kubernetes.io/component': 'agent' };

describe('controller: members are the Nodes that run the agent (real API server)', () => {
  let ns: string;
  let other: string;
  const suffix = randomBytes(3).toString('hex');
  const node = (x: string) => `hl-an-${suffix}-${x}`;
  const nodes = ['a', 'b', 'c', 'd'].map(node);
  let controller: Controller | undefined;
  let transport: UdpTransport | undefined;
  const reader = new K8sApiSource(
    { kubeConfig: loadKubeConfig(kubeconfig()), clock, logger: log },
    { identity: 'test-reader' },
  );

  /** A pod as the DaemonSet controller creates it: pinned to `on` by field affinity, bound or not yet. */
  const agentPod = (
    name: string,
    on: string,
    opts: { bound?: boolean; labels?: object; namespace?: string } = {},
  ) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.namespace ?? ns, labels: opts.labels ?? AGENT_LABELS },
    spec: {
      ...(opts.bound === false ? {} : { nodeName: on }),
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [on] }] }],
          },
        },
      },
      containers: [{ name: 'agent', image: 'heartline.invalid/none:0' }],
    },
  });
  const apply = (docs: object[]) =>
    mustKubectl(['apply', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n'));
  const status = async (name: string) =>
    ((await reader.get('HACluster', { namespace: ns, name }))?.status ?? {}) as {
      membership?: { generation: number; members: string[] };
      conditions?: Array<{ type: string; status: string; message: string }>;
    };

  beforeAll(async () => {
    ns = await createTestNamespace('hl-agentnodes');
    other = await createTestNamespace('hl-agentnodes-other');
    await apply([
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'auth', namespace: ns },
        data: { '1': randomBytes(32).toString('base64') },
      },
      ...nodes.map((name, i) => ({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name, labels: i < 2 ? { 'heartline.dev/test-agent-nodes': suffix } : {} },
      })),
      agentPod('agent-a', node('a')),
      agentPod('agent-b', node('b'), { bound: false }),
      // Not agents of this install: another app on node c, an agent pod of another namespace on node d.
      agentPod('web-c', node('c'), { labels: { app: 'web' } }),
      agentPod('agent-d', node('d'), { namespace: other }),
    ]);
    for (const n of nodes) {
      // Nodes need an address to be members; no kubelet writes one here.
      await mustKubectl([
        'patch',
        'node',
        n,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({
          status: { addresses: [{ type: 'InternalIP', address: `198.18.0.${10 + nodes.indexOf(n)}` }] },
        }),
      ]);
    }
    await apply([
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: 'any', namespace: ns },
        spec: { authSecretRef: { name: 'auth', activeKeyId: '1' }, quorum: 'majority' },
      },
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: 'labelled', namespace: ns },
        spec: {
          nodeSelector: { 'heartline.dev/test-agent-nodes': suffix },
          authSecretRef: { name: 'auth', activeKeyId: '1' },
          quorum: 'majority',
        },
      },
    ]);
    const kubeConfig = loadKubeConfig(kubeconfig());
    transport = await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log });
    controller = new Controller(
      {
        api: new K8sApiSource({ kubeConfig, clock, logger: log }, { identity: 'c1' }),
        lease: new K8sLeaseLock(
          { kubeConfig, clock },
          { namespace: ns, name: 'heartline-controller', identity: 'c1', leaseDurationSeconds: 15 },
        ),
        clock,
        log,
        metrics: new ControllerMetrics(),
        transport,
      },
      {
        namespace: ns,
        witness: { address: '127.0.0.1', port: transport.address().port },
        agentPods: {
          namespace: ns,
          labelSelector: 'app.kubernetes.io/name=heartline,app.kubernetes.io/component=agent',
        },
        agentGoneGraceMs: 3000,
      },
    );
    controller.start();
  });

  afterAll(async () => {
    await controller?.stop();
    await transport?.close();
    await reader.close();
    await kubectl(['delete', 'node', ...nodes, '--ignore-not-found', '--wait=false']);
    await deleteNamespace(ns);
    await deleteNamespace(other);
  });

  it('an empty selector: generation 1 is the Nodes with agent pods (bound or not yet), nothing else', async () => {
    const m = await until(
      'a published member set',
      async () => (await status('any')).membership,
      30_000,
      200,
    );
    expect(m).toEqual({ generation: 1, members: [node('a'), node('b')] });
  });

  it('a Node the DaemonSet reaches joins at the next generation', async () => {
    await apply([agentPod('agent-c', node('c'))]);
    const m = await until(
      'generation 2',
      async () => {
        const s = (await status('any')).membership;
        return s?.generation === 2 ? s : undefined;
      },
      30_000,
      200,
    );
    expect(m.members).toEqual([node('a'), node('b'), node('c')]);
  });

  it('a pod replaced within the grace period (rolling update): the member set stays', async () => {
    // No kubelet here to confirm the pod stopped: removed at once, as a kubelet would after the stop.
    await mustKubectl(['delete', 'pod', '-n', ns, 'agent-a', '--grace-period=0', '--force']);
    await sleep(1000);
    await apply([agentPod('agent-a-2', node('a'), { bound: false })]);
    await sleep(4000);
    expect((await status('any')).membership?.generation).toBe(2);
  });

  it('a selector: a selected Node without an agent pod is named in Degraded with the fix', async () => {
    await mustKubectl(['delete', 'pod', '-n', ns, 'agent-b', '--wait=true']);
    const c = await until(
      'Degraded naming the Node without an agent',
      async () =>
        (await status('labelled')).conditions?.find(
          (x) =>
            x.type === 'Degraded' &&
            x.status === 'True' &&
            x.message.includes(`Node ${node('b')}: matches spec.nodeSelector but runs no agent`),
        ),
      30_000,
      200,
    );
    expect(c.message).toMatch(/label it for the agent DaemonSet/);
  });
});
