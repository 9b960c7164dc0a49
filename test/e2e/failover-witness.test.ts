/**
 * Two-node cluster, fast profile, quorum "witness": the controller is the third voter (like
 * corosync's qdevice). Powering off the holder leaves the survivor with its own vote and the
 * witness's: a quorum, so it takes over, and there is never an instant with two holders.
 */
import { powerOff } from '../../hack/lab/topology.js';
import { holdersAtEnd, measure, steadyHolder } from './helpers/lab-run.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

labDescribe('failover: two nodes and the controller as witness, fast profile', () => {
  const cluster = withLabCluster({ id: 'e2ewit', nodes: 2, profile: 'fast', quorum: 'witness' });

  it('holder power-off: the survivor takes over with the witness vote, never two holders', async () => {
    const c = cluster();
    await steadyHolder(c);
    const m = await measure(c, {
      scenario: 'two-node-witness-power-off',
      profile: 'fast',
      observeMs: 3000,
      fault: (holder) => powerOff(c.lab, holder),
    });
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.failoverMs).not.toBeNull();
    expect(m.summary.failoverMs!).toBeLessThan(2000);
    const end = holdersAtEnd(m.samples);
    expect(end).toHaveLength(1);
    expect(end[0]).not.toBe(m.from);
    // The API agrees; the HACluster still counts the witness's vote.
    expect(await c.waitForHolder('web', 15_000, m.from)).toBe(end[0]);
    const hac = JSON.parse(
      await c.kubectl(['get', 'hacluster', 'lab', '-n', 'heartline-lab', '-o', 'json']),
    ) as {
      status?: unknown;
    };
    process.stdout.write(
      `[e2e] HACluster status after the witness failover: ${JSON.stringify(hac.status)}\n`,
    );
  }, 120_000);
});
