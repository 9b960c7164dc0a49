import { ClusterObserver, type Observation } from '../../../src/controller/observer.js';
import { silentLogger } from '../../../src/ops/log.js';
import { buildClusterConfig, WITNESS_ID } from '../../../src/runtime/cluster-config.js';
import { memberKeyOf, publicKeyOf } from '../../fixtures/member-keys.js';
import { NS, Rig } from './rig.js';

const WITNESS = { address: '198.18.0.250', port: 694, publicKey: publicKeyOf(WITNESS_ID) };

function loadsOf(o: Observation): Map<string, number> {
  const m = new Map<string, number>();
  for (const h of o.holdings.values()) m.set(h.holder, (m.get(h.holder) ?? 0) + 1);
  return m;
}

describe('ClusterObserver', () => {
  it('hands out observations that later changes do not touch, with loads that match the holdings', async () => {
    const rig = new Rig({
      nodes: ['n1', 'n2', 'n3'],
      vips: [
        { name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['n1'] },
        { name: 'vip2', address: '198.18.0.101/24', preferredNodes: ['n1'] },
        { name: 'vip3', address: '198.18.0.102/24', preferredNodes: ['n2'] },
      ],
    });
    const config = buildClusterConfig({
      cluster: (await rig.object('HACluster', 'web'))!,
      vips: await rig.api.list('VirtualIP', { namespace: NS }),
      resources: [],
      nodes: await rig.api.list('Node'),
      secret: await rig.api.get('Secret', { namespace: NS, name: 'auth' }),
      witness: WITNESS,
    });
    const changes: string[][] = [];
    const observer = new ClusterObserver(
      {
        clock: rig.clock,
        transport: rig.net.transport(WITNESS.address, WITNESS.port),
        log: silentLogger(),
        onChange: (c) => changes.push(c.vips),
      },
      { config, incarnation: 1, heartbeat: true, signingKey: memberKeyOf(WITNESS_ID) },
    );
    observer.start();
    for (const a of rig.agents.values()) a.start(config);
    try {
      await rig.until(() => observer.observation().holdings.size === 3);
      const before = observer.observation();
      const holders = new Map([...before.holdings].map(([v, h]) => [v, h.holder]));
      expect(before.loads).toEqual(loadsOf(before));
      expect([...before.loads.values()].reduce((a, b) => a + b, 0)).toBe(3);
      const victim = holders.get(`${NS}/vip1`)!;
      const victimLoad = before.loads.get(victim)!;

      await rig.agents.get(victim)!.crash();
      await rig.until(() => {
        const h = observer.observation().holdings.get(`${NS}/vip1`);
        return h !== undefined && h.holder !== victim;
      });
      const after = observer.observation();
      // The earlier observation still says what was true then.
      expect(new Map([...before.holdings].map(([v, h]) => [v, h.holder]))).toEqual(holders);
      expect(before.loads.get(victim)).toBe(victimLoad);
      expect(before.transitions.get(`${NS}/vip1`)?.to).not.toBe(after.holdings.get(`${NS}/vip1`)?.holder);
      // The new one agrees with itself.
      expect(after.loads).toEqual(loadsOf(after));
      expect(after.loads.has(victim)).toBe(false);
      expect(after.transitions.get(`${NS}/vip1`)).toMatchObject({ from: victim, cause: 'HolderDead' });
      expect(changes.some((c) => c.includes(`${NS}/vip1`))).toBe(true);
    } finally {
      observer.stop();
      await rig.close();
    }
  });
});
