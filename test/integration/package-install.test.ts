/**
 * The package as a user installs it: `npm pack` (prepack builds dist/), then
 * `npm install -g --prefix TMP heartline-X.tgz`, then the installed `heartline` command runs
 * straight from the shell (shebang, files list, ESM), validates a shipped example, makes an
 * auth Secret with keygen, prints the shipped CRDs, and resolves heartline-netd from the installed package.
 */
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

jest.setTimeout(300_000);

describe('npm package', () => {
  let tmp: string;
  let bin: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hl-pkg-'));
    await run('npm', ['pack', '--pack-destination', tmp, '--loglevel=error'], {
      cwd: root,
      timeout: 180_000,
    });
    const tgz = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack left no .tgz in ${tmp}`);
    await run(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        path.join(tmp, 'prefix'),
        path.join(tmp, tgz),
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--loglevel=error',
      ],
      { cwd: tmp, timeout: 240_000 },
    );
    bin = path.join(tmp, 'prefix', 'bin', 'heartline');
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('runs as an installed command (shebang) and prints its help', async () => {
    const { stdout } = await run(bin, ['--help'], { timeout: 30_000 });
    expect(stdout).toMatch(/Usage: heartline/);
    expect(stdout).toMatch(/agent/);
    expect(stdout).toMatch(/controller/);
    expect(stdout).toMatch(/validate/);
  });

  it('is installed as the kubectl plugin kubectl-heartline too', async () => {
    const plugin = path.join(path.dirname(bin), 'kubectl-heartline');
    const { stdout } = await run(plugin, ['--help'], { timeout: 30_000 });
    expect(stdout).toMatch(/Usage: kubectl heartline/);
    for (const c of ['status', 'move', 'standby', 'unstandby'])
      expect(stdout).toMatch(new RegExp(`\\n  ${c} `));
  });

  it('validates a shipped example and refuses a bad object with the field named', async () => {
    const pkg = path.join(tmp, 'prefix', 'lib', 'node_modules', 'heartline');
    const ok = await run(bin, ['validate', '-f', path.join(pkg, 'examples', 'two-node-web.yaml')], {
      timeout: 30_000,
    });
    expect(ok.stdout + ok.stderr).not.toMatch(/error/i);
    const bad = path.join(tmp, 'bad.yaml');
    await import('node:fs/promises').then((fs) =>
      fs.writeFile(
        bad,
        'apiVersion: heartline.dev/v1alpha1\nkind: VirtualIP\nmetadata: {name: web, namespace: default}\nspec: {clusterRef: {name: c}, address: "not-an-ip"}\n',
      ),
    );
    await expect(run(bin, ['validate', '-f', bad], { timeout: 30_000 })).rejects.toMatchObject({
      stdout: expect.stringMatching(/VirtualIP default\/web: spec\.address/),
    });
  });

  it('makes the auth Secret with keygen, which its own validate accepts', async () => {
    const { stdout } = await run(bin, ['keygen', '--name', 'heartline-auth', '--key-id', '2'], {
      timeout: 30_000,
    });
    expect(stdout).toMatch(/^ {2}"2": [A-Za-z0-9+/]{43}=$/m);
    const pkg = path.join(tmp, 'prefix', 'lib', 'node_modules', 'heartline');
    const secret = path.join(tmp, 'auth-secret.yaml');
    await import('node:fs/promises').then((fs) => fs.writeFile(secret, stdout));
    // With the shipped example that names it (activeKeyId "2").
    const ok = await run(
      bin,
      ['validate', '-f', secret, '-f', path.join(pkg, 'examples', 'two-node-web.yaml')],
      { timeout: 30_000 },
    );
    expect(ok.stdout).toBe('');
  });

  it('ships the CRDs and the netd sources the agent builds from', async () => {
    const pkg = path.join(tmp, 'prefix', 'lib', 'node_modules', 'heartline');
    expect((await readdir(path.join(pkg, 'crds'))).sort()).toEqual(
      (await readdir(path.join(root, 'crds'))).sort(),
    );
    expect(await readdir(path.join(pkg, 'native'))).toEqual(
      expect.arrayContaining(['Makefile', 'heartline-netd.c', 'check-hardening.sh']),
    );
    // Nothing of the tests or the dev tree ships.
    expect(await readdir(pkg)).not.toEqual(expect.arrayContaining(['test', 'hack', 'bench', 'src']));
  });
});
