/**
 * Per-member signing keys (docs/adr/0021). Each member signs what it sends with its own
 * Ed25519 private key, which never leaves its node; every receiver verifies with the
 * sender's public key, published on the sender's Node (annotation heartline.dev/member-key)
 * or, for the controller's witness, in the HACluster's status. The cluster's shared HMAC key
 * still says "a member of this cluster sent it"; the signature says which one. So a node
 * that holds the cluster key (a member, or any node whose agent read the Secret) cannot
 * speak for another member.
 *
 * The text form of a public key is `ed25519:` followed by the 32-byte raw key in base64
 * (44 characters), e.g. `ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=`.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { MemberId } from '../messages.js';
import { WireError } from './errors.js';

/** Prefix of a public key's text form: the algorithm, so another one can follow without ambiguity. */
export const MEMBER_KEY_PREFIX = 'ed25519:';

const RAW_KEY_BYTES = 32;
/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw key follows it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const BASE64_RE = /^[A-Za-z0-9+/]{43}=$/;

/** A member key that cannot be used; the message names what is wrong and how to fix it. */
export class MemberKeyError extends WireError {
  override name = 'MemberKeyError';
}

/** A new private key for a member (Ed25519). */
export function generateMemberKey(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey;
}

/** The text form (`ed25519:<base64>`) of the public half of `key` (a private or public Ed25519 key). */
export function formatMemberPublicKey(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') {
    throw new MemberKeyError(`a member key must be Ed25519, not ${String(pub.asymmetricKeyType)}`);
  }
  const der = pub.export({ format: 'der', type: 'spki' });
  return MEMBER_KEY_PREFIX + der.subarray(SPKI_PREFIX.length).toString('base64');
}

/** The public key a text form names; throws MemberKeyError naming the problem. */
export function parseMemberPublicKey(text: string): KeyObject {
  if (!text.startsWith(MEMBER_KEY_PREFIX)) {
    throw new MemberKeyError(
      `"${text.slice(0, 20)}${text.length > 20 ? '...' : ''}" does not start with "${MEMBER_KEY_PREFIX}": the agent writes its key as ed25519:<base64 of 32 bytes>`,
    );
  }
  const b64 = text.slice(MEMBER_KEY_PREFIX.length);
  if (!BASE64_RE.test(b64)) {
    throw new MemberKeyError(
      `the key after "${MEMBER_KEY_PREFIX}" is not the base64 of ${RAW_KEY_BYTES} bytes (44 characters ending in "=")`,
    );
  }
  return createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, Buffer.from(b64, 'base64')]),
    format: 'der',
    type: 'spki',
  });
}

/** A private key from its PKCS#8 PEM text (the agent's key file); throws MemberKeyError. */
export function parseMemberPrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new MemberKeyError(`not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new MemberKeyError(`a member key must be Ed25519, not ${String(key.asymmetricKeyType)}`);
  }
  return key;
}

/** The PKCS#8 PEM text of a private key (the agent's key file). */
export function formatMemberPrivateKey(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/**
 * The public keys receivers verify members' signatures with, by member id. Immutable; a
 * member without a key here cannot be heard (its datagrams drop as `unknown-member-key`).
 */
export class MemberKeys {
  readonly #keys: ReadonlyMap<MemberId, KeyObject>;

  constructor(keys: Iterable<readonly [MemberId, KeyObject]>) {
    const map = new Map<MemberId, KeyObject>();
    for (const [id, k] of keys) {
      if (k.type !== 'public' || k.asymmetricKeyType !== 'ed25519') {
        throw new MemberKeyError(`member ${id}: a verification key must be an Ed25519 public key`);
      }
      map.set(id, k);
    }
    this.#keys = map;
  }

  /** From text forms (`ed25519:...`); throws MemberKeyError naming the member. */
  static fromText(keys: Iterable<readonly [MemberId, string]>): MemberKeys {
    const out: Array<[MemberId, KeyObject]> = [];
    for (const [id, text] of keys) {
      try {
        out.push([id, parseMemberPublicKey(text)]);
      } catch (err) {
        throw new MemberKeyError(`member ${id}: ${(err as Error).message}`);
      }
    }
    return new MemberKeys(out);
  }

  get(id: MemberId): KeyObject | undefined {
    return this.#keys.get(id);
  }

  has(id: MemberId): boolean {
    return this.#keys.has(id);
  }

  members(): MemberId[] {
    return [...this.#keys.keys()];
  }
}
