import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { buildProgram } from '../../../src/cli/program.js';
import { validateManifests } from '../../../src/cli/manifests.js';
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

  it('skips other kinds with a note', async () => {
    const report = validateManifests(
      'examples/auth-secret.yaml',
      await readFile('examples/auth-secret.yaml', 'utf8'),
    );
    expect(report.errors).toEqual([]);
    expect(report.checked).toBe(0);
    expect(report.notes).toEqual([
      'examples/auth-secret.yaml: Secret default/heartline-auth: skipped (v1/Secret is not a Heartline kind)',
    ]);
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
    expect(bad.stdout.trim().split('\n')).toHaveLength(3);
    expect(bad.stderr).toContain('note: examples/auth-secret.yaml: Secret default/heartline-auth: skipped');
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
