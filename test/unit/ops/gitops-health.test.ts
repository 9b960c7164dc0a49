import { argoHealth } from '../../fixtures/argocd-health.js';

const cond = (status: string, reason: string, message = 'm') => ({
  type: 'Ready',
  status,
  reason,
  message,
  observedGeneration: 2,
  lastTransitionTime: '2026-12-07T10:00:00Z',
});
const obj = (status: unknown, generation = 2) => ({ metadata: { name: 'x', generation }, status });

describe('Argo CD health checks of docs/gitops.md (Lua on fengari)', () => {
  it.each([
    ['no status', undefined, 'Progressing'],
    [
      'generation not observed yet',
      { observedGeneration: 1, conditions: [cond('True', 'Bound')] },
      'Progressing',
    ],
    ['no Ready condition', { observedGeneration: 2, conditions: [] }, 'Progressing'],
    ['Ready', { observedGeneration: 2, conditions: [cond('True', 'Bound', 'a holds it')] }, 'Healthy'],
    [
      'takeover under way',
      { observedGeneration: 2, conditions: [cond('False', 'TakeoverInProgress')] },
      'Progressing',
    ],
    ['observing', { observedGeneration: 2, conditions: [cond('Unknown', 'Observing')] }, 'Progressing'],
    ['quorum lost', { observedGeneration: 2, conditions: [cond('False', 'QuorumLost')] }, 'Degraded'],
    [
      'address conflict',
      { observedGeneration: 2, conditions: [cond('False', 'AddressConflict')] },
      'Degraded',
    ],
  ])('VirtualIP, %s', (_what, status, expected) => {
    expect(argoHealth('VirtualIP', obj(status)).status).toBe(expected);
  });

  it('VirtualIP: the message is the Ready reason and message', () => {
    const st = {
      observedGeneration: 2,
      conditions: [cond('True', 'Bound', 'node-a holds 198.18.0.100/24 at epoch 3')],
    };
    expect(argoHealth('VirtualIP', obj(st))).toEqual({
      status: 'Healthy',
      message: 'Bound: node-a holds 198.18.0.100/24 at epoch 3',
    });
  });

  it.each([
    ['quorate', [cond('True', 'Quorate')], 'Healthy'],
    ['observing', [cond('Unknown', 'Observing')], 'Progressing'],
    ['quorum lost', [cond('False', 'QuorumLost')], 'Degraded'],
    ['no members', [cond('False', 'NoMembers')], 'Degraded'],
  ])('HACluster, %s', (_what, conditions, expected) => {
    expect(argoHealth('HACluster', obj({ observedGeneration: 2, conditions })).status).toBe(expected);
  });

  it.each([
    ['never started', undefined, 'Healthy'],
    ['running', { conditions: [cond('True', 'Running')] }, 'Healthy'],
    ['not running anywhere', { conditions: [cond('False', 'NotRunning')] }, 'Healthy'],
    [
      'failed on a node',
      { conditions: [cond('False', 'Failed', 'failed on b (start exited 1)')] },
      'Degraded',
    ],
  ])('Resource, %s', (_what, status, expected) => {
    expect(argoHealth('Resource', obj(status)).status).toBe(expected);
  });
});
