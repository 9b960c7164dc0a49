/**
 * `heartline keygen`: makes the cluster key Secret (Heartbeat's authkeys) or adds a key to
 * one for rotation, in the format src/core/wire/auth-secret.ts accepts: keys under `data`,
 * named by key id (1..255), each KEY_BYTES random bytes in base64. Randomness comes in
 * through `random` so tests can check the output; the command passes crypto.randomBytes.
 */
import { parseAllDocuments, stringify } from 'yaml';
import {
  KEY_ID_MAX,
  KEY_ID_MIN,
  namedKeyIds,
  readAuthSecret,
  type AuthSecretLike,
} from '../core/wire/auth-secret.js';
import { MIN_KEY_BYTES } from '../core/wire/keyring.js';

/** Bytes of a new key: the HMAC-SHA256 block's worth is more than enough; the minimum is MIN_KEY_BYTES. */
export const KEY_BYTES = 32;
/** The Secret name the base install reads (heartline-config/authSecret). */
export const DEFAULT_SECRET_NAME = 'heartline-auth';

/** A problem with the command's input; the message names the flag or the field and the fix. */
export class KeygenError extends Error {
  override readonly name = 'KeygenError';
}

export interface SecretManifest {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  [k: string]: unknown;
}

export interface KeygenResult {
  secret: SecretManifest;
  /** Id of the key this run made. */
  keyId: number;
  /** Every key id the Secret now names, ascending. */
  keyIds: number[];
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkName(flag: string, value: string, re: RegExp, max: number): void {
  if (value.length > max || !re.test(value)) {
    throw new KeygenError(
      `${flag} "${value}" is not a valid name: lower-case letters, digits and '-' (${max} characters at most), e.g. ${DEFAULT_SECRET_NAME}`,
    );
  }
}

function checkKeyId(id: number): void {
  if (!Number.isInteger(id) || id < KEY_ID_MIN || id > KEY_ID_MAX) {
    throw new KeygenError(`--key-id ${id} is not a key id: use ${KEY_ID_MIN}..${KEY_ID_MAX}`);
  }
}

function newKey(random: (n: number) => Uint8Array): string {
  const bytes = random(KEY_BYTES);
  if (bytes.byteLength !== KEY_BYTES) throw new Error(`random source returned ${bytes.byteLength} bytes`);
  return Buffer.from(bytes).toString('base64');
}

/** A new auth Secret with one key (id `keyId`, default 1). */
export function newAuthSecret(
  opts: { name?: string; namespace?: string; keyId?: number },
  random: (n: number) => Uint8Array,
): KeygenResult {
  const name = opts.name ?? DEFAULT_SECRET_NAME;
  checkName('--name', name, DNS_SUBDOMAIN, 253);
  if (opts.namespace !== undefined) checkName('--namespace', opts.namespace, DNS_LABEL, 63);
  const keyId = opts.keyId ?? KEY_ID_MIN;
  checkKeyId(keyId);
  const secret: SecretManifest = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}) },
    type: 'Opaque',
    data: { [String(keyId)]: newKey(random) },
  };
  return { secret, keyId, keyIds: [keyId] };
}

/** The id a new key gets: one above the highest in use, else the lowest free one. */
export function nextKeyId(ids: readonly number[]): number {
  const highest = ids.length ? Math.max(...ids) : 0;
  if (highest < KEY_ID_MAX) return highest + 1;
  for (let id = KEY_ID_MIN; id <= KEY_ID_MAX; id++) if (!ids.includes(id)) return id;
  throw new KeygenError(
    `the Secret already names every key id ${KEY_ID_MIN}..${KEY_ID_MAX}: remove keys no HACluster uses before adding one`,
  );
}

/**
 * Adds a new key to the auth Secret written in `text` (YAML or JSON: one Secret, as
 * `kubectl get secret NAME -o yaml` prints it). The Secret must already follow the rules (a
 * broken one is not patched over: its problems are reported). Fields the server manages
 * and `kubectl apply` refuses (`metadata.managedFields`) are dropped; `resourceVersion` is
 * kept, so applying the result fails if the Secret changed meanwhile.
 */
