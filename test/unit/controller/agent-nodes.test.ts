/**
 * Members and the agent DaemonSet agree (docs/adr/0024): which Nodes run the agent, from its
 * pods with a grace period; an empty HACluster nodeSelector means exactly those Nodes; a
 * selected Node without an agent is reported.
 */
import type { ApiObject } from '../../../src/core/ports.js';
import { AgentNodes, agentPodNode } from '../../../src/controller/agent-nodes.js';
import { buildClusterConfig } from '../../../src/runtime/cluster-config.js';
import { NS, Rig } from './rig.js';

const AGENT_LABELS = { 'app.kubernetes.io/name': 'heartline', 'app.kubernetes.io/component': 'agent' };
const SELECTOR = 'app.kubernetes.io/name=heartline,app.kubernetes.io/component=agent';

function pod(
  name: string,
  node: string,
  opts: { bound?: boolean; phase?: string; labels?: Record<string, string>; namespace?: string } = {},
): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.namespace ?? NS, labels: opts.labels ?? AGENT_LABELS },
    spec: {
      ...(opts.bound === false ? {} : { nodeName: node }),
      // What the DaemonSet controller writes into every pod it creates.
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }],
          },
        },
      },
    },
    status: { phase: opts.phase ?? 'Running' },
  } as ApiObject;
}

describe('agentPodNode', () => {
  it('is the bound node, or the node a DaemonSet pod is pinned to before the scheduler binds it', () => {
    expect(agentPodNode(pod('a', 'n1'))).toBe('n1');
    expect(agentPodNode(pod('a', 'n2', { bound: false, phase: 'Pending' }))).toBe('n2');
  });

  it('is nothing for a finished pod or one with neither', () => {
    expect(agentPodNode(pod('a', 'n1', { phase: 'Succeeded' }))).toBeUndefined();
    expect(agentPodNode(pod('a', 'n1', { phase: 'Failed' }))).toBeUndefined();
    expect(agentPodNode({ metadata: { name: 'x' }, spec: {} } as ApiObject)).toBeUndefined();
  });
});

describe('AgentNodes', () => {
  it('keeps a Node for the grace period after its last pod went, and says when that ends', () => {
    const a = new AgentNodes(30_000);
    expect(a.update([pod('a1', 'n1'), pod('a2', 'n2')], 0)).toBe(true);
    expect([...a.nodes(0)].sort()).toEqual(['n1', 'n2']);
    expect(a.nextChangeInMs(0)).toBeUndefined();
    // n2's pod deleted (a rolling update): still running the agent for 30 s.
    expect(a.update([pod('a1', 'n1')], 1000)).toBe(true);
    expect([...a.nodes(20_000)].sort()).toEqual(['n1', 'n2']);
    expect(a.nextChangeInMs(20_000)).toBe(11_000);
    // Its replacement comes: nodes() never changed.
    expect(a.update([pod('a1', 'n1'), pod('a3', 'n2', { bound: false })], 21_000)).toBe(true);
    expect(a.nextChangeInMs(40_000)).toBeUndefined();
    expect([...a.nodes(60_000)].sort()).toEqual(['n1', 'n2']);
    // Gone for good (unlabelled for the DaemonSet): out after the grace period.
    a.update([pod('a1', 'n1')], 61_000);
    expect([...a.nodes(90_999)].sort()).toEqual(['n1', 'n2']);
    expect([...a.nodes(91_000)]).toEqual(['n1']);
    expect(a.nextChangeInMs(91_000)).toBeUndefined();
  });

  it('a Node gains the agent at once', () => {
    const a = new AgentNodes(30_000);
    a.update([pod('a1', 'n1')], 0);
    expect(a.update([pod('a1', 'n1'), pod('a2', 'n2', { bound: false, phase: 'Pending' })], 5)).toBe(true);
    expect([...a.nodes(5)].sort()).toEqual(['n1', 'n2']);
  });
});

