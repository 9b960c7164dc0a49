/**
 * Membership changes in place (docs/protocol.md "Membership changes", ADR 0015): four node
 * namespaces, one of them (n4) not a member at first. While the client probes at 100 Hz, n4 is
 * labelled into the HACluster and a non-holder is labelled out: the controller publishes one
 * generation per change, every member switches its set in place, and the VIP stays where it
 * is: no lost probe, no move (same holder, same epoch), never two holders.
 */
import { LAB_NAMESPACE } from '../../hack/lab/cluster.js';
import { sleep } from '../../hack/lab/sh.js';
import { holdersAtEnd, measure, steadyHolder } from './helpers/lab-run.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

const MEMBER = 'heartline.dev/cluster';

labDescribe('membership change: a node added and a non-holder removed, default profile (4 nodes)', () => {
  const cluster = withLabCluster({ id: 'e2emem', nodes: 4, profile: 'default', quorum: 'majority' });

  it('n4 labelled in and a non-holder labelled out while the client probes: 0 lost probes, no move, same epoch', async () => {
    const c = cluster();
    const published = async (): Promise<{ generation: number; members: string[] } | undefined> => {
      const out = await c.kubectl([
        'get',
        'hacluster',
        'lab',
        '-n',
        LAB_NAMESPACE,
        '-o',
        'jsonpath={.status.membership}',
      ]);
      return out.trim() ? (JSON.parse(out) as { generation: number; members: string[] }) : undefined;
    };
    const until = async (what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!(await ok())) {
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(200);
      }
    };
    // n4 leaves first (before the measurement): the cluster runs with three members.
    await c.kubectl(['label', 'node', 'n4', `${MEMBER}-`]);
    await until('n4 out of the published member set', async () => {
      const m = await published();
      return !!m && !m.members.includes('n4');
    });
    const holder = await steadyHolder(c);
    const epoch = (await c.vipStatus('web')).epoch;
    const before = await published();
    const removed = ['n1', 'n2', 'n3'].find((n) => n !== holder)!;

    const m = await measure(c, {
      scenario: 'membership-add-and-remove',
      profile: 'default',
      observeMs: 4000,
      fault: async () => {
        await c.kubectl(['label', 'node', 'n4', `${MEMBER}=lab`]);
        await until(
          'n4 in the published member set',
          async () => !!(await published())?.members.includes('n4'),
        );
        await c.kubectl(['label', 'node', removed, `${MEMBER}-`]);
        await until(
          `${removed} out of the published member set`,
          async () => !(await published())?.members.includes(removed),
        );
      },
    });
    const after = await published();
    process.stdout.write(
      `[e2e] membership generations ${before?.generation} -> ${after?.generation}: ${JSON.stringify(after?.members)}\n`,
    );
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.failoverMs).toBeNull();
    expect(m.summary.lostProbes).toBe(0);
    expect(holdersAtEnd(m.samples)).toEqual([holder]);
    expect((await c.vipStatus('web')).epoch).toBe(epoch);
    expect(after?.members.sort()).toEqual(['n1', 'n2', 'n3', 'n4'].filter((n) => n !== removed));
    expect(after!.generation).toBeGreaterThanOrEqual((before?.generation ?? 0) + 2);
  }, 180_000);
});