export function addKeyToSecret(
  text: string,
  source: string,
  opts: { keyId?: number },
  random: (n: number) => Uint8Array,
): KeygenResult {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length !== 1) {
    throw new KeygenError(
      `${source}: holds ${docs.length} documents; give one Secret (e.g. kubectl get secret ${DEFAULT_SECRET_NAME} -o yaml)`,
    );
  }
  const doc = docs[0]!;
  if (doc.errors.length) throw new KeygenError(`${source}: YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const obj = doc.toJS() as Partial<SecretManifest> | null;
  if (!obj || typeof obj !== 'object' || obj.apiVersion !== 'v1' || obj.kind !== 'Secret') {
    throw new KeygenError(`${source}: is not a v1 Secret; give the auth Secret (kind: Secret)`);
  }
  const label = `Secret ${obj.metadata?.namespace ?? 'default'}/${obj.metadata?.name ?? '<unnamed>'}`;
  const { problems } = readAuthSecret(obj as AuthSecretLike);
  if (problems.length) {
    throw new KeygenError(
      `${source}: ${label} does not follow the auth Secret's rules, fix it first:\n${problems
        .map((p) => `  ${p.path}: ${p.message}`)
        .join('\n')}`,
    );
  }
  const ids = namedKeyIds(obj as AuthSecretLike);
  const keyId = opts.keyId ?? nextKeyId(ids);
  checkKeyId(keyId);
  if (ids.includes(keyId)) {
    throw new KeygenError(
      `${source}: ${label} already has key ${keyId}: a key id names one key for its life; pick another with --key-id, or omit it (next free: ${nextKeyId(ids)})`,
    );
  }
  const { managedFields: _dropped, ...metadata } = (obj.metadata ?? {}) as SecretManifest['metadata'];
  void _dropped;
  const secret: SecretManifest = {
    ...(obj as SecretManifest),
    metadata,
    data: { ...(obj.data ?? {}), [String(keyId)]: newKey(random) },
  };
  return { secret, keyId, keyIds: [...ids, keyId].sort((a, b) => a - b) };
}

/** The manifest as YAML (default) or JSON, ending in a newline. */
export function renderSecret(secret: SecretManifest, format: 'yaml' | 'json'): string {
  return format === 'json' ? `${JSON.stringify(secret, null, 2)}\n` : stringify(secret);
}

/** What to do next, for stderr: where the key goes and the rotation steps. */
export function nextSteps(r: KeygenResult, added: boolean): string {
  const ns = r.secret.metadata.namespace;
  const nsFlag = ns ? ` -n ${ns}` : '';
  const name = r.secret.metadata.name;
  if (!added) {
    return [
      `made Secret ${name} with key ${r.keyId} (${KEY_BYTES} random bytes). Apply it (kubectl${nsFlag} apply -f FILE, or pipe to kubectl${nsFlag} apply -f -)`,
      `and set spec.authSecretRef: {name: ${name}, activeKeyId: "${r.keyId}"} on the HACluster. Keep the output out of version control.`,
    ].join('\n');
  }
  const old = r.keyIds.filter((id) => id !== r.keyId);
  return [
    `added key ${r.keyId} to Secret ${name} (keys now: ${r.keyIds.join(', ')}). Rotation without a failover:`,
    `  1. apply this Secret; every member accepts key ${r.keyId} once it has read it`,
    `  2. kubectl${nsFlag} patch hacluster NAME --type=merge -p '{"spec":{"authSecretRef":{"activeKeyId":"${r.keyId}"}}}'`,
    `  3. once members sign with key ${r.keyId}, remove the old key${old.length > 1 ? 's' : ''}: ${old
      .map(
        (id) =>
          `kubectl${nsFlag} patch secret ${name} --type=json -p '[{"op":"remove","path":"/data/${id}"}]'`,
      )
      .join('; ')}`,
  ].join('\n');
}

/** MIN_KEY_BYTES re-exported for the tests' cross-check: a new key is never below it. */
export { MIN_KEY_BYTES };
