import { describe, expect, it } from '@jest/globals';
import type { Heartbeat } from '../../../src/core/messages.js';
import { PeerLinkStats } from '../../../src/runtime/peer-link-stats.js';

function hb(from: string, incarnation: number, seq: number, echoes: Heartbeat['echoes'] = []): Heartbeat {
  return {
    kind: 'heartbeat',
    clusterId: 'c',
    from,
    incarnation,
    seq,
    standby: false,
    witness: false,
    unhealthy: [],
    holdings: { version: 1, page: 0, pages: 1, entries: [] },
    releases: [],
    echoes,
    conflicts: [],
  };
}

const echo = (seq: number, incarnation = 7) => [{ member: 'me', incarnation, seq, holdingsVersion: 1 }];

describe('PeerLinkStats', () => {
  it('round trip: from sending our heartbeat to the first heartbeat echoing it', () => {
    const s = new PeerLinkStats(100);
    s.sentHeartbeat(1, 1000);
    s.sentHeartbeat(2, 1100);
    expect(s.heartbeat(hb('p', 3, 10, echo(1)), 1004, 'me', 7)).toEqual({ peer: 'p', rttMs: 4, missed: 0 });
    // The same echo again (its next heartbeat before hearing our next one): no new sample.
    expect(s.heartbeat(hb('p', 3, 11, echo(1)), 1050, 'me', 7).rttMs).toBeUndefined();
    expect(s.heartbeat(hb('p', 3, 12, echo(2)), 1103, 'me', 7).rttMs).toBe(3);
  });

  it('ignores echoes for another member, another life of ours, or sequence numbers it did not record', () => {
    const s = new PeerLinkStats(100);
    s.sentHeartbeat(5, 0);
    expect(
      s.heartbeat(
        hb('p', 1, 1, [{ member: 'other', incarnation: 7, seq: 5, holdingsVersion: 0 }]),
        9,
        'me',
        7,
      ).rttMs,
    ).toBeUndefined();
    expect(s.heartbeat(hb('p', 1, 2, echo(5, 6)), 9, 'me', 7).rttMs).toBeUndefined();
    expect(s.heartbeat(hb('p', 1, 3, echo(4)), 9, 'me', 7).rttMs).toBeUndefined();
    s.newLife();
    expect(s.heartbeat(hb('p', 1, 4, echo(5)), 20, 'me', 7).rttMs).toBeUndefined();
  });

  it('missed heartbeats: the rounds a gap between two heartbeats of one life stands for', () => {
    const s = new PeerLinkStats(100);
    expect(s.heartbeat(hb('p', 1, 1), 0, 'me', 7).missed).toBe(0);
    expect(s.heartbeat(hb('p', 1, 2), 100, 'me', 7).missed).toBe(0);
    expect(s.heartbeat(hb('p', 1, 3), 140, 'me', 7).missed).toBe(0); // jitter, a prompt echo
    expect(s.heartbeat(hb('p', 1, 4), 340, 'me', 7).missed).toBe(1);
    expect(s.heartbeat(hb('p', 1, 5), 840, 'me', 7).missed).toBe(4);
    // A restart of the peer: the silence was downtime, not loss.
    expect(s.heartbeat(hb('p', 2, 1), 9000, 'me', 7).missed).toBe(0);
    s.setInterval(1000);
    expect(s.heartbeat(hb('p', 2, 2), 12000, 'me', 7).missed).toBe(2);
  });

  it('keeps a bounded number of send times and forgets removed peers', () => {
    const s = new PeerLinkStats(100);
    for (let i = 1; i <= 1000; i++) s.sentHeartbeat(i, i);
    expect(s.heartbeat(hb('p', 1, 1, echo(1)), 2000, 'me', 7).rttMs).toBeUndefined();
    expect(s.heartbeat(hb('p', 1, 2, echo(1000)), 2000, 'me', 7).rttMs).toBe(1000);
    s.retain(new Set());
    expect(s.heartbeat(hb('p', 1, 3), 5000, 'me', 7).missed).toBe(0); // forgotten: no gap
  });
});
