/**
 * The real ServiceRunner (exec, LSB and systemd Resources), below. Size: the three kinds share
 * the process handling (timeouts, process groups, sandbox, output capture) that makes up most
 * of this file; splitting per kind would split that handling.
 */
import type { ChildProcess } from 'node:child_process';
import { pino, type Logger } from 'pino';
import { INIT_DIR, RESOURCE_DIR } from '../../api/resource-paths.js';
import type {
  Clock,
  ExecServiceSpec,
  Millis,
  RunResult,
  ServiceRunner,
  ServiceSpec,
} from '../../core/ports.js';
import {
  describeExit,
  killGroup,
  selfStatusAs,
  SpawnCommandRunner,
  spawnResource,
  type CommandResult,
  type CommandRunner,
} from './command-runner.js';
import { httpCheck, tcpCheck, type TargetGuard } from './health-checks.js';
import { ProbeTargets } from './probe-targets.js';
import {
  credentialProblems,
  parseProcStatus,
  resolveAllowed,
  type AllowedDir,
  type Launcher,
  type ResourceIdentity,
} from './sandbox.js';
import type { SpawnInit } from './command-runner.js';

export interface ProcessServiceRunnerComponents {
  clock: Clock;
  /**
   * Runs start/stop/status/check commands; inject a recorder to test systemd and LSB.
   * Default: a SpawnCommandRunner with `init.identity`.
   */
  commands?: CommandRunner;
  /** Where http and tcp checks may connect; default ProbeTargets (the node's own addresses). */
  targets?: TargetGuard;
  logger?: Logger;
}

export interface ProcessServiceRunnerInit {
  /** A daemon counts as started once alive this long after spawn (capped by the start timeout). Default 200. */
  daemonSettleMs?: Millis;
  /** Timeout for `probe` of a Resource without a health check (it runs `status`). Default 5000. */
  statusProbeTimeoutMs?: Millis;
  /** `systemctl` path. Default `systemctl` (from PATH). */
  systemctl?: string;
  /**
   * Who Resource processes run as: this user and group, with no capabilities (sandbox.ts).
   * Checked once before the first command (and again until it passes): a process that would
   * keep any privilege is never started. null: as the agent (tests that inject `commands`).
   */
  identity: ResourceIdentity | null;
  /** setpriv binary (default /usr/bin/setpriv). */
  setpriv?: string;
  /**
   * heartline-netd's launcher (an unprivileged agent under `heartline-netd --resource-uid`):
   * netd starts every Resource process as `launcher.identity`, which replaces `identity`.
   */
  launcher?: Launcher;
  /** Where the node's RESOURCE_DIR is mounted here; default RESOURCE_DIR. */
  resourceDir?: string;
  /** Where the node's INIT_DIR is here; default INIT_DIR. */
  initDir?: string;
}

/** What a command is in the Resource object, for messages: `spec.exec.start` etc. */
type CommandField = 'exec.start' | 'exec.stop' | 'exec.status' | 'healthCheck.exec.command';

/** LSB init-script exit codes (LSB core 20.2, "Init Script Actions"). */
const LSB_STATUS: Record<number, string> = {
  0: 'running',
  1: 'dead, pid file exists',
  2: 'dead, lock file exists',
  3: 'not running',
  4: 'status unknown',
};
const LSB_ACTION: Record<number, string> = {
  0: 'success',
  1: 'generic or unspecified error',
  2: 'invalid or excess arguments',
  3: 'unimplemented feature',
  4: 'user had insufficient privilege',
  5: 'program is not installed',
  6: 'program is not configured',
  7: 'program is not running',
};

