/**
 * Counts Release datagrams against what justifies each one: an unbind (one Release per peer)
 * or a voter's grant to a candidacy that was then abandoned (one Release to that voter). A
 * Release to a voter that never promised anything only costs a datagram; at start-up those
 * were most of a large cluster's traffic (docs/benchmarks.md, "Releases").
 */
import { Member, type Output } from '../../../src/core/member.js';
import { LIMITS, releasedBy, type Message, type Release } from '../../../src/core/messages.js';
import { deriveTiming } from '../../../src/core/timing.js';

const timing = deriveTiming({ intervalMs: 200, deadMs: 1000 });

interface Sent {
  at: number;
  from: string;
  to: string;
  msg: Message;
}

/** A pure-core cluster on a seeded network with delays (no loss unless cut). */
class Net {
  readonly members = new Map<string, Member>();
  readonly sent: Sent[] = [];
  readonly unbinds: Array<{ at: number; id: string; vip: string; epoch: number; reason: string }> = [];
  readonly abandons: Array<{ id: string; vip: string; epoch: number }> = [];
  readonly cut = new Set<string>();
  private queue: Array<Sent & { deliverAt: number }> = [];
  private readonly startAt = new Map<string, number>();
  private rng = 12345;

  constructor(
    readonly ids: string[],
    vips: number,
    opts: { staggerMs: number; delayMs: number },
  ) {
    this.delayMs = opts.delayMs;
    const list = Array.from({ length: vips }, (_, i) => ({
      vip: `ns/vip-${String(i).padStart(3, '0')}`,
      preferredNodes: i % 4 === 0 ? [ids[0] as string] : [],
    }));
    ids.forEach((self, i) => {
      this.members.set(
        self,
        new Member(
          {
            observer: (e) =>
              e.type === 'abandon' && this.abandons.push({ id: self, vip: e.vip, epoch: e.epoch }),
          },
          {
            clusterId: 'c',
            self,
            incarnation: 1,
            members: ids,
            witness: null,
            quorum: 'majority',
            timing,
            vips: list,
          },
        ),
      );
      this.startAt.set(self, Math.floor((i / ids.length) * opts.staggerMs));
    });
  }
  private readonly delayMs: number;
  private readonly started = new Set<string>();

  private random(): number {
    this.rng ^= this.rng << 13;
    this.rng >>>= 0;
    this.rng ^= this.rng >>> 17;
    this.rng ^= this.rng << 5;
    this.rng >>>= 0;
    return this.rng / 4294967296;
  }

  apply(id: string, out: Output[], at: number): void {
    for (const o of out) {
      if (o.type === 'unbind') this.unbinds.push({ at, id, vip: o.vip, epoch: o.epoch, reason: o.reason });
      if (o.type !== 'send') continue;
      const targets = o.to === '*' ? this.ids.filter((m) => m !== id) : [o.to];
      for (const to of targets) {
        const s = { at, from: id, to, msg: o.message };
        this.sent.push(s);
        if (this.cut.has(`${id}>${to}`)) continue;
        this.queue.push({ ...s, deliverAt: at + this.delayMs * (0.5 + this.random()) });
      }
    }
  }

  run(from: number, to: number, step = 5): void {
    for (let t = from; t <= to; t += step) {
      for (const [id, m] of this.members) {
        if (this.started.has(id) || (this.startAt.get(id) ?? 0) > t) continue;
        this.started.add(id);
        this.apply(id, m.start(t), t);
      }
      const due = this.queue.filter((q) => q.deliverAt <= t).sort((a, b) => a.deliverAt - b.deliverAt);
      this.queue = this.queue.filter((q) => q.deliverAt > t);
      for (const q of due) {
        if (!this.started.has(q.to)) continue;
        this.apply(q.to, (this.members.get(q.to) as Member).receive(t, q.msg), t);
      }
      for (const [id, m] of this.members)
        if (this.started.has(id) && m.wakeAt() <= t) this.apply(id, m.tick(t), t);
    }
  }

