import { ago, parseAgentMetrics, renderStatus, table } from '../../../src/cli/cluster-view.js';
import type { ApiObject } from '../../../src/core/ports.js';

const NOW = new Date('2026-12-07T12:00:00Z');
const cond = (type: string, status: string, reason: string, message = '') => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2026-12-07T11:00:00Z',
});

const cluster: ApiObject = {
  apiVersion: 'heartline.dev/v1alpha1',
  kind: 'HACluster',
  metadata: { name: 'web', namespace: 'prod' },
  spec: { quorum: 'majority', heartbeat: { intervalMs: 200, deadMs: 1000 }, autoFailback: false },
  status: {
    members: [
      { name: 'a', state: 'dead', incarnation: 7, lastSeen: '2026-12-07T11:59:30Z' },
      { name: 'b', state: 'alive', incarnation: 9 },
      { name: 'c', state: 'alive', incarnation: 8 },
    ],
    quorum: { state: 'quorate', have: 2, need: 2 },
    summary: { members: '2/3', vips: '1/2' },
    membership: { generation: 1, members: ['a', 'b', 'c'] },
    conditions: [
      cond('Ready', 'True', 'Quorate'),
      cond('Degraded', 'True', 'MembersUnavailable', 'not alive: a (dead)'),
      cond('AuthSecretInvalid', 'False', 'SecretValid'),
    ],
  },
};
const vip = (
  name: string,
  address: string,
  status: object,
  annotations?: Record<string, string>,
): ApiObject => ({
  apiVersion: 'heartline.dev/v1alpha1',
  kind: 'VirtualIP',
  metadata: { name, namespace: 'prod', ...(annotations ? { annotations } : {}) },
  spec: { clusterRef: { name: 'web' }, address },
  status,
});
const vips = [
  vip(
    'www',
    '198.18.0.100/24',
    {
      holder: 'b',
      epoch: 3,
      phase: 'Bound',
      since: '2026-12-07T11:59:28Z',
      failoverCount: 2,
      conditions: [cond('Ready', 'True', 'Bound')],
      lastFailover: {
        from: 'a',
        to: 'b',
        reason: 'HolderDead',
        durationMs: 912,
        time: '2026-12-07T11:59:28Z',
      },
    },
    { 'heartline.dev/move-to': 'b' },
  ),
  vip('api', '198.18.0.101/24', {
    phase: 'Unassigned',
    conditions: [
      cond('Ready', 'False', 'NoEligibleMember', 'no alive, healthy, eligible member outside standby'),
    ],
    lastFailover: { from: 'c', to: 'a', reason: 'Drain', time: '2026-12-07T11:10:00Z' },
  }),
  // Another cluster's VIP: not shown.
  {
    ...vip('other', '198.18.0.102/24', {}),
    spec: { clusterRef: { name: 'db' }, address: '198.18.0.102/24' },
  },
];
const nodes: ApiObject[] = [
  { apiVersion: 'v1', kind: 'Node', metadata: { name: 'a' } },
  { apiVersion: 'v1', kind: 'Node', metadata: { name: 'b' } },
  {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'c', annotations: { 'heartline.dev/standby': 'true' } },
  },
];

describe('heartline status (rendering)', () => {
  it('shows the cluster, members with liveness and standby, VIPs, pins, problems and failovers newest first', () => {
    const live = new Map([
      ['a', { url: 'https://198.18.0.11:9694', error: 'connect ECONNREFUSED' }],
      [
        'b',
        {
          url: 'http://198.18.0.12:9694',
          ready: true,
          reason: 'member b running',
          bound: new Set(['prod/www']),
          leaseLeft: new Map([['prod/www', 0.84]]),
        },
      ],
      [
        'c',
        { url: 'http://198.18.0.13:9694', ready: false, reason: 'waiting for the cluster configuration' },
      ],
    ]);
    const out = renderStatus({ clusters: [cluster], vips, nodes, live, now: NOW });
    expect(out).toBe(
      [
        'HACluster prod/web: Ready',
        '  quorum quorate (2 votes, 2 needed), policy majority · members 2/3 alive · VIPs 1/2 held · heartbeat 200/1000 ms · autoFailback off · member set generation 1',
        '  ! Degraded: MembersUnavailable: not alive: a (dead)',
        '',
        '  MEMBER  STATE  INCARNATION  LAST-SEEN  STANDBY  HOLDS  AGENT',
        '  a       dead   7            30s ago    -        -      unreachable (connect ECONNREFUSED)',
        '  b       alive  9            now        -        www    ready',
        '  c       alive  8            now        yes      -      not ready: waiting for the cluster configuration',
        '',
        '  VIP  ADDRESS          HOLDER  EPOCH  PHASE       READY  SINCE  LEASE-LEFT  FAILOVERS',
        '  api  198.18.0.101/24  <none>  -      Unassigned  False  -      -           0',
        '  www  198.18.0.100/24  b       3      Bound       True   32s    0.84s       2',
        '  ! api: NoEligibleMember: no alive, healthy, eligible member outside standby',
        '  > www: moved to b (heartline.dev/move-to); it stays there while b is usable. Clear: kubectl heartline move www --clear',
        '',
        '  Last failovers:',
        '    32s ago  www  a -> b  HolderDead  912 ms without a holder',
        '    50m ago  api  c -> a  Drain',
        '',
        '',
      ].join('\n'),
    );
  });

  it('flags a VIP bound on two agents (live view)', () => {
    const live = new Map(
      ['b', 'c'].map((n) => [n, { url: '', ready: true, bound: new Set(['prod/www']) }] as const),
    );
    expect(renderStatus({ clusters: [cluster], vips, nodes, live, now: NOW })).toContain(
      '  !! www: bound on b and c (live view)',
    );
  });

  it('says so when there is no HACluster', () => {
    expect(renderStatus({ clusters: [], vips: [], nodes: [], now: NOW })).toBe('No HACluster found.\n');
  });

  it('ages like kubectl; tables pad every column but the last', () => {
    expect(
      ['2026-12-07T11:59:59Z', '2026-12-07T11:50:00Z', '2026-12-07T09:00:00Z', '2026-12-01T12:00:00Z'].map(
        (t) => ago(t, NOW),
      ),
    ).toEqual(['1s', '10m', '3h', '6d']);
    expect(ago(undefined, NOW)).toBe('-');
    expect(
      table(
        [
          ['A', 'BB', 'C'],
          ['long', 'x', 'y'],
        ],
        '',
      ),
    ).toBe('A     BB  C\nlong  x   y');
  });

  it('reads the bound VIPs and lease time left from agent metrics', () => {
    const text = [
      '# HELP heartline_vip_bound 1 while this node has the VIP bound.',
      'heartline_vip_bound{vip="prod/www"} 1',
      'heartline_vip_bound{vip="prod/api"} 0',
      'heartline_vip_lease_remaining_seconds{vip="prod/www"} 0.812',
      'heartline_vip_epoch{vip="prod/www"} 3',
    ].join('\n');
    const m = parseAgentMetrics(text);
    expect([...m.bound]).toEqual(['prod/www']);
    expect([...m.leaseLeft]).toEqual([['prod/www', 0.812]]);
  });
});