interface Daemon {
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

/**
 * The real ServiceRunner. exec Resources run their argv arrays without a shell (`daemon`
 * mode keeps the start process as a child, see ExecServiceSpec); lsb Resources run
 * `<script> start|stop|status` and read status exit codes per LSB (0 running, 3 stopped);
 * systemd Resources run `systemctl start|stop|is-active -- <unit>`. Every command runs in its
 * own process group, killed whole at its timeout.
 *
 * Privilege (docs/security.md): a program runs only if it resolves, symlinks and ".." followed
 * on disk, to a regular file inside RESOURCE_DIR (LSB scripts: INIT_DIR), and the resolved
 * path is what runs; every process runs as `init.identity` with no capabilities and only
 * PATH and LANG in its environment; http and tcp checks connect only where `targets` allows.
 * A refusal fails the operation with a detail naming the field and the fix.
 */
export class ProcessServiceRunner implements ServiceRunner {
  private readonly clock: Clock;
  private readonly commands: CommandRunner;
  private readonly logger: Logger;
  private readonly settleMs: Millis;
  private readonly statusProbeTimeoutMs: Millis;
  private readonly systemctl: string;
  private readonly identity: ResourceIdentity | null;
  private readonly setpriv: string | undefined;
  /** How every Resource process is spawned (identity, setpriv, launcher). */
  private readonly spawnInit: SpawnInit;
  private readonly resourceDir: AllowedDir;
  private readonly initDir: AllowedDir;
  private readonly targets: TargetGuard;
  /** Set once the identity check passed. */
  private identityOk = false;
  private readonly daemons = new Map<string, Daemon>();
  /** Plain exec Resources without a status command: last known state. */
  private readonly started = new Set<string>();

  constructor(components: ProcessServiceRunnerComponents, init: ProcessServiceRunnerInit) {
    this.clock = components.clock;
    this.identity = init.launcher ? init.launcher.identity : init.identity;
    this.setpriv = init.setpriv;
    this.spawnInit = {
      identity: this.identity,
      ...(init.setpriv ? { setpriv: init.setpriv } : {}),
      ...(init.launcher ? { launcher: init.launcher } : {}),
    };
    this.commands =
      components.commands ?? new SpawnCommandRunner({ clock: components.clock }, this.spawnInit);
    this.targets = components.targets ?? new ProbeTargets();
    this.resourceDir = { api: RESOURCE_DIR, local: init.resourceDir ?? RESOURCE_DIR };
    this.initDir = { api: INIT_DIR, local: init.initDir ?? INIT_DIR };
    this.logger = (components.logger ?? pino({ name: 'heartline.services' })).child({
      component: 'service-runner',
    });
    this.settleMs = init.daemonSettleMs ?? 200;
    this.statusProbeTimeoutMs = init.statusProbeTimeoutMs ?? 5000;
    this.systemctl = init.systemctl ?? 'systemctl';
  }

  async start(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    const t0 = this.clock.now();
    const refused = await this.checkIdentity();
    if (refused) return this.result(spec.name, 'start', false, refused, t0);
    switch (spec.kind) {
      case 'exec':
        if (spec.exec.daemon) return this.startDaemon(spec.name, spec.exec, timeoutMs, t0);
        return this.exec(spec.name, 'start', 'exec.start', spec.exec.start, spec.exec, timeoutMs, (r) => {
          if (r.code === 0) this.started.add(spec.name);
          return r.code === 0;
        });
      case 'lsb':
        return this.lsbAction(spec.name, spec.lsb.script, 'start', timeoutMs);
      case 'systemd':
        return this.systemdAction(spec.name, spec.systemd.unit, 'start', timeoutMs);
    }
  }

  /** `systemctl start|stop` of `unit`: ok when systemctl exits 0 (it waits for the job). */
  private systemdAction(
    name: string,
    unit: string,
    verb: 'start' | 'stop',
    timeoutMs: Millis,
  ): Promise<RunResult> {
    return this.cmd(name, verb, this.systemctlArgv(verb, unit), {}, timeoutMs, (r) => r.code === 0);
  }

  /** `systemctl <verb> -- <unit>`: after "--" a unit named like an option is still a unit. */
  private systemctlArgv(verb: 'start' | 'stop' | 'is-active', unit: string): string[] {
    return [this.systemctl, verb, '--', unit];
  }

