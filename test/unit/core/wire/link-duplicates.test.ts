/**
 * Redundant heartbeat links deliver each datagram once per link, from the sender's address
 * on that link. The receiving codec accepts the first copy and drops the others as replays:
 * counted, never thrown, and they change nothing (the next datagram is still accepted).
 */
import { WireCodec } from '../../../../src/core/wire/codec.js';
import { SourceBinding } from '../../../../src/core/wire/source-binding.js';
import { ALICE, BOB, MEMBERS, heartbeat, ids, keyring, signing } from './fixtures.js';

const dataLink = { address: '198.18.0.2', port: 694 };
const hbLink = { address: '198.19.0.2', port: 40123 }; // a multicast sender's own port
const sources = new SourceBinding(
  MEMBERS.map(
    (m) => [m, m === ALICE ? [{ address: dataLink.address }, { address: hbLink.address }] : []] as const,
  ),
);

it('the same datagram over two links: first accepted, the copy dropped as a counted replay', () => {
  const alice = new WireCodec({ ids, self: ALICE, keyring, sources, ...signing(ALICE) });
  const bob = new WireCodec({ ids, self: BOB, keyring, sources, ...signing(BOB) });
  for (let seq = 1; seq <= 3; seq++) {
    const d = alice.encode(heartbeat(ALICE, 9, seq), BOB);
    // Links race: either copy may arrive first.
    const [first, second] = seq % 2 ? [dataLink, hbLink] : [hbLink, dataLink];
    expect(bob.decode(d, first)).toMatchObject({ ok: true, message: { seq } });
    expect(bob.decode(d, second)).toEqual({ ok: false, reason: 'replay', sender: ALICE });
  }
  expect(bob.counters.accepted).toBe(3);
  expect(bob.counters.get('replay')).toBe(3);
  expect(bob.counters.dropped).toBe(3);
  // An address that is on no link of the sender is still refused before any cryptography.
  const d = alice.encode(heartbeat(ALICE, 9, 4), BOB);
  expect(bob.decode(d, { address: '198.20.0.2', port: 694 })).toMatchObject({
    ok: false,
    reason: 'source-mismatch',
  });
});
