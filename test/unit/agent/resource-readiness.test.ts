import { readinessOf } from '../../../src/agent/resource-status.js';

const T0 = '2026-12-07T10:00:00Z';
const T1 = '2026-12-07T10:05:00Z';

describe('Resource readiness (kstatus Ready, summary, observedGeneration)', () => {
  it('is Ready while it runs somewhere and failed nowhere', () => {
    const r = readinessOf(
      [
        { name: 'a', state: 'stopped' },
        { name: 'b', state: 'running' },
      ],
      undefined,
      3,
      T0,
    );
    expect(r.conditions).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Running',
        message: 'running on b',
        observedGeneration: 3,
        lastTransitionTime: T0,
      },
    ]);
    expect(r.summary).toEqual({ running: 'b' });
    expect(r.observedGeneration).toBe(3);
  });

  it('is not Ready when it failed on a node, and names it', () => {
    const r = readinessOf(
      [
        { name: 'a', state: 'failed', message: 'start exited 1' },
        { name: 'b', state: 'running' },
      ],
      undefined,
      1,
      T0,
    );
    expect(r.conditions[0]).toMatchObject({
      status: 'False',
      reason: 'Failed',
      message: 'failed on a (start exited 1)',
    });
  });

  it('is not Ready when it runs nowhere; keeps the transition time while the status holds', () => {
    const first = readinessOf([{ name: 'a', state: 'stopped' }], undefined, 1, T0);
    expect(first.conditions[0]).toMatchObject({ status: 'False', reason: 'NotRunning' });
    expect(first.summary).toEqual({ running: '' });
    const later = readinessOf([{ name: 'a', state: 'starting' }], first.conditions, 2, T1);
    expect(later.conditions[0]).toMatchObject({
      status: 'False',
      lastTransitionTime: T0,
      observedGeneration: 2,
    });
    const up = readinessOf([{ name: 'a', state: 'running' }], later.conditions, 2, T1);
    expect(up.conditions[0]).toMatchObject({ status: 'True', lastTransitionTime: T1 });
  });
});