  /**
   * Before the first command: runs one process the way Resources run and reads its
   * /proc/self/status. Undefined when it ran as the identity with nothing left (no
   * capability in any set, no_new_privs, no supplementary groups); otherwise why not and the
   * fix. Rechecked on every call until it passes once.
   */
  private async checkIdentity(): Promise<string | undefined> {
    if (!this.identity || this.identityOk) return undefined;
    const id = this.identity;
    const r = await selfStatusAs(this.spawnInit, 5000);
    let problems: string[];
    try {
      problems = r.ok ? credentialProblems(parseProcStatus(r.status), id) : [r.problem];
    } catch (err) {
      problems = [(err as Error).message];
    }
    if (problems.length === 0) {
      this.identityOk = true;
      this.logger.info(
        { uid: id.uid, gid: id.gid, startedBy: this.spawnInit.launcher ? 'heartline-netd' : 'setpriv' },
        'Resources run unprivileged (checked)',
      );
      return undefined;
    }
    const fix = this.spawnInit.launcher
      ? `heartline-netd starts them (--resource-uid=${id.uid}): it needs the capabilities SETUID, SETGID, SETPCAP and KILL (deploy/base/agent/daemonset.yaml); its log says which step failed`
      : `the agent needs ${this.setpriv ?? '/usr/bin/setpriv'} (util-linux) and the capabilities SETUID, SETGID, SETPCAP and KILL (deploy/base/agent/daemonset.yaml), or set --resource-uid/--resource-gid`;
    const detail = `not run: Resources must run as uid ${id.uid} gid ${id.gid} without capabilities, and a test process did not (${problems.join('; ')}); ${fix}`;
    this.logger.error(
      { uid: id.uid, gid: id.gid, problems },
      'Resources cannot run unprivileged: not running them',
    );
    return detail;
  }

  /** Runs an exec Resource's command once its program resolves inside RESOURCE_DIR. */
  private async exec(
    name: string,
    op: string,
    field: CommandField,
    argv: readonly string[],
    exec: Pick<ExecServiceSpec, 'env' | 'cwd'>,
    timeoutMs: Millis,
    ok: (r: CommandResult) => boolean,
  ): Promise<RunResult> {
    const t0 = this.clock.now();
    const program = await this.resolveProgram(argv, field);
    if (!program.ok) return this.refused(name, op, program.detail, t0);
    return this.cmd(name, op, [program.path, ...argv.slice(1)], exec, timeoutMs, ok);
  }

  private async resolveProgram(
    argv: readonly string[],
    field: CommandField,
  ): Promise<{ ok: true; path: string } | { ok: false; detail: string }> {
    const [program] = argv;
    if (program === undefined) return { ok: false, detail: `spec.${field} is empty; set the program to run` };
    return resolveAllowed(program, this.resourceDir, `spec.${field}[0]`);
  }

  private refused(name: string, op: string, detail: string, t0: Millis): RunResult {
    const res = this.result(name, op, false, `not run: ${detail}`, t0);
    this.logger.warn({ resource: name, op, detail: res.detail }, 'resource command refused');
    return res;
  }

  async stop(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    const t0 = this.clock.now();
    const refused = await this.checkIdentity();
    if (refused) return this.result(spec.name, 'stop', false, refused, t0);
    switch (spec.kind) {
      case 'exec': {
        if (spec.exec.daemon) return this.stopDaemon(spec.name, spec.exec, timeoutMs, t0);
        this.started.delete(spec.name);
        if (!spec.exec.stop)
          return this.result(spec.name, 'stop', true, 'no stop command; nothing to do', t0);
        return this.exec(
          spec.name,
          'stop',
          'exec.stop',
          spec.exec.stop,
          spec.exec,
          timeoutMs,
          (r) => r.code === 0,
        );
      }
      case 'lsb':
        return this.lsbAction(spec.name, spec.lsb.script, 'stop', timeoutMs);
      case 'systemd':
        return this.systemdAction(spec.name, spec.systemd.unit, 'stop', timeoutMs);
    }
  }

  async status(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    const t0 = this.clock.now();
    if (spec.kind !== 'exec' || spec.exec.status) {
      const refused = await this.checkIdentity();
      if (refused) return this.result(spec.name, 'status', false, refused, t0);
    }
    switch (spec.kind) {
      case 'exec': {
        if (spec.exec.status)
          return this.exec(
            spec.name,
            'status',
            'exec.status',
            spec.exec.status,
            spec.exec,
            timeoutMs,
            (r) => r.code === 0,
          );
        if (spec.exec.daemon) {
          const d = this.daemons.get(spec.name);
          if (d && !d.exit) return this.result(spec.name, 'status', true, `daemon pid ${d.pid} running`, t0);
          return this.result(
            spec.name,
            'status',
            false,
            d?.exit ? `daemon exited (${exitText(d.exit)})` : 'daemon not running',
            t0,
          );
        }
        const running = this.started.has(spec.name);
        return this.result(
          spec.name,
          'status',
          running,
          `no status command; ${running ? 'started' : 'not started'} by this agent`,
          t0,
        );
      }
      case 'lsb': {
        const script = await resolveAllowed(spec.lsb.script, this.initDir, 'spec.lsb.script');
        if (!script.ok) return this.refused(spec.name, 'status', script.detail, t0);
        const r = await this.commands.run([script.path, 'status'], { timeoutMs });
        const meaning =
          r.code !== null ? (LSB_STATUS[r.code] ?? 'program-specific error') : describeExit(r, timeoutMs);
        return this.result(
          spec.name,
          'status',
          r.code === 0,
          `${spec.lsb.script} status: ${describeExit(r, timeoutMs)} (${meaning})${tail(r)}`,
          t0,
        );
      }
      case 'systemd': {
        const r = await this.commands.run(this.systemctlArgv('is-active', spec.systemd.unit), { timeoutMs });
        return this.result(
          spec.name,
          'status',
          r.code === 0,
          `systemctl is-active ${spec.systemd.unit}: ${r.output || describeExit(r, timeoutMs)}`,
          t0,
        );
      }
    }
  }