  holders(t: number): Map<string, string> {
    const h = new Map<string, string>();
    for (const [id, m] of this.members) for (const x of m.view(t).holdings) h.set(x.vip, id);
    return h;
  }
}

/** Sorts every Release datagram: one per peer per unbind, or one to a voter that granted. */
function classify(net: Net) {
  const key = (...p: Array<string | number>) => p.join('|');
  const unbound = new Set(net.unbinds.map((u) => key(u.id, u.vip, u.epoch)));
  const granted = new Set<string>(); // candidate|voter|vip|epoch, from the grants voters sent
  const perUnbind = new Map<string, number>();
  let forUnbinds = 0;
  let forGrants = 0;
  let datagrams = 0;
  const unjustified: string[] = [];
  for (const s of net.sent) {
    if (s.msg.kind === 'takeover-ack') {
      for (const e of s.msg.entries) if (e.granted) granted.add(key(s.to, s.from, e.vip, e.epoch));
    } else if (s.msg.kind === 'release') {
      datagrams++;
      // A batched Release (docs/adr/0041) releases each of its entries as one Release would.
      for (const { vip, epoch } of releasedBy(s.msg)) {
        if (unbound.has(key(s.from, vip, epoch))) {
          forUnbinds++;
          perUnbind.set(key(s.from, vip, epoch), (perUnbind.get(key(s.from, vip, epoch)) ?? 0) + 1);
        } else if (granted.has(key(s.from, s.to, vip, epoch))) {
          forGrants++;
        } else {
          unjustified.push(`${s.from} -> ${s.to} ${vip} e${epoch} at ${s.at}`);
        }
      }
    }
  }
  return { forUnbinds, forGrants, unjustified, perUnbind, datagrams };
}

