/**
 * The rules of the auth Secret (Heartbeat's authkeys), in one place: the agent and the
 * controller's witness apply them before any key reaches a Keyring, and `heartline
 * validate` applies them to manifests. Pure.
 *
 * - every data (or stringData) key is a key id: 1..255 written in decimal without leading
 *   zeros ("1", "2", ... "255");
 * - every value is a key of at least MIN_KEY_BYTES bytes (data: base64-decoded; stringData:
 *   the UTF-8 bytes of the string, which is what the API server stores);
 * - the Secret holds at least one key;
 * - the HACluster's spec.authSecretRef.activeKeyId is one of those ids.
 */
import { MIN_KEY_BYTES, type KeyringKey } from './keyring.js';

/** Lowest key id a Secret may name; 0 stays unused so that a zeroed header never names a key. */
export const KEY_ID_MIN = 1;
/** Highest key id: the wire header carries it in one byte. */
export const KEY_ID_MAX = 255;
/** A key id as the Secret and activeKeyId write it: 1..255, decimal, no leading zero. */
export const KEY_ID_PATTERN = '^([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$';
/**
 * How to make one key value, quoted in every message about a bad one. A whole Secret, or a
 * key added for rotation, is better made with `heartline keygen` (src/cli/keygen.ts), which
 * the messages about a missing or empty Secret name.
 */
export const KEY_HOWTO = 'openssl rand -base64 32';

const KEY_ID_RE = new RegExp(KEY_ID_PATTERN);
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The key id a string names, or undefined when it is not a key id. */
export function parseKeyId(s: string): number | undefined {
  return KEY_ID_RE.test(s) ? Number(s) : undefined;
}

/** What the auth Secret looks like, as the API server returns it or as a manifest writes it. */
export interface AuthSecretLike {
  data?: Record<string, unknown> | null;
  /** Manifests only: the API server turns stringData into data on write. */
  stringData?: Record<string, unknown> | null;
}

/** One problem with the Secret; `path` is relative to the Secret (`data["3"]`). */
export interface AuthSecretProblem {
  path: string;
  message: string;
}

export interface AuthSecretKeys {
  /** The keys that follow the rules, ascending by id (stringData overrides data, as on the server). */
  keys: KeyringKey[];
  problems: AuthSecretProblem[];
}

/** Checks every entry of the Secret. The keys are usable only when `problems` is empty. */
export function readAuthSecret(secret: AuthSecretLike): AuthSecretKeys {
  const problems: AuthSecretProblem[] = [];
  const byId = new Map<number, KeyringKey>();
  const fields: Array<['data' | 'stringData', Record<string, unknown>]> = [];
  for (const field of ['data', 'stringData'] as const) {
    const v = secret[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'object' || Array.isArray(v)) {
      problems.push({ path: field, message: `must be a map of key id to key; e.g. ${field}: {"1": ...}` });
      continue;
    }
    fields.push([field, v]);
  }
  for (const [field, entries] of fields) {
    for (const [name, value] of Object.entries(entries)) {
      const path = `${field}[${JSON.stringify(name)}]`;
      const id = parseKeyId(name);
      if (id === undefined) {
        problems.push({
          path,
          message: `"${name}" is not a key id: name each key by its id, ${KEY_ID_MIN}..${KEY_ID_MAX} without leading zeros, e.g. "1"`,
        });
        continue;
      }
      if (typeof value !== 'string') {
        problems.push({ path, message: `key ${id} must be a string; generate one with: ${KEY_HOWTO}` });
        continue;
      }
      let bytes: Uint8Array;
      if (field === 'data') {
        if (!BASE64_RE.test(value)) {
          problems.push({
            path,
            message: `key ${id} is not valid base64; put the base64 text under data (e.g. from ${KEY_HOWTO}) or the plain text under stringData`,
          });
          continue;
        }
        bytes = new Uint8Array(Buffer.from(value, 'base64'));
      } else bytes = new Uint8Array(Buffer.from(value, 'utf8'));
      if (bytes.byteLength < MIN_KEY_BYTES) {
        problems.push({
          path,
          message: `key ${id} has ${bytes.byteLength} bytes: use at least ${MIN_KEY_BYTES} random bytes; generate one with: ${KEY_HOWTO}`,
        });
        continue;
      }
      byId.set(id, { id, secret: bytes });
    }
  }
  if (fields.length === 0 || fields.every(([, entries]) => Object.keys(entries).length === 0)) {
    problems.push({
      path: 'data',
      message: `the Secret holds no key; make one with heartline keygen --name NAME --namespace NS | kubectl apply -f -`,
    });
  }
  return { keys: [...byId.values()].sort((a, b) => a.id - b.id), problems };
}

/**
 * Why `activeKeyId` cannot sign with these keys, or undefined when it can. `ids` are the
 * ids the Secret names (valid or not): a key that is present but bad is reported by
 * readAuthSecret, not again here.
 */
export function activeKeyProblem(
  activeKeyId: string,
  secretName: string,
  ids: readonly number[],
): string | undefined {
  const id = parseKeyId(activeKeyId);
  const list = ids.length ? ids.join(', ') : 'none';
  if (id === undefined) {
    return `"${activeKeyId}" is not a key id: use the id (${KEY_ID_MIN}..${KEY_ID_MAX}) of a key of Secret ${secretName}, one of: ${list}`;
  }
  if (!ids.includes(id)) {
    return `key ${id} is not in Secret ${secretName} (it holds: ${list}); add key ${id} to the Secret first, or set activeKeyId to one of its keys`;
  }
  return undefined;
}

/** The ids a Secret names in data and stringData (for activeKeyProblem), valid keys or not. */
export function namedKeyIds(secret: AuthSecretLike): number[] {
  const ids = new Set<number>();
  for (const field of [secret.data, secret.stringData]) {
    if (!field || typeof field !== 'object') continue;
    for (const name of Object.keys(field)) {
      const id = parseKeyId(name);
      if (id !== undefined) ids.add(id);
    }
  }
  return [...ids].sort((a, b) => a - b);
}