  async probe(spec: ServiceSpec): Promise<RunResult> {
    const hc = spec.healthCheck;
    if (!hc) return this.status(spec, this.statusProbeTimeoutMs);
    const t0 = this.clock.now();
    if (hc.http) {
      const o = await httpCheck(hc.http, hc.timeoutMs, this.clock, this.targets);
      return this.result(spec.name, 'probe', o.ok, o.detail, t0);
    }
    if (hc.tcp) {
      const o = await tcpCheck(hc.tcp, hc.timeoutMs, this.clock, this.targets);
      return this.result(spec.name, 'probe', o.ok, o.detail, t0);
    }
    if (hc.exec) {
      const refused = await this.checkIdentity();
      if (refused) return this.result(spec.name, 'probe', false, refused, t0);
      const program = await this.resolveProgram(hc.exec.command, 'healthCheck.exec.command');
      if (!program.ok) return this.refused(spec.name, 'probe', program.detail, t0);
      const r = await this.commands.run([program.path, ...hc.exec.command.slice(1)], {
        timeoutMs: hc.timeoutMs,
        ...(hc.exec.env ? { env: hc.exec.env } : {}),
      });
      return this.result(
        spec.name,
        'probe',
        r.code === 0,
        `${hc.exec.command.join(' ')}: ${describeExit(r, hc.timeoutMs)}${tail(r)}`,
        t0,
      );
    }
    return this.result(
      spec.name,
      'probe',
      false,
      'healthCheck has none of http, tcp, exec; set exactly one',
      t0,
    );
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.daemons.entries()].map(async ([name, d]) => {
        await this.terminate(d, 5000);
        this.daemons.delete(name);
      }),
    );
  }

  private result(name: string, op: string, ok: boolean, detail: string, t0: Millis): RunResult {
    return { ok, detail: `${name}: ${op}: ${detail}`, durationMs: this.clock.now() - t0 };
  }

  private async cmd(
    name: string,
    op: string,
    argv: readonly string[],
    exec: Pick<ExecServiceSpec, 'env' | 'cwd'>,
    timeoutMs: Millis,
    ok: (r: CommandResult) => boolean,
  ): Promise<RunResult> {
    const t0 = this.clock.now();
    const r = await this.commands.run(argv, {
      timeoutMs,
      ...(exec.env ? { env: exec.env } : {}),
      ...(exec.cwd ? { cwd: exec.cwd } : {}),
    });
    const res = this.result(
      name,
      op,
      ok(r),
      `${argv.join(' ')}: ${describeExit(r, timeoutMs)}${tail(r)}`,
      t0,
    );
    if (!res.ok) this.logger.warn({ resource: name, op, detail: res.detail }, 'resource command failed');
    return res;
  }

  private async lsbAction(
    name: string,
    script: string,
    action: 'start' | 'stop',
    timeoutMs: Millis,
  ): Promise<RunResult> {
    const t0 = this.clock.now();
    const resolved = await resolveAllowed(script, this.initDir, 'spec.lsb.script');
    if (!resolved.ok) return this.refused(name, action, resolved.detail, t0);
    const r = await this.commands.run([resolved.path, action], { timeoutMs });
    const meaning = r.code !== null ? ` (${LSB_ACTION[r.code] ?? 'reserved'})` : '';
    return this.result(
      name,
      action,
      r.code === 0,
      `${script} ${action}: ${describeExit(r, timeoutMs)}${meaning}${tail(r)}`,
      t0,
    );
  }

  private async startDaemon(
    name: string,
    exec: ExecServiceSpec,
    timeoutMs: Millis,
    t0: Millis,
  ): Promise<RunResult> {
    const existing = this.daemons.get(name);
    if (existing && !existing.exit)
      return this.result(name, 'start', true, `already running as pid ${existing.pid}`, t0);
    const program = await this.resolveProgram(exec.start, 'exec.start');
    if (!program.ok) return this.refused(name, 'start', program.detail, t0);
    const child = spawnResource(
      [program.path, ...exec.start.slice(1)],
      { ...(exec.env ? { env: exec.env } : {}), ...(exec.cwd ? { cwd: exec.cwd } : {}), stdio: 'ignore' },
      this.spawnInit,
    );
    const spawned = await new Promise<string | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    if (spawned !== undefined || child.pid === undefined) {
      return this.result(
        name,
        'start',
        false,
        `${exec.start.join(' ')}: could not run: ${spawned ?? 'no pid'}`,
        t0,
      );
    }
    const d: Daemon = {
      child,
      pid: child.pid,
      exited: new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          d.exit = { code, signal };
          resolve();
        }),
      ),
    };
    this.daemons.set(name, d);
    const settled = await this.waitExit(d, Math.min(this.settleMs, timeoutMs));
    if (settled) {
      this.daemons.delete(name);
      return this.result(
        name,
        'start',
        false,
        `${exec.start.join(' ')}: exited during start (${exitText(d.exit!)})`,
        t0,
      );
    }
    this.logger.info({ resource: name, pid: d.pid }, 'daemon started');
    return this.result(name, 'start', true, `daemon pid ${d.pid} running`, t0);
  }

  private async stopDaemon(
    name: string,
    exec: ExecServiceSpec,
    timeoutMs: Millis,
    t0: Millis,
  ): Promise<RunResult> {
    const d = this.daemons.get(name);
    let detail = '';
    if (exec.stop) {
      const program = await this.resolveProgram(exec.stop, 'exec.stop');
      if (program.ok) {
        const r = await this.commands.run([program.path, ...exec.stop.slice(1)], {
          timeoutMs,
          ...(exec.env ? { env: exec.env } : {}),
          ...(exec.cwd ? { cwd: exec.cwd } : {}),
        });
        detail = `${exec.stop.join(' ')}: ${describeExit(r, timeoutMs)}; `;
        if (!d && r.code !== 0) return this.result(name, 'stop', false, detail + 'stop command failed', t0);
      } else {
        // The daemon is still stopped (by signals): a refused stop command must not keep it running.
        detail = `stop command not run: ${program.detail}; `;
        if (!d) return this.refused(name, 'stop', program.detail, t0);
      }
    }
    if (!d || d.exit) {
      this.daemons.delete(name);
      return this.result(name, 'stop', true, detail + 'daemon not running', t0);
    }
    const left = Math.max(0, timeoutMs - (this.clock.now() - t0));
    const how = await this.terminate(d, left);
    this.daemons.delete(name);
    return this.result(name, 'stop', true, detail + how, t0);
  }

  /** SIGTERM to the group, SIGKILL if still alive after `graceMs`. */
  private async terminate(d: Daemon, graceMs: Millis): Promise<string> {
    if (d.exit) return `daemon pid ${d.pid} had exited (${exitText(d.exit)})`;
    killGroup(d.pid, 'SIGTERM');
    if (await this.waitExit(d, graceMs)) return `daemon pid ${d.pid} stopped by SIGTERM to its process group`;
    killGroup(d.pid, 'SIGKILL');
    await d.exited;
    return `daemon pid ${d.pid} ignored SIGTERM for ${graceMs} ms; process group killed with SIGKILL`;
  }

  /** Resolves true if the daemon exits within `ms`. */
  private waitExit(d: Daemon, ms: Millis): Promise<boolean> {
    if (d.exit) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.clock.after(ms, () => resolve(false));
      void d.exited.then(() => {
        timer.stop();
        resolve(true);
      });
    });
  }
}

function exitText(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal ? `signal ${e.signal}` : `exit ${e.code}`;
}

function tail(r: CommandResult): string {
  return r.output ? `: ${r.output.split('\n').slice(-3).join(' | ')}` : '';
}
