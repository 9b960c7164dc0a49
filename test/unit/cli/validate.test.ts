import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { buildProgram } from '../../../src/cli/program.js';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { validateManifests, validateManifestSet } from '../../../src/cli/manifests.js';
import { BAD_AUTH_SECRETS, goodAuthSecret, goodCluster } from '../../fixtures/bad-objects.js';
import { crdsYaml } from '../../../src/api/crd.js';

describe('validateManifests', () => {
  it.each(['examples/two-node-web.yaml', 'examples/ipv6-vip.yaml', 'examples/health-checked-group.yaml'])(
    '%s is valid',
    async (file) => {
      const report = validateManifests(file, await readFile(file, 'utf8'));
      expect(report.errors).toEqual([]);
      expect(report.checked).toBeGreaterThan(0);
    },
  );

  it('skips other kinds with a note', () => {
    const text =
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ndata: {tls.crt: QUJD}\n';
    const report = validateManifests('f.yaml', text);
    expect(report.errors).toEqual([]);
    expect(report.checked).toBe(0);
    expect(report.notes).toEqual([
      'f.yaml: Deployment default/web: skipped (apps/v1/Deployment is not a Heartline kind)',
      'f.yaml: Secret default/tls: skipped (no HACluster in these files names it in spec.authSecretRef)',
    ]);
  });

  it('refuses the example auth Secret until its placeholder is replaced by a real key', async () => {
    const file = 'examples/auth-secret.yaml';
    const text = await readFile(file, 'utf8');
    expect(validateManifests(file, text).errors).toEqual([
      'examples/auth-secret.yaml: Secret default/heartline-auth: stringData["2"]: key 2 has 10 bytes: use at least 32 random bytes; generate one with: openssl rand -base64 32',
    ]);
    const filled = text.replace("'2': REPLACE-ME", `'2': ${randomBytes(32).toString('base64')}`);
    expect(validateManifests(file, filled)).toMatchObject({ errors: [], checked: 1 });
    // With the examples that use it: activeKeyId "2" is a key of the Secret.
    const set = validateManifestSet([
      { source: file, text: filled },
      { source: 'examples/two-node-web.yaml', text: await readFile('examples/two-node-web.yaml', 'utf8') },
    ]);
    expect(set.errors).toEqual([]);
  });

  it('reports file, object, path and fix for each problem', async () => {
    const report = validateManifests('examples/bad.yaml', await readFile('examples/bad.yaml', 'utf8'));
    expect(report.errors).toEqual([
      'examples/bad.yaml: VirtualIP default/web: spec.address: "198.18.0.300/24" is not a valid IPv4 or IPv6 CIDR; use e.g. 198.18.0.100/24 or 2001:db8::100/64',
      'examples/bad.yaml: VirtualIP default/web: spec.preferredNodes[1]: Duplicate value: "node-a": list entries must be unique; remove the repeated entry',
      'examples/bad.yaml: VirtualIP default/web: spec.announce.count: Invalid value: 0: must be greater than or equal to 1',
    ]);
  });

  it('reports YAML syntax errors with the document number', () => {
    const report = validateManifests('x.yaml', 'a: [1, 2\n');
    expect(report.errors[0]).toMatch(/^x\.yaml: document 1: YAML: /);
  });

  it('uses the namespace from the manifest', () => {
    const text =
      'apiVersion: heartline.dev/v1alpha1\nkind: VirtualIP\nmetadata: {name: v, namespace: prod}\nspec: {}\n';
    expect(validateManifests('f', text).errors).toEqual([
      'f: VirtualIP prod/v: spec.clusterRef: Required value: The HACluster (same namespace) whose members may hold this VIP.',
      'f: VirtualIP prod/v: spec.address: Required value: The virtual IP with its prefix length, IPv4 or IPv6, e.g. 198.18.0.100/24 or 2001:db8::100/64. The prefix picks the interface when interface is not set.',
    ]);
  });
});

describe('program', () => {
  it('registers crds and validate, and accepts more command modules', () => {
    const extra = (program: Command) => {
      program.command('lab').description('test module');
    };
    const names = buildProgram().commands.map((c) => c.name());
    expect(names).toEqual(expect.arrayContaining(['crds', 'validate']));
    const withExtra = buildProgram([extra]).commands.map((c) => c.name());
    expect(withExtra).toEqual(['lab']);
  });
});

