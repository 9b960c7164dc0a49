/**
 * The first planned move after a start used to cost 63-103 ms of client outage against about
 * 50 for the next ones (docs/benchmarks.md, "Planned switchover"): the code of a handover (the
 * Release and the grant, encoding and signing them, verifying and decoding them, standing and
 * binding on them) had never run in the process, and V8 compiled it on the way, inside the
 * no-holder window. This runs that code once at start, in the process, on throwaway state: a
 * three-member cluster of its own (ephemeral keys, simulated time, no socket, no address)
 * elects a holder and hands its VIP over, every datagram going through real codecs.
 * Nothing here touches the running member.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Member, type Output } from '../core/member.js';
import type { Message, MemberId } from '../core/messages.js';
import type { Timing } from '../core/timing.js';
import { IdTable, Keyring, MemberKeys, SourceBinding, WireCodec } from '../core/wire/index.js';

const IDS = ['prewarm-a', 'prewarm-b', 'prewarm-c'] as const;
const VIP = 'prewarm/vip';
const CLUSTER = 'prewarm';

/** What the dry run did: whether the handover happened, and the datagrams it took. */
export interface PrewarmResult {
  handedOver: boolean;
  datagrams: number;
}

/**
 * Runs a planned handover on a private three-member cluster with `timing` (the running
 * configuration's, so that the same branches run). Synchronous; a few milliseconds of CPU.
 */
export function prewarmHandoff(timing: Timing): PrewarmResult {
  const keys = new Map(IDS.map((id) => [id, generateKeyPairSync('ed25519')] as const));
  const ids = new IdTable({ clusterId: CLUSTER, members: [...IDS], vips: [VIP] });
  const keyring = new Keyring([{ id: 1, secret: randomBytes(32) }], 1);
  const address = (id: MemberId) => `127.0.0.${IDS.indexOf(id as (typeof IDS)[number]) + 1}`;
  const sources = new SourceBinding(IDS.map((id) => [id, [{ address: address(id) }]] as const));
  const memberKeys = new MemberKeys(IDS.map((id) => [id, keys.get(id)!.publicKey] as const));
  const codecs = new Map(
    IDS.map(
      (id) =>
        [
          id,
          new WireCodec({
            ids,
            self: id,
            keyring,
            sources,
            signingKey: keys.get(id)!.privateKey,
            memberKeys,
          }),
        ] as const,
    ),
  );
  const members = new Map(
    IDS.map(
      (id) =>
        [
          id,
          new Member(
            {},
            {
              clusterId: CLUSTER,
              self: id,
              incarnation: 1,
              members: [...IDS],
              quorum: 'majority',
              timing,
              vips: [{ vip: VIP, preferredNodes: [IDS[0], IDS[1]] }],
            },
          ),
        ] as const,
    ),
  );
  let holder: MemberId | undefined;
  let first: MemberId | undefined;
  let datagrams = 0;
  let handedOver = false;
  const queue: Array<{ from: MemberId; out: Output[] }> = [];
  const deliver = (now: number) => {
    while (queue.length > 0) {
      const { from, out } = queue.shift()!;
      for (const o of out) {
        if (o.type === 'bind') {
          if (first !== undefined && first !== from) handedOver = true;
          first ??= from;
          holder = from;
        } else if (o.type === 'unbind' && holder === from) {
          holder = undefined;
        } else if (o.type === 'send') {
          const to = o.to === '*' ? IDS.filter((id) => id !== from) : [o.to];
          for (const dest of to) {
            const codec = codecs.get(dest as (typeof IDS)[number]);
            if (!codec) continue;
            const r = codec.decode(codecs.get(from as (typeof IDS)[number])!.encode(o.message, dest), {
              address: address(from),
              port: 694,
            });
            datagrams++;
            if (r.ok)
              queue.push({
                from: dest,
                out: members.get(dest as (typeof IDS)[number])!.receive(now, r.message as Message),
              });
          }
        }
      }
    }
  };
  const step = Math.max(1, Math.round(timing.intervalMs / 4));
  const end = timing.initDeadMs + 4 * timing.deadMs;
  let now = 0;
  for (const [id, m] of members) queue.push({ from: id, out: m.start(now) });
  deliver(now);
  let standbyAt: number | undefined;
  for (now = step; now <= end && !handedOver; now += step) {
    for (const [id, m] of members) queue.push({ from: id, out: m.tick(now) });
    deliver(now);
    if (holder !== undefined && standbyAt === undefined) {
      standbyAt = now;
      queue.push({
        from: holder,
        out: members.get(holder as (typeof IDS)[number])!.setLocal(now, { standby: true }),
      });
      deliver(now);
    }
  }
  return { handedOver, datagrams };
}
