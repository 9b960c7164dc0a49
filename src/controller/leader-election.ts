import { pino, type Logger } from 'pino';
import type { Clock, LeaseLock, Millis } from '../core/ports.js';

export interface LeaderElectorInit {
  /** Must equal the lock's leaseDurationSeconds * 1000; used to check the other timings. */
  leaseDurationMs: Millis;
  /** The leader gives up if it has not renewed for this long (measured from the start of its last good attempt). */
  renewDeadlineMs: Millis;
  /** Time between attempts, both as candidate and as leader. */
  retryPeriodMs: Millis;
  /** Called on becoming leader; `signal` aborts when leadership ends. Do leader-only work under it. */
  onStartedLeading: (signal: AbortSignal) => void;
  /** Called when leadership ends (lost or shut down), before the lease is released. */
  onStoppedLeading: () => void | Promise<void>;
  /** Called when the observed holder changes (empty string: nobody). */
  onNewLeader?: (identity: string) => void;
}

/**
 * Leader election on a LeaseLock, after client-go's: candidates retry every retryPeriod; the
 * leader renews every retryPeriod and steps down when renewals have failed for renewDeadline,
 * which is shorter than the lease so it stops before anyone else may start (margin for clock
 * rate drift). On shutdown (the run signal aborts) it stops leader work, then releases the
 * lease so a standby takes over without waiting for expiry. After losing the lease it becomes
 * a candidate again.
 */
export class LeaderElector {
  private leading = false;
  private lastHolder: string | undefined;
  /** When the leader last renewed (start of the good attempt); undefined while not leading. */
  private renewedAt: Millis | undefined;
  /** When the lease call in flight started; undefined between attempts. */
  private attemptSince: Millis | undefined;
  private readonly logger: Logger;

  constructor(
    private readonly components: { lock: LeaseLock; clock: Clock; logger?: Logger },
    private readonly init: LeaderElectorInit,
  ) {
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = init;
    if (!(retryPeriodMs > 0 && retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
      throw new Error(
        `leader election timings must satisfy 0 < retryPeriodMs (${retryPeriodMs}) < renewDeadlineMs (${renewDeadlineMs}) < leaseDurationMs (${leaseDurationMs}); e.g. 2000 < 10000 < 15000`,
      );
    }
    this.logger = (components.logger ?? pino({ name: 'heartline.leader' })).child({
      component: 'leader-election',
      identity: components.lock.identity,
    });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Whether the election loop is turning: no lease call has hung for longer than a lease,
   * and a leader has renewed within the lease (else another instance may lead already while
   * this one still acts, because the renew deadline is checked only after a call returns).
   */
  liveness(now: Millis): { healthy: boolean; reason: string } {
    const lease = this.init.leaseDurationMs;
    if (this.attemptSince !== undefined && now - this.attemptSince > lease)
      return {
        healthy: false,
        reason: `lease call hung for ${Math.round(now - this.attemptSince)} ms (> lease ${lease} ms)`,
      };
    if (this.leading && this.renewedAt !== undefined && now - this.renewedAt > lease)
      return {
        healthy: false,
        reason: `leading without a renewal for ${Math.round(now - this.renewedAt)} ms (> lease ${lease} ms)`,
      };
    return { healthy: true, reason: this.leading ? 'leading' : 'candidate' };
  }

  /** Runs until `signal` aborts; resolves after leadership (if any) ended and the lease was released. */
  async run(signal: AbortSignal): Promise<void> {
    const { clock } = this.components;
    while (!signal.aborted) {
      if (!(await this.attempt())) {
        await this.pause(this.init.retryPeriodMs, signal);
        continue;
      }
      let lastRenew = clock.now();
      this.renewedAt = lastRenew;
      const leader = new AbortController();
      this.leading = true;
      this.logger.info('started leading');
      this.init.onStartedLeading(leader.signal);
      while (!signal.aborted) {
        await this.pause(this.init.retryPeriodMs, signal);
        if (signal.aborted) break;
        const t = clock.now();
        if (await this.attempt()) {
          lastRenew = t;
          this.renewedAt = t;
        } else if (clock.now() - lastRenew >= this.init.renewDeadlineMs) {
          this.logger.warn(
            { renewDeadlineMs: this.init.renewDeadlineMs },
            'lost the lease: no renewal within the renew deadline',
          );
          break;
        }
      }
      this.leading = false;
      this.renewedAt = undefined;
      leader.abort(new Error('leadership ended'));
      try {
        await this.init.onStoppedLeading();
      } catch (err) {
        this.logger.error({ err }, 'onStoppedLeading failed');
      }
      this.logger.info('stopped leading');
    }
    try {
      await this.components.lock.release();
    } catch (err) {
      this.logger.warn({ err }, 'releasing the lease failed; the standby takes over after the lease expires');
    }
  }

  private async attempt(): Promise<boolean> {
    let ok = false;
    this.attemptSince = this.components.clock.now();
    try {
      ok = await this.components.lock.tryAcquireOrRenew();
    } catch (err) {
      this.logger.warn({ err }, 'lease attempt failed');
    } finally {
      this.attemptSince = undefined;
    }
    if (this.init.onNewLeader) {
      try {
        const holder = ok
          ? this.components.lock.identity
          : ((await this.components.lock.read())?.holderIdentity ?? '');
        if (holder !== this.lastHolder) {
          this.lastHolder = holder;
          this.init.onNewLeader(holder);
        }
      } catch {
        // leader observation is informational
      }
    }
    return ok;
  }

  private async pause(ms: Millis, signal: AbortSignal): Promise<void> {
    try {
      await this.components.clock.sleep(ms, signal);
    } catch {
      // aborted: the caller checks the signal
    }
  }
}
