import type { ApiObject } from '../../../src/core/ports.js';
import { publicKeyOf } from '../../fixtures/member-keys.js';
import {
  buildClusterConfig,
  MEMBER_KEY_ANNOTATION,
  nodeAddresses,
  transportLinks,
  WITNESS_ID,
  type ClusterObjects,
} from '../../../src/runtime/cluster-config.js';

const NS = 'default';

function node(name: string, internal: string[], annotation?: string, external: string[] = []): ApiObject {
  return {
    metadata: {
      name,
      labels: { member: 'yes' },
      annotations: {
        [MEMBER_KEY_ANNOTATION]: publicKeyOf(name),
        ...(annotation !== undefined ? { 'heartline.dev/heartbeat-address': annotation } : {}),
      },
    },
    status: {
      addresses: [
        ...internal.map((address) => ({ type: 'InternalIP', address })),
        ...external.map((address) => ({ type: 'ExternalIP', address })),
        { type: 'Hostname', address: name },
      ],
    },
  } as ApiObject;
}

function objects(transport: Record<string, unknown>, nodes: ApiObject[]): ClusterObjects {
  return {
    cluster: {
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'HACluster',
      metadata: { name: 'web', namespace: NS },
      spec: { nodeSelector: { member: 'yes' }, transport, authSecretRef: { name: 'auth', activeKeyId: '1' } },
    } as ApiObject,
    vips: [],
    resources: [],
    nodes,
    secret: {
      metadata: { name: 'auth', namespace: NS },
      data: { '1': Buffer.alloc(32, 1).toString('base64') },
    } as ApiObject,
  };
}

describe('nodeAddresses', () => {
  it('takes the annotation (comma-separated) first, then InternalIPs (IPv4 first) and ExternalIPs', () => {
    expect(
      nodeAddresses(node('a', ['2001:db8::1', '198.18.0.11'], ' 198.19.0.11, 198.20.0.11 ', ['203.0.113.1'])),
    ).toEqual({
      heartbeat: '198.19.0.11',
      all: ['198.19.0.11', '198.20.0.11', '2001:db8::1', '198.18.0.11', '203.0.113.1'],
      bad: [],
    });
    expect(nodeAddresses(node('a', ['2001:db8::1', '198.18.0.11']))).toMatchObject({
      heartbeat: '198.18.0.11',
    });
  });

  it('reports annotation entries that are not addresses, and falls back to the InternalIP', () => {
    expect(nodeAddresses(node('a', ['198.18.0.11'], 'eth1, 198.19.0.300'))).toEqual({
      heartbeat: '198.18.0.11',
      all: ['198.18.0.11'],
      bad: ['eth1', '198.19.0.300'],
    });
  });
});

describe('transportLinks', () => {
  it('turns the one-link form into one link, and keeps links as given', () => {
    expect(transportLinks({ port: 694 })).toEqual([{ mode: 'unicast' }]);
    expect(
      transportLinks({ port: 694, mode: 'multicast', group: '239.192.0.94', interface: 'eth1' }),
    ).toEqual([{ mode: 'multicast', group: '239.192.0.94', interface: 'eth1' }]);
    expect(
      transportLinks({
        port: 694,
        links: [
          { mode: 'unicast', network: '198.19.0.0/24' },
          { mode: 'multicast', group: '239.192.0.94' },
        ],
      }),
    ).toEqual([
      { mode: 'unicast', network: '198.19.0.0/24' },
      { mode: 'multicast', group: '239.192.0.94' },
    ]);
  });
});

