import type { Clock, Millis, RunResult, ServiceRunner, ServiceSpec } from '../../src/core/ports.js';

/** How one operation behaves: succeed, fail, hang until the timeout, or a fixed result. */
export type ScriptedOutcome = 'ok' | 'fail' | 'hang' | { ok: boolean; detail: string };

/** Per-Resource script. Unset operations follow the service's simulated state. */
export interface ServiceScript {
  start?: ScriptedOutcome;
  stop?: ScriptedOutcome;
  /** Overrides status (default: ok while running). */
  status?: ScriptedOutcome;
  /** Overrides probe (default: ok while running and healthy). */
  probe?: ScriptedOutcome;
}

export interface ScriptedCall {
  op: 'start' | 'stop' | 'status' | 'probe';
  name: string;
  timeoutMs?: Millis;
}

/**
 * ServiceRunner fake. Keeps a running/healthy state per Resource name; `script` makes
 * operations fail or hang; `once` queues one-shot outcomes; `calls` records everything.
 * Time (durations, hangs) comes from the injected Clock, so it runs under a SimClock.
 * Semantics follow ProcessServiceRunner (checked by the shared contract): daemons' start
 * and stop are idempotent, a hang ends at the timeout with "timed out", nothing rejects.
 */
export class ScriptedServiceRunner implements ServiceRunner {
  readonly calls: ScriptedCall[] = [];
  private readonly running = new Set<string>();
  private readonly unhealthy = new Set<string>();
  private readonly scripts = new Map<string, ServiceScript>();
  private readonly queued = new Map<string, ScriptedOutcome[]>();

  constructor(private readonly components: { clock: Clock }) {}

  script(name: string, script: ServiceScript): this {
    this.scripts.set(name, script);
    return this;
  }

  /** Queues outcomes used (in order) by the next calls of `op` on `name`, before the script. */
  once(name: string, op: ScriptedCall['op'], ...outcomes: ScriptedOutcome[]): this {
    const k = `${name}|${op}`;
    this.queued.set(k, [...(this.queued.get(k) ?? []), ...outcomes]);
    return this;
  }

  /** Makes the health check of a running service fail (true) or pass (false). */
  setUnhealthy(name: string, unhealthy = true): void {
    if (unhealthy) this.unhealthy.add(name);
    else this.unhealthy.delete(name);
  }

  /** Simulates the service dying on its own. */
  crash(name: string): void {
    this.running.delete(name);
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  private outcome(name: string, op: ScriptedCall['op']): ScriptedOutcome | undefined {
    const q = this.queued.get(`${name}|${op}`);
    if (q && q.length > 0) return q.shift();
    return this.scripts.get(name)?.[op];
  }

  private async play(
    spec: ServiceSpec,
    op: ScriptedCall['op'],
    timeoutMs: Millis,
    natural: () => { ok: boolean; detail: string },
  ): Promise<RunResult> {
    const { clock } = this.components;
    const t0 = clock.now();
    this.calls.push({ op, name: spec.name, ...(op === 'probe' ? {} : { timeoutMs }) });
    const o = this.outcome(spec.name, op);
    let res: { ok: boolean; detail: string };
    if (o === undefined || o === 'ok') res = natural();
    else if (o === 'fail') res = { ok: false, detail: `scripted failure` };
    else if (o === 'hang') {
      await clock.sleep(timeoutMs);
      res = { ok: false, detail: `timed out after ${timeoutMs} ms; process group killed` };
    } else res = o;
    if (o !== undefined && o !== 'ok' && op === 'start') this.running.delete(spec.name);
    return { ok: res.ok, detail: `${spec.name}: ${op}: ${res.detail}`, durationMs: clock.now() - t0 };
  }

  start(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    return this.play(spec, 'start', timeoutMs, () => {
      const was = this.running.has(spec.name);
      this.running.add(spec.name);
      return { ok: true, detail: was ? 'already running' : 'started' };
    });
  }

  stop(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    return this.play(spec, 'stop', timeoutMs, () => {
      const was = this.running.delete(spec.name);
      return { ok: true, detail: was ? 'stopped' : 'not running' };
    });
  }

  status(spec: ServiceSpec, timeoutMs: Millis): Promise<RunResult> {
    return this.play(spec, 'status', timeoutMs, () =>
      this.running.has(spec.name) ? { ok: true, detail: 'running' } : { ok: false, detail: 'not running' },
    );
  }

  probe(spec: ServiceSpec): Promise<RunResult> {
    const timeoutMs = spec.healthCheck?.timeoutMs ?? 5000;
    return this.play(spec, 'probe', timeoutMs, () => {
      if (!this.running.has(spec.name)) return { ok: false, detail: 'not running (connection refused)' };
      if (this.unhealthy.has(spec.name)) return { ok: false, detail: 'health check failing' };
      return { ok: true, detail: 'healthy' };
    });
  }

  close(): Promise<void> {
    this.running.clear();
    return Promise.resolve();
  }
}
