import {
  mkdtempSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
  existsSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SystemClock } from '../../../../src/adapters/clock.js';
import type {
  CommandOptions,
  CommandResult,
  CommandRunner,
} from '../../../../src/adapters/services/command-runner.js';
import { ProcessServiceRunner } from '../../../../src/adapters/services/process-service-runner.js';
import type { Argv, ServiceSpec } from '../../../../src/core/ports.js';
import { servicesContract } from '../../../contract/services.js';
import { ScriptedServiceRunner } from '../../../fakes/services.js';

const logger = pino({ level: 'silent' });
const clock = new SystemClock();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** As root, Resources run as nobody (through setpriv), as in the agent; otherwise as this user. */
const identity = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : null;

/**
 * A stand-in for the node's /etc/heartline/resource.d (and /etc/init.d), readable by the
 * Resource user, and a scratch directory it may write. `install` writes a shell script into
 * it and returns the path a Resource names it by.
 */
function nodeDirs() {
  const dir = mkdtempSync(join(tmpdir(), 'hl-svc-'));
  chmodSync(dir, 0o755);
  const resourceDir = join(dir, 'resource.d');
  const initDir = join(dir, 'init.d');
  const scratch = join(dir, 'scratch');
  for (const d of [resourceDir, initDir, scratch]) mkdirSync(d, { mode: 0o755 });
  chmodSync(scratch, 0o777);
  const write = (where: string, name: string, body: string): void => {
    writeFileSync(join(where, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(where, name), 0o755);
  };
  return {
    dir,
    scratch,
    resourceDir,
    initDir,
    install: (name: string, body: string): string => {
      write(resourceDir, name, body);
      return `/etc/heartline/resource.d/${name}`;
    },
    installInit: (name: string, body: string): string => {
      write(initDir, name, body);
      return `/etc/init.d/${name}`;
    },
  };
}
type NodeDirs = ReturnType<typeof nodeDirs>;

const runnerFor = (d: NodeDirs) =>
  new ProcessServiceRunner(
    { clock, logger },
    { daemonSettleMs: 300, identity, resourceDir: d.resourceDir, initDir: d.initDir },
  );

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Alive and not a zombie (an orphan's zombie may linger when pid 1 does not reap). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function httpDaemon(d: NodeDirs, name: string, port: number): ServiceSpec {
  const code = `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`;
  return {
    name,
    kind: 'exec',
    exec: { start: [d.install('http-daemon', `exec '${process.execPath}' -e "${code}"`)], daemon: true },
    healthCheck: { http: { host: '127.0.0.1', port, path: '/healthz' }, timeoutMs: 1000 },
  };
}

servicesContract('ProcessServiceRunner', async () => {
  const d = nodeDirs();
  const mark = join(d.scratch, 'running');
  const port = await freePort();
  const svc = d.install(
    'mark',
    'case "$1" in start) touch "$MARK" ;; stop) rm -f "$MARK" ;; *) test -f "$MARK" ;; esac',
  );
  const no = d.install('false', 'exit 1');
  return {
    runner: runnerFor(d),
    specs: {
      plain: {
        name: 'test/plain',
        kind: 'exec',
        exec: { start: [svc, 'start'], stop: [svc, 'stop'], status: [svc, 'status'], env: { MARK: mark } },
        healthCheck: { exec: { command: [svc, 'check'], env: { MARK: mark } }, timeoutMs: 2000 },
      },
      failing: {
        name: 'test/failing',
        kind: 'exec',
        exec: { start: [d.install('failing', 'echo broken >&2; exit 3')], status: [no] },
      },
      hanging: {
        name: 'test/hanging',
        kind: 'exec',
        exec: { start: [d.install('hanging', 'sleep 30 & sleep 30')], status: [no] },
      },
      daemon: httpDaemon(d, 'test/daemon', port),
      missing: {
        name: 'test/missing',
        kind: 'exec',
        exec: { start: ['/etc/heartline/resource.d/heartline-test-binary'] },
      },
    },
    timeoutMs: 5000,
    shortTimeoutMs: 200,
    pause: () => sleep(50),
    teardown: async () => rmSync(d.dir, { recursive: true, force: true }),
  };
});

servicesContract('ScriptedServiceRunner', () => {
  const spec = (name: string): ServiceSpec => ({ name, kind: 'exec', exec: { start: ['true'] } });
  const runner = new ScriptedServiceRunner({ clock })
    .script('test/failing', { start: 'fail' })
    .script('test/hanging', { start: 'hang' })
    .script('test/missing', { start: { ok: false, detail: '/nonexistent: could not run: ENOENT' } });
  return Promise.resolve({
    runner,
    specs: {
      plain: spec('test/plain'),
      failing: spec('test/failing'),
      hanging: spec('test/hanging'),
      daemon: { ...spec('test/daemon'), exec: { start: ['server'], daemon: true } },
      missing: spec('test/missing'),
    },
    timeoutMs: 5000,
    shortTimeoutMs: 20,
    pause: () => sleep(1),
    teardown: () => Promise.resolve(),
  });
});

describe('ProcessServiceRunner (real processes)', () => {
  let d: NodeDirs;
  let dir: string;
  let runner: ProcessServiceRunner;
  beforeEach(() => {
    d = nodeDirs();
    dir = d.scratch;
    runner = runnerFor(d);
  });
  afterEach(async () => {
    await runner.close();
    rmSync(d.dir, { recursive: true, force: true });
  });

  it('kills the whole process group at the timeout, grandchildren included', async () => {
    const pidfile = join(dir, 'pid');
    const spec: ServiceSpec = {
      name: 'ns/pg',
      kind: 'exec',
      exec: { start: [d.install('forks', `sleep 30 & echo $! > ${pidfile}; wait`)] },
    };
    const r = await runner.start(spec, 300);
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/ns\/pg: start: .*timed out after 300 ms; process group killed/);
    const grandchild = Number(readFileSync(pidfile, 'utf8'));
    for (let i = 0; i < 50 && alive(grandchild); i++) await sleep(10);
    expect(alive(grandchild)).toBe(false);
  });

  it('passes env and runs without a shell (no expansion of metacharacters)', async () => {
    const ok = await runner.start(
      {
        name: 'ns/env',
        kind: 'exec',
        exec: { start: [d.install('env', 'test "$FOO" = "b a r"')], env: { FOO: 'b a r' } },
      },
      2000,
    );
    expect(ok.ok).toBe(true);
    const out = join(dir, 'x');
    const literal = await runner.start(
      { name: 'ns/lit', kind: 'exec', exec: { start: [d.install('touch', 'touch "$1"'), `${out};true`] } },
      2000,
    );
    expect(literal.ok).toBe(true);
    expect(existsSync(`${out};true`)).toBe(true);
  });

  it('reports stderr and the exit code of a failed command', async () => {
    const r = await runner.start(
      { name: 'ns/bad', kind: 'exec', exec: { start: [d.install('bad', 'echo no config >&2; exit 6')] } },
      2000,
    );
    expect(r).toMatchObject({ ok: false });
    expect(r.detail).toContain('exit 6');
    expect(r.detail).toContain('no config');
  });

  it('daemon without a stop command: SIGTERM to the group, SIGKILL when ignored', async () => {
    const spec: ServiceSpec = {
      name: 'ns/stubborn',
      kind: 'exec',
      exec: { start: [d.install('stubborn', 'trap "" TERM; sleep 30 & wait; sleep 30')], daemon: true },
    };
    expect((await runner.start(spec, 2000)).ok).toBe(true);
    const r = await runner.stop(spec, 300);
    expect(r.ok).toBe(true);
    expect(r.detail).toMatch(/SIGKILL/);
    const polite: ServiceSpec = {
      name: 'ns/polite',
      kind: 'exec',
      exec: { start: [d.install('polite', 'exec sleep 30')], daemon: true },
    };
    expect((await runner.start(polite, 2000)).ok).toBe(true);
    expect((await runner.stop(polite, 2000)).detail).toMatch(/stopped by SIGTERM/);
  });

  it('daemon with a stop command runs it first', async () => {
    const pidfile = join(dir, 'pid');
    const spec: ServiceSpec = {
      name: 'ns/stopcmd',
      kind: 'exec',
      exec: {
        start: [d.install('pid', `echo $$ > ${pidfile}; exec sleep 30`)],
        stop: [d.install('kill', `kill $(cat ${pidfile})`)],
        daemon: true,
      },
    };
    expect((await runner.start(spec, 2000)).ok).toBe(true);
    const r = await runner.stop(spec, 2000);
    expect(r.ok).toBe(true);
    expect(r.detail).toMatch(/resource.d\/kill: exit 0/);
    expect((await runner.status(spec, 1000)).ok).toBe(false);
  });

  it('a daemon that exits during start fails the start; one that dies later fails status', async () => {
    const quick: ServiceSpec = {
      name: 'ns/quick',
      kind: 'exec',
      exec: { start: [d.install('quick', 'exit 2')], daemon: true },
    };
    const r = await runner.start(quick, 2000);
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/exited during start \(exit 2\)/);
    const brief: ServiceSpec = {
      name: 'ns/brief',
      kind: 'exec',
      exec: { start: [d.install('brief', 'exec sleep 0.5')], daemon: true },
    };
    expect((await runner.start(brief, 2000)).ok).toBe(true);
    await sleep(700);
    const st = await runner.status(brief, 1000);
    expect(st.ok).toBe(false);
    expect(st.detail).toMatch(/daemon exited \(exit 0\)/);
  });

  it('runs only what resolves inside the directory: a link leading out, a shell, an LSB script elsewhere are refused and nothing runs', async () => {
    const ran = join(dir, 'ran');
    writeFileSync(join(d.dir, 'outside.sh'), `#!/bin/sh\ntouch ${ran}\n`, { mode: 0o755 });
    symlinkSync(join(d.dir, 'outside.sh'), join(d.resourceDir, 'linked'));
    const linked = await runner.start(
      { name: 'ns/linked', kind: 'exec', exec: { start: ['/etc/heartline/resource.d/linked'] } },
      2000,
    );
    expect(linked.ok).toBe(false);
    expect(linked.detail).toBe(
      `ns/linked: start: not run: spec.exec.start[0] /etc/heartline/resource.d/linked: resolves to ${join(d.dir, 'outside.sh')}, outside /etc/heartline/resource.d (a symbolic link leading out); install the program itself in /etc/heartline/resource.d, not a link to it`,
    );
    const shell = await runner.probe({
      name: 'ns/sh',
      kind: 'exec',
      exec: { start: ['/etc/heartline/resource.d/linked'] },
      healthCheck: { exec: { command: ['/bin/sh', '-c', `touch ${ran}`] }, timeoutMs: 1000 },
    });
    expect(shell.detail).toContain(
      'not run: spec.healthCheck.exec.command[0] /bin/sh: not a program in /etc/heartline/resource.d',
    );
    symlinkSync(join(d.dir, 'outside.sh'), join(d.initDir, 'linked'));
    const lsb = await runner.start(
      { name: 'ns/lsb', kind: 'lsb', lsb: { script: '/etc/init.d/linked' } },
      2000,
    );
    expect(lsb.detail).toContain('not run: spec.lsb.script /etc/init.d/linked: resolves to');
    const elsewhere = await runner.status(
      { name: 'ns/lsb', kind: 'lsb', lsb: { script: '/usr/sbin/svc' } },
      2000,
    );
    expect(elsewhere.detail).toContain(
      'not run: spec.lsb.script /usr/sbin/svc: not a program in /etc/init.d',
    );
    expect(existsSync(ran)).toBe(false);
  });

  it('lsb: start/stop/status by script, status exit codes read per LSB', async () => {
    const mark = join(dir, 'lsb-running');
    const script = d.installInit(
      'svc',
      `case "$1" in\n start) touch ${mark} ;;\n stop) rm -f ${mark} ;;\n status) [ -f ${mark} ] && exit 0; exit 3 ;;\n *) exit 2 ;;\nesac`,
    );
    const spec: ServiceSpec = { name: 'ns/lsb', kind: 'lsb', lsb: { script } };
    const stopped = await runner.status(spec, 2000);
    expect(stopped.ok).toBe(false);
    expect(stopped.detail).toContain('exit 3 (not running)');
    expect((await runner.start(spec, 2000)).ok).toBe(true);
    const running = await runner.status(spec, 2000);
    expect(running.ok).toBe(true);
    expect(running.detail).toContain('(running)');
    expect((await runner.stop(spec, 2000)).ok).toBe(true);
    expect((await runner.status(spec, 2000)).ok).toBe(false);
  });

  it('http check: wrong status and refused connection fail, expected status passes', async () => {
    const srv = http.createServer((q, s) => {
      s.statusCode = q.url === '/down' ? 503 : 204;
      s.end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const spec = (path: string, expectStatus?: number): ServiceSpec => ({
        name: 'ns/web',
        kind: 'exec',
        exec: { start: ['true'] },
        healthCheck: {
          http: { host: '127.0.0.1', port, path, ...(expectStatus ? { expectStatus } : {}) },
          timeoutMs: 1000,
        },
      });
      const down = await runner.probe(spec('/down'));
      expect(down.ok).toBe(false);
      expect(down.detail).toContain('HTTP 503 (want 2xx)');
      expect((await runner.probe(spec('/', 204))).ok).toBe(true);
      expect((await runner.probe(spec('/', 200))).ok).toBe(false);
    } finally {
      await new Promise((r) => srv.close(r));
    }
    const refused = await runner.probe({
      name: 'ns/web',
      kind: 'exec',
      exec: { start: ['true'] },
      healthCheck: { http: { host: '127.0.0.1', port }, timeoutMs: 1000 },
    });
    expect(refused.ok).toBe(false);
    expect(refused.detail).toContain('ECONNREFUSED');
  });

  it('https check: verifies the certificate by default; insecureSkipTLSVerify accepts a self-signed one', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=heartline-test',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const srv = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (q, s) =>
      s.end('ok'),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const spec = (insecureSkipTLSVerify?: boolean): ServiceSpec => ({
      name: 'ns/tls',
      kind: 'exec',
      exec: { start: ['true'] },
      healthCheck: {
        http: {
          host: '127.0.0.1',
          port,
          scheme: 'https',
          ...(insecureSkipTLSVerify !== undefined ? { insecureSkipTLSVerify } : {}),
        },
        timeoutMs: 2000,
      },
    });
    try {
      for (const verified of [spec(), spec(false)]) {
        const r = await runner.probe(verified);
        expect(r.ok).toBe(false);
        expect(r.detail).toContain(`GET https://127.0.0.1:${port}/: DEPTH_ZERO_SELF_SIGNED_CERT`);
        expect(r.detail).toContain('healthCheck.http.insecureSkipTLSVerify: true');
      }
      const skipped = await runner.probe(spec(true));
      expect(skipped.ok).toBe(true);
      expect(skipped.detail).toContain(`GET https://127.0.0.1:${port}/: HTTP 200`);
      // Plain http against the TLS port is not silently upgraded: the server drops it.
      const plain = await runner.probe({
        ...spec(),
        healthCheck: { http: { host: '127.0.0.1', port }, timeoutMs: 2000 },
      });
      expect(plain.ok).toBe(false);
      expect(plain.detail).toContain(`GET http://127.0.0.1:${port}/: `);
    } finally {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });

  it('http check times out on a server that never answers', async () => {
    const held: net.Socket[] = [];
    const srv = net.createServer((c) => held.push(c)); // accepts, never answers
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const r = await runner.probe({
        name: 'ns/slow',
        kind: 'exec',
        exec: { start: ['true'] },
        healthCheck: { http: { host: '127.0.0.1', port }, timeoutMs: 150 },
      });
      expect(r.ok).toBe(false);
      expect(r.detail).toContain('timed out after 150 ms');
    } finally {
      held.forEach((c) => c.destroy());
      await new Promise((r) => srv.close(r));
    }
  });

  it('tcp check: connects to a listener, fails on a closed port', async () => {
    const srv = net.createServer((c) => c.end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const spec: ServiceSpec = {
      name: 'ns/tcp',
      kind: 'exec',
      exec: { start: ['true'] },
      healthCheck: { tcp: { host: '127.0.0.1', port }, timeoutMs: 1000 },
    };
    try {
      expect((await runner.probe(spec)).ok).toBe(true);
    } finally {
      await new Promise((r) => srv.close(r));
    }
    const closed = await runner.probe(spec);
    expect(closed.ok).toBe(false);
    expect(closed.detail).toContain('ECONNREFUSED');
  });
});

