/**
 * The agent's member key on the node's disk (docs/adr/0021): an Ed25519 private key in a
 * PKCS#8 PEM file readable by its owner only (0600), made on first start. Kept across
 * restarts so that a restarted agent signs with the key its Node already publishes, and
 * peers accept it at once, even while the API server is down. The key never leaves the node:
 * only its public half is written to the Node.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { formatMemberPrivateKey, generateMemberKey, parseMemberPrivateKey } from '../../core/wire/index.js';

export interface LoadedMemberKey {
  key: KeyObject;
  /** `file`: read from the file; `new`: made now and written; `memory`: made now, the file could not be written. */
  source: 'file' | 'new' | 'memory';
  /** Why a new key was made (no file, or what was wrong with it), or why it is not on disk. */
  note?: string;
}

/**
 * Loads the key at `path`, or makes one and writes it there (mode 0600, fsynced, renamed
 * into place). A file that is not an Ed25519 PEM key is replaced by a new key (the node
 * then publishes its new public key). A key that cannot be written is used from memory:
 * the next start makes another one, which only costs a new publication.
 */
export function loadMemberKey(path: string): LoadedMemberKey {
  let note: string;
  try {
    return { key: parseMemberPrivateKey(readFileSync(path, 'utf8')), source: 'file' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    note = code === 'ENOENT' ? 'no key file yet' : `key file unusable: ${(err as Error).message}`;
  }
  const key = generateMemberKey();
  try {
    writeKey(path, formatMemberPrivateKey(key));
    return { key, source: 'new', note };
  } catch (err) {
    return {
      key,
      source: 'memory',
      note: `${note}; cannot write ${path} (${(err as Error).message}): give the agent a writable --state-dir`,
    };
  }
}

function writeKey(path: string, pem: string): void {
  const tmp = `${path}.tmp`;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, pem);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
