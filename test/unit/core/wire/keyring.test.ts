import { KeyringError } from '../../../../src/core/wire/errors.js';
import { Keyring, type KeyringKey } from '../../../../src/core/wire/keyring.js';
import type { WireCodec } from '../../../../src/core/wire/codec.js';
import { KEY_A, KEY_B, MEMBERS, addressOf, codecFor, heartbeat, secret } from './fixtures.js';

describe('Keyring', () => {
  it('rejects short secrets, bad ids, duplicates and a missing active key, saying how to fix it', () => {
    expect(() => new Keyring([{ id: 1, secret: new Uint8Array(16) }], 1)).toThrow(/at least 32 random bytes/);
    expect(() => new Keyring([{ id: 256, secret: secret(1) }], 256)).toThrow(/0\.\.255/);
    expect(() => new Keyring([KEY_A, KEY_A], KEY_A.id)).toThrow(/appears twice/);
    expect(() => new Keyring([KEY_A], KEY_B.id)).toThrow(KeyringError);
  });

  it('will not activate a key that is not accepted, nor drop the active one', () => {
    const ring = new Keyring([KEY_A], KEY_A.id);
    expect(() => ring.withActive(KEY_B.id)).toThrow(/withKey \(accept-only\) on every member first/);
    expect(() => ring.withoutKey(KEY_A.id)).toThrow(/active key/);
    expect(ring.withKey(KEY_B).withActive(KEY_B.id).withoutKey(KEY_A.id).ids()).toEqual([KEY_B.id]);
  });
});

/**
 * A five-member cluster where every member heartbeats every other member each "tick", and
 * the operator rolls each rotation step out one member per tick (so, for a while, members
 * are at different steps). No datagram may be dropped at any tick.
 */
describe('key rotation in three steps', () => {
  const members = MEMBERS.slice(0, 5);
  const NEW: KeyringKey = { id: 9, secret: secret(9) };

  function run(steps: ((k: Keyring) => Keyring)[]) {
    const codecs = new Map<string, WireCodec>(
      members.map((m) => [m, codecFor(m, new Keyring([KEY_A], KEY_A.id))]),
    );
    const seq = new Map<string, number>(members.map((m) => [m, 0]));
    const drops: string[] = [];
    let delivered = 0;
    const tick = () => {
      for (const from of members) {
        for (const to of members) {
          if (from === to) continue;
          const n = seq.get(from)! + 1;
          seq.set(from, n);
          const bytes = codecs.get(from)!.encode(heartbeat(from, 1, n, 2), to);
          const r = codecs.get(to)!.decode(bytes, addressOf(from));
          if (r.ok) delivered++;
          else drops.push(`${from}->${to}: ${r.reason}`);
        }
      }
    };
    tick();
    for (const step of steps) {
      for (const m of members) {
        const c = codecs.get(m)!;
        c.setKeyring(step(c.keyring));
        tick();
      }
    }
    const finalIds = members.map((m) => codecs.get(m)!.keyring.ids());
    return { drops, delivered, finalIds };
  }

  it('accept-only, send-new, drop-old: no datagram is rejected at any point', () => {
    const { drops, delivered, finalIds } = run([
      (k) => k.withKey(NEW),
      (k) => k.withActive(NEW.id),
      (k) => k.withoutKey(KEY_A.id),
    ]);
    expect(drops).toEqual([]);
    expect(delivered).toBe(20 * 16);
    expect(finalIds).toEqual(members.map(() => [NEW.id]));
  });

  it('skipping accept-only (sending with the new key at once) drops datagrams as unknown-key', () => {
    const { drops } = run([(k) => k.withKey(NEW).withActive(NEW.id), (k) => k.withoutKey(KEY_A.id)]);
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d.endsWith('unknown-key'))).toBe(true);
  });

  it('dropping the old key before everyone sends the new one drops datagrams as unknown-key', () => {
    const { drops } = run([(k) => k.withKey(NEW), (k) => k.withActive(NEW.id).withoutKey(KEY_A.id)]);
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d.endsWith('unknown-key'))).toBe(true);
  });
});
