/**
 * The agent holds nothing it does not need (docs/adr/0020-unprivileged-agent.md), shown in
 * the lab, default profile, 3 nodes: on every node heartline-netd binds the heartbeat socket
 * (UDP 694) and runs the agent as uid 65532 with no capability; netd keeps NET_ADMIN, NET_RAW
 * and KILL. The agent owns the heartbeat socket and the VIP still fails over when the holder
 * loses power, never with two holders.
 */
import { readFile } from 'node:fs/promises';
import { AGENT_UID } from '../../hack/lab/cluster.js';
import { nsRun } from '../../hack/lab/sh.js';
import { powerOff } from '../../hack/lab/topology.js';
import { agentPids, holdersAtEnd, measure, steadyHolder } from './helpers/lab-run.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

/** The capability sets, ids and no_new_privs of a process, from /proc/<pid>/status. */
async function procStatus(pid: number): Promise<Record<string, string>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^(Uid|Gid|Groups|Cap\w+|NoNewPrivs):/.test(l))
      .map((l) => {
        const [k, v] = l.split(':');
        return [k!, v!.trim().replace(/\s+/g, ' ')];
      }),
  );
}

/**
 * What netd keeps after start (docs/adr/0020): NET_ADMIN, NET_RAW, KILL, and SETUID + SETGID,
 * with which it starts Resources as --resource-uid (the lab passes it). A hex string, as
 * /proc shows it (jest cannot serialise a BigInt in its report).
 */
const NETD_KEEPS = ((1n << 12n) | (1n << 13n) | (1n << 5n) | (1n << 6n) | (1n << 7n))
  .toString(16)
  .padStart(16, '0');

labDescribe('the agent runs without privilege (3 nodes, default profile)', () => {
  const cluster = withLabCluster({ id: 'e2enoroot', nodes: 3, profile: 'default' });

  it('every agent: uid 65532, CapEff 0, no_new_privs, the owner of UDP 694; netd: NET_ADMIN, NET_RAW, KILL, SETUID, SETGID', async () => {
    const c = cluster();
    const ids = `${AGENT_UID} ${AGENT_UID} ${AGENT_UID} ${AGENT_UID}`;
    for (const n of c.lab.nodes) {
      const { netd, agent } = await agentPids(c, n.name);
      const a = await procStatus(agent);
      expect({ node: n.name, ...a }).toMatchObject({
        node: n.name,
        Uid: ids,
        Gid: ids,
        CapInh: '0000000000000000',
        CapPrm: '0000000000000000',
        CapEff: '0000000000000000',
        CapBnd: '0000000000000000',
        CapAmb: '0000000000000000',
        NoNewPrivs: '1',
      });
      const d = await procStatus(netd);
      expect(d.Uid).toBe('0 0 0 0');
      expect(d.CapEff).toBe(NETD_KEEPS);
      expect(d.CapPrm).toBe(NETD_KEEPS);
      // The heartbeat socket (bound by netd) is the agent's: ss names its process and fd 4.
      const ss = await nsRun(n.ns, 'ss', ['-H', '-u', '-l', '-n', '-p', 'sport = :694']);
      expect(ss).toContain(`pid=${agent},fd=4`);
      expect(ss).not.toContain(`pid=${netd},`);
    }
  });

  it('holder power-off: the VIP moves to another unprivileged agent, never two holders', async () => {
    const c = cluster();
    await steadyHolder(c);
    const m = await measure(c, {
      scenario: 'power-off-unprivileged',
      profile: 'default',
      observeMs: 5000,
      fault: (holder) => powerOff(c.lab, holder),
    });
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.failoverMs).not.toBeNull();
    // As failover-power.test.ts: lease < dead 1000 ms, plus takeover round trip, bind, GARP.
    expect(m.summary.failoverMs!).toBeLessThan(4000);
    const end = holdersAtEnd(m.samples);
    expect(end).toHaveLength(1);
    expect(end[0]).not.toBe(m.from);
    expect(await c.waitForHolder('web', 15_000, m.from)).toBe(end[0]);
    const { agent } = await agentPids(c, end[0]!);
    expect((await procStatus(agent)).CapEff).toBe('0000000000000000');
  }, 90_000);
});
