/**
 * What a Resource process holds under an agent that runs as root: the agent (uid 0 with only
 * its network capabilities and SETUID, SETGID, SETPCAP and KILL, no_new_privs) is played by a
 * real process started through setpriv with exactly those capabilities; it runs Resources
 * through ProcessServiceRunner (test/unit/adapters/services/run-resources.ts). Each Resource
 * writes what it sees from the inside. Needs root (to give the stand-in agent its capabilities).
 */
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialProblems, parseProcStatus } from '../../../../src/adapters/services/sandbox.js';

jest.setTimeout(60_000);

const asRoot = process.getuid?.() === 0 ? describe : describe.skip;

/**
 * The capabilities of an agent that runs as root (heartline-netd without --agent-uid): what it
 * needs for Resources (SETUID, SETGID, SETPCAP, KILL) beside its network ones. The shipped
 * DaemonSet runs the agent unprivileged instead (docs/adr/0020), and netd starts Resources
 * (test/e2e/netd-launcher.test.ts).
 */
function rootAgentCaps(): string[] {
  return ['net_admin', 'net_raw', 'net_bind_service', 'setuid', 'setgid', 'setpcap', 'kill'];
}

interface Run {
  code: number | null;
  result?: { whoami: { ok: boolean; detail: string }; hang: { ok: boolean; detail: string } };
  stderr: string;
}

/** Runs run-resources.ts as a stand-in agent: uid 0, only `caps`, no_new_privs, a telling environment. */
function runAsAgent(caps: string[], dir: string, token: string): Promise<Run> {
  const bounding = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return new Promise((resolve) => {
    execFile(
      'setpriv',
      [
        '--inh-caps=-all',
        '--ambient-caps=-all',
        `--bounding-set=${bounding}`,
        '--no-new-privs',
        '--',
        process.execPath,
        '--import',
        'tsx',
        'test/unit/adapters/services/run-resources.ts',
        join(dir, 'resource.d'),
        join(dir, 'out'),
        token,
        '65534',
        '65534',
      ],
      {
        timeout: 45_000,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          KUBERNETES_SERVICE_HOST: '10.96.0.1',
          KUBERNETES_SERVICE_PORT: '443',
          HEARTLINE_TEST_SECRET: 'agent-only',
        },
      },
      (err, stdout, stderr) => {
        let result: Run['result'];
        try {
          result = JSON.parse(stdout) as Run['result'];
        } catch {
          result = undefined;
        }
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          ...(result ? { result } : {}),
          stderr,
        });
      },
    );
  });
}

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

asRoot(
  'Resource processes under a root agent (stand-in agent with the network capabilities and SETUID, SETGID, SETPCAP, KILL)',
  () => {
    let dir: string;
    let token: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'hl-identity-'));
      chmodSync(dir, 0o755);
      const rd = join(dir, 'resource.d');
      mkdirSync(rd, { mode: 0o755 });
      mkdirSync(join(dir, 'out'));
      chmodSync(join(dir, 'out'), 0o777);
      const install = (name: string, body: string) =>
        writeFileSync(join(rd, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      install(
        'whoami',
        [
          'out="$1"; token="$2"',
          'cat /proc/self/status > "$out/status"',
          'env > "$out/env"',
          'if cat "$token" > /dev/null 2>&1; then echo readable; else echo denied; fi > "$out/token"',
          'if cat "/proc/$PPID/environ" > /dev/null 2>&1; then echo readable; else echo denied; fi > "$out/environ"',
          'if kill -0 "$PPID" 2> /dev/null; then echo yes; else echo no; fi > "$out/signal"',
        ].join('\n'),
      );
      install('hang', 'sleep 30 & echo $! > "$1/hang.child"; wait');
      // The service-account token as the kubelet writes it for a pod whose containers all set
      // runAsUser (here 0): mode 0600, owned by that user.
      token = join(dir, 'token');
      writeFileSync(token, 'eyJhbGciOi-not-a-real-token', { mode: 0o600 });
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('runs as 65534 with every capability set empty and no_new_privs, a minimal environment, no token, and can still be killed at its timeout', async () => {
      const caps = rootAgentCaps();
      expect(caps).toEqual(expect.arrayContaining(['setuid', 'setgid', 'setpcap', 'kill']));
      const run = await runAsAgent(caps, dir, token);
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
      expect(run.result!.whoami).toMatchObject({ ok: true });

      const out = (f: string) => readFileSync(join(dir, 'out', f), 'utf8');
      const status = parseProcStatus(out('status'));
      expect(credentialProblems(status, { uid: 65534, gid: 65534 })).toEqual([]);
      expect({
        CapEff: status.capEff,
        CapPrm: status.capPrm,
        CapBnd: status.capBnd,
        CapAmb: status.capAmb,
      }).toEqual({ CapEff: 0n, CapPrm: 0n, CapBnd: 0n, CapAmb: 0n });
      expect(status.noNewPrivs).toBe(true);

      const env = Object.fromEntries(
        out('env')
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(env).toMatchObject({
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
      });
      // Only what the shell itself sets besides: nothing of the agent's environment.
      expect(
        Object.keys(env).filter((k) => !['PATH', 'LANG', 'PWD', 'SHLVL', '_', 'OLDPWD'].includes(k)),
      ).toEqual([]);

      expect(out('token').trim()).toBe('denied');
      expect(out('environ').trim()).toBe('denied');
      expect(out('signal').trim()).toBe('no');

      expect(run.result!.hang.ok).toBe(false);
      expect(run.result!.hang.detail).toContain('timed out after 300 ms; process group killed');
      const child = Number(out('hang.child'));
      for (let i = 0; i < 50 && alive(child); i++) await new Promise((r) => setTimeout(r, 20));
      expect(alive(child)).toBe(false);
    });

    it('an agent without SETPCAP (the bounding set would stay) runs no Resource and says what it needs', async () => {
      const run = await runAsAgent(
        rootAgentCaps().filter((c) => c !== 'setpcap'),
        dir,
        token,
      );
      expect(run.code).toBe(0);
      expect(run.result!.whoami.ok).toBe(false);
      expect(run.result!.whoami.detail).toMatch(
        /^ns\/whoami: start: not run: Resources must run as uid 65534 gid 65534 without capabilities, and a test process did not \(CapBnd [0-9a-f]+\); the agent needs \/usr\/bin\/setpriv \(util-linux\) and the capabilities SETUID, SETGID, SETPCAP and KILL/,
      );
      expect(() => readFileSync(join(dir, 'out', 'status'))).toThrow();
    });

    it('an agent without SETUID cannot start a Resource as root instead', async () => {
      const run = await runAsAgent(
        rootAgentCaps().filter((c) => c !== 'setuid'),
        dir,
        token,
      );
      expect(run.code).toBe(0);
      expect(run.result!.whoami.ok).toBe(false);
      expect(run.result!.whoami.detail).toContain('not run: Resources must run as uid 65534');
      expect(() => readFileSync(join(dir, 'out', 'status'))).toThrow();
    });
  },
);