describe('heartline binary', () => {
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', ...args],
        { timeout: 60_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('validate exits 1 with one line per problem, and 0 for good files', async () => {
    const bad = await run(['validate', '-f', 'examples/bad.yaml', '-f', 'examples/auth-secret.yaml']);
    expect(bad.code).toBe(1);
    expect(bad.stdout.trim().split('\n')).toHaveLength(4);
    expect(bad.stdout).toContain('examples/auth-secret.yaml: Secret default/heartline-auth: stringData["2"]');
    const good = await run(['validate', '-f', 'examples/two-node-web.yaml', '-f', 'examples/ipv6-vip.yaml']);
    expect(good).toMatchObject({ code: 0, stdout: '' });
  }, 120_000);

  it('crds prints the generated CRDs', async () => {
    const out = await run(['crds']);
    expect(out.code).toBe(0);
    expect(out.stdout).toBe(crdsYaml());
  }, 60_000);
});

describe('validateManifests on kubectl output', () => {
  it('checks each item of a List', () => {
    const text = [
      'apiVersion: v1',
      'kind: List',
      'items:',
      '- apiVersion: heartline.dev/v1alpha1',
      '  kind: VirtualIP',
      '  metadata: {name: ok, namespace: prod}',
      '  spec: {clusterRef: {name: web}, address: 198.18.0.100/24}',
      '- apiVersion: heartline.dev/v1alpha1',
      '  kind: VirtualIP',
      '  metadata: {name: broken, namespace: prod}',
      '  spec: {clusterRef: {name: web}, address: 198.18.0.100/40}',
    ].join('\n');
    const report = validateManifests('list.yaml', text);
    expect(report.checked).toBe(2);
    expect(report.errors).toEqual([
      'list.yaml: VirtualIP prod/broken: spec.address: "198.18.0.100/40" is not a valid IPv4 or IPv6 CIDR; use e.g. 198.18.0.100/24 or 2001:db8::100/64',
    ]);
  });

  it('requires a name', () => {
    const text =
      'apiVersion: heartline.dev/v1alpha1\nkind: Resource\nmetadata: {}\nspec: {kind: systemd, systemd: {unit: a.service}}\n';
    expect(validateManifests('f', text).errors).toEqual([
      'f: Resource default/<unnamed>: metadata.name: Required value: name or generateName is required; set metadata.name',
    ]);
  });
});

describe('validate: the auth Secret', () => {
  const yaml = (...objs: unknown[]) => objs.map((o) => stringify(o)).join('---\n');

  it('a good Secret with its HACluster is valid, whether data or stringData', () => {
    expect(validateManifests('a.yaml', yaml(goodAuthSecret(), goodCluster()))).toMatchObject({
      errors: [],
      checked: 2,
    });
    const s = goodAuthSecret();
    s.stringData = { '2': 'x'.repeat(32) };
    delete s.data!['2'];
    expect(validateManifests('a.yaml', yaml(s, goodCluster())).errors).toEqual([]);
  });

  it.each(BAD_AUTH_SECRETS.map((b) => [b.name, b] as const))('refuses: %s', (_name, bad) => {
    const report = validateManifests('s.yaml', yaml(bad.secret, bad.cluster ?? goodCluster()));
    const line = report.errors.find((e) => e.startsWith(`s.yaml: ${bad.at}: `));
    expect({ errors: report.errors, line }).toEqual({
      errors: report.errors,
      line: expect.stringContaining(bad.fix),
    });
    // Never prints key material.
    for (const v of Object.values({ ...bad.secret.data, ...bad.secret.stringData }))
      if (v.length >= 8) expect(report.errors.join('\n')).not.toContain(v);
  });

  it('checks activeKeyId against a Secret in another file', () => {
    const s = goodAuthSecret();
    delete s.data!['2'];
    const report = validateManifestSet([
      { source: 'secret.yaml', text: yaml(s) },
      { source: 'cluster.yaml', text: yaml(goodCluster()) },
    ]);
    expect(report.errors).toEqual([
      'cluster.yaml: HACluster default/web: spec.authSecretRef.activeKeyId: key 2 is not in Secret heartline-auth (it holds: 1); add key 2 to the Secret first, or set activeKeyId to one of its keys',
    ]);
  });

  it('activeKeyId that is a name is refused by the HACluster schema with the fix', () => {
    const c = goodCluster();
    (c.spec.authSecretRef as { activeKeyId: string }).activeKeyId = 'primary';
    expect(validateManifests('c.yaml', yaml(c)).errors).toEqual([
      'c.yaml: HACluster default/web: spec.authSecretRef.activeKeyId: Invalid value: "primary": authSecretRef.activeKeyId must be a key id, 1..255 without leading zeros, naming a data key of the Secret, e.g. "2"',
    ]);
  });

  it('a Secret of another namespace than the HACluster is not its Secret', () => {
    const s = goodAuthSecret();
    s.metadata.namespace = 'other';
    s.data = { tls: 'QUJD' };
    const report = validateManifests('a.yaml', yaml(s, goodCluster()));
    expect(report.errors).toEqual([]);
    expect(report.notes).toEqual([
      'a.yaml: Secret other/heartline-auth: skipped (no HACluster in these files names it in spec.authSecretRef)',
    ]);
  });
});
