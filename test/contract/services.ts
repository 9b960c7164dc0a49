/**
 * ServiceRunner contract, run against ProcessServiceRunner (small shell commands, a node:http
 * daemon on 127.0.0.1) and ScriptedServiceRunner (scripted to mean the same things).
 */
import type { RunResult, ServiceRunner, ServiceSpec } from '../../src/core/ports.js';

export interface ServicesSubject {
  runner: ServiceRunner;
  specs: {
    /** start/stop/status commands that work; health check passes exactly while it runs. */
    plain: ServiceSpec;
    /** start exits non-zero. */
    failing: ServiceSpec;
    /** start never finishes. */
    hanging: ServiceSpec;
    /** A long-running HTTP server (exec daemon) with an http health check. */
    daemon: ServiceSpec;
    /** start names a program that does not exist. */
    missing: ServiceSpec;
  };
  /** Timeout for operations expected to finish. */
  timeoutMs: number;
  /** Timeout given to the hanging start. */
  shortTimeoutMs: number;
  /** Lets a little time pass (a server may need a moment to listen). */
  pause(): Promise<void>;
  teardown(): Promise<void>;
}

export function servicesContract(name: string, make: () => Promise<ServicesSubject>): void {
  describe(`ServiceRunner contract: ${name}`, () => {
    let s: ServicesSubject;
    beforeEach(async () => {
      s = await make();
    });
    afterEach(async () => {
      await s.runner.close();
      await s.teardown();
    });

    const wellFormed = (r: RunResult, spec: ServiceSpec): void => {
      expect(typeof r.ok).toBe('boolean');
      expect(r.detail).toContain(spec.name);
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    };

    it('start, status, probe, stop, status, probe follow the service state', async () => {
      const { plain } = s.specs;
      const steps: [string, RunResult][] = [
        ['start', await s.runner.start(plain, s.timeoutMs)],
        ['status', await s.runner.status(plain, s.timeoutMs)],
        ['probe', await s.runner.probe(plain)],
        ['stop', await s.runner.stop(plain, s.timeoutMs)],
        ['status', await s.runner.status(plain, s.timeoutMs)],
        ['probe', await s.runner.probe(plain)],
      ];
      steps.forEach(([, r]) => wellFormed(r, plain));
      expect(steps.map(([op, r]) => `${op}:${r.ok}`)).toEqual([
        'start:true',
        'status:true',
        'probe:true',
        'stop:true',
        'status:false',
        'probe:false',
      ]);
    });

    it('a failing start resolves ok:false and the service is not running', async () => {
      const r = await s.runner.start(s.specs.failing, s.timeoutMs);
      wellFormed(r, s.specs.failing);
      expect(r.ok).toBe(false);
      expect((await s.runner.status(s.specs.failing, s.timeoutMs)).ok).toBe(false);
    });

    it('a start that hangs is cut at its timeout: ok:false, "timed out"', async () => {
      const r = await s.runner.start(s.specs.hanging, s.shortTimeoutMs);
      wellFormed(r, s.specs.hanging);
      expect(r.ok).toBe(false);
      expect(r.detail).toMatch(/timed out/);
      expect((await s.runner.status(s.specs.hanging, s.timeoutMs)).ok).toBe(false);
    });

    it('a missing program is ok:false, never a rejection', async () => {
      const r = await s.runner.start(s.specs.missing, s.timeoutMs);
      wellFormed(r, s.specs.missing);
      expect(r.ok).toBe(false);
    });

    it('a daemon keeps running after start; start and stop are idempotent', async () => {
      const { daemon } = s.specs;
      expect((await s.runner.start(daemon, s.timeoutMs)).ok).toBe(true);
      const again = await s.runner.start(daemon, s.timeoutMs);
      expect(again.ok).toBe(true);
      expect(again.detail).toMatch(/already running/);
      expect((await s.runner.status(daemon, s.timeoutMs)).ok).toBe(true);
      let probe = await s.runner.probe(daemon);
      for (let i = 0; i < 40 && !probe.ok; i++) {
        await s.pause();
        probe = await s.runner.probe(daemon);
      }
      wellFormed(probe, daemon);
      expect(probe.ok).toBe(true);
      expect((await s.runner.stop(daemon, s.timeoutMs)).ok).toBe(true);
      expect((await s.runner.status(daemon, s.timeoutMs)).ok).toBe(false);
      expect((await s.runner.probe(daemon)).ok).toBe(false);
      const stopAgain = await s.runner.stop(daemon, s.timeoutMs);
      expect(stopAgain.ok).toBe(true);
      expect(stopAgain.detail).toMatch(/not running/);
    });

    it('close stops the daemons it started', async () => {
      const { daemon } = s.specs;
      expect((await s.runner.start(daemon, s.timeoutMs)).ok).toBe(true);
      await s.runner.close();
      expect((await s.runner.status(daemon, s.timeoutMs)).ok).toBe(false);
      expect((await s.runner.probe(daemon)).ok).toBe(false);
    });
  });
}
