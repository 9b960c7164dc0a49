import { execFile } from 'node:child_process';
import { parse } from 'yaml';
import {
  DEFAULT_SECRET_NAME,
  KEY_BYTES,
  KeygenError,
  MIN_KEY_BYTES,
  addKeyToSecret,
  newAuthSecret,
  nextKeyId,
  nextSteps,
  renderSecret,
  type SecretManifest,
} from '../../../src/cli/keygen.js';
import { validateManifestSet } from '../../../src/cli/manifests.js';
import { readAuthSecret } from '../../../src/core/wire/auth-secret.js';

/** Deterministic "random" bytes: n bytes of `fill`. */
const fixed = (fill: number) => (n: number) => new Uint8Array(n).fill(fill);

function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input ?? '');
  });
}

const HACLUSTER = (secret: string, active: string) => `apiVersion: heartline.dev/v1alpha1
kind: HACluster
metadata: {name: web, namespace: ha}
spec:
  nodeSelector: {heartline.dev/cluster: web}
  authSecretRef: {name: ${secret}, activeKeyId: '${active}'}
`;

describe('heartline keygen: a new Secret', () => {
  it('is a v1 Secret with key 1 of KEY_BYTES random bytes under data, accepted by the auth Secret rules', () => {
    const asked: number[] = [];
    const r = newAuthSecret({ namespace: 'ha' }, (n) => {
      asked.push(n);
      return fixed(7)(n);
    });
    expect(asked).toEqual([KEY_BYTES]);
    expect(KEY_BYTES).toBeGreaterThanOrEqual(MIN_KEY_BYTES);
    expect(r).toEqual({
      keyId: 1,
      keyIds: [1],
      secret: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: DEFAULT_SECRET_NAME, namespace: 'ha' },
        type: 'Opaque',
        data: { '1': Buffer.alloc(32, 7).toString('base64') },
      },
    });
    const read = readAuthSecret(r.secret);
    expect(read.problems).toEqual([]);
    expect(read.keys).toEqual([{ id: 1, secret: new Uint8Array(32).fill(7) }]);
  });

  it('takes a name and a key id, and refuses bad ones naming the flag', () => {
    expect(newAuthSecret({ name: 'auth', keyId: 9 }, fixed(1)).secret).toMatchObject({
      metadata: { name: 'auth' },
      data: { '9': expect.any(String) },
    });
    expect(() => newAuthSecret({ name: 'Auth_Keys' }, fixed(1))).toThrow(
      /--name "Auth_Keys" is not a valid name/,
    );
    expect(() => newAuthSecret({ namespace: 'a.b' }, fixed(1))).toThrow(/--namespace "a.b"/);
    expect(() => newAuthSecret({ keyId: 0 }, fixed(1))).toThrow(/--key-id 0 is not a key id: use 1..255/);
    expect(() => newAuthSecret({ keyId: 256 }, fixed(1))).toThrow(KeygenError);
  });

  it('renders YAML and JSON that read back to the same object, and `heartline validate` accepts it with its HACluster', () => {
    const r = newAuthSecret({ name: 'auth', namespace: 'ha' }, fixed(3));
    const yaml = renderSecret(r.secret, 'yaml');
    expect(parse(yaml)).toEqual(r.secret);
    expect(JSON.parse(renderSecret(r.secret, 'json'))).toEqual(r.secret);
    const report = validateManifestSet([
      { source: 'secret.yaml', text: yaml },
      { source: 'cluster.yaml', text: HACLUSTER('auth', '1') },
    ]);
    expect(report).toMatchObject({ errors: [], checked: 2 });
  });
});

