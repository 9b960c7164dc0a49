import fc from 'fast-check';
import {
  analyze,
  atLeast,
  countProbes,
  failover,
  holderTimeline,
  nobody,
  longestOutageSince,
  outages,
  provenOverlap,
  sampleWindow,
  totalMs,
} from '../../../hack/lab/analyze.js';
import type { ProbeRecord } from '../../../hack/lab/prober.js';
import type { AddressSample } from '../../../hack/lab/sampler.js';

const VIP = '198.18.0.100';

function s(t: number, node: string, live: string[] = [], dead: string[] = []): AddressSample {
  return { t, node, live, dead, lat: 0.5 };
}
function ok(t: number, node: string, ms = 1): ProbeRecord {
  return { t, ms, ok: true, node };
}
function bad(t: number, error = 'connect-timeout', ms = 50): ProbeRecord {
  return { t, ms, ok: false, error };
}

describe('holderTimeline', () => {
  it('starts when every node has reported and ends at the last sample', () => {
    const samples = [s(0, 'n1', [VIP]), s(5, 'n2'), s(20, 'n1', [VIP]), s(25, 'n2')];
    expect(sampleWindow(samples)).toEqual({ from: 5, to: 25 });
    expect(holderTimeline(samples, VIP)).toEqual([{ from: 5, to: 25, holders: ['n1'] }]);
  });

  it('shows a clean move as a gap with no holder and no overlap', () => {
    const samples = [
      s(0, 'n1', [VIP]),
      s(0, 'n2'),
      s(100, 'n1'),
      s(130, 'n2', [VIP]),
      s(200, 'n1'),
      s(200, 'n2', [VIP]),
    ];
    const tl = holderTimeline(samples, VIP);
    expect(tl).toEqual([
      { from: 0, to: 100, holders: ['n1'] },
      { from: 100, to: 130, holders: [] },
      { from: 130, to: 200, holders: ['n2'] },
    ]);
    expect(atLeast(tl, 2)).toEqual([]);
    expect(nobody(tl)).toEqual([{ from: 100, to: 130 }]);
  });

  it('reports an overlap when the new holder binds before the old one lets go', () => {
    const samples = [
      s(0, 'n1', [VIP]),
      s(0, 'n2'),
      s(90, 'n2', [VIP]),
      s(100, 'n1'),
      s(150, 'n1'),
      s(150, 'n2', [VIP]),
    ];
    const tl = holderTimeline(samples, VIP);
    expect(atLeast(tl, 2)).toEqual([{ from: 90, to: 100 }]);
    expect(totalMs(atLeast(tl, 2))).toBe(10);
    expect(nobody(tl)).toEqual([]);
  });

  it('does not count a VIP bound on a dead link as held', () => {
    const samples = [
      s(0, 'n1', [VIP]),
      s(0, 'n2'),
      s(50, 'n1', [], [VIP]),
      s(60, 'n2', [VIP]),
      s(80, 'n1', [], [VIP]),
    ];
    const tl = holderTimeline(samples, VIP);
    expect(atLeast(tl, 2)).toEqual([]);
    expect(nobody(tl)).toEqual([{ from: 50, to: 60 }]);
  });

  it('ignores other VIPs and repeated identical samples', () => {
    const other = '198.18.0.101';
    const samples = [
      s(0, 'n1', [VIP]),
      s(0, 'n2', [other]),
      s(20, 'n1', [VIP]),
      s(20, 'n2', [other]),
      s(40, 'n2', [other]),
    ];
    expect(holderTimeline(samples, VIP)).toEqual([{ from: 0, to: 40, holders: ['n1'] }]);
  });

  it('honours an explicit window, using state from before it', () => {
    const samples = [s(0, 'n1', [VIP]), s(0, 'n2'), s(100, 'n2', [VIP]), s(300, 'n1')];
    expect(holderTimeline(samples, VIP, { from: 50, to: 200 })).toEqual([
      { from: 50, to: 100, holders: ['n1'] },
      { from: 100, to: 200, holders: ['n1', 'n2'] },
    ]);
  });

  it('covers its window exactly, whatever the samples', () => {
    const sample = fc.record({
      t: fc.integer({ min: 0, max: 1000 }),
      node: fc.constantFrom('n1', 'n2', 'n3'),
      holds: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(sample, { minLength: 1, maxLength: 40 }), (raw) => {
        const samples = raw.map((r) => s(r.t, r.node, r.holds ? [VIP] : []));
        const w = sampleWindow(samples)!;
        const tl = holderTimeline(samples, VIP);
        if (w.to <= w.from) return tl.length === 0;
        const covered = totalMs(tl);
        const parts =
          totalMs(atLeast(tl, 2)) + totalMs(nobody(tl)) + totalMs(tl.filter((x) => x.holders.length === 1));
        const contiguous = tl.every((seg, i) => i === 0 || seg.from === tl[i - 1]!.to);
        return covered === w.to - w.from && parts === covered && contiguous && tl[0]!.from === w.from;
      }),
    );
  });
});