describe('buildClusterConfig: the member candidates', () => {
  const node = (name: string, labels: Record<string, string> = {}) =>
    ({
      metadata: { name, labels },
      status: { addresses: [{ type: 'InternalIP', address: `198.18.0.${name.slice(1)}` }] },
    }) as ApiObject;
  const cluster = (nodeSelector?: Record<string, string>) =>
    ({
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'HACluster',
      metadata: { name: 'web', namespace: NS },
      spec: {
        ...(nodeSelector ? { nodeSelector } : {}),
        authSecretRef: { name: 'auth', activeKeyId: '1' },
        quorum: 'majority',
      },
    }) as ApiObject;
  const secret = {
    metadata: { name: 'auth', namespace: NS },
    data: { '1': Buffer.alloc(32, 1).toString('base64') },
  } as ApiObject;
  const nodes = [
    node('n1', { 'heartline.dev/cluster': 'web' }),
    node('n2', { 'heartline.dev/cluster': 'web' }),
    node('n3'),
  ];
  const build = (c: ApiObject, agentNodes?: Set<string>) =>
    buildClusterConfig({
      cluster: c,
      vips: [],
      resources: [],
      nodes,
      secret,
      ...(agentNodes ? { agentNodes } : {}),
    });

  it('an empty selector: exactly the Nodes that run the agent, whatever their labels', () => {
    const config = build(cluster(), new Set(['n1', 'n3']));
    expect(config.candidates).toEqual(['n1', 'n3']);
    expect(config.members.map((m) => m.id)).toEqual(['n1', 'n3']);
    expect(build(cluster({}), new Set(['n2'])).candidates).toEqual(['n2']);
  });

  it('an empty selector where nobody knows who runs the agent (an agent): no member until the controller publishes', () => {
    const config = build(cluster());
    expect(config.candidates).toBeUndefined();
    expect(config.members).toEqual([]);
    expect(config.problems.join('\n')).toMatch(/spec.nodeSelector is empty.*status.membership/);
    const published = buildClusterConfig({
      cluster: cluster(),
      vips: [],
      resources: [],
      nodes,
      secret,
      membership: { generation: 1, members: ['n2', 'n3'] },
    });
    expect(published.members.map((m) => m.id)).toEqual(['n2', 'n3']);
    expect(published.problems.join('\n')).not.toMatch(/nodeSelector is empty/);
  });

  it('a selector: the labelled Nodes; one without an agent is named, with the fix', () => {
    const config = build(cluster({ 'heartline.dev/cluster': 'web' }), new Set(['n1', 'n3']));
    expect(config.candidates).toEqual(['n1', 'n2']);
    expect(config.problems).toContainEqual(
      expect.stringMatching(
        /^Node n2: matches spec.nodeSelector but runs no agent.*heartline.dev\/cluster=web/,
      ),
    );
    // Unknown (no pod watch): nothing to report.
    expect(build(cluster({ 'heartline.dev/cluster': 'web' })).problems.join()).not.toMatch(/runs no agent/);
  });
});

describe('controller: an empty nodeSelector follows the agent pods', () => {
  let rig: Rig;
  afterEach(async () => {
    await rig?.close();
  });

  const membership = async () =>
    (
      (await rig.object('HACluster', 'web'))?.status as {
        membership?: { generation: number; members: string[] };
      }
    )?.membership;

  it('publishes the Nodes with agent pods, keeps one through a pod replacement, drops one whose agent is gone', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c', 'node-d'], nodeSelector: {} });
    for (const n of ['node-a', 'node-b', 'node-c']) rig.api.apply('Pod', pod(`agent-${n}`, n));
    // Another app's pod on node-d, and an agent pod of another namespace: neither counts.
    rig.api.apply('Pod', pod('web-1', 'node-d', { labels: { app: 'web' } }));
    rig.api.apply('Pod', pod('agent-x', 'node-d', { namespace: 'elsewhere' }));
    rig.addController('c1', { agentPods: { namespace: NS, labelSelector: SELECTOR, graceMs: 10_000 } });
    await rig.until(async () => (await membership())?.generation === 1);
    expect((await membership())?.members).toEqual(['node-a', 'node-b', 'node-c']);
    await rig.startAgents(['node-a', 'node-b', 'node-c']);
    await rig.until(async () => typeof (await rig.vipStatus()).holder === 'string');

    // The DaemonSet reaches node-d: it joins at the next generation.
    rig.api.apply('Pod', pod('agent-node-d', 'node-d', { bound: false, phase: 'Pending' }));
    await rig.until(async () => (await membership())?.generation === 2);
    expect((await membership())?.members).toEqual(['node-a', 'node-b', 'node-c', 'node-d']);
    await rig.reconfigureAgents();
    rig.agents.get('node-d')!.start(await rig.config());
    await rig.advance(3000);

    // A rolling update replaces node-b's pod: the member set stays.
    rig.api.delete('Pod', { namespace: NS, name: 'agent-node-b' });
    await rig.advance(2000);
    rig.api.apply('Pod', pod('agent-node-b-2', 'node-b', { bound: false, phase: 'Pending' }));
    await rig.advance(15_000);
    expect((await membership())?.generation).toBe(2);

    // node-c unlabelled for the DaemonSet: its pod goes for good, and so does the member, after the grace.
    rig.api.delete('Pod', { namespace: NS, name: 'agent-node-c' });
    await rig.advance(8000);
    expect((await membership())?.generation).toBe(2);
    await rig.until(async () => (await membership())?.generation === 3, 20_000);
    expect((await membership())?.members).toEqual(['node-a', 'node-b', 'node-d']);
    const h = await rig.object('HACluster', 'web');
    const degraded = (h?.status as { conditions?: Array<{ type: string; status: string }> }).conditions?.find(
      (c) => c.type === 'Degraded',
    );
    expect(degraded?.status).not.toBe('True');
  }, 30_000);

  it('with a selector, a selected Node without an agent pod puts Degraded with the fix', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'] });
    for (const n of ['node-a', 'node-b']) rig.api.apply('Pod', pod(`agent-${n}`, n));
    rig.addController('c1', { agentPods: { namespace: NS, labelSelector: SELECTOR } });
    await rig.startAgents();
    await rig.until(async () => {
      const h = await rig.object('HACluster', 'web');
      const c = (
        h?.status as { conditions?: Array<{ type: string; status: string; message?: string }> }
      )?.conditions?.find((x) => x.type === 'Degraded');
      return (
        c?.status === 'True' &&
        /Node node-c: matches spec.nodeSelector but runs no agent/.test(c.message ?? '')
      );
    });
    // Members still follow the selector: the administrator's choice, reported, not overridden.
    expect((await membership())?.members).toEqual(['node-a', 'node-b', 'node-c']);
  });
});
