/**
 * Per-member keys (docs/adr/0021) on real Linux, default profile, 3 nodes. A node that is not
 * a member, with root in its network namespace (NET_RAW: it spoofs any source address) and
 * the cluster's auth Secret (which any agent's ServiceAccount may read, so a compromised
 * non-member node can have it), forges the holder's heartbeats while the holder is powered
 * off. In the lab that node is the client namespace: it is labelled into nothing, and its
 * forger holds the real cluster key and a member key of its own (the holder's never leaves
 * the holder). Each forged heartbeat claims a new life of the holder (a later incarnation,
 * so the replay window cannot drop it) still holding the VIP at its epoch: believed, it would
 * keep the other members' promises to the holder alive and stall the takeover.
 *
 * Expected: the takeover proceeds on time, never two holders, and every forged datagram is
 * dropped by each receiver as `bad-signature` (the cluster HMAC passed, the holder's
 * signature did not) and counted.
 */
import { join } from 'node:path';
import { nsRun } from '../../hack/lab/sh.js';
import { powerOff } from '../../hack/lab/topology.js';
import {
  IdTable,
  Keyring,
  MemberKeys,
  SourceBinding,
  WireCodec,
  generateMemberKey,
} from '../../src/core/wire/index.js';
import { OFF_INCARNATION } from '../../src/core/wire/layout.js';
import { WITNESS_ID } from '../../src/runtime/cluster-config.js';
import {
  ROOT,
  agentMetrics,
  droppedCount,
  holderOf,
  holdersAtEnd,
  measure,
  steadyHolder,
} from './helpers/lab-run.js';
import { CLUSTER_ID, VIP, capture, forgedHeartbeat } from './helpers/forge.js';
import { labDescribe, withLabCluster } from './helpers/suite.js';

/** Forged heartbeats per receiver, one every 100 ms (twice the holder's real rate): 5 s. */
const ROUNDS = 50;

/** The forger's heartbeat as `holder`: a new life still holding the VIP at `epoch`. */

labDescribe('member keys: a non-member node forging a member (default profile, 3 nodes)', () => {
  const cluster = withLabCluster({ id: 'e2emk', nodes: 3, profile: 'default' });

  it("a non-member with the cluster key and NET_RAW forges the powered-off holder's heartbeats: dropped (bad-signature) and counted, the takeover proceeds on time", async () => {
    const c = cluster();
    const holder = await steadyHolder(c);
    const others = c.lab.nodes.filter((n) => n.name !== holder).map((n) => n.name);
    const h = c.lab.nodes.find((n) => n.name === holder)!;
    const { epoch } = await holderOf(c);
    expect(epoch).toBeGreaterThan(0);
    // The holder's current life, from one of its real datagrams: the forgery claims the next.
    const real = Buffer.from(await capture(c, holder, others[0]!), 'hex');
    const incarnation = real.readUInt32BE(OFF_INCARNATION);
    // What a non-member node can hold: the cluster key (the Secret) and a key of its own.
    const forger = new WireCodec({
      ids: new IdTable({
        clusterId: CLUSTER_ID,
        members: [...c.lab.nodes.map((n) => n.name), WITNESS_ID],
        vips: [VIP],
      }),
      self: holder,
      keyring: new Keyring([{ id: 1, secret: c.authKeys.get(1)! }], 1),
      sources: new SourceBinding([]),
      signingKey: generateMemberKey(),
      memberKeys: new MemberKeys([]),
    });
    const datagrams = Array.from({ length: ROUNDS }, (_, i) =>
      Buffer.from(forger.encode(forgedHeartbeat(holder, (incarnation + 1) >>> 0, i + 1, epoch!))).toString(
        'hex',
      ),
    ).flatMap((hex) =>
      others.map((o, k) => ({
        hex,
        to: c.lab.nodes.find((n) => n.name === o)!.ip,
        port: 694,
        from: h.ip,
        fromPort: 694,
        gap: k === others.length - 1 ? 0.1 : 0,
      })),
    );
    // The client spoofs the holder's address (IP_TRANSPARENT); it must not announce it in ARP.
    await nsRun(c.lab.client.ns, 'sysctl', [
      '-q',
      '-w',
      'net.ipv4.conf.all.arp_announce=2',
      'net.ipv4.conf.eth0.arp_announce=2',
    ]);
    const reasons = ['bad-signature', 'bad-mac', 'stale-incarnation', 'source-mismatch'] as const;
    const count = async (node: string) => {
      const text = await agentMetrics(c, node);
      return Object.fromEntries(reasons.map((r) => [r, droppedCount(text, r)]));
    };
    const before = new Map(await Promise.all(others.map(async (o) => [o, await count(o)] as const)));
    let sent = 0;
    const m = await measure(c, {
      scenario: 'power-off-forged-by-non-member',
      profile: 'default',
      observeMs: 6000,
      note: 'a non-member node with the cluster key forges the holder (member keys, ADR 0021)',
      fault: async (from) => {
        expect(from).toBe(holder);
        // Forging starts with the power-off and goes on through the takeover.
        const forging = nsRun(
          c.lab.client.ns,
          'python3',
          [join(ROOT, 'test/e2e/helpers/udp-send.py'), JSON.stringify(datagrams)],
          30_000,
        );
        await powerOff(c.lab, from);
        sent = Number((await forging).trim());
      },
    });
    expect(sent).toBe(ROUNDS * others.length);
    expect(m.summary.dualHolderMs).toBe(0);
    expect(m.summary.failoverMs).not.toBeNull();
    // As the power-off test without a forger (failover-power.test.ts): lease < dead 1000 ms,
    // plus takeover round trip, bind and GARP.
    expect(m.summary.failoverMs!).toBeLessThan(4000);
    const end = holdersAtEnd(m.samples);
    expect(end).toHaveLength(1);
    expect(end[0]).not.toBe(holder);
    for (const o of others) {
      const after = await count(o);
      const delta = Object.fromEntries(reasons.map((r) => [r, after[r]! - before.get(o)![r]!]));
      process.stdout.write(`[e2e] drops counted by ${o}: ${JSON.stringify(delta)}\n`);
      expect(delta).toEqual({
        'bad-signature': ROUNDS,
        'bad-mac': 0,
        'stale-incarnation': 0,
        'source-mismatch': 0,
      });
    }
  }, 150_000);
});
