/**
 * Replay after a restart (docs/adr/0015), default profile, 3 nodes: an adversary records the
 * holder's datagrams to a voter from the switch (a read-only packet socket), the voter's agent
 * restarts (its codec forgets every replay window), then the holder powers off and the
 * recording is played back to the voter from the client namespace with the holder's source
 * address, spread over the failover window. Before ADR 0015 the restarted voter accepted the
 * recording, kept the dead holder alive and its promise renewed, and the takeover waited until
 * the recording ran out. Now every replayed datagram is dropped and counted, and the failover
 * takes its usual time with no instant of two holders.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { powerOff } from '../../hack/lab/topology.js';
import { nsRun, signal, sleep } from '../../hack/lab/sh.js';
import {
  ROOT,
  agentMetrics,
  agentPids,
  alive,
  droppedCount,
  holdersAtEnd,
  measure,
  restartAgent,
  steadyHolder,
  waitFor,
} from './helpers/lab-run.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

const execFileP = promisify(execFile);
const REASONS = ['not-fresh', 'replay', 'stale-seq', 'stale-incarnation'] as const;

labDescribe('failover: replay after a restart, default profile (3 nodes)', () => {
  const cluster = withLabCluster({ id: 'e2erpl', nodes: 3, profile: 'default' });

  it('a recording played to a restarted voter counts for nothing, and a real takeover proceeds', async () => {
    const c = cluster();
    const holder = await steadyHolder(c);
    const voter = c.lab.nodes.find((n) => n.name !== holder)!;
    const h = c.lab.nodes.find((n) => n.name === holder)!;

    // 1. Record 8 s of the holder's datagrams to the voter, on the holder's switch port.
    const { stdout } = await execFileP(
      'ip',
      [
        'netns',
        'exec',
        c.lab.sw,
        'python3',
        join(ROOT, 'test/e2e/helpers/record-udp.py'),
        h.port,
        h.ip,
        voter.ip,
        '694',
        '8',
        '400',
      ],
      { timeout: 20_000 },
    );
    const tape = stdout.trim().split('\n').filter(Boolean);
    process.stdout.write(`[e2e] recorded ${tape.length} datagrams ${holder} -> ${voter.name}\n`);
    expect(tape.length).toBeGreaterThan(20);

    // 2. The voter's agent restarts (SIGKILL; netd exits with it), with an empty codec.
    const p = await agentPids(c, voter.name);
    signal(p.agent, 'SIGKILL');
    await waitFor(`netd on ${voter.name} to exit`, async () => !(await alive(p.netd)), 5000);
    await restartAgent(c, voter.name);
    await sleep(3000); // live peers prove freshness within a round trip; settle
    const at = (text: string) => Object.fromEntries(REASONS.map((r) => [r, droppedCount(text, r)]));
    const before = at(await agentMetrics(c, voter.name));

    // 3. The holder powers off; the recording is played to the voter as if from the holder,
    //    over 3 s (the failover window).
    await nsRun(c.lab.client.ns, 'sysctl', [
      '-q',
      '-w',
      'net.ipv4.conf.all.arp_announce=2',
      'net.ipv4.conf.eth0.arp_announce=2',
    ]);
    let sent = 0;
    const gap = 3 / tape.length;
    const m = await measure(c, {
      scenario: 'replay-after-voter-restart',
      profile: 'default',
      observeMs: 4000,
      fault: async (from) => {
        expect(from).toBe(holder);
        await powerOff(c.lab, holder);
        const out = await nsRun(
          c.lab.client.ns,
          'python3',
          [
            join(ROOT, 'test/e2e/helpers/udp-send.py'),
            JSON.stringify(
              tape.map((hex) => ({ hex, to: voter.ip, port: 694, from: h.ip, fromPort: 694, gap })),
            ),
          ],
          30_000,
        );
        sent = Number(out.trim());
      },
    });
    expect(sent).toBe(tape.length);
    const after = at(await agentMetrics(c, voter.name));
    const delta = Object.fromEntries(REASONS.map((r) => [r, after[r]! - before[r]!]));
    process.stdout.write(
      `[e2e] replayed ${sent}; drops counted by ${voter.name}: ${JSON.stringify(delta)}\n`,
    );
    // Every replayed datagram was dropped: by the freshness proof or by the replay window.
    expect(REASONS.reduce((a, r) => a + delta[r]!, 0)).toBe(sent);
    expect(delta['not-fresh']).toBeGreaterThan(0);
    // And the takeover went as after any power-off.
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.failoverMs).not.toBeNull();
    expect(m.summary.failoverMs!).toBeLessThan(4000);
    const end = holdersAtEnd(m.samples);
    expect(end).toHaveLength(1);
    expect(end[0]).not.toBe(holder);
  }, 150_000);
});