describe('provenOverlap', () => {
  const at = (t: number, node: string, held: boolean, lat = 0.5): AddressSample => ({
    t,
    node,
    live: held ? [VIP] : [],
    dead: [],
    lat,
  });

  it('does not count a handover the samples cannot order as two holders', () => {
    // The release on n1 and the bind on n2 a fraction of a millisecond apart: n2's event is
    // read first (stamped 100.0), n1's a moment later (100.3) shows it released. The sampled
    // timeline has 0.3 ms with both; nothing proves n1 still held the VIP after n2's read.
    const samples = [at(0, 'n1', true), at(0, 'n2', false), at(100, 'n2', true), at(100.3, 'n1', false)];
    expect(totalMs(atLeast(holderTimeline(samples, VIP), 2))).toBeCloseTo(0.3);
    expect(provenOverlap(samples, VIP)).toEqual([]);
  });

  it('proves an overlap when the old holder is seen bound after the new holder was read bound', () => {
    // The snapshot after n2's change reads n1 at 101 (after n2's read, at most 100.5): bound.
    const samples = [
      at(0, 'n1', true),
      at(0, 'n2', false),
      at(100, 'n2', true),
      at(101, 'n1', true),
      at(120, 'n1', false),
      at(140, 'n2', true),
    ];
    expect(provenOverlap(samples, VIP)).toEqual([{ from: 100.5, to: 101 }]);
  });

  it('needs a run of bound samples: one node is certain only between its reads', () => {
    const samples = [
      at(0, 'n1', true, 2),
      at(1, 'n2', true, 2),
      at(50, 'n1', true),
      at(60, 'n2', true),
      at(70, 'n1', false),
      at(70, 'n2', true),
    ];
    // n1 certain over [2, 50], n2 over [3, 70]: both over [3, 50].
    expect(provenOverlap(samples, VIP)).toEqual([{ from: 3, to: 50 }]);
    expect(provenOverlap(samples, VIP, { from: 10, to: 30 })).toEqual([{ from: 10, to: 30 }]);
    expect(provenOverlap(samples, VIP, undefined, 3)).toEqual([]);
  });

  it('is never more than the sampled timeline shows, whatever the samples', () => {
    const sample = fc.record({
      t: fc.integer({ min: 0, max: 1000 }),
      node: fc.constantFrom('n1', 'n2', 'n3'),
      holds: fc.boolean(),
      lat: fc.integer({ min: 0, max: 20 }),
    });
    fc.assert(
      fc.property(fc.array(sample, { minLength: 1, maxLength: 40 }), (raw) => {
        const samples = raw.map((r) => at(r.t, r.node, r.holds, r.lat));
        const proven = provenOverlap(samples, VIP);
        const sampled = atLeast(holderTimeline(samples, VIP), 2);
        const inside = proven.every((p) => sampled.some((x) => x.from <= p.from && p.to <= x.to));
        return inside && totalMs(proven) <= totalMs(sampled) + 1e-9;
      }),
    );
  });
});

describe('failover', () => {
  it('measures from the fault to the first good reply from another node', () => {
    const probes = [ok(0, 'n1'), ok(10, 'n1'), bad(20), bad(30), ok(40, 'n2', 2), ok(50, 'n2')];
    expect(failover(probes, 15)).toEqual({
      faultAt: 15,
      from: 'n1',
      to: 'n2',
      failoverMs: 27,
      firstReplyMs: 27,
    });
  });

  it('leaves failoverMs undefined when the old holder comes back (a pause)', () => {
    const probes = [ok(0, 'n1'), bad(10), bad(20), ok(30, 'n1')];
    const f = failover(probes, 5);
    expect(f.to).toBeUndefined();
    expect(f.failoverMs).toBeUndefined();
    expect(f.firstReplyMs).toBe(26);
  });

  it('uses the given old holder when nothing answered before the fault', () => {
    const probes = [bad(0), ok(10, 'n1'), ok(20, 'n2')];
    expect(failover(probes, 0, 'n1')).toMatchObject({ from: 'n1', to: 'n2', failoverMs: 21 });
  });
});

describe('probe accounting', () => {
  it('counts lost probes by error and answers by node', () => {
    const probes = [
      ok(0, 'n1'),
      bad(10, 'connect-timeout'),
      bad(20, 'ECONNREFUSED', 1),
      ok(30, 'n2'),
      ok(40, 'n2'),
    ];
    expect(countProbes(probes)).toEqual({
      sent: 5,
      ok: 3,
      lost: 2,
      byError: { 'connect-timeout': 1, ECONNREFUSED: 1 },
      byNode: { n1: 1, n2: 2 },
    });
    expect(countProbes(probes, { from: 20 }).sent).toBe(3);
  });

  it('finds client-visible outages between good replies', () => {
    const probes = [ok(0, 'n1', 1), bad(10), bad(20), ok(30, 'n2', 2), ok(40, 'n2'), bad(50, 'timeout', 100)];
    expect(outages(probes)).toEqual([
      { from: 1, to: 32 },
      { from: 41, to: 150 },
    ]);
  });

  it('measures the longest outage after the fault, clipped at the fault', () => {
    const outs = [
      { from: 1, to: 32 },
      { from: 41, to: 150 },
    ];
    expect(longestOutageSince(outs, 0)).toBe(109);
    expect(longestOutageSince(outs, 100)).toBe(50);
    expect(longestOutageSince(outs, 200)).toBe(0);
  });
});

describe('analyze', () => {
  it('puts it together for a move with overlap', () => {
    const samples = [s(0, 'n1', [VIP]), s(0, 'n2'), s(95, 'n2', [VIP]), s(105, 'n1'), s(300, 'n2', [VIP])];
    const probes = [ok(90, 'n1'), bad(100), ok(110, 'n2')];
    const r = analyze({ probes, samples, vip: VIP, faultAt: 100 });
    expect(r.dualHolderMs).toBe(10);
    // n2 is read bound once (95) before n1 is read released: nothing proves both at once.
    expect(r.dualHolderProvenMs).toBe(0);
    expect(r.noHolderMs).toBe(0);
    expect(r.failover).toMatchObject({ from: 'n1', to: 'n2', failoverMs: 11 });
    expect(r.probes.lost).toBe(1);
    expect(r.probesAfterFault).toMatchObject({ sent: 2, ok: 1, lost: 1 });
    expect(r.window).toEqual({ from: 0, to: 300 });
  });
});
