import { LeaderElector } from '../../../../src/controller/leader-election.js';
import { collectionPath } from '../../../../src/adapters/k8s/kinds.js';
import { apiSourceContract, resourceObject } from '../../../contract/api-source.js';
import { leaseLockContract } from '../../../contract/lease-lock.js';
import { SimClock } from '../../../fakes/clock.js';
import { FakeApiSource, FakeLeaseLock, FakeLeaseStore } from '../../../fakes/k8s.js';
import { pino } from 'pino';

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

apiSourceContract(
  'FakeApiSource',
  () => {
    const fake = new FakeApiSource();
    return Promise.resolve({
      api: fake,
      namespace: 'contract',
      apply: (kind, obj) => {
        fake.apply(kind, obj);
        return Promise.resolve();
      },
      remove: (kind, key) => {
        fake.delete(kind, key);
        return Promise.resolve();
      },
      readEvents: (ns) =>
        Promise.resolve(
          fake.events
            .filter((e) => e.namespace === ns)
            .map((e) => ({
              type: e.type,
              reason: e.reason,
              note: e.note,
              action: e.action,
              regardingName: e.regarding.metadata.name,
              regardingKind: e.regarding.kind ?? '',
            })),
        ),
      settle: flush,
    });
  },
  () => Promise.resolve(),
);

leaseLockContract('FakeLeaseLock on a SimClock', () => {
  const clock = new SimClock();
  const store = new FakeLeaseStore();
  return Promise.resolve({
    lock: (identity) => new FakeLeaseLock({ store, clock }, { identity, leaseDurationSeconds: 1 }),
    clock,
    advance: (ms) => clock.advance(ms),
  });
});

describe('LeaderElector', () => {
  const silent = pino({ level: 'silent' });

  it('steps down when renewals fail for the renew deadline, and leads again once they succeed', async () => {
    const clock = new SimClock();
    const store = new FakeLeaseStore();
    const log: string[] = [];
    const e = new LeaderElector(
      {
        lock: new FakeLeaseLock({ store, clock }, { identity: 'a', leaseDurationSeconds: 1 }),
        clock,
        logger: silent,
      },
      {
        leaseDurationMs: 1000,
        renewDeadlineMs: 600,
        retryPeriodMs: 100,
        onStartedLeading: () => log.push(`start@${clock.now()}`),
        onStoppedLeading: () => {
          log.push(`stop@${clock.now()}`);
        },
      },
    );
    const ac = new AbortController();
    const run = e.run(ac.signal);
    await clock.advance(50);
    expect(e.isLeader()).toBe(true);
    store.failNext(1000);
    await clock.advance(1000);
    expect(e.isLeader()).toBe(false);
    // Stepped down after 600 ms without a renewal, i.e. before the 1000 ms lease ends.
    expect(log).toEqual(['start@0', 'stop@600']);
    store.heal();
    await clock.advance(2000);
    expect(e.isLeader()).toBe(true);
    ac.abort();
    await clock.advance(1);
    await run;
  });

  it('rejects timings where the renew deadline does not end before the lease', () => {
    const clock = new SimClock();
    const lock = new FakeLeaseLock(
      { store: new FakeLeaseStore(), clock },
      { identity: 'a', leaseDurationSeconds: 1 },
    );
    const mk = (renewDeadlineMs: number, retryPeriodMs: number) => () =>
      new LeaderElector(
        { lock, clock, logger: silent },
        {
          leaseDurationMs: 1000,
          renewDeadlineMs,
          retryPeriodMs,
          onStartedLeading: () => undefined,
          onStoppedLeading: () => undefined,
        },
      );
    expect(mk(1000, 100)).toThrow(/renewDeadlineMs \(1000\) < leaseDurationMs \(1000\)/);
    expect(mk(500, 500)).toThrow(/retryPeriodMs/);
    expect(mk(600, 100)).not.toThrow();
  });
});

describe('FakeApiSource specifics', () => {
  it('injects failures and re-delivers on resync', async () => {
    const fake = new FakeApiSource();
    fake.apply('Resource', resourceObject('ns', 'r'));
    fake.failNext('get', new Error('HTTP 500'));
    await expect(fake.get('Resource', { namespace: 'ns', name: 'r' })).rejects.toThrow('HTTP 500');
    await expect(fake.get('Resource', { namespace: 'ns', name: 'r' })).resolves.toBeDefined();
    const seen: string[] = [];
    const w = fake.watch('Resource', (e) => seen.push(e.type));
    await flush();
    fake.resync();
    expect(seen).toEqual(['added', 'synced', 'resync']);
    w.stop();
    expect(fake.watchCount).toBe(0);
  });
});

describe('kinds', () => {
  it('builds collection paths for CRDs and core kinds', () => {
    expect(collectionPath('VirtualIP', 'ns')).toBe('/apis/heartline.dev/v1alpha1/namespaces/ns/virtualips');
    expect(collectionPath('HACluster')).toBe('/apis/heartline.dev/v1alpha1/haclusters');
    expect(collectionPath('Node', 'ignored')).toBe('/api/v1/nodes');
    expect(collectionPath('Secret', 'ns')).toBe('/api/v1/namespaces/ns/secrets');
  });
});
