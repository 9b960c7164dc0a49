/**
 * LeaseLock contract (and LeaderElector on top of it), run against FakeLeaseLock on a
 * SimClock (unit) and K8sLeaseLock on a real coordination.k8s.io Lease (integration).
 * All locks made by one subject contend for the same lease, leaseDurationSeconds = 1.
 */
import { LeaderElector } from '../../src/controller/leader-election.js';
import type { Clock, LeaseLock } from '../../src/core/ports.js';

export interface LeaseLockSubject {
  /** A new candidate for this subject's lease (a fresh lease per subject). */
  lock(identity: string): LeaseLock;
  clock: Clock;
  /** Lets `ms` pass on `clock` (sleeping for real, or advancing a SimClock). */
  advance(ms: number): Promise<void>;
}

export function leaseLockContract(name: string, make: () => Promise<LeaseLockSubject>): void {
  describe(`LeaseLock contract: ${name}`, () => {
    let s: LeaseLockSubject;
    beforeEach(async () => {
      s = await make();
    });

    it('the first candidate acquires a lease that does not exist yet and renews it', async () => {
      const a = s.lock('a');
      expect(await a.read()).toBeUndefined();
      expect(await a.tryAcquireOrRenew()).toBe(true);
      expect(await a.read()).toEqual({ holderIdentity: 'a', leaseDurationSeconds: 1, leaseTransitions: 0 });
      expect(await a.tryAcquireOrRenew()).toBe(true);
      expect((await a.read())!.leaseTransitions).toBe(0);
    });

    it('others cannot take a lease that keeps being renewed', async () => {
      const a = s.lock('a');
      const b = s.lock('b');
      expect(await a.tryAcquireOrRenew()).toBe(true);
      for (let i = 0; i < 4; i++) {
        expect(await b.tryAcquireOrRenew()).toBe(false);
        await s.advance(400);
        expect(await a.tryAcquireOrRenew()).toBe(true);
      }
      expect(await b.tryAcquireOrRenew()).toBe(false);
      expect((await b.read())!.holderIdentity).toBe('a');
    });

    it('a released lease is taken at once, counting a transition', async () => {
      const a = s.lock('a');
      const b = s.lock('b');
      expect(await a.tryAcquireOrRenew()).toBe(true);
      expect(await b.tryAcquireOrRenew()).toBe(false);
      await a.release();
      expect((await b.read())!.holderIdentity).toBe('');
      expect(await b.tryAcquireOrRenew()).toBe(true);
      expect(await b.read()).toEqual({ holderIdentity: 'b', leaseDurationSeconds: 1, leaseTransitions: 1 });
      await a.release(); // not the holder: no effect
      expect((await a.read())!.holderIdentity).toBe('b');
    });

    it('an abandoned lease is taken only after the candidate saw it unchanged for the lease duration', async () => {
      const a = s.lock('a');
      const b = s.lock('b');
      expect(await a.tryAcquireOrRenew()).toBe(true);
      expect(await b.tryAcquireOrRenew()).toBe(false); // b starts observing now
      await s.advance(500);
      expect(await b.tryAcquireOrRenew()).toBe(false);
      await s.advance(700);
      expect(await b.tryAcquireOrRenew()).toBe(true);
      expect((await b.read())!.holderIdentity).toBe('b');
      expect(await a.tryAcquireOrRenew()).toBe(false); // a was displaced
    });

    it('leader election: one leader; on shutdown it stops work, releases, and the standby takes over', async () => {
      const log: string[] = [];
      const elector = (id: string): LeaderElector =>
        new LeaderElector(
          { lock: s.lock(id), clock: s.clock },
          {
            leaseDurationMs: 1000,
            renewDeadlineMs: 600,
            retryPeriodMs: 100,
            onStartedLeading: (signal) => {
              log.push(`${id}:start`);
              signal.addEventListener('abort', () => log.push(`${id}:abort`));
            },
            onStoppedLeading: () => {
              log.push(`${id}:stop`);
            },
          },
        );
      const a = elector('a');
      const b = elector('b');
      const ac = new AbortController();
      const bc = new AbortController();
      const ra = a.run(ac.signal);
      for (let i = 0; i < 50 && !a.isLeader(); i++) await s.advance(20);
      expect(a.isLeader()).toBe(true);
      const rb = b.run(bc.signal);
      await s.advance(300);
      expect(b.isLeader()).toBe(false);
      ac.abort();
      for (let i = 0; i < 20 && !log.includes('a:stop'); i++) await s.advance(10);
      await ra;
      // Well within the 1 s lease: the takeover comes from the release, not from expiry.
      for (let i = 0; i < 25 && !b.isLeader(); i++) await s.advance(20);
      expect(b.isLeader()).toBe(true);
      expect(log).toEqual(['a:start', 'a:abort', 'a:stop', 'b:start']);
      bc.abort();
      for (let i = 0; i < 20 && !log.includes('b:stop'); i++) await s.advance(10);
      await rb;
      expect((await s.lock('c').read())!.holderIdentity).toBe('');
    });
  });
}
