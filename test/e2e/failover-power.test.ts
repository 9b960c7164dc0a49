/**
 * Holder power-off at the default profile (interval 200 ms, dead 1000 ms): the node's
 * processes are frozen and killed and its links go down, as when its power is cut. The VIP
 * must move to another node with no instant of two holders. (The fast profile's power-off is
 * in failover-process.test.ts.)
 */
import { powerOff } from '../../hack/lab/topology.js';
import { agentMetrics, holdersAtEnd, measure, steadyHolder } from './helpers/lab-run.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

labDescribe('failover: power-off, default profile (3 nodes)', () => {
  const cluster = withLabCluster({ id: 'e2epwr', nodes: 3, profile: 'default' });

  it('holder power-off: the VIP moves, never two holders', async () => {
    const c = cluster();
    await steadyHolder(c);
    const m = await measure(c, {
      scenario: 'power-off',
      profile: 'default',
      observeMs: 5000,
      fault: (holder) => powerOff(c.lab, holder),
    });
    const from = m.from;
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.failoverMs).not.toBeNull();
    // Default profile: lease < dead 1000 ms, plus takeover round trip, bind and GARP.
    expect(m.summary.failoverMs!).toBeLessThan(4000);
    const end = holdersAtEnd(m.samples);
    expect(end).toHaveLength(1);
    expect(end[0]).not.toBe(from);
    expect(await c.waitForHolder('web', 15_000, from)).toBe(end[0]);
    // The heir's metrics say what happened (docs/metrics.md): one takeover because the holder
    // died, its duration, the dead member, two members alive of a quorum of two, a lease.
    const text = await agentMetrics(c, end[0]!);
    const sample = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    const vip = /vip="([^"]+)"/.exec(/^heartline_vip_bound\{[^}]*\} 1$/m.exec(text)?.[0] ?? '')?.[1];
    expect(vip).toBeDefined();
    expect(sample(/^heartline_vip_acquisitions_total\{vip="[^"]+",reason="HolderDead"\} (\S+)$/m)).toBe(1);
    expect(sample(/^heartline_failover_duration_seconds_count\{reason="HolderDead"\} (\S+)$/m)).toBe(1);
    expect(sample(/^heartline_failover_duration_seconds_sum\{reason="HolderDead"\} (\S+)$/m)).toBeGreaterThan(
      0,
    );
    expect(sample(/^heartline_members_alive (\S+)$/m)).toBe(2);
    expect(sample(/^heartline_quorum_size (\S+)$/m)).toBe(2);
    expect(
      sample(new RegExp(`^heartline_member_liveness\\{member="${from}",state="dead"\\} (\\S+)$`, 'm')),
    ).toBe(1);
    expect(sample(/^heartline_vip_lease_remaining_seconds\{vip="[^"]+"\} (\S+)$/m)).toBeGreaterThan(0);
    expect(sample(/^heartline_bind_duration_seconds_count (\S+)$/m)).toBeGreaterThanOrEqual(1);
  }, 90_000);
});
