/**
 * Member state transitions, driven by hand: messages are passed between members directly,
 * with explicit times.
 */
import { Member, type MemberEvent, type Output } from '../../../src/core/member.js';
import type { Heartbeat, Message } from '../../../src/core/messages.js';
import { deriveTiming } from '../../../src/core/timing.js';

const timing = deriveTiming({ intervalMs: 200, deadMs: 1000 });

/**
 * `m` goes to standby at `t` and, hearing nothing (no successor's echo), hands over after its
 * one-interval wait (docs/adr/0034): the outputs of that step, at `t + intervalMs`.
 */
function standbyHandover(m: Member, t: number): Output[] {
  const asked = m.setLocal(t, { standby: true });
  expect(asked.filter((o) => o.type === 'unbind')).toEqual([]);
  return m.tick(t + timing.intervalMs);
}
const H = timing.intervalMs;

class Cluster {
  readonly members = new Map<string, Member>();
  readonly bound = new Map<string, string>(); // vip -> member
  readonly log: Array<{ id: string; o: Output; t?: number }> = [];
  private queue: Array<{ to: string; msg: Message }> = [];
  readonly down = new Set<string>();
  /** One-way cuts, "from>to". */
  readonly cut = new Set<string>();
  private readonly incarnations = new Map<string, number>();
  constructor(
    ids: string[],
    private readonly opts: {
      witness?: boolean;
      preferred?: string[];
      vips?: string[];
      autoFailback?: boolean;
    } = {},
  ) {
    for (const id of [...ids, ...(opts.witness ? ['ctl'] : [])]) this.members.set(id, this.make(id, ids, 1));
  }
  private make(id: string, ids: string[], incarnation: number): Member {
    const opts = this.opts;
    this.incarnations.set(id, incarnation);
    return new Member(
      {},
      {
        clusterId: 'c',
        self: id,
        incarnation,
        members: ids,
        witness: opts.witness ? 'ctl' : null,
        quorum: opts.witness ? 'witness' : 'majority',
        timing,
        vips: (opts.vips ?? ['ns/web']).map((vip) => ({
          vip,
          preferredNodes: opts.preferred ?? [ids[0] as string],
        })),
        autoFailback: opts.autoFailback ?? false,
      },
    );
  }
  /** Powers `id` back on at `t`: a new life (its addresses were swept), heard from then on. */
  restart(id: string, t: number): void {
    const ids = [...this.members.keys()].filter((m) => m !== 'ctl' || !this.opts.witness);
    const m = this.make(id, ids, (this.incarnations.get(id) ?? 1) + 1);
    this.members.set(id, m);
    this.down.delete(id);
    this.apply(id, m.start(t), t);
  }
  apply(id: string, out: Output[], t?: number) {
    for (const o of out) {
      this.log.push({ id, o, t });
      if (o.type === 'send') this.queue.push({ to: o.to, msg: o.message });
      if (o.type === 'bind') this.bound.set(o.vip, id);
      if (o.type === 'unbind' && this.bound.get(o.vip) === id) this.bound.delete(o.vip);
    }
  }
  /** Runs all members from `from` to `to` ms in 1 ms steps, delivering messages 1 ms later. */
  run(from: number, to: number) {
    for (let t = from; t <= to; t++) {
      const q = this.queue;
      this.queue = [];
      for (const { to: dest, msg } of q) {
        if (this.down.has(dest) || this.down.has(msg.from) || this.cut.has(`${msg.from}>${dest}`)) continue;
        this.apply(dest, (this.members.get(dest) as Member).receive(t, msg), t);
      }
      for (const [id, m] of this.members) {
        if (this.down.has(id)) continue;
        if (t === 0) this.apply(id, m.start(0), t);
        else if (m.wakeAt() <= t) this.apply(id, m.tick(t), t);
      }
    }
  }
}

