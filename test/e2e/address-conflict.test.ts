/**
 * One address, one VirtualIP, in the lab (3 nodes, default profile, real agents, netd, API
 * server and controller; client probing at 100 Hz; every node's addresses sampled): a second
 * VirtualIP on the address of `web` (another name, another prefix, another preferred node)
 * is refused with AddressConflict and never bound; when `web` is deleted it takes the address
 * over. At no moment do two nodes have the address bound.
 */
import { LAB_NAMESPACE, VIP_ADDRESS } from '../../hack/lab/cluster.js';
import { everHeld, holdersAtEnd, measure, steadyHolder, waitFor } from './helpers/lab-run.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

type Cond = { type: string; status: string; reason: string; message: string };

labDescribe('address conflict: two VirtualIPs on one address (3 nodes, default profile)', () => {
  const cluster = withLabCluster({ id: 'e2eaddr', nodes: 3, profile: 'default' });

  it('the younger duplicate is refused and never bound; it takes over once the older is deleted; never two holders', async () => {
    const c = cluster();
    const holder = await steadyHolder(c);
    const other = c.lab.nodes.map((n) => n.name).find((n) => n !== holder)!;
    const conditions = async (name: string) => ((await c.vipStatus(name)).conditions ?? []) as Cond[];
    const copy = {
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'VirtualIP',
      metadata: { name: 'web-copy', namespace: LAB_NAMESPACE },
      spec: { clusterRef: { name: 'lab' }, address: `${VIP_ADDRESS}/32`, preferredNodes: [other] },
    };

    // 1. The duplicate arrives while web is held: nothing moves, the duplicate is refused.
    const added = await measure(c, {
      scenario: 'address-duplicate-applied',
      profile: 'default',
      observeMs: 4000,
      fault: () => c.kubectl(['apply', '-f', '-'], JSON.stringify(copy)),
    });
    expect(added.summary.dualHolderMs).toBe(0);
    expect(everHeld(added.samples)).toEqual([holder]);
    expect(added.summary.lostProbes).toBe(0);
    const conflict = await waitFor(
      'AddressConflict on web-copy',
      async () =>
        (await conditions('web-copy')).find((x) => x.type === 'AddressConflict' && x.status === 'True'),
      15_000,
    );
    expect(conflict.reason).toBe('DuplicateAddress');
    expect(conflict.message).toContain(`VirtualIP ${LAB_NAMESPACE}/web`);
    expect((await conditions('web-copy')).find((x) => x.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'AddressConflict',
    });
    expect((await conditions('web')).find((x) => x.type === 'Ready')?.status).toBe('True');
    const events = await c.kubectl([
      'get',
      'events.events.k8s.io',
      '-n',
      LAB_NAMESPACE,
      '--field-selector',
      'reason=AddressConflict',
      '-o',
      'json',
    ]);
    expect((JSON.parse(events) as { items: Array<{ regarding: { name: string } }> }).items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ regarding: expect.objectContaining({ name: 'web-copy' }) }),
      ]),
    );

    // 2. web is deleted: web-copy takes the address only after web released it.
    const handed = await measure(c, {
      scenario: 'address-older-deleted',
      profile: 'default',
      observeMs: 8000,
      fault: () => c.kubectl(['delete', 'vip', 'web', '-n', LAB_NAMESPACE, '--wait=false']),
    });
    expect(handed.summary.dualHolderMs).toBe(0);
    expect(holdersAtEnd(handed.samples)).toHaveLength(1);
    await waitFor(
      'web-copy bound, AddressConflict cleared',
      async () => {
        const conds = await conditions('web-copy');
        return (
          conds.find((x) => x.type === 'AddressConflict')?.status === 'False' &&
          conds.find((x) => x.type === 'Ready')?.status === 'True'
        );
      },
      15_000,
    );
  }, 110_000);
});
