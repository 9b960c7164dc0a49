import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMemberKey } from '../../../../src/adapters/state/member-key-file.js';
import { formatMemberPublicKey } from '../../../../src/core/wire/index.js';

describe('loadMemberKey (the agent key file)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hl-member-key-'));
  });
  afterEach(() => {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes a key on first start (0600), and every later start reads the same key', () => {
    const path = join(dir, 'sub', 'member-key-lab.web.pem');
    const first = loadMemberKey(path);
    expect(first).toMatchObject({ source: 'new', note: 'no key file yet' });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const again = loadMemberKey(path);
    expect(again.source).toBe('file');
    expect(formatMemberPublicKey(again.key)).toBe(formatMemberPublicKey(first.key));
  });

  it('replaces a file that holds no Ed25519 key with a new key, saying why', () => {
    const path = join(dir, 'member-key.pem');
    writeFileSync(path, 'garbage\n');
    const r = loadMemberKey(path);
    expect(r.source).toBe('new');
    expect(r.note).toMatch(/^key file unusable: not a PEM private key/);
    expect(loadMemberKey(path).source).toBe('file');
  });

  it('keeps a key in memory when the directory is not writable, and says how to fix it', () => {
    if (process.getuid?.() === 0) {
      // root writes anyway: use a path under a regular file instead.
      writeFileSync(join(dir, 'file'), '');
      const r = loadMemberKey(join(dir, 'file', 'member-key.pem'));
      expect(r.source).toBe('memory');
      expect(r.note).toMatch(/cannot write .*give the agent a writable --state-dir/);
      return;
    }
    chmodSync(dir, 0o500);
    const r = loadMemberKey(join(dir, 'member-key.pem'));
    expect(r.source).toBe('memory');
    expect(r.note).toMatch(/cannot write .*give the agent a writable --state-dir/);
  });
});