describe('Member', () => {
  test('binds the preferred member only after the quiet period and a quorum of acks', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.run(0, timing.quietMs - 1);
    expect(c.bound.size).toBe(0);
    c.run(timing.quietMs, 1500);
    expect(c.bound.get('ns/web')).toBe('a');
    const bind = c.log.find((l) => l.o.type === 'bind');
    expect(bind?.o).toMatchObject({
      type: 'bind',
      vip: 'ns/web',
      epoch: 1,
      reason: 'a elected: preferred #1',
    });
    // The lease keeps being renewed by echoes.
    c.run(1501, 4000);
    expect(c.bound.get('ns/web')).toBe('a');
    expect(c.log.filter((l) => l.id === 'a' && l.o.type === 'renew').length).toBeGreaterThan(5);
    expect(c.members.get('a')?.view(4000).holdings[0]?.leaseExpiry).toBeGreaterThan(4000);
  });

  test('holder crash: another member takes over at a higher epoch after deadMs', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.run(0, 3000);
    c.down.add('a');
    c.bound.delete('ns/web');
    c.run(3001, 3000 + timing.deadMs - 300);
    expect(c.bound.size).toBe(0);
    c.run(3000 + timing.deadMs - 299, 5000);
    const holder = c.bound.get('ns/web');
    expect(holder === 'b' || holder === 'c').toBe(true);
    const bind = c.log.filter((l) => l.o.type === 'bind').at(-1);
    expect(bind?.o).toMatchObject({ epoch: 2 });
    expect((bind?.o as { reason: string }).reason).toMatch(/holder a is not alive/);
  });

  test('graceful stop: unbind, then a leaving heartbeat, the release naming the successor and our grant to it; the successor binds on it', () => {
    for (const witness of [false, true]) {
      const ids = witness ? ['a', 'b'] : ['a', 'b', 'c'];
      const c = new Cluster(ids, { witness, preferred: ['a', 'b'] });
      c.run(0, 3000);
      expect(c.bound.get('ns/web')).toBe('a');
      const a = c.members.get('a') as Member;
      const out = a.stop(3000, { handOver: true });
      const kinds = out.map((o) => (o.type === 'send' ? `send:${o.message.kind}` : o.type));
      // Nothing that reveals the release goes out before the unbind.
      expect(kinds[0]).toBe('unbind');
      // A planned move, as a drain: handed to the elected successor (b, alive and ready).
      expect(out[0]).toMatchObject({ type: 'unbind', vip: 'ns/web', epoch: 1, reason: 'planned' });
      const hb = kinds.indexOf('send:heartbeat');
      expect(out[hb]).toMatchObject({
        message: { standby: true, holdings: { entries: [] }, releases: [{ vip: 'ns/web', epoch: 1 }] },
      });
      // The standby heartbeat first (an observer sees a drain), then the releases and the grant.
      expect(kinds.indexOf('send:release')).toBeGreaterThan(hb);
      expect(kinds.filter((k) => k === 'send:release').length).toBe(ids.length - 1 + (witness ? 1 : 0));
      for (const o of out)
        if (o.type === 'send' && o.message.kind === 'release') expect(o.message.successor).toBe('b');
      const grant = out.find((o) => o.type === 'send' && o.message.kind === 'takeover-ack');
      expect(grant).toMatchObject({
        to: 'b',
        message: { candidate: 'b', entries: [{ vip: 'ns/web', epoch: 2, granted: true }] },
      });
      c.apply('a', out);
      c.bound.delete('ns/web');
      // One datagram (1 ms): with three voters the holder's grant and b's own make a quorum.
      c.run(3001, 3000 + timing.intervalMs);
      expect(c.bound.get('ns/web')).toBe('b');
      const bind = c.log.filter((l) => l.o.type === 'bind').at(-1);
      expect(bind?.o).toMatchObject({ epoch: 2 });
      expect(a.tick(3100)).toEqual([]);
      expect(a.wakeAt()).toBe(Infinity);
    }
  });

  test('leaving the member set (stop without handOver): a release for anyone, no grant', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'] });
    c.run(0, 3000);
    expect(c.bound.get('ns/web')).toBe('a');
    const out = (c.members.get('a') as Member).stop(3000);
    expect(out[0]).toMatchObject({ type: 'unbind', reason: 'stopped' });
    const releases = out.flatMap((o) =>
      o.type === 'send' && o.message.kind === 'release' ? [o.message] : [],
    );
    expect(releases.length).toBe(2);
    for (const r of releases) expect(r.successor).toBeNull();
    expect(out.some((o) => o.type === 'send' && o.message.kind === 'takeover-ack')).toBe(false);
  });

  test('an isolated holder drops the VIP when its grants expire', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.run(0, 3000);
    // b and c stop hearing a and a stops hearing them: a is alone.
    const a = c.members.get('a') as Member;
    c.down.add('a');
    c.run(3001, 3000 + timing.leaseMs + 50);
    c.down.delete('a');
    const out = a.tick(3000 + timing.leaseMs + 50);
    expect(out.find((o) => o.type === 'unbind')).toMatchObject({ reason: 'lease-expired' });
  });

  test('standby (drain) is a planned move: release first, then the successor binds at once', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'] });
    c.run(0, 3000);
    expect(c.bound.get('ns/web')).toBe('a');
    c.apply('a', (c.members.get('a') as Member).setLocal(3001, { standby: true }));
    c.run(3001, 3100);
    expect(c.bound.get('ns/web')).toBe('b');
    const unbind = c.log.find((l) => l.o.type === 'unbind');
    expect(unbind?.o).toMatchObject({ reason: 'planned' });
  });

  test('a planned move waits for the successor to echo the standby heartbeat, not for the interval', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'] });
    c.run(0, 3000);
    const a = c.members.get('a') as Member;
    const asked = a.setLocal(3001, { standby: true });
    // Nothing released yet: a asks (its standby heartbeat) and keeps serving meanwhile.
    expect(asked.filter((o) => o.type === 'unbind')).toEqual([]);
    expect(asked.some((o) => o.type === 'send' && o.message.kind === 'heartbeat' && o.message.standby)).toBe(
      true,
    );
    c.apply('a', asked, 3001);
    // b echoes at once; a hands over on that echo, well before one interval.
    c.run(3002, 3001 + timing.intervalMs / 4);
    expect(c.bound.get('ns/web')).toBe('b');
  });

  test('planned move, 3 members: the release carries the holder grant, the successor binds on it', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'] });
    c.run(0, 3000);
    const a = c.members.get('a') as Member;
    const b = c.members.get('b') as Member;
    const out = standbyHandover(a, 3001);
    c.apply('a', out);
    const toB = out.flatMap((o) => (o.type === 'send' && o.to === 'b' ? [o.message] : []));
    // The release first, then a's grant of the next epoch to b (no request from b needed).
    const kinds = toB.map((m) => m.kind).filter((k) => k !== 'heartbeat');
    expect(kinds).toEqual(['release', 'takeover-ack']);
    expect(toB.find((m) => m.kind === 'takeover-ack')).toMatchObject({
      candidate: 'b',
      entries: [{ vip: 'ns/web', epoch: 2, granted: true }],
    });
    // b binds on these two datagrams alone: its own vote and a's make a quorum of three.
    const bOut = toB.flatMap((m) => b.receive(3002 + H, m));
    expect(bOut.find((o) => o.type === 'bind')).toMatchObject({ vip: 'ns/web', epoch: 2 });
  });

  test('planned move, 3 members: with the grant ahead of the Release (the agent sends it first), the successor binds on the Release itself', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'] });
    c.run(0, 3000);
    const a = c.members.get('a') as Member;
    const b = c.members.get('b') as Member;
    const out = standbyHandover(a, 3001);
    const toB = out.flatMap((o) => (o.type === 'send' && o.to === 'b' ? [o.message] : []));
    const grant = toB.find((m) => m.kind === 'takeover-ack')!;
    const release = toB.find((m) => m.kind === 'release')!;
    // The grant alone binds nothing: b has not heard of the release yet.
    expect(b.receive(3002 + H, grant).find((o) => o.type === 'bind')).toBeUndefined();
    const onRelease = b.receive(3002 + H, release);
    const bind = onRelease.findIndex((o) => o.type === 'bind');
    expect(onRelease[bind]).toMatchObject({ vip: 'ns/web', epoch: 2 });
    // The bind comes before the takeover requests of the same step (they are only a backup).
    const firstRequest = onRelease.findIndex((o) => o.type === 'send' && o.message.kind === 'takeover');
    expect(firstRequest === -1 || bind < firstRequest).toBe(true);
  });

  test('a grant ahead of its candidacy counts only for that epoch and only while unexpired', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'] });
    c.run(0, 3000);
    const a = c.members.get('a') as Member;
    const b = c.members.get('b') as Member;
    const out = standbyHandover(a, 3001);
    const toB = out.flatMap((o) => (o.type === 'send' && o.to === 'b' ? [o.message] : []));
    const grant = toB.find((m) => m.kind === 'takeover-ack')!;
    const release = toB.find((m) => m.kind === 'release')!;
    b.receive(3002 + H, grant);
    // The Release comes after the grant has expired: b asks the voters instead of binding.
    const late = 3002 + H + timing.leaseMs + 1;
    const onRelease = b.receive(late, release);
    expect(onRelease.find((o) => o.type === 'bind')).toBeUndefined();
    expect(onRelease.some((o) => o.type === 'send' && o.message.kind === 'takeover')).toBe(true);
  });

  test('move (heartline.dev/move-to): the holder hands the VIP to the target, one holder at every step', () => {
    for (const autoFailback of [false, true]) {
      const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'], autoFailback });
      c.run(0, 3000);
      expect(c.bound.get('ns/web')).toBe('a');
      // Every member sees the target (the agents read it from the VirtualIP), c first.
      const moved = [{ vip: 'ns/web', preferredNodes: ['a', 'b'], moveTo: 'c' }];
      c.apply('c', (c.members.get('c') as Member).setVips(3001, moved));
      c.run(3001, 3050);
      // The target waits for the holder to release: still a.
      expect(c.bound.get('ns/web')).toBe('a');
      for (const id of ['a', 'b']) c.apply(id, (c.members.get(id) as Member).setVips(3051, moved));
      // c.bound keeps one holder per VIP: count every member whose last bind/unbind is a bind.
      let holders = 0;
      for (let t = 3051; t <= 3300; t++) {
        c.run(t, t);
        const last = new Map<string, string>();
        for (const l of c.log) if (l.o.type === 'bind' || l.o.type === 'unbind') last.set(l.id, l.o.type);
        holders = Math.max(holders, [...last.values()].filter((x) => x === 'bind').length);
      }
      expect(holders).toBe(1);
      expect(c.bound.get('ns/web')).toBe('c');
      const unbind = c.log.find((l) => l.o.type === 'unbind');
      expect(unbind).toMatchObject({ id: 'a', o: { reason: 'planned' } });
      const bind = c.log.filter((l) => l.o.type === 'bind').at(-1);
      expect(bind).toMatchObject({ id: 'c', o: { epoch: 2 } });
      // The target keeps it (sticky, and it ranks first while the annotation stays).
      c.run(3301, 6000);
      expect(c.bound.get('ns/web')).toBe('c');
      expect(c.log.filter((l) => l.o.type === 'bind').length).toBe(2);
    }
  });

  test('move to a member in standby does nothing: the holder keeps the VIP', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'] });
    c.run(0, 3000);
    c.apply('c', (c.members.get('c') as Member).setLocal(3001, { standby: true }));
    c.run(3001, 3100);
    const moved = [{ vip: 'ns/web', preferredNodes: ['a', 'b'], moveTo: 'c' }];
    for (const [id, m] of c.members) c.apply(id, m.setVips(3101, moved));
    c.run(3101, 5000);
    expect(c.bound.get('ns/web')).toBe('a');
    expect(c.log.filter((l) => l.o.type === 'unbind')).toEqual([]);
  });

  test('a successor that does not take the VIP releases the epoch it was handed', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b'] });
    c.run(0, 3000);
    const a = c.members.get('a') as Member;
    const b = c.members.get('b') as Member;
    // b went standby itself, but a has not heard it yet when it moves the VIP to b.
    b.setLocal(3001, { standby: true });
    const out = standbyHandover(a, 3001);
    c.apply('a', out);
    const release = out.find((o) => o.type === 'send' && o.to === 'b' && o.message.kind === 'release');
    expect(release).toBeDefined();
    const bOut = b.receive(3002 + H, (release as Extract<Output, { type: 'send' }>).message);
    expect(bOut.find((o) => o.type === 'bind')).toBeUndefined();
    const declined = bOut.filter((o) => o.type === 'send' && o.message.kind === 'release');
    expect(declined.length).toBeGreaterThan(0);
    expect(declined[0]).toMatchObject({ message: { vip: 'ns/web', epoch: 2, successor: null } });
  });

  test('auto failback: the interim holder waits until the returning member is ready, then one planned move', () => {
    const c = new Cluster(['a', 'b', 'c'], { autoFailback: true });
    c.run(0, 3000);
    expect(c.bound.get('ns/web')).toBe('a');
    c.down.add('a');
    c.bound.delete('ns/web');
    c.run(3001, 6000);
    const interim = c.bound.get('ns/web') as string;
    expect(['b', 'c']).toContain(interim);
    const failover = c.log.filter((l) => l.o.type === 'bind').at(-1)?.o as Extract<Output, { type: 'bind' }>;
    const mark = c.log.length;
    c.restart('a', 6001);
    c.run(6002, 9000);
    const after = c.log.slice(mark);
    // a's heartbeats say "settling" until its quiet period is over and it heard every peer.
    const flags = after.flatMap((l) =>
      l.id === 'a' && l.o.type === 'send' && l.o.message.kind === 'heartbeat'
        ? [{ t: l.t ?? 6001, settling: l.o.message.settling ?? false }]
        : [],
    );
    expect(flags[0]?.settling).toBe(true);
    const ready = flags.find((f) => !f.settling);
    expect(ready).toBeDefined();
    expect(ready?.t).toBeGreaterThanOrEqual(6001 + timing.quietMs);
    // The interim holder hands it over only after that, once, and never asks for it again.
    const moves = after.filter((l) => l.o.type === 'bind' || l.o.type === 'unbind');
    expect(moves.map((l) => `${l.id} ${l.o.type}`)).toEqual([`${interim} unbind`, 'a bind']);
    expect(moves[0]?.t).toBeGreaterThanOrEqual(ready?.t ?? Infinity);
    expect(moves[0]?.o).toMatchObject({ reason: 'planned' });
    expect(moves[1]?.o).toMatchObject({
      epoch: failover.epoch + 1,
      reason: `${interim} handed it over (planned move)`,
    });
    const asked = after.filter((l) => l.id !== 'a' && l.o.type === 'send' && l.o.message.kind === 'takeover');
    expect(asked).toEqual([]);
    expect(c.bound.get('ns/web')).toBe('a');
  });

  test('a member that hears a handover to another member does not stand for the VIP meanwhile', () => {
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a', 'b', 'c'] });
    c.run(0, 3000);
    const a = c.members.get('a') as Member;
    const cm = c.members.get('c') as Member;
    // c stops hearing b (one-way): in c's view b is dead, in a's it is alive.
    c.cut.add('b>c');
    const t = 3000 + timing.deadMs + 50;
    c.run(3001, t);
    expect(cm.view(t).members.find((m) => m.id === 'b')?.liveness).toBe('dead');
    // a drains: it moves the VIP to b. c hears the release (naming b) and a's standby, and
    // would elect itself; it lets b take the VIP instead.
    const out = standbyHandover(a, t + 1);
    const toC = out.flatMap((o) => (o.type === 'send' && o.to === 'c' ? [o.message] : []));
    expect(toC.find((m) => m.kind === 'release')).toMatchObject({ successor: 'b' });
    const cOut = toC.flatMap((m) => cm.receive(t + 2 + H, m));
    expect(cOut.filter((o) => o.type === 'send' && o.message.kind === 'takeover')).toEqual([]);
    // b binds on a's handoff; c still asks for nothing.
    c.apply('a', out, t + 1 + H);
    c.run(t + 2 + H, t + 3 * timing.intervalMs);
    expect(c.bound.get('ns/web')).toBe('b');
    const asked = c.log.filter((l) => l.id === 'c' && l.o.type === 'send' && l.o.message.kind === 'takeover');
    expect(asked).toEqual([]);
  });

  test('a new holdings version of several pages goes out whole in one round', () => {
    const vips = Array.from({ length: 40 }, (_, i) => `ns/vip-${String(i).padStart(2, '0')}`);
    const c = new Cluster(['a', 'b', 'c'], { preferred: ['a'], vips });
    c.run(0, 3000);
    expect(vips.every((v) => c.bound.get(v) === 'a')).toBe(true);
    const toB = c.log.flatMap((l) =>
      l.id === 'a' && l.o.type === 'send' && l.o.to === 'b' && l.o.message.kind === 'heartbeat'
        ? [{ t: l.t, m: l.o.message }]
        : [],
    );
    const last = toB.at(-1)!.m;
    expect(last.holdings.pages).toBe(2);
    // The first round of the final version carried both of its pages, at the same instant.
    const first = toB.findIndex((x) => x.m.holdings.version === last.holdings.version);
    const burst = toB.slice(first, first + 2);
    expect(burst.map((x) => [x.m.holdings.page, x.m.holdings.pages])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(burst[1]!.t).toBe(burst[0]!.t);
    // Later rounds send one page each (round robin), each at its own time.
    const later = toB.slice(first + 2).filter((x) => x.t !== burst[0]!.t);
    expect(new Set(later.map((x) => x.t)).size).toBe(later.length);
    // Renewed by echoes of the whole version: still held well past the acquisition grants.
    c.run(3001, 3000 + 5 * timing.leaseMs);
    expect(vips.every((v) => c.bound.get(v) === 'a')).toBe(true);
    expect(c.log.some((l) => l.o.type === 'unbind')).toBe(false);
  });

  test("a spent epoch above the holder's does not hide the holder from the election", () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.run(0, 3000);
    expect(c.bound.get('ns/web')).toBe('a');
    // c learns (as from a failed candidacy of its own, or a third party) that epoch 5 was spent
    // with no holder, above a's epoch 1: its voter table names no holder any more.
    const conflict: Message = {
      kind: 'heartbeat',
      clusterId: 'c',
      from: 'b',
      incarnation: 1,
      seq: 1_000_000,
      standby: false,
      witness: false,
      unhealthy: [],
      holdings: { version: 1_000, page: 0, pages: 1, entries: [] },
      releases: [],
      conflicts: [{ member: 'c', vip: 'ns/web', epoch: 5, holder: null }],
      echoes: [],
    };
    c.apply('c', (c.members.get('c') as Member).receive(3001, conflict), 3001);
    c.run(3002, 3000 + 4 * timing.deadMs);
    // a still lists it in its holdings: c does not step in, and a keeps it.
    const asked = c.log.filter(
      (l) => l.id === 'c' && (l.t ?? 0) > 3001 && l.o.type === 'send' && l.o.message.kind === 'takeover',
    );
    expect(asked).toEqual([]);
    expect(c.bound.get('ns/web')).toBe('a');
  });

  test('two members + witness: a survivor takes over with the witness ack', () => {
    const c = new Cluster(['a', 'b'], { witness: true });
    c.run(0, 3000);
    expect(c.bound.get('ns/web')).toBe('a');
    c.down.add('a');
    c.bound.delete('ns/web');
    c.run(3001, 5000);
    expect(c.bound.get('ns/web')).toBe('b');
  });

  test('configuration errors name the field and the fix', () => {
    expect(
      () =>
        new Member(
          {},
          { clusterId: 'c', self: 'x', incarnation: 1, members: ['a'], quorum: 'majority', timing, vips: [] },
        ),
    ).toThrow(/members: x is not listed/);
    expect(
      () =>
        new Member(
          {},
          {
            clusterId: 'c',
            self: 'a',
            incarnation: 1,
            members: ['a', 'b'],
            quorum: 'witness',
            timing,
            vips: [],
          },
        ),
    ).toThrow(/quorum: "witness" needs a witness/);
  });
});

