import { spawn, type ChildProcess } from 'node:child_process';
import { pino, type Logger } from 'pino';
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
  SpawnCommandRunner,
  type CommandResult,
  type CommandRunner,
} from './command-runner.js';
import { httpCheck, tcpCheck } from './health-checks.js';

export interface ProcessServiceRunnerComponents {
  clock: Clock;
  /** Runs start/stop/status/check commands; inject a recorder to test systemd and LSB. */
  commands?: CommandRunner;
  logger?: Logger;
}

export interface ProcessServiceRunnerInit {
  /** A daemon counts as started once alive this long after spawn (capped by the start timeout). Default 200. */
  daemonSettleMs?: Millis;
  /** Timeout for `probe` of a Resource without a health check (it runs `status`). Default 5000. */
  statusProbeTimeoutMs?: Millis;
  /** `systemctl` path. Default `systemctl` (from PATH). */
  systemctl?: string;
}

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
 * systemd Resources run `systemctl start|stop|is-active <unit>`. Every command runs in its
 * own process group, killed whole at its timeout.
 */
export class ProcessServiceRunner implements ServiceRunner {
  private readonly clock: Clock;
  private readonly commands: CommandRunner;
  private readonly logger: Logger;
  private readonly settleMs: Millis;
  private readonly statusProbeTimeoutMs: Millis;
  private readonly systemctl: string;
  private readonly daemons = new Map<string, Daemon>();
  /** Plain exec Resources without a status command: last known state. */
  private readonly started = new Set<string>();

  constructor(components: ProcessServiceRunnerComponents, init: ProcessServiceRunnerInit = {}) {
    this.clock = components.clock;
    this.commands = components.commands ?? new SpawnCommandRunner({ clock: components.clock });
    this.logger = (components.logger ?? pino({ name: 'heartline.services' })).child({
      component: 'service-runner',
    });
    this.settleMs = init.daemonSettleMs ?? 200;
    this.statusProbeTimeoutMs = init.statusProbeTimeoutMs ?? 5000;
    this.systemctl = init.systemctl ?? 'systemctl';
  }

  async start(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    const t0 = this.clock.now();
    switch (spec.kind) {
      case 'exec':
        if (spec.exec.daemon) return this.startDaemon(spec.name, spec.exec, timeoutMs, t0);
        return this.cmd(spec.name, 'start', spec.exec.start, spec.exec, timeoutMs, (r) => {
          if (r.code === 0) this.started.add(spec.name);
          return r.code === 0;
        });
      case 'lsb':
        return this.lsbAction(spec.name, spec.lsb.script, 'start', timeoutMs);
      case 'systemd':
        return this.cmd(
          spec.name,
          'start',
          [this.systemctl, 'start', spec.systemd.unit],
          {},
          timeoutMs,
          (r) => r.code === 0,
        );
    }
  }

  async stop(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    const t0 = this.clock.now();
    switch (spec.kind) {
      case 'exec': {
        if (spec.exec.daemon) return this.stopDaemon(spec.name, spec.exec, timeoutMs, t0);
        this.started.delete(spec.name);
        if (!spec.exec.stop)
          return this.result(spec.name, 'stop', true, 'no stop command; nothing to do', t0);
        return this.cmd(spec.name, 'stop', spec.exec.stop, spec.exec, timeoutMs, (r) => r.code === 0);
      }
      case 'lsb':
        return this.lsbAction(spec.name, spec.lsb.script, 'stop', timeoutMs);
      case 'systemd':
        return this.cmd(
          spec.name,
          'stop',
          [this.systemctl, 'stop', spec.systemd.unit],
          {},
          timeoutMs,
          (r) => r.code === 0,
        );
    }
  }

  async status(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    const t0 = this.clock.now();
    switch (spec.kind) {
      case 'exec': {
        if (spec.exec.status)
          return this.cmd(spec.name, 'status', spec.exec.status, spec.exec, timeoutMs, (r) => r.code === 0);
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
        const r = await this.commands.run([spec.lsb.script, 'status'], { timeoutMs });
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
        const r = await this.commands.run([this.systemctl, 'is-active', spec.systemd.unit], { timeoutMs });
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
      const o = await httpCheck(hc.http, hc.timeoutMs, this.clock);
      return this.result(spec.name, 'probe', o.ok, o.detail, t0);
    }
    if (hc.tcp) {
      const o = await tcpCheck(hc.tcp, hc.timeoutMs, this.clock);
      return this.result(spec.name, 'probe', o.ok, o.detail, t0);
    }
    if (hc.exec) {
      const r = await this.commands.run(hc.exec.command, {
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
    const r = await this.commands.run([script, action], { timeoutMs });
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
    const [file, ...args] = exec.start;
    if (!file) return this.result(name, 'start', false, 'empty start command; set spec.exec.start', t0);
    const child = spawn(file, args, {
      env: { ...process.env, ...exec.env },
      cwd: exec.cwd,
      detached: true,
      shell: false,
      stdio: 'ignore',
    });
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
      const r = await this.commands.run(exec.stop, {
        timeoutMs,
        ...(exec.env ? { env: exec.env } : {}),
        ...(exec.cwd ? { cwd: exec.cwd } : {}),
      });
      detail = `${exec.stop.join(' ')}: ${describeExit(r, timeoutMs)}; `;
      if (!d && r.code !== 0) return this.result(name, 'stop', false, detail + 'stop command failed', t0);
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