describe('buildClusterConfig: links and member addresses', () => {
  const nodes = [
    node('n1', ['198.18.0.11'], '198.19.0.11'),
    node('n2', ['198.18.0.12'], '198.19.0.12'),
    node('n3', ['198.18.0.13']), // not on the heartbeat network
  ];

  it('default link: one unicast address per member (its heartbeat address), every Node address a source', () => {
    const c = buildClusterConfig(objects({}, nodes));
    expect(c.links).toEqual([{ mode: 'unicast' }]);
    expect(c.members.map((m) => [m.id, m.address, m.unicast, m.sources])).toEqual([
      ['n1', '198.19.0.11', ['198.19.0.11'], ['198.19.0.11', '198.18.0.11']],
      ['n2', '198.19.0.12', ['198.19.0.12'], ['198.19.0.12', '198.18.0.12']],
      ['n3', '198.18.0.13', ['198.18.0.13'], ['198.18.0.13']],
    ]);
    expect(c.problems).toEqual([]);
  });

  it('unicast links pick each member’s address in their network; a member missing on one is reported, not dropped', () => {
    const c = buildClusterConfig(
      objects(
        {
          links: [
            { mode: 'unicast', network: '198.18.0.0/24' },
            { mode: 'unicast', network: '198.19.0.0/24' },
            { mode: 'multicast', group: '239.192.0.94', interface: 'eth1' },
          ],
        },
        nodes,
      ),
    );
    expect(c.members.map((m) => [m.id, m.address, m.unicast])).toEqual([
      ['n1', '198.18.0.11', ['198.18.0.11', '198.19.0.11']],
      ['n2', '198.18.0.12', ['198.18.0.12', '198.19.0.12']],
      ['n3', '198.18.0.13', ['198.18.0.13']],
    ]);
    expect(c.problems).toEqual([
      'Node n3: no address in spec.transport.links[1].network 198.19.0.0/24, so that link does not reach it; add its address there to annotation heartline.dev/heartbeat-address (comma-separated)',
    ]);
  });

  it('a member on no unicast link stays a member (multicast reaches it) when its Node has an address', () => {
    const c = buildClusterConfig(
      objects(
        {
          links: [
            { mode: 'unicast', network: '198.19.0.0/24' },
            { mode: 'multicast', group: '239.192.0.94' },
          ],
        },
        nodes,
      ),
    );
    expect(c.members.find((m) => m.id === 'n3')).toMatchObject({ address: '198.18.0.13', unicast: [] });
  });

  it('a bad annotation entry is a problem naming the node and the fix, never an exception', () => {
    const c = buildClusterConfig(objects({}, [node('n1', ['198.18.0.11'], 'eth1'), ...nodes.slice(1)]));
    expect(c.members[0]).toMatchObject({ id: 'n1', address: '198.18.0.11' });
    expect(c.problems).toEqual([
      'Node n1: annotation heartline.dev/heartbeat-address: "eth1" is not an IP address; list IP addresses, comma-separated',
    ]);
  });
});

describe('buildClusterConfig: member keys (docs/adr/0021)', () => {
  const three = () => ['n1', 'n2', 'n3'].map((n, i) => node(n, [`198.18.0.${11 + i}`]));
  const withKey = (n: ApiObject, key: string | undefined): ApiObject => {
    const annotations = { ...n.metadata.annotations };
    if (key === undefined) delete annotations[MEMBER_KEY_ANNOTATION];
    else annotations[MEMBER_KEY_ANNOTATION] = key;
    return { ...n, metadata: { ...n.metadata, annotations } };
  };

  it("carries each member's published key; a missing or malformed one is a problem, the member stays", () => {
    const [n1, n2, n3] = three();
    const c = buildClusterConfig(objects({}, [n1!, withKey(n2!, undefined), withKey(n3!, 'ed25519:nope')]));
    expect(c.members.map((m) => [m.id, m.publicKey])).toEqual([
      ['n1', publicKeyOf('n1')],
      ['n2', undefined],
      ['n3', undefined],
    ]);
    expect(c.problems).toEqual([
      'Node n2: no annotation heartline.dev/member-key yet: its agent publishes its key when it starts; until then the other members drop what it sends (unknown-member-key)',
      'Node n3: annotation heartline.dev/member-key: the key after "ed25519:" is not the base64 of 32 bytes (44 characters ending in "="); delete the annotation and restart the node\'s agent, which writes it (ed25519:<base64>)',
    ]);
  });

  it("takes the witness's key from status.witness; a malformed one is a problem, never an exception", () => {
    const good = buildClusterConfig({
      ...objects({}, three()),
      witness: { address: '198.18.0.3', port: 694, publicKey: publicKeyOf(WITNESS_ID) },
    });
    expect(good.witness).toEqual({
      id: WITNESS_ID,
      address: '198.18.0.3',
      port: 694,
      publicKey: publicKeyOf(WITNESS_ID),
    });
    const bad = buildClusterConfig({
      ...objects({}, three()),
      witness: { address: '198.18.0.3', port: 694, publicKey: 'ed25519:x' },
    });
    expect(bad.witness).toEqual({ id: WITNESS_ID, address: '198.18.0.3', port: 694 });
    expect(bad.problems).toEqual([
      expect.stringMatching(/^HACluster default\/web: status.witness.publicKey: /),
    ]);
  });
});
