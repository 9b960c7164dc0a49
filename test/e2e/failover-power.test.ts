/**
 * Holder power-off at the default profile (interval 200 ms, dead 1000 ms): the node's
 * processes are frozen and killed and its links go down, as when its power is cut. The VIP
 * must move to another node with no instant of two holders. (The fast profile's power-off is
 * in failover-process.test.ts.)
 */
import { powerOff } from '../../hack/lab/topology.js';
import { holdersAtEnd, measure, steadyHolder } from './helpers/lab-run.js';
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
  }, 90_000);
});
