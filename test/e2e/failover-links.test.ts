/**
 * Redundant heartbeat links in the lab, default profile, 3 nodes: heartbeats go by unicast
 * on the data network (eth0, 198.18.0.0/24, the Nodes' InternalIPs) and by multicast on the
 * heartbeat network (eth1, 198.19.0.0/24, group 239.192.0.94, TTL 1), like Heartbeat's
 * `ucast eth0` + `mcast eth1`. Either network cut around the holder while the client probes
 * at 100 Hz: nothing moves, no probe is lost, never two holders. Both cut: the usual
 * failover, never two holders.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LabCluster } from '../../hack/lab/cluster.js';
import { blackhole, linkDown, linkUp, unblackhole, type LabHost } from '../../hack/lab/topology.js';
import { holdersAtEnd, measure, ROOT, steadyHolder, type Measured } from './helpers/lab-run.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

const GROUP = '239.192.0.94';
/** Liveness bound for the failover when both links are cut (default profile: dead 1000 ms). */
const BOTH_CUT_BOUND_MS = 4000;

const execFileP = promisify(execFile);

/** The first heartbeat-port datagram `from` sends to `to` on a switch port, with its IP TTL. */
async function captureTtl(c: LabCluster, port: string, from: string, to: string): Promise<number> {
  const { stdout } = await execFileP(
    'ip',
    [
      'netns',
      'exec',
      c.lab.sw,
      'python3',
      join(ROOT, 'test/e2e/helpers/capture-udp.py'),
      port,
      from,
      to,
      '694',
      '5',
      'ttl',
    ],
    { timeout: 15_000 },
  );
  const m = /^ttl=(\d+) [0-9a-f]+$/.exec(stdout.trim());
  if (!m) throw new Error(`capture on ${port}: unexpected output ${JSON.stringify(stdout)}`);
  return Number(m[1]);
}

/** Blackholes the data-network addresses between `holder` and every other node, both ways. */
async function cutData(c: LabCluster, holder: string, cuts: Array<[string, string]>): Promise<void> {
  const h = c.lab.nodes.find((n) => n.name === holder)!;
  for (const p of c.lab.nodes) {
    if (p.name === holder) continue;
    for (const [from, to] of [
      [h, p],
      [p, h],
    ] as Array<[LabHost, LabHost]>) {
      await blackhole(c.lab, from.name, to.ip);
      cuts.push([from.name, to.ip]);
    }
  }
}

function expectNothingMoved(m: Measured): void {
  expect(m.summary.dualHolderMs).toBe(0);
  expect(m.summary.failoverMs).toBeNull();
  expect(m.summary.lostProbes).toBe(0);
  expect(m.summary.probes).toBeGreaterThan(200);
  expect(holdersAtEnd(m.samples)).toEqual([m.from]);
}

labDescribe(
  'redundant heartbeat links: unicast on eth0 + multicast on eth1, default profile (3 nodes)',
  () => {
    const cluster = withLabCluster({
      id: 'e2elink',
      nodes: 3,
      profile: 'default',
      heartbeatNet: true,
      links: [
        { mode: 'unicast', network: '198.18.0.0/24' },
        { mode: 'multicast', interface: 'eth1', group: GROUP },
      ],
    });

    it('both networks carry heartbeats: unicast on eth0, multicast with TTL 1 on eth1', async () => {
      const c = cluster();
      const [n1, n2] = c.lab.nodes as [LabHost, LabHost];
      expect(await captureTtl(c, n1.port, n1.ip, n2.ip)).toBeGreaterThan(1);
      expect(await captureTtl(c, n1.hbPort!, n1.hbIp!, GROUP)).toBe(1);
    }, 60_000);

    it('heartbeat network cut on the holder (eth1 down): no failover, no lost probe', async () => {
      const c = cluster();
      await steadyHolder(c);
      let from = '';
      try {
        const m = await measure(c, {
          scenario: 'links-hb-net-down',
          profile: 'default',
          observeMs: 4000,
          fault: async (holder) => {
            from = holder;
            await linkDown(c.lab, holder, 'eth1');
          },
        });
        expectNothingMoved(m);
      } finally {
        if (from) await linkUp(c.lab, from, 'eth1');
      }
    }, 120_000);

    it('data network heartbeats cut around the holder (the VIP still served there): no failover, no lost probe', async () => {
      const c = cluster();
      await steadyHolder(c);
      const cuts: Array<[string, string]> = [];
      try {
        const m = await measure(c, {
          scenario: 'links-data-net-cut',
          profile: 'default',
          observeMs: 4000,
          fault: (holder) => cutData(c, holder, cuts),
        });
        expectNothingMoved(m);
      } finally {
        for (const [n, ip] of cuts) await unblackhole(c.lab, n, ip);
      }
    }, 120_000);

    it('both cut on the holder: fails over as usual, never two holders', async () => {
      const c = cluster();
      await steadyHolder(c);
      let from = '';
      const cuts: Array<[string, string]> = [];
      try {
        const m = await measure(c, {
          scenario: 'links-both-cut',
          profile: 'default',
          observeMs: 5000,
          fault: async (holder) => {
            from = holder;
            await linkDown(c.lab, holder, 'eth1');
            await cutData(c, holder, cuts);
          },
        });
        expect(m.summary.dualHolderMs).toBe(0);
        expect(m.summary.failoverMs).not.toBeNull();
        expect(m.summary.failoverMs!).toBeLessThan(BOTH_CUT_BOUND_MS);
        const end = holdersAtEnd(m.samples);
        expect(end).toHaveLength(1);
        expect(end[0]).not.toBe(from);
      } finally {
        for (const [n, ip] of cuts) await unblackhole(c.lab, n, ip);
        if (from) await linkUp(c.lab, from, 'eth1');
      }
      expect(await steadyHolder(c, 20_000)).not.toBe(from);
    }, 120_000);
  },
);