describe('Member grants', () => {
  test('echoes from a peer outside the voter set never extend a lease', () => {
    // Majority mode with an observing controller listed as witness: it is a peer, not a voter.
    const mk = (self: string) =>
      new Member(
        {},
        {
          clusterId: 'c',
          self,
          incarnation: 1,
          members: ['a', 'b', 'c'],
          witness: 'ctl',
          quorum: 'majority',
          timing,
          vips: [{ vip: 'ns/web', preferredNodes: ['a'] }],
        },
      );
    const a = mk('a');
    expect(a.quorum.voters).toEqual(['a', 'b', 'c']);
    const out = a.start(0);
    const hb = out.find((o) => o.type === 'send' && o.to === 'ctl');
    expect(hb).toBeDefined();
    const seq = (hb as { message: { seq: number } }).message.seq;
    a.receive(1, {
      kind: 'heartbeat',
      clusterId: 'c',
      from: 'ctl',
      incarnation: 1,
      seq: 1,
      standby: false,
      witness: true,
      unhealthy: [],
      holdings: { version: 1, page: 0, pages: 1, entries: [] },
      releases: [],
      conflicts: [],
      echoes: [{ member: 'a', incarnation: 1, seq, holdingsVersion: 1 }],
    });
    expect(a.view(1).holdings).toEqual([]);
  });
});

