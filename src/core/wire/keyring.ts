import { createSecretKey, type KeyObject } from 'node:crypto';
import { KeyringError } from './errors.js';

/** Shortest HMAC secret we accept: RFC 2104 §3 strongly discourages keys shorter than the hash output (32 bytes). */
export const MIN_KEY_BYTES = 32;

/** One shared secret as configured (e.g. one entry of the HACluster's auth Secret). */
export interface KeyringKey {
  /** 0..255, carried in every datagram. */
  id: number;
  secret: Uint8Array;
}

/**
 * The shared HMAC secrets of a cluster: several accepted, exactly one active (used to sign).
 * Immutable: each change returns a new Keyring, so a codec switches keys atomically.
 *
 * Rotation without a failover takes three steps, each rolled out to every member before
 * the next one starts:
 *   1. accept-only: `withKey(new)` — everyone verifies the new key, still signs with the old;
 *   2. send-new:    `withActive(new)` — everyone signs with the new key, still verifies the old;
 *   3. drop-old:    `withoutKey(old)`.
 * Skipping step 1 makes members that have not yet learnt the key drop `unknown-key`.
 */
export class Keyring {
  readonly #keys: ReadonlyMap<number, KeyObject>;
  readonly activeId: number;

  constructor(keys: Iterable<KeyringKey>, activeId: number) {
    const map = new Map<number, KeyObject>();
    for (const k of keys) {
      if (!Number.isInteger(k.id) || k.id < 0 || k.id > 255) {
        throw new KeyringError(`key id ${k.id} is out of range: key ids are integers 0..255`);
      }
      if (k.secret.byteLength < MIN_KEY_BYTES) {
        throw new KeyringError(
          `key ${k.id} has ${k.secret.byteLength} bytes: use at least ${MIN_KEY_BYTES} random bytes ` +
            `(e.g. head -c 32 /dev/urandom | base64)`,
        );
      }
      if (map.has(k.id)) throw new KeyringError(`key id ${k.id} appears twice: give each key its own id`);
      map.set(k.id, createSecretKey(Buffer.from(k.secret)));
    }
    if (!map.has(activeId)) {
      throw new KeyringError(
        `active key id ${activeId} is not among the keys [${[...map.keys()].join(', ')}]`,
      );
    }
    this.#keys = map;
    this.activeId = activeId;
  }

  /** The signing key. */
  get active(): KeyObject {
    return this.#keys.get(this.activeId)!;
  }

  /** The key with this id, or undefined when it is not (or no longer) accepted. */
  get(id: number): KeyObject | undefined {
    return this.#keys.get(id);
  }

  /** Accepted key ids, ascending. */
  ids(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /** Step 1: also accept `key`, keep signing with the current active key. */
  withKey(key: KeyringKey): Keyring {
    return new Keyring([...this.#entries(), key], this.activeId);
  }

  /** Step 2: sign with key `id` (already accepted), keep accepting the others. */
  withActive(id: number): Keyring {
    if (!this.#keys.has(id)) {
      throw new KeyringError(
        `cannot activate key ${id}: add it with withKey (accept-only) on every member first`,
      );
    }
    return new Keyring(this.#entries(), id);
  }

  /** Step 3: stop accepting key `id`. The active key cannot be removed. */
  withoutKey(id: number): Keyring {
    if (id === this.activeId) {
      throw new KeyringError(`cannot remove key ${id}: it is the active key; activate another key first`);
    }
    return new Keyring(
      this.#entries().filter((k) => k.id !== id),
      this.activeId,
    );
  }

  #entries(): KeyringKey[] {
    return [...this.#keys].map(([id, k]) => ({ id, secret: k.export() }));
  }
}
