/**
 * A bad auth Secret edit in the lab (3 nodes, real agents, real API server, client at
 * 100 Hz, address sampler): while the client probes, a 16-byte key is added to the Secret
 * and made active, then activeKeyId is set to a key the Secret does not hold. Before issue
 * 18 the first edit made `new Keyring` throw inside every agent's rebuild at once; the
 * rejection was unhandled, every agent exited and the fences removed the VIP everywhere.
 * Now every process keeps its running keys: 0 lost probes, no move, the epoch unchanged,
 * AuthSecretInvalid on the HACluster with Warning Events, every agent still running. Fixed,
 * the condition clears.
 */
import { LAB_NAMESPACE, type LabCluster } from '../../hack/lab/cluster.js';
import {
  agentPids,
  alive,
  holderOf,
  holdersAtEnd,
  measure,
  steadyHolder,
  waitFor,
} from './helpers/lab-run.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

type Cond = { type: string; status: string; reason: string; message: string };
type LabEvent = { reason: string; type: string; note: string; regarding: { kind: string } };

async function authCondition(c: LabCluster): Promise<Cond | undefined> {
  const out = await c.kubectl(['get', 'hacluster', 'lab', '-n', LAB_NAMESPACE, '-o', 'json']);
  const conds = (JSON.parse(out) as { status?: { conditions?: Cond[] } }).status?.conditions ?? [];
  return conds.find((x) => x.type === 'AuthSecretInvalid');
}

async function events(c: LabCluster): Promise<LabEvent[]> {
  const out = await c.kubectl(['get', 'events.events.k8s.io', '-n', LAB_NAMESPACE, '-o', 'json']);
  return (JSON.parse(out) as { items: LabEvent[] }).items;
}

function secret(c: LabCluster, extra: Record<string, string> = {}): string {
  const data = Object.fromEntries(
    [...c.authKeys].map(([id, k]) => [String(id), Buffer.from(k).toString('base64')]),
  );
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'heartline-auth', namespace: LAB_NAMESPACE },
    data: { ...data, ...extra },
  });
}

const setActive = (c: LabCluster, id: string) =>
  c.kubectl([
    'patch',
    'hacluster',
    'lab',
    '-n',
    LAB_NAMESPACE,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { authSecretRef: { name: 'heartline-auth', activeKeyId: id } } }),
  ]);

/** Liveness bound for the condition to show up or clear (status writes are rate-limited). */
const CONDITION_MS = 15_000;

labDescribe('auth Secret: a bad edit moves nothing (3 nodes, default profile)', () => {
  const cluster = withLabCluster({ id: 'e2eauth', nodes: 3, profile: 'default' });

  it('16-byte active key, then a missing activeKeyId: 0 lost probes, no move, same epoch, condition and Events, agents alive; fixed, it clears', async () => {
    const c = cluster();
    await steadyHolder(c, 60_000, undefined, { status: true });
    const before = await holderOf(c);
    const pids = new Map<string, { netd: number; agent: number }>();
    for (const n of c.lab.nodes) pids.set(n.name, await agentPids(c, n.name));
    let restored = false;
    try {
      const m = await measure(c, {
        scenario: 'auth-secret-bad-edit',
        profile: 'default',
        observeMs: 3000,
        fault: async () => {
          await c.kubectl(
            ['apply', '-f', '-'],
            secret(c, { '3': Buffer.alloc(16, 0x42).toString('base64') }),
          );
          await setActive(c, '3');
          await waitFor(
            'AuthSecretInvalid True naming key 3',
            async () =>
              (await authCondition(c))?.message.includes('data["3"]: key 3 has 16 bytes') || undefined,
            CONDITION_MS,
            200,
          );
          await c.kubectl(['apply', '-f', '-'], secret(c));
          await setActive(c, '9');
          await waitFor(
            'AuthSecretInvalid naming the missing key 9',
            async () =>
              (await authCondition(c))?.message.includes('key 9 is not in Secret heartline-auth') ||
              undefined,
            CONDITION_MS,
            200,
          );
        },
      });
      // Safety and service: nothing moved, the client lost nothing.
      expect(m.summary.dualHolderMs).toBe(0);
      expect(m.summary.lostProbes).toBe(0);
      expect(m.summary.failoverMs).toBeNull();
      expect(holdersAtEnd(m.samples)).toEqual([m.from]);
      expect(await holderOf(c)).toEqual(before);
      // Every agent and fence is the process it was.
      for (const [node, p] of pids) {
        expect({ node, netd: await alive(p.netd), agent: await alive(p.agent) }).toEqual({
          node,
          netd: true,
          agent: true,
        });
      }
      // The condition says what to fix and what keeps running; Events from the controller and each agent.
      const cond = (await authCondition(c))!;
      expect(cond).toMatchObject({ status: 'True', reason: 'InvalidSecret' });
      expect(cond.message).toContain('running keys (1, 2, active 1) stay in use');
      const warnings = (await events(c)).filter((e) => e.reason === 'AuthSecretInvalid');
      expect(warnings.every((e) => e.type === 'Warning' && e.regarding.kind === 'HACluster')).toBe(true);
      expect(warnings.some((e) => e.note.includes('data["3"]: key 3 has 16 bytes'))).toBe(true);
      const fromAgents = new Set(warnings.map((e) => e.note.split(':')[0]).filter((n) => /^n\d$/.test(n!)));
      expect([...fromAgents].sort()).toEqual(c.lab.nodes.map((n) => n.name).sort());

      // Fixed: back to the running key; the condition clears, still nothing moved.
      await setActive(c, '1');
      restored = true;
      await waitFor(
        'AuthSecretInvalid False',
        async () => ((await authCondition(c))?.status === 'False' ? true : undefined),
        CONDITION_MS,
        200,
      );
      expect(await holderOf(c)).toEqual(before);
    } finally {
      if (!restored) {
        await c.kubectl(['apply', '-f', '-'], secret(c)).catch(() => undefined);
        await setActive(c, '1').catch(() => undefined);
      }
    }
  }, 110_000);
});