describe('Member freshness (docs/adr/0015)', () => {
  test('after a restart, every message recorded before it counts for nothing; live peers prove themselves', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.run(0, 3000);
    expect(c.bound.get('ns/web')).toBe('a');
    const tape = c.log
      .filter((e) => e.o.type === 'send' && e.o.to === 'b')
      .map((e) => (e.o as { message: Message }).message);
    expect(tape.length).toBeGreaterThan(30);
    const events: MemberEvent[] = [];
    const b = new Member(
      { observer: (e) => events.push(e) },
      {
        clusterId: 'c',
        self: 'b',
        incarnation: 2,
        members: ['a', 'b', 'c'],
        quorum: 'majority',
        timing,
        vips: [{ vip: 'ns/web', preferredNodes: ['a'] }],
      },
    );
    c.members.set('b', b);
    c.apply('b', b.start(3001), 3001);
    // The whole recording, before any live datagram reaches the new life.
    for (const m of tape) c.apply('b', b.receive(3002, m), 3002);
    const view = b.view(3002);
    expect(view.members.map((m) => m.liveness)).toEqual(['unknown', 'unknown']);
    expect(view.table.filter((r) => r.promiseTo !== null)).toEqual([]);
    expect(events.filter((e) => e.type === 'not-fresh')).toHaveLength(tape.length);
    // Each replayed heartbeat was answered with an echo that grants nothing (holdings version 0).
    const echoes = c.log
      .filter((e) => e.id === 'b' && e.t === 3002 && e.o.type === 'send' && e.o.message.kind === 'heartbeat')
      .flatMap((e) => (e.o as { message: { echoes: Array<{ holdingsVersion: number }> } }).message.echoes);
    expect(echoes.length).toBeGreaterThan(0);
    expect(echoes.every((e) => e.holdingsVersion === 0)).toBe(true);
    // The live peers echo the new life and count again within a round trip or so.
    c.run(3002, 3400);
    expect(b.view(3400).members.map((m) => m.liveness)).toEqual(['alive', 'alive']);
    expect(b.view(3400).table.find((r) => r.vip === 'ns/web')?.promiseTo).toBe('a');
  });

  test('an echo of one of our seqs older than the lease proves nothing', () => {
    const mk = (self: string) =>
      new Member(
        {},
        {
          clusterId: 'c',
          self,
          incarnation: 7,
          members: ['a', 'b', 'c'],
          quorum: 'majority',
          timing,
          vips: [],
        },
      );
    const a = mk('a');
    const out = a.start(0);
    const seq = (out.find((o) => o.type === 'send') as { message: { seq: number } }).message.seq;
    const hb = (s: number): Heartbeat => ({
      kind: 'heartbeat',
      clusterId: 'c',
      from: 'b',
      incarnation: 3,
      seq: s,
      standby: false,
      witness: false,
      unhealthy: [],
      holdings: { version: 1, page: 0, pages: 1, entries: [] },
      releases: [],
      conflicts: [],
      echoes: [{ member: 'a', incarnation: 7, seq, holdingsVersion: 0 }],
    });
    a.receive(timing.leaseMs + 1, hb(1));
    expect(a.view(timing.leaseMs + 1).members.find((m) => m.id === 'b')?.liveness).toBe('unknown');
    // Our own previous life's incarnation proves nothing either.
    const a2 = mk('a');
    a2.start(0);
    a2.receive(1, { ...hb(2), echoes: [{ member: 'a', incarnation: 6, seq, holdingsVersion: 0 }] });
    expect(a2.view(1).members.find((m) => m.id === 'b')?.liveness).toBe('unknown');
    a2.receive(2, hb(3));
    expect(a2.view(2).members.find((m) => m.id === 'b')?.liveness).toBe('alive');
  });
});