describe('heartline keygen --add-to: rotation', () => {
  const base = (): SecretManifest => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'auth',
      namespace: 'ha',
      resourceVersion: '42',
      managedFields: [{ manager: 'kubectl' }],
    },
    type: 'Opaque',
    data: { '1': Buffer.alloc(32, 1).toString('base64'), '3': Buffer.alloc(32, 3).toString('base64') },
  });

  it('adds one key above the highest, keeps the others and resourceVersion, drops managedFields', () => {
    const r = addKeyToSecret(renderSecret(base(), 'yaml'), 'in.yaml', {}, fixed(4));
    expect(r.keyId).toBe(4);
    expect(r.keyIds).toEqual([1, 3, 4]);
    expect(r.secret.metadata).toEqual({ name: 'auth', namespace: 'ha', resourceVersion: '42' });
    expect(r.secret.data).toEqual({ ...base().data, '4': Buffer.alloc(32, 4).toString('base64') });
    expect(readAuthSecret(r.secret).problems).toEqual([]);
    // The HACluster may now point at the new key.
    const report = validateManifestSet([
      { source: 'secret.yaml', text: renderSecret(r.secret, 'yaml') },
      { source: 'cluster.yaml', text: HACLUSTER('auth', '4') },
    ]);
    expect(report.errors).toEqual([]);
  });

  it('reads JSON too, and takes --key-id', () => {
    const r = addKeyToSecret(JSON.stringify(base()), 'in.json', { keyId: 2 }, fixed(2));
    expect(r.keyIds).toEqual([1, 2, 3]);
  });

  it('refuses an id already used, a Secret that breaks the rules, other kinds and several documents', () => {
    expect(() => addKeyToSecret(JSON.stringify(base()), 'in.json', { keyId: 3 }, fixed(2))).toThrow(
      'in.json: Secret ha/auth already has key 3: a key id names one key for its life; pick another with --key-id, or omit it (next free: 4)',
    );
    const short = { ...base(), stringData: { '5': 'too short' } };
    expect(() => addKeyToSecret(JSON.stringify(short), 'in.json', {}, fixed(2))).toThrow(
      /does not follow the auth Secret's rules, fix it first:\n {2}stringData\["5"\]: key 5 has 9 bytes/,
    );
    expect(() =>
      addKeyToSecret('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n', 'cm.yaml', {}, fixed(2)),
    ).toThrow('cm.yaml: is not a v1 Secret');
    const two = `${renderSecret(base(), 'yaml')}---\n${renderSecret(base(), 'yaml')}`;
    expect(() => addKeyToSecret(two, 'two.yaml', {}, fixed(2))).toThrow('two.yaml: holds 2 documents');
    expect(() => addKeyToSecret('a: [', 'bad.yaml', {}, fixed(2))).toThrow(/bad.yaml: YAML/);
  });

  it('picks the lowest free id once 255 is used, and refuses when every id is', () => {
    expect(nextKeyId([])).toBe(1);
    expect(nextKeyId([1, 7])).toBe(8);
    expect(nextKeyId([1, 2, 255])).toBe(3);
    const all = Array.from({ length: 255 }, (_, i) => i + 1);
    expect(() => nextKeyId(all)).toThrow(/already names every key id 1..255/);
  });

  it('says the next rotation steps with the new and old ids', () => {
    const r = addKeyToSecret(renderSecret(base(), 'yaml'), 'in.yaml', {}, fixed(4));
    const text = nextSteps(r, true);
    expect(text).toContain('added key 4 to Secret auth (keys now: 1, 3, 4)');
    expect(text).toContain(`'{"spec":{"authSecretRef":{"activeKeyId":"4"}}}'`);
    expect(text).toContain('"path":"/data/1"');
    expect(text).toContain('"path":"/data/3"');
  });
});

describe('heartline keygen (the command)', () => {
  it('prints a Secret with a fresh random key each run, and the next steps on stderr', async () => {
    const [a, b] = await Promise.all([
      cli(['keygen', '--namespace', 'ha']),
      cli(['keygen', '--namespace', 'ha']),
    ]);
    expect(a.code).toBe(0);
    const sa = parse(a.stdout) as SecretManifest;
    const sb = parse(b.stdout) as SecretManifest;
    expect(readAuthSecret(sa).problems).toEqual([]);
    expect(sa.data!['1']).not.toBe(sb.data!['1']);
    expect(Buffer.from(sa.data!['1']!, 'base64')).toHaveLength(32);
    expect(a.stderr).toContain('made Secret heartline-auth with key 1');
    // Rotation through a pipe, as from kubectl get secret -o yaml.
    const c = await cli(['keygen', '--add-to', '-', '-o', 'json'], a.stdout);
    expect(c.code).toBe(0);
    const sc = JSON.parse(c.stdout) as SecretManifest;
    expect(sc.data).toEqual({ '1': sa.data!['1'], '2': expect.any(String) });
  }, 90_000);

  it('exits 1 naming the problem', async () => {
    const r = await cli(['keygen', '--key-id', '07']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('must be a key id, 1..255 without leading zeros');
    const s = await cli(['keygen', '--add-to', '-', '--name', 'x'], 'apiVersion: v1\nkind: Secret\n');
    expect(s.code).toBe(1);
    expect(s.stderr).toContain(
      'heartline keygen: --name and --namespace come from the Secret given with --add-to',
    );
  }, 90_000);
});
