/**
 * Leader election over a LeaseLock, as client-go's leaderelection: try to acquire or renew
 * every `renewPeriodMs`; a leader that cannot renew for `renewDeadlineMs` (API errors) or
 * that finds someone else holding the lease stops leading at once. `stop` releases the
 * lease so the standby takes over on its next attempt instead of waiting out the lease.
 *
 * Leader-only work (the reconcilers, the witness) starts in `onStartedLeading` and must stop
 * in `onStoppedLeading`; both are awaited, never overlap, and alternate strictly.
 */
import type { Logger } from 'pino';
import type { Clock, LeaseLock, Millis, Stoppable } from '../core/ports.js';

export interface LeaderElectorComponents {
  lease: LeaseLock;
  clock: Clock;
  log: Logger;
  onStartedLeading: () => Promise<void> | void;
  onStoppedLeading: (reason: string) => Promise<void> | void;
}

export interface LeaderElectorInit {
  /** Default 2000 ms. */
  renewPeriodMs?: Millis;
  /** Give up leadership after this long without a successful renewal. Default 10 000 ms (lease 15 s). */
  renewDeadlineMs?: Millis;
}

export class LeaderElector {
  private leading = false;
  private lastRenew = -Infinity;
  private ticker: Stoppable | undefined;
  private transition: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly renewPeriodMs: Millis;
  private readonly renewDeadlineMs: Millis;

  constructor(
    private readonly c: LeaderElectorComponents,
    init: LeaderElectorInit = {},
  ) {
    this.renewPeriodMs = init.renewPeriodMs ?? 2000;
    this.renewDeadlineMs = init.renewDeadlineMs ?? 10_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.ticker = this.c.clock.every(this.renewPeriodMs, () => this.attempt());
    void this.attempt();
  }

  /** One acquire-or-renew round (exposed for tests). */
  async attempt(): Promise<void> {
    if (this.stopped) return;
    let ok = false;
    let failed: unknown;
    try {
      ok = await this.c.lease.tryAcquireOrRenew();
    } catch (err) {
      failed = err;
    }
    if (this.stopped) return;
    const now = this.c.clock.now();
    if (ok) {
      this.lastRenew = now;
      if (!this.leading) await this.become(true, 'acquired the lease');
      return;
    }
    if (!this.leading) {
      if (failed) this.c.log.warn({ err: failed }, 'lease acquisition failed');
      return;
    }
    if (failed === undefined) {
      await this.become(false, 'another instance holds the lease');
    } else if (now - this.lastRenew >= this.renewDeadlineMs) {
      this.c.log.error({ err: failed, sinceRenewMs: now - this.lastRenew }, 'lease not renewed within the renew deadline');
      await this.become(false, `lease not renewed for ${Math.round(now - this.lastRenew)} ms`);
    } else {
      this.c.log.warn({ err: failed }, 'lease renewal failed; still leading until the renew deadline');
    }
  }

  /** Stops trying; a leader stops its work and releases the lease. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ticker?.stop();
    if (this.leading) {
      await this.become(false, 'shutting down', true);
      try {
        await this.c.lease.release();
        this.c.log.info({ identity: this.c.lease.identity }, 'lease released');
      } catch (err) {
        this.c.log.warn({ err }, 'lease release failed; the standby takes over when it expires');
      }
    }
    await this.transition;
  }

  private become(leading: boolean, reason: string, force = false): Promise<void> {
    const next = this.transition.then(async () => {
      if (this.leading === leading || (this.stopped && leading && !force)) return;
      this.leading = leading;
      this.c.log.info({ identity: this.c.lease.identity, leading, reason }, leading ? 'started leading' : 'stopped leading');
      try {
        if (leading) await this.c.onStartedLeading();
        else await this.c.onStoppedLeading(reason);
      } catch (err) {
        this.c.log.error({ err, leading }, 'leadership transition handler failed');
      }
    });
    this.transition = next;
    return next;
  }
}