describe('Release datagrams', () => {
  test('cold start with contention, a drain and a lost lease: one Release per peer per unbind, none to voters that refused', () => {
    const ids = Array.from({ length: 7 }, (_, i) => `m${i}`);
    const net = new Net(ids, 120, { staggerMs: 2500, delayMs: 20 });
    net.run(0, 8000);
    expect(net.holders(8000).size).toBe(120);
    // A planned move of everything the biggest holder holds (drain), then the next biggest
    // holder cut off long enough to lose its leases.
    const biggest = (t: number): string => {
      const n = new Map<string, number>();
      for (const h of net.holders(t).values()) n.set(h, (n.get(h) ?? 0) + 1);
      return [...n].sort((a, b) => b[1] - a[1])[0]?.[0] as string;
    };
    const drained = biggest(8000);
    net.apply(drained, (net.members.get(drained) as Member).setLocal(8000, { standby: true }), 8000);
    net.run(8005, 10_000);
    const lost = biggest(10_000);
    expect(lost).not.toBe(drained);
    for (const other of ids) if (other !== lost) net.cut.add(`${lost}>${other}`).add(`${other}>${lost}`);
    net.run(10_005, 12_000);
    net.cut.clear();
    net.run(12_005, 15_000);
    expect(net.holders(15_000).size).toBe(120);

    const c = classify(net);
    const reasons = new Set(net.unbinds.map((u) => u.reason));
    expect(reasons).toEqual(new Set(['planned', 'lease-expired']));
    // Exactly one Release per peer for every unbind.
    expect(c.perUnbind.size).toBe(net.unbinds.length);
    for (const n of c.perUnbind.values()) expect(n).toBe(ids.length - 1);
    expect(c.forUnbinds).toBe(net.unbinds.length * (ids.length - 1));
    // Abandoned candidacies (there are many at a staggered start) released only to the voters
    // that had granted them; every other Release datagram is accounted for.
    expect(net.abandons.length).toBeGreaterThan(20);
    expect(c.unjustified).toEqual([]);
    expect(c.forGrants).toBeLessThan(net.abandons.length * (ids.length - 1));
    const releases = net.sent
      .filter((s) => s.msg.kind === 'release')
      .reduce((n, s) => n + releasedBy(s.msg as Release).length, 0);
    expect(releases).toBe(c.forUnbinds + c.forGrants);
    // A planned move names its successor: one datagram per VIP and peer. Releases for nobody
    // (the lost leases, the failed candidacy rounds) share datagrams per step and peer
    // (docs/adr/0041): here 168 of them went out in 6.
    const rs = net.sent.filter((s) => s.msg.kind === 'release').map((s) => s.msg as Release);
    const planned = rs.filter((r) => r.successor !== null);
    expect(planned.every((r) => r.also === undefined)).toBe(true);
    const forNobody = rs.filter((r) => r.successor === null);
    const entries = forNobody.reduce((n, r) => n + releasedBy(r).length, 0);
    expect(entries).toBeGreaterThan(100);
    expect(forNobody.length).toBeLessThan(entries / 10);
    expect(c.datagrams).toBe(rs.length);
  });

  test('many VIPs released in one step go out as one datagram per peer, in order, 64 VIPs at most each', () => {
    const ids = ['a', 'b', 'c'];
    const net = new Net(ids, 150, { staggerMs: 0, delayMs: 2 });
    net.run(0, 4000);
    const holds = (id: string) => [...net.holders(4000)].filter(([, h]) => h === id).map(([v]) => v);
    const leaving = ids.reduce((a, b) => (holds(a).length >= holds(b).length ? a : b));
    const held = holds(leaving);
    expect(held.length).toBeGreaterThan(64);
    const before = net.sent.length;
    // A stop without handover: every holding released at once, for nobody in particular.
    net.apply(leaving, (net.members.get(leaving) as Member).stop(4001), 4001);
    const sent = net.sent.slice(before).filter((s) => s.msg.kind === 'release' && s.from === leaving);
    const per = (to: string) => sent.filter((s) => s.to === to).map((s) => releasedBy(s.msg as Release));
    for (const to of ids.filter((i) => i !== leaving)) {
      const batches = per(to);
      expect(batches.length).toBe(Math.ceil(held.length / LIMITS.releasesPerMessage));
      for (const b of batches) expect(b.length).toBeLessThanOrEqual(LIMITS.releasesPerMessage);
      expect(
        batches
          .flat()
          .map((e) => e.vip)
          .sort(),
      ).toEqual([...held].sort());
    }
    // Both peers get the same list: each batch has one sequence number for both.
    const seqs = new Set(sent.map((s) => (s.msg as Release).seq));
    expect(seqs.size).toBe(Math.ceil(held.length / LIMITS.releasesPerMessage));
  });

  test('an abandoned candidacy that no voter granted sends no Release datagram, and lists the release in its heartbeats', () => {
    const ids = ['a', 'b', 'c'];
    const net = new Net(ids, 1, { staggerMs: 0, delayMs: 2 });
    net.run(0, 4000);
    const holder = net.holders(4000).get('ns/vip-000');
    expect(holder).toBeDefined();
    const asker = ids.find((m) => m !== holder) as string;
    // The asker stops hearing the holder (one-way), takes it for dead and asks; the other voter
    // still promises the holder and refuses; the asker gives up when it hears the holder again.
    net.cut.add(`${holder}>${asker}`);
    net.run(4005, 8000);
    net.cut.clear();
    net.run(8005, 9000);
    const gaveUp = net.abandons.filter((a) => a.id === asker);
    expect(gaveUp.length).toBeGreaterThan(0);
    const c = classify(net);
    expect(c.unjustified).toEqual([]);
    const { epoch } = gaveUp[0] as { epoch: number };
    const released = net.sent.filter(
      (s) => s.from === asker && s.msg.kind === 'release' && s.msg.epoch === epoch,
    );
    const granted = net.sent.some(
      (s) =>
        s.to === asker &&
        s.msg.kind === 'takeover-ack' &&
        s.msg.entries.some((e) => e.granted && e.epoch === epoch),
    );
    expect(released.length).toBe(granted ? 1 : 0);
    const listed = net.sent.some(
      (s) =>
        s.from === asker &&
        s.msg.kind === 'heartbeat' &&
        s.msg.releases.some((r) => r.vip === 'ns/vip-000' && r.epoch === epoch),
    );
    expect(listed).toBe(true);
  });
});
