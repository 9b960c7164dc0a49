/**
 * heartline-netd --exec with least privilege (docs/adr/0020-unprivileged-agent.md), in a fresh
 * network namespace per test (`hl-lp-<pid>-<n>`, deleted afterwards): netd binds the
 * heartbeat socket (UDP 694) and hands it over on fd 4, and runs its child as uid 65532 with
 * no capability; the child uses the socket, cannot bind port 694 itself, and still gets
 * addresses through netd. Needs root.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, lstat, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { resolveNetdBinary } from '../../src/adapters/linux/netd-binary.js';
import { agentRoot } from '../../hack/lab/cluster.js';

const sh = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const isRoot = process.getuid?.() === 0;
const prefix = `hl-lp-${process.pid}-`;
const AGENT_UID = 65532;
let seq = 0;

async function ip(...args: string[]): Promise<string> {
  return (await sh('ip', args, { timeout: 10_000 })).stdout;
}

async function makeNode(): Promise<string> {
  const ns = `${prefix}${seq++}`;
  await ip('netns', 'add', ns);
  try {
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
    for (const l of ['eth0', 'eth0p']) await ip('-n', ns, 'link', 'set', l, 'up');
    await ip('-n', ns, 'addr', 'add', '198.18.1.1/24', 'dev', 'eth0');
  } catch (err) {
    await ip('netns', 'del', ns).catch(() => undefined);
    throw err;
  }
  return ns;
}

/** Runs heartline-netd in `ns` with `args` (and `wrap` before it, e.g. setpriv); output and exit code. */
async function netd(
  ns: string,
  args: string[],
  wrap: string[] = [],
  cwd = ROOT,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const bin = await resolveNetdBinary();
  const child = spawn('ip', ['netns', 'exec', ns, ...wrap, bin, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(timer);
  return { stdout, stderr, code };
}

interface ChildReport {
  status: Record<string, string>;
  bound: { address: string; port: number };
  receiveBuffer: number;
  wrongPort: string;
  inUse: string;
  roundTripsAfterReopen: number;
  ownLowPortBind: string;
  netdAdded: boolean;
  rttUs: Record<'inherited' | 'own', { p50: number; p99: number }>;
}

if (!isRoot) {
  describe('heartline-netd least privilege', () => {
    it.skip('SKIPPED: needs root to create network namespaces and change uids', () => undefined);
  });
} else {
  jest.setTimeout(60_000);

  describe('heartline-netd --exec with --heartbeat-bind and --agent-uid', () => {
    let ns: string;
    let tmp: string;
    beforeEach(async () => {
      ns = await makeNode();
      tmp = await mkdtemp(path.join(os.tmpdir(), 'hl-lp-'));
    });
    afterEach(async () => {
      await ip('netns', 'del', ns).catch(() => undefined);
      await rm(tmp, { recursive: true, force: true });
    });

    it('the agent runs as uid 65532 with CapEff 0, uses the heartbeat socket netd bound on 694, and netd still binds addresses for it', async () => {
      const state = path.join(tmp, 'state');
      // The checkout as uid 65532 reaches it (a bind mount when CI clones into a 0700 directory).
      const src = agentRoot(`lp-${process.pid}`);
      let r: Awaited<ReturnType<typeof netd>>;
      try {
        r = await netd(
          ns,
          [
            '--heartbeat-bind=198.18.1.1:694',
            `--agent-uid=${AGENT_UID}`,
            `--agent-state-dir=${state}`,
            '--exec',
            process.execPath,
            '--import',
            'tsx',
            path.join(src.path, 'test/e2e/helpers/unprivileged-agent-child.ts'),
            '694',
            '198.18.1.1',
            'eth0',
            '198.18.1.77/24',
            '2000',
          ],
          [],
          src.path,
        );
      } finally {
        src.release();
      }
      expect(r.stderr).toMatch(/capabilities kept: NET_ADMIN NET_RAW KILL/);
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildReport;
      expect(report.status).toMatchObject({
        Uid: `${AGENT_UID} ${AGENT_UID} ${AGENT_UID} ${AGENT_UID}`,
        Gid: `${AGENT_UID} ${AGENT_UID} ${AGENT_UID} ${AGENT_UID}`,
        Groups: '',
        CapInh: '0000000000000000',
        CapPrm: '0000000000000000',
        CapEff: '0000000000000000',
        CapAmb: '0000000000000000',
        // Run as root here, netd holds CAP_SETPCAP and empties the bounding set too.
        CapBnd: '0000000000000000',
        NoNewPrivs: '1',
      });
      expect(report.bound).toEqual({ address: '198.18.1.1', port: 694 });
      // netd's default receive buffer (2 MiB asked, counted twice by the kernel), which an
      // unprivileged agent could not set past net.core.rmem_max itself.
      expect(report.receiveBuffer).toBe(2 * 2 * 1024 * 1024);
      expect(report.wrongPort).toMatch(
        /spec\.transport\.port is 695 but heartline-netd bound the heartbeat socket to port 694 .*set both to the same port/,
      );
      expect(report.inUse).toMatch(/already in use/);
      expect(report.roundTripsAfterReopen).toBe(5);
      // Without netd the same process cannot bind a port below 1024.
      expect(report.ownLowPortBind).toBe('EACCES');
      expect(report.netdAdded).toBe(true);
      // The state directory is the agent's.
      const st = await stat(state);
      expect([st.uid, st.gid, st.mode & 0o777]).toEqual([AGENT_UID, AGENT_UID, 0o700]);
      process.stdout.write(
        `heartbeat round trip (µs, p50/p99, 2000 rounds): inherited socket ${report.rttUs.inherited.p50}/${report.rttUs.inherited.p99}, own socket ${report.rttUs.own.p50}/${report.rttUs.own.p99}\n`,
      );
    });

    it('gives the agent the files a root agent left in its state directory, but not links', async () => {
      const state = path.join(tmp, 'state');
      await chmod(tmp, 0o755); // mkdtemp's 0700 would keep the agent out of its own directory
      await sh('mkdir', ['-m', '0755', state]);
      await writeFile(path.join(state, 'incarnation-lab.x'), '41\n', { mode: 0o600 });
      await writeFile(path.join(tmp, 'elsewhere'), "not the agent's\n", { mode: 0o600 });
      await sh('ln', [path.join(tmp, 'elsewhere'), path.join(state, 'hardlink')]);
      await sh('ln', ['-s', path.join(tmp, 'elsewhere'), path.join(state, 'symlink')]);
      const r = await netd(ns, [
        `--agent-uid=${AGENT_UID}`,
        `--agent-state-dir=${state}`,
        '--exec',
        'cat',
        path.join(state, 'incarnation-lab.x'),
      ]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('41\n');
      // A hard link (two names) and a symbolic link stay root's: the file they name is not the agent's.
      expect((await stat(path.join(tmp, 'elsewhere'))).uid).toBe(0);
      expect((await lstat(path.join(state, 'symlink'))).uid).toBe(0);
      expect((await stat(path.join(state, 'incarnation-lab.x'))).uid).toBe(AGENT_UID);
      expect(r.stderr).toMatch(/gave 1 file\(s\) to uid 65532/);
      // The next start, with the DaemonSet's capabilities only (no CAP_DAC_OVERRIDE to look
      // into the agent's 0700 directory): nothing to do, the agent reads its counter.
      const again = await netd(
        ns,
        [
          `--agent-uid=${AGENT_UID}`,
          `--agent-state-dir=${state}`,
          '--exec',
          'cat',
          path.join(state, 'incarnation-lab.x'),
        ],
        [
          'setpriv',
          '--bounding-set=-all,+net_admin,+net_raw,+net_bind_service,+setuid,+setgid,+chown,+kill',
          '--inh-caps=-all',
          '--no-new-privs',
        ],
      );
      expect([again.code, again.stdout]).toEqual([0, '41\n']);
    });

    it('does not start the agent (exit 126) when it cannot drop it: netd without CAP_SETGID / CAP_SETUID', async () => {
      const r = await netd(
        ns,
        [`--agent-uid=${AGENT_UID}`, '--exec', 'true'],
        ['setpriv', '--bounding-set=-setuid,-setgid', '--inh-caps=-all'],
      );
      expect(r.code).toBe(126);
      expect(r.stderr).toMatch(/--agent-uid=65532: .*needs CAP_SETGID.* failed: .*not starting the agent/);
    });

    it('refuses bad flags with the field and the fix', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['--agent-uid=0', '--exec', 'true'], /--agent-uid=0: want a numeric uid other than 0/],
        [['--agent-uid=nobody', '--exec', 'true'], /--agent-uid=nobody: want a numeric uid/],
        [['--agent-uid=5', '--agent-gid=x', '--exec', 'true'], /--agent-gid=x: want a numeric gid/],
        [['--agent-state-dir=/tmp/x', '--exec', 'true'], /--agent-state-dir needs --agent-uid/],
        [['--heartbeat-bind=694', '--exec', 'true'], /--heartbeat-bind=694: want ADDR:PORT/],
        [['--heartbeat-bind=::1:694', '--exec', 'true'], /want ADDR:PORT .*IPv6 as \[ADDR\]:PORT/],
        [['--heartbeat-bind=198.18.9.9:694', '--exec', 'true'], /not on this node/],
        [['--heartbeat-bind=0.0.0.0:694'], /are for --exec/],
        [['--heartbeat-rcvbuf=1000', '--exec', 'true'], /--heartbeat-rcvbuf=1000: want bytes from 65536/],
        [['--heartbeat-rcvbuf=2MiB', '--exec', 'true'], /--heartbeat-rcvbuf=2MiB: want bytes/],
        [['--heartbeat-rcvbuf=2097152', '--exec', 'true'], /--heartbeat-rcvbuf needs --heartbeat-bind/],
      ];
      for (const [args, msg] of cases) {
        const r = await netd(ns, args);
        expect([r.code, r.stderr]).toEqual([expect.any(Number), expect.stringMatching(msg)]);
        expect(r.code).not.toBe(0);
      }
    });

    it('binds IPv6 and port 0 too, and tells the agent what it bound', async () => {
      const r = await netd(ns, [
        '--heartbeat-bind=[::]:0',
        '--exec',
        'sh',
        '-c',
        'echo "$HEARTLINE_HEARTBEAT_FD $HEARTLINE_HEARTBEAT_BIND"',
      ]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^4 \[::\]:\d+\n$/);
      expect(r.stdout).not.toMatch(/:0\n/);
    });

    it('sizes the heartbeat socket past net.core.rmem_max (--heartbeat-rcvbuf, SO_RCVBUFFORCE)', async () => {
      const rmemMax = Number((await readFile('/proc/sys/net/core/rmem_max', 'utf8')).trim());
      const want = Math.max(8 * 1024 * 1024, rmemMax * 2); // past the cap SO_RCVBUF would meet
      const r = await netd(ns, [
        '--heartbeat-bind=198.18.1.1:0',
        `--heartbeat-rcvbuf=${want}`,
        '--exec',
        process.execPath,
        '-e',
        "const s=require('dgram').createSocket('udp4');s.bind({fd:4},()=>{console.log(s.getRecvBufferSize());process.exit(0)})",
      ]);
      expect(r.code).toBe(0);
      expect(Number(r.stdout.trim())).toBe(2 * want);
    });
  });
}
