import {
  pairedRatio,
  percentile,
  summarize,
  summaryRows,
  type TrialResult,
} from '../../../bench/failover/stats.js';

function trial(over: Partial<TrialResult>): TrialResult {
  return {
    config: 'heartline-fast',
    fault: 'planned',
    round: 0,
    faultAt: 0,
    from: 'n1',
    to: 'n2',
    dualHolderMs: 0,
    noHolderMs: 10,
    lostProbes: 1,
    okProbes: 400,
    oldNodeRepliesAfterFailover: 0,
    faultWindowMs: 4000,
    recovery: {
      action: 'x',
      dualHolderMs: 0,
      noHolderMs: 0,
      lostProbes: 0,
      holdersAfter: ['n2'],
      windowMs: 2000,
    },
    load1: 1,
    ...over,
  };
}

describe('failover benchmark statistics', () => {
  it('nearest-rank percentiles', () => {
    const xs = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(percentile(xs, 0.5)).toBe(10);
    expect(percentile(xs, 0.95)).toBe(19);
    expect(percentile(xs, 0.99)).toBe(20);
    expect(percentile([], 0.5)).toBeNaN();
  });

  it('summarizes the client outage per trial, skipping trials without it and skipped trials', () => {
    const ts = [
      trial({ round: 0, maxOutageMs: 30, failoverMs: 130 }),
      trial({ round: 1, maxOutageMs: 20, failoverMs: 120 }),
      trial({ round: 2, maxOutageMs: 100, failoverMs: 400 }),
      trial({ round: 3, failoverMs: 110 }), // a results file from before maxOutageMs
      trial({ round: 4, maxOutageMs: 999, skipped: 'no stable holder' }),
      trial({ round: 5, config: 'keepalived-0.1s', maxOutageMs: 50, failoverMs: 60 }),
    ];
    const s = summarize(ts, 'heartline-fast', 'planned');
    expect(s.trials).toBe(4);
    expect(s.skipped).toBe(1);
    expect([s.outageP50, s.outageP95, s.outageMax]).toEqual([30, 100, 100]);
    expect([s.p50, s.max]).toEqual([120, 400]);
    const { head, rows } = summaryRows([s]);
    expect(rows[0]![head.indexOf('client outage ms p50 / p95 / max')]).toBe('30 / 100 / 100');

    const none = summarize(ts.slice(3, 4), 'heartline-fast', 'planned');
    expect(summaryRows([none]).rows[0]![head.indexOf('client outage ms p50 / p95 / max')]).toBe('- / - / -');
  });

  it('pairs configurations by round for the ratio', () => {
    const ts = [
      trial({ round: 0, failoverMs: 100 }),
      trial({ round: 0, config: 'keepalived-0.1s', failoverMs: 200 }),
      trial({ round: 1, failoverMs: 300 }),
      trial({ round: 1, config: 'keepalived-0.1s', failoverMs: 100 }),
      trial({ round: 2, failoverMs: 50 }), // no partner
    ];
    const r = pairedRatio(ts, 'planned', 'heartline-fast', 'keepalived-0.1s');
    expect(r.pairs).toBe(2);
    expect(r.numeratorFaster).toBe(1);
    expect(r.medianOfRatios).toBe(0.5);
  });
});