/** Records commands instead of running them: systemd is not available in this environment. */
class RecordingCommands implements CommandRunner {
  readonly argv: Argv[] = [];
  constructor(private readonly reply: (argv: Argv) => Partial<CommandResult>) {}
  run(argv: Argv, _options: CommandOptions): Promise<CommandResult> {
    this.argv.push(argv);
    return Promise.resolve({
      code: 0,
      signal: null,
      timedOut: false,
      output: '',
      durationMs: 1,
      ...this.reply(argv),
    });
  }
}

describe('ProcessServiceRunner systemd (commands recorded, not run)', () => {
  const spec: ServiceSpec = { name: 'ns/nginx', kind: 'systemd', systemd: { unit: 'nginx.service' } };

  it('issues systemctl start / is-active / stop for the unit', async () => {
    let active = false;
    const commands = new RecordingCommands((argv) => {
      if (argv[1] === 'start') active = true;
      if (argv[1] === 'stop') active = false;
      if (argv[1] === 'is-active')
        return active ? { code: 0, output: 'active' } : { code: 3, output: 'inactive' };
      return {};
    });
    const runner = new ProcessServiceRunner({ clock, commands, logger }, { identity: null });
    expect((await runner.start(spec, 1000)).ok).toBe(true);
    const st = await runner.status(spec, 1000);
    expect(st).toMatchObject({ ok: true });
    expect(st.detail).toContain('is-active nginx.service: active');
    expect((await runner.probe(spec)).ok).toBe(true);
    expect((await runner.stop(spec, 1000)).ok).toBe(true);
    const after = await runner.status(spec, 1000);
    expect(after.ok).toBe(false);
    expect(after.detail).toContain('inactive');
    expect(commands.argv).toEqual([
      ['systemctl', 'start', '--', 'nginx.service'],
      ['systemctl', 'is-active', '--', 'nginx.service'],
      ['systemctl', 'is-active', '--', 'nginx.service'],
      ['systemctl', 'stop', '--', 'nginx.service'],
      ['systemctl', 'is-active', '--', 'nginx.service'],
    ]);
  });

  it('puts "--" before the unit: a unit named like an option is never read as one', async () => {
    const commands = new RecordingCommands(() => ({}));
    const runner = new ProcessServiceRunner({ clock, commands, logger }, { identity: null });
    const odd: ServiceSpec = { name: 'ns/odd', kind: 'systemd', systemd: { unit: '-.mount' } };
    await runner.start(odd, 1000);
    await runner.status(odd, 1000);
    await runner.stop(odd, 1000);
    expect(commands.argv.map((a) => a.slice(1))).toEqual([
      ['start', '--', '-.mount'],
      ['is-active', '--', '-.mount'],
      ['stop', '--', '-.mount'],
    ]);
  });

  it('a failed systemctl start is ok:false with its output', async () => {
    const commands = new RecordingCommands(() => ({
      code: 5,
      output: 'Failed to start nginx.service: Unit nginx.service not found.',
    }));
    const r = await new ProcessServiceRunner({ clock, commands, logger }, { identity: null }).start(
      spec,
      1000,
    );
    expect(r.ok).toBe(false);
    expect(r.detail).toContain('Unit nginx.service not found');
  });
});

describe('ScriptedServiceRunner', () => {
  it('records calls, plays one-shot outcomes first, and tracks health', async () => {
    const runner = new ScriptedServiceRunner({ clock }).once('a', 'start', 'fail');
    const spec: ServiceSpec = {
      name: 'a',
      kind: 'exec',
      exec: { start: ['x'] },
      healthCheck: { tcp: { host: '127.0.0.1', port: 1 }, timeoutMs: 10 },
    };
    expect((await runner.start(spec, 100)).ok).toBe(false);
    expect((await runner.start(spec, 100)).ok).toBe(true);
    runner.setUnhealthy('a');
    expect((await runner.probe(spec)).ok).toBe(false);
    runner.setUnhealthy('a', false);
    expect((await runner.probe(spec)).ok).toBe(true);
    runner.crash('a');
    expect((await runner.status(spec, 100)).ok).toBe(false);
    expect(runner.calls.map((c) => c.op)).toEqual(['start', 'start', 'probe', 'probe', 'status']);
  });
});
