/**
 * heartline-netd's Resource launcher (docs/adr/0020-unprivileged-agent.md, addendum): netd runs
 * the agent as uid 65532 with no capability (--agent-uid) and starts every Resource the agent
 * asks for as a third identity (--resource-uid=65534). The agent is played by
 * test/unit/adapters/services/run-resources.ts, a real ProcessServiceRunner that finds the
 * launcher in its environment as the agent does; its Resources write what they see from the
 * inside. Each test runs netd in a fresh network namespace (`hl-ln-<pid>-<n>`, deleted
 * afterwards). Needs root.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { resolveNetdBinary } from '../../src/adapters/linux/netd-binary.js';
import { agentRoot } from '../../hack/lab/cluster.js';
import { credentialProblems, parseProcStatus } from '../../src/adapters/services/sandbox.js';

const sh = promisify(execFile);
let reach: { path: string; release(): void } | undefined;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const isRoot = process.getuid?.() === 0;
const prefix = `hl-ln-${process.pid}-`;
const AGENT_UID = 65532;
const RESOURCE_UID = 65534;
let seq = 0;

async function ip(...args: string[]): Promise<string> {
  return (await sh('ip', args, { timeout: 10_000 })).stdout;
}

/** Runs heartline-netd in `ns` with `args` (`wrap` before it, e.g. setpriv); output and exit code. */
async function netd(
  ns: string,
  args: string[],
  wrap: string[] = [],
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  // From where uids 65532 and 65534 reach the checkout (a bind mount when it is in a 0700
  // directory, as CI may clone it): they execute this binary as the launcher client.
  const root = reach?.path ?? ROOT;
  const bin = path.join(root, path.relative(ROOT, await resolveNetdBinary()));
  const child = spawn('ip', ['netns', 'exec', ns, ...wrap, bin, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(timer);
  return { stdout, stderr, code };
}

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

if (!isRoot) {
  describe('heartline-netd Resource launcher', () => {
    it.skip('SKIPPED: needs root to create network namespaces and change uids', () => undefined);
  });
} else {
  jest.setTimeout(60_000);
  beforeAll(() => {
    reach = agentRoot(`ln-${process.pid}`);
  });
  afterAll(() => reach?.release());

  describe('heartline-netd --exec with --agent-uid and --resource-uid', () => {
    let ns: string;
    let tmp: string;
    beforeEach(async () => {
      ns = `${prefix}${seq++}`;
      await ip('netns', 'add', ns);
      tmp = await mkdtemp(path.join(os.tmpdir(), 'hl-ln-'));
      await chmod(tmp, 0o755);
    });
    afterEach(async () => {
      await ip('netns', 'del', ns).catch(() => undefined);
      await rm(tmp, { recursive: true, force: true });
    });

    const launcherFlags = [`--agent-uid=${AGENT_UID}`, `--resource-uid=${RESOURCE_UID}`];

    it('runs Resources as 65534 with every capability set empty, no_new_privs, PATH and LANG only, no token, no signal to the agent; the agent killing the client kills the group', async () => {
      const rd = path.join(tmp, 'resource.d');
      const out = path.join(tmp, 'out');
      await mkdir(rd, { mode: 0o755 });
      await mkdir(out);
      await chmod(out, 0o777);
      const install = (name: string, body: string) =>
        writeFile(path.join(rd, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      await install(
        'whoami',
        [
          'out="$1"; token="$2"; agent="$3"',
          'cat /proc/self/status > "$out/status"',
          'env > "$out/env"',
          'ps -o pgid= -p $$ > "$out/pgid"',
          'if cat "$token" > /dev/null 2>&1; then echo readable; else echo denied; fi > "$out/token"',
          'if cat "/proc/$agent/environ" > /dev/null 2>&1; then echo readable; else echo denied; fi > "$out/environ"',
          'if kill -0 "$agent" 2> /dev/null; then echo yes; else echo no; fi > "$out/signal"',
          'ls /proc/self/fd > "$out/fds"',
        ].join('\n'),
      );
      await install('hang', 'sleep 30 & echo $! > "$1/hang.child"; wait');
      // The service-account token as the kubelet writes it for the agent's pod: 0600, root's.
      const token = path.join(tmp, 'token');
      await writeFile(token, 'eyJhbGciOi-not-a-real-token', { mode: 0o600 });

      const r = await netd(ns, [
        ...launcherFlags,
        '--exec',
        process.execPath,
        '--import',
        'tsx',
        path.join(reach!.path, 'test/unit/adapters/services/run-resources.ts'),
        rd,
        out,
        token,
        String(RESOURCE_UID),
        String(RESOURCE_UID),
      ]);
      expect(r.stderr).toMatch(/capabilities kept: NET_ADMIN NET_RAW KILL SETUID SETGID/);
      expect(r.code).toBe(0);
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        whoami: { ok: boolean; detail: string };
        hang: { ok: boolean; detail: string };
      };
      expect(result.whoami).toMatchObject({ ok: true });

      const read = (f: string) => readFile(path.join(out, f), 'utf8');
      const status = parseProcStatus(await read('status'));
      expect(credentialProblems(status, { uid: RESOURCE_UID, gid: RESOURCE_UID })).toEqual([]);
      expect({
        uids: status.uids,
        CapEff: status.capEff,
        CapPrm: status.capPrm,
        CapBnd: status.capBnd,
        CapAmb: status.capAmb,
        CapInh: status.capInh,
        NoNewPrivs: status.noNewPrivs,
      }).toEqual({
        uids: [RESOURCE_UID, RESOURCE_UID, RESOURCE_UID, RESOURCE_UID],
        CapEff: 0n,
        CapPrm: 0n,
        CapBnd: 0n,
        CapAmb: 0n,
        CapInh: 0n,
        NoNewPrivs: true,
      });
      const env = Object.fromEntries(
        (await read('env'))
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(env).toMatchObject({
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
      });
      // Only what the shell itself sets besides: nothing of the agent's (or netd's) environment.
      expect(
        Object.keys(env).filter((k) => !['PATH', 'LANG', 'PWD', 'SHLVL', '_', 'OLDPWD'].includes(k)),
      ).toEqual([]);
      expect((await read('token')).trim()).toBe('denied');
      expect((await read('environ')).trim()).toBe('denied');
      expect((await read('signal')).trim()).toBe('no');
      // stdin, stdout, stderr, and the one ls reads: no launcher socket, no heartbeat socket.
      expect((await read('fds')).trim().split('\n').map(Number)).toEqual([0, 1, 2, 3]);

      // The 300 ms timeout SIGKILLed the client (the agent's child); netd saw its connection
      // close and SIGKILLed the Resource's process group, the backgrounded sleep included.
      expect(result.hang.ok).toBe(false);
      expect(result.hang.detail).toContain('timed out after 300 ms; process group killed');
      const child = Number(await read('hang.child'));
      for (let i = 0; i < 50 && alive(child); i++) await new Promise((res) => setTimeout(res, 20));
      expect(alive(child)).toBe(false);
    });

    it('passes the exit status and signals through, reports a missing program, and refuses the 65th launch at once', async () => {
      const agent = path.join(tmp, 'agent.sh');
      await writeFile(
        agent,
        [
          '#!/bin/sh',
          'cd /',
          'run() { "$HEARTLINE_LAUNCHER" --run -- "$@"; }',
          'run /bin/sh -c "exit 3"; echo "exit=$?"',
          'run /bin/sh -c "kill -TERM \\$\\$"; echo "signal=$?"',
          'run /nonexistent 2>&1; echo "missing=$?"',
          // SIGTERM to the client reaches the Resource (the agent stops a daemon this way).
          'run /bin/sleep 30 & c=$!; sleep 0.3; kill -TERM $c; wait $c; echo "term=$?"',
          `out=${path.join(tmp, 'out')}`,
          'i=0; while [ $i -lt 64 ]; do',
          '  "$HEARTLINE_LAUNCHER" --run -- /bin/sh -c "echo \\$\\$ >> $out/pids; exec /bin/sleep 30" & clients="$clients $!"',
          '  i=$((i+1))',
          'done',
          'while [ "$(wc -l < $out/pids)" -lt 64 ]; do sleep 0.1; done',
          'run /bin/true 2>&1; echo "65th=$?"',
          // The agent's timeout: SIGKILL to the clients; netd kills their Resources. (The agent cannot
          // signal uid 65534, so /proc says whether they live.)
          'kill -KILL $clients; sleep 0.5',
          'left=0; for p in $(cat $out/pids); do [ -e /proc/$p/stat ] && left=$((left+1)); done; echo "left=$left"',
        ].join('\n'),
        { mode: 0o755 },
      );
      await mkdir(path.join(tmp, 'out'));
      await chmod(path.join(tmp, 'out'), 0o777);
      const r = await netd(ns, [...launcherFlags, '--exec', agent]);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toEqual([
        'exit=3',
        'signal=143',
        'heartline-netd --run: /nonexistent: No such file or directory',
        'missing=127',
        'term=143',
        'heartline-netd --run: heartline-netd did not start it: too many Resource processes at once (64 started and not yet exited); try again later',
        '65th=126',
        'left=0',
      ]);
    });

    it('--resource-root: Resources run chrooted in the given root (host services), the identity check still answers, and bad uses are refused', async () => {
      // A root of its own: only a static program (a copy of netd) at /bin/probe, no shell.
      const root = path.join(tmp, 'root');
      await mkdir(path.join(root, 'bin'), { recursive: true, mode: 0o755 });
      await chmod(root, 0o755);
      await writeFile(path.join(root, 'bin/probe'), await readFile(await resolveNetdBinary()), {
        mode: 0o755,
      });
      const out = path.join(tmp, 'out');
      await mkdir(out);
      await chmod(out, 0o777);
      const agent = path.join(tmp, 'agent.sh');
      await writeFile(
        agent,
        [
          '#!/bin/sh',
          'cd /',
          'run() { "$HEARTLINE_LAUNCHER" --run -- "$@"; }',
          // The agent's identity check: netd's own binary is not inside the root.
          `run "$HEARTLINE_LAUNCHER" --self-status > ${out}/status; echo "status=$?"`,
          // Exists only inside the root: netd's usage, exit 2.
          'run /bin/probe --no-such-flag 2> /dev/null; echo "probe=$?"',
          // Exists only outside it.
          'run /bin/sh -c true 2>&1; echo "sh=$?"',
        ].join('\n'),
        { mode: 0o755 },
      );
      const r = await netd(ns, [...launcherFlags, `--resource-root=${root}`, '--exec', agent]);
      expect(r.stderr).toMatch(/capabilities kept: NET_ADMIN NET_RAW KILL SETUID SETGID SYS_CHROOT/);
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual([
        'status=0',
        'probe=2',
        'heartline-netd --run: /bin/sh: No such file or directory',
        'sh=127',
      ]);
      const status = parseProcStatus(await readFile(path.join(out, 'status'), 'utf8'));
      expect(credentialProblems(status, { uid: RESOURCE_UID, gid: RESOURCE_UID })).toEqual([]);
      expect({ CapBnd: status.capBnd, CapEff: status.capEff, NoNewPrivs: status.noNewPrivs }).toEqual({
        CapBnd: 0n,
        CapEff: 0n,
        NoNewPrivs: true,
      });

      const cases: Array<[string[], number, RegExp]> = [
        [[`--agent-uid=${AGENT_UID}`, `--resource-root=${root}`], 2, /--resource-root needs --resource-uid/],
        [
          [...launcherFlags, '--resource-root=host'],
          2,
          /--resource-root=host: want the absolute path of a directory/,
        ],
        [[...launcherFlags, `--resource-root=${root}/bin/probe`], 2, /want the absolute path of a directory/],
      ];
      for (const [flags, code, message] of cases) {
        const bad = await netd(ns, [...flags, '--exec', '/bin/true']);
        expect({ code: bad.code, stderr: bad.stderr }).toEqual({
          code,
          stderr: expect.stringMatching(message),
        });
      }
      const noChroot = await netd(
        ns,
        [...launcherFlags, `--resource-root=${root}`, '--exec', '/bin/true'],
        ['setpriv', '--bounding-set=-sys_chroot', '--'],
      );
      expect({ code: noChroot.code, stderr: noChroot.stderr }).toEqual({
        code: 1,
        stderr: expect.stringMatching(/needs CAP_SYS_CHROOT to start Resources there \(add SYS_CHROOT/),
      });
    });

    it('refuses bad launcher flags with the field and the fix, and --resource-uid without CAP_SETPCAP', async () => {
      const cases: Array<[string[], RegExp]> = [
        [
          [`--agent-uid=${AGENT_UID}`, '--resource-uid=0'],
          /--resource-uid=0: want a numeric uid other than 0/,
        ],
        [[`--agent-uid=${AGENT_UID}`, `--resource-uid=${AGENT_UID}`], /other than --agent-uid, e\.g\. 65534/],
        [[`--resource-uid=${RESOURCE_UID}`], /--resource-uid needs --agent-uid/],
        [[`--agent-uid=${AGENT_UID}`, '--resource-gid=5'], /--resource-gid needs --resource-uid/],
      ];
      for (const [flags, message] of cases) {
        const r = await netd(ns, [...flags, '--exec', '/bin/true']);
        expect({ code: r.code, stderr: r.stderr }).toEqual({
          code: 2,
          stderr: expect.stringMatching(message),
        });
      }
      const r = await netd(
        ns,
        [...launcherFlags, '--exec', '/bin/true'],
        ['setpriv', '--bounding-set=-setpcap', '--'],
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /--resource-uid: emptying the capability bounding set that Resources inherit failed: .*needs CAP_SETPCAP/,
      );
    });
  });
}
