import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  credentialProblems,
  launcherFromEnvironment,
  parseProcStatus,
  resolveAllowed,
  resourceEnv,
  withIdentity,
  withLauncher,
} from '../../../../src/adapters/services/sandbox.js';

const API = '/etc/heartline/resource.d';

describe('resolveAllowed: a program must resolve, on disk, to a file inside the directory', () => {
  let dir: string;
  let local: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hl-sandbox-'));
    local = join(dir, 'resource.d');
    mkdirSync(join(local, 'web'), { recursive: true });
    mkdirSync(join(dir, 'outside'));
    writeFileSync(join(local, 'apache'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(local, 'web', 'start'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(dir, 'outside', 'evil'), '#!/bin/sh\n', { mode: 0o755 });
    symlinkSync('apache', join(local, 'alias')); // stays inside: allowed
    symlinkSync(join(dir, 'outside', 'evil'), join(local, 'escape')); // leads out: refused
    symlinkSync('/bin/sh', join(local, 'shell')); // leads out: refused
    symlinkSync(join(dir, 'outside'), join(local, 'linkdir')); // a linked directory leads out
    symlinkSync('web/../../outside/evil', join(local, 'dotdot'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const resolve = (path: string) => resolveAllowed(path, { api: API, local }, 'spec.exec.start[0]');

  it('returns the real path of a file inside, subdirectories and inside links included', async () => {
    await expect(resolve(`${API}/apache`)).resolves.toEqual({ ok: true, path: join(local, 'apache') });
    await expect(resolve(`${API}/web/start`)).resolves.toEqual({
      ok: true,
      path: join(local, 'web', 'start'),
    });
    await expect(resolve(`${API}/alias`)).resolves.toEqual({ ok: true, path: join(local, 'apache') });
  });

  it.each(['escape', 'shell', 'linkdir/evil', 'dotdot'])(
    'refuses %s: a symbolic link that leads out of the directory',
    async (name) => {
      const r = await resolve(`${API}/${name}`);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.detail).toMatch(new RegExp(`^spec\\.exec\\.start\\[0\\] ${API}/${name}: resolves to /`));
      expect(r.detail).toContain(`outside ${API} (a symbolic link leading out); install the program itself`);
    },
  );

  it.each([
    '/bin/sh',
    `${API}`,
    `${API}/`,
    `${API}/../../../bin/sh`,
    `${API}/./apache`,
    `${API}//apache`,
    `${API}.evil/apache`,
    'apache',
  ])('refuses %s by its name, before looking at the disk', async (path) => {
    const r = await resolve(path);
    expect(r).toEqual({
      ok: false,
      detail: `spec.exec.start[0] ${path}: not a program in ${API} (an absolute path inside it without "." or ".." segments); install it in ${API} on the node and name it there`,
    });
  });

  it('refuses a program that does not exist, and a directory', async () => {
    await expect(resolve(`${API}/nginx`)).resolves.toEqual({
      ok: false,
      detail: `spec.exec.start[0] ${API}/nginx: does not exist on this node; install it in ${API}`,
    });
    const d = await resolve(`${API}/web`);
    expect(d).toMatchObject({ ok: false });
    expect(!d.ok && d.detail).toContain('is not a regular file');
  });

  it('names the missing mount when the directory itself is not there', async () => {
    const r = await resolveAllowed(
      `${API}/apache`,
      { api: API, local: join(dir, 'nope') },
      'spec.exec.start[0]',
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.detail).toContain(`the directory ${API} is not available to the agent`);
    expect(!r.ok && r.detail).toContain('deploy/base/agent/daemonset.yaml');
  });
});

describe('resourceEnv', () => {
  it('is PATH and LANG plus what the agent adds, nothing of its own environment', () => {
    process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
    try {
      expect(resourceEnv()).toEqual({
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
      });
      expect(Object.keys(resourceEnv({ MARK: '/x' })).sort()).toEqual(['LANG', 'MARK', 'PATH']);
    } finally {
      delete process.env.KUBERNETES_SERVICE_HOST;
    }
  });
});

describe('withIdentity', () => {
  it('drops to the identity and empties every capability set before the program, arguments as-is', () => {
    expect(withIdentity(['/x/prog', '-c', '$(id)'], { uid: 1000, gid: 2000 }, '/sbin/setpriv')).toEqual([
      '/sbin/setpriv',
      '--reuid=1000',
      '--regid=2000',
      '--clear-groups',
      '--inh-caps=-all',
      '--ambient-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
      '/x/prog',
      '-c',
      '$(id)',
    ]);
  });
});

describe('launcherFromEnvironment and withLauncher', () => {
  const env = {
    HEARTLINE_LAUNCHER_FD: '5',
    HEARTLINE_LAUNCHER: '/usr/local/bin/heartline-netd',
    HEARTLINE_RESOURCE_UID: '65534',
    HEARTLINE_RESOURCE_GID: '65533',
  };

  it('is undefined without HEARTLINE_LAUNCHER_FD (no netd --resource-uid)', () => {
    expect(launcherFromEnvironment({})).toBeUndefined();
    expect(launcherFromEnvironment({ HEARTLINE_LAUNCHER_FD: '' })).toBeUndefined();
  });

  it('reads the binary, the fd and the identity netd set', () => {
    expect(launcherFromEnvironment(env)).toEqual({
      binary: '/usr/local/bin/heartline-netd',
      fd: 5,
      identity: { uid: 65534, gid: 65533 },
    });
  });

  it('names the malformed variable', () => {
    expect(() => launcherFromEnvironment({ ...env, HEARTLINE_LAUNCHER_FD: '2' })).toThrow(
      /^HEARTLINE_LAUNCHER_FD=2: want a number/,
    );
    expect(() => launcherFromEnvironment({ ...env, HEARTLINE_RESOURCE_UID: '0' })).toThrow(
      /^HEARTLINE_RESOURCE_UID=0: want a number/,
    );
    expect(() => launcherFromEnvironment({ ...env, HEARTLINE_RESOURCE_GID: undefined })).toThrow(
      /^HEARTLINE_RESOURCE_GID=: want a number/,
    );
    expect(() => launcherFromEnvironment({ ...env, HEARTLINE_LAUNCHER: 'heartline-netd' })).toThrow(
      /^HEARTLINE_LAUNCHER=heartline-netd: want the absolute path of heartline-netd/,
    );
  });

  it('runs the program through the client, arguments as-is after --', () => {
    const launcher = launcherFromEnvironment(env)!;
    expect(withLauncher(['/x/prog', '--run', '$(id)'], launcher)).toEqual([
      '/usr/local/bin/heartline-netd',
      '--run',
      '--launcher-fd=5',
      '--',
      '/x/prog',
      '--run',
      '$(id)',
    ]);
  });
});

describe('parseProcStatus and credentialProblems', () => {
  const status = (over: Record<string, string> = {}): string => {
    const fields: Record<string, string> = {
      Name: 'cat',
      Uid: '65534\t65534\t65534\t65534',
      Gid: '65534\t65534\t65534\t65534',
      Groups: '',
      CapInh: '0000000000000000',
      CapPrm: '0000000000000000',
      CapEff: '0000000000000000',
      CapBnd: '0000000000000000',
      CapAmb: '0000000000000000',
      NoNewPrivs: '1',
      ...over,
    };
    return Object.entries(fields)
      .map(([k, v]) => `${k}:\t${v}`)
      .join('\n');
  };
  const id = { uid: 65534, gid: 65534 };

  it('accepts a process with the identity and nothing else', () => {
    expect(credentialProblems(parseProcStatus(status()), id)).toEqual([]);
  });

  it('names every privilege left', () => {
    const c = parseProcStatus(
      status({
        Uid: '65534\t65534\t0\t65534',
        Groups: '0 27',
        CapBnd: '00000000000030c0',
        CapEff: '0000000000001000',
        NoNewPrivs: '0',
      }),
    );
    expect(credentialProblems(c, id)).toEqual([
      'uids 65534,65534,0,65534',
      'supplementary groups 0,27',
      'CapEff 1000',
      'CapBnd 30c0',
      'no_new_privs not set',
    ]);
  });

  it('throws on a status without the fields', () => {
    expect(() => parseProcStatus('Name:\tcat\n')).toThrow('no Uid in /proc/self/status');
  });
});
