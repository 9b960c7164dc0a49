import { quorumSummary } from '../../../../src/controller/decide/view.js';
import type { Observation } from '../../../../src/controller/observer.js';
import { decideFinalize } from '../../../../src/controller/decide/finalize.js';
import { config, obs } from './fixtures.js';

describe('decideFinalize', () => {
  const c = config();
  const finalize = (o: Observation, now: number, releaseTimeoutMs?: number) =>
    decideFinalize({
      id: 'lab/vip1',
      address: '198.18.0.100/24',
      cluster: { ok: true, config: c, obs: o, quorum: quorumSummary(c, o) },
      now,
      deletingSince: 10_000,
      releaseTimeoutMs,
      finalizer: 'heartline.dev/release',
    });

  it('removes the finalizer once the settled observer sees no claim', () => {
    const d = finalize(obs({ a: 'alive', b: 'alive', c: 'alive' }), 10_000);
    expect(d).toMatchObject({ remove: true, released: true, waitedMs: 0 });
    expect(d.remove && d.events.map((e) => [e.type, e.reason])).toEqual([['Normal', 'Released']]);
  });

  it('waits while a member claims it, or the observer has not settled', () => {
    const held = obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 3 } });
    expect(finalize(held, 10_100)).toEqual({ remove: false, retryInMs: 250 });
    const unsettled = obs({ a: 'alive', b: 'alive', c: 'alive' }, {}, [], false);
    expect(finalize(unsettled, 10_100).remove).toBe(false);
  });

  it('removes it anyway after the timeout with a Warning naming the claimant', () => {
    const held = obs({ a: 'alive', b: 'alive', c: 'alive' }, { 'lab/vip1': { holder: 'a', epoch: 3 } });
    expect(finalize(held, 10_900, 1000)).toEqual({ remove: false, retryInMs: 100 });
    const d = finalize(held, 11_000, 1000);
    expect(d.remove).toBe(true);
    if (!d.remove) return;
    expect(d.released).toBe(false);
    expect(d.events[0]).toMatchObject({ type: 'Warning', reason: 'ReleaseTimeout' });
    expect(d.events[0]!.note).toMatch(/still claimed by a 1000 ms after deletion/);
  });

  it('a VIP whose HACluster is gone is released at once', () => {
    const d = decideFinalize({
      id: 'lab/vip1',
      address: '198.18.0.100/24',
      cluster: { ok: false, reason: 'ClusterNotFound', message: 'gone' },
      now: 10_000,
      deletingSince: 10_000,
      releaseTimeoutMs: undefined,
      finalizer: 'heartline.dev/release',
    });
    expect(d).toMatchObject({ remove: true, released: true });
  });
});
