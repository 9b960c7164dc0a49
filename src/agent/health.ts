/**
 * Probes the Resources of the VIPs this node holds (mon / ldirectord's job in Heartbeat
 * setups). After `failureThreshold` consecutive failures of any Resource the VIP is marked
 * unhealthy here: the member stops being eligible for it and the election moves it away as
 * a planned switchover. A mark lasts `cooldownMs`, then the node may be chosen again.
 */
import type { Logger } from 'pino';
import type { Clock, Millis, RunResult, ServiceRunner, ServiceSpec, Stoppable } from '../core/ports.js';
import { resourceIdOf, type VipConfig } from '../runtime/cluster-config.js';
import { hostOf } from '../api/net.js';
import { toServiceSpec } from './service-spec.js';

export interface HealthComponents {
  clock: Clock;
  runner: ServiceRunner;
  log: Logger;
  /** The set of unhealthy VIPs changed. */
  onChange: (unhealthy: ReadonlySet<string>) => void;
  onProbe?: (vip: string, resource: string, result: RunResult, consecutiveFailures: number) => void;
}

export interface HealthInit {
  /** How long an unhealthy mark keeps the VIP away from this node. Default 30 s. */
  cooldownMs?: Millis;
}

interface Probe {
  timer: Stoppable;
  failures: number;
  running: boolean;
}

export class HealthMonitor {
  private readonly probes = new Map<string, Probe>(); // key: vip \0 resource
  private readonly marks = new Map<string, { until: Millis; reason: string }>();
  private readonly cooldownMs: Millis;
  private sweepTimer: Stoppable | undefined;

  constructor(
    private readonly c: HealthComponents,
    init: HealthInit = {},
  ) {
    this.cooldownMs = init.cooldownMs ?? 30_000;
  }

  unhealthy(): ReadonlySet<string> {
    return new Set(this.marks.keys());
  }

  reason(vip: string): string | undefined {
    return this.marks.get(vip)?.reason;
  }

  /** Marks `vip` unhealthy here now (bind or start failure, failed probes). */
  mark(vip: string, reason: string): void {
    const had = this.marks.has(vip);
    this.marks.set(vip, { until: this.c.clock.now() + this.cooldownMs, reason });
    this.c.log.warn({ vip, reason, cooldownMs: this.cooldownMs }, 'VIP unhealthy on this node');
    if (!had) this.c.onChange(this.unhealthy());
    this.sweepTimer ??= this.c.clock.every(1000, () => this.expireMarks());
  }

  private expireMarks(): void {
    const now = this.c.clock.now();
    let changed = false;
    for (const [vip, m] of this.marks) {
      if (m.until <= now) {
        this.marks.delete(vip);
        changed = true;
        this.c.log.info({ vip }, 'VIP eligible again on this node');
      }
    }
    if (this.marks.size === 0) {
      this.sweepTimer?.stop();
      this.sweepTimer = undefined;
    }
    if (changed) this.c.onChange(this.unhealthy());
  }

  /** Starts probing the health-checked Resources of a VIP bound here. */
  watch(cfg: VipConfig): void {
    for (const r of cfg.resources) {
      const hc = r.spec.healthCheck;
      if (!hc) continue;
      const key = `${cfg.vip}\0${r.name}`;
      if (this.probes.has(key)) continue;
      const spec: ServiceSpec = toServiceSpec(
        resourceIdOf(cfg.vip, r.name),
        r.spec,
        hostOf(cfg.spec.address),
      );
      const probe: Probe = { failures: 0, running: false, timer: undefined as unknown as Stoppable };
      probe.timer = this.c.clock.every(hc.intervalMs, async () => {
        if (probe.running) return;
        probe.running = true;
        try {
          const res = await this.c.runner.probe(spec);
          if (this.probes.get(key) !== probe) return; // unwatched meanwhile (the VIP is being released)
          probe.failures = res.ok ? 0 : probe.failures + 1;
          this.c.onProbe?.(cfg.vip, r.name, res, probe.failures);
          if (res.ok) return;
          this.c.log.warn(
            { vip: cfg.vip, resource: r.name, failures: probe.failures, detail: res.detail },
            'health check failed',
          );
          if (probe.failures >= hc.failureThreshold) {
            probe.failures = 0;
            this.mark(
              cfg.vip,
              `Resource ${r.name}: ${hc.failureThreshold} health checks failed (last: ${res.detail})`,
            );
          }
        } finally {
          probe.running = false;
        }
      });
      this.probes.set(key, probe);
    }
  }

  /** Stops probing a VIP (released here). */
  unwatch(vip: string): void {
    for (const [key, p] of this.probes) {
      if (key.startsWith(`${vip}\0`)) {
        p.timer.stop();
        this.probes.delete(key);
      }
    }
  }

  close(): void {
    for (const p of this.probes.values()) p.timer.stop();
    this.probes.clear();
    this.sweepTimer?.stop();
  }
}
