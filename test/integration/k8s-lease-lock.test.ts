import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { SystemClock } from '../../src/adapters/clock.js';
import { loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { K8sLeaseLock } from '../../src/adapters/k8s/lease-lock.js';
import { loadRestConfig } from '../../src/adapters/k8s/kubeconfig.js';
import { RestClient } from '../../src/adapters/k8s/rest-client.js';
import { RestLeaseLock } from '../../src/adapters/k8s/rest-lease-lock.js';
import { leaseLockContract } from '../contract/lease-lock.js';
import { createTestNamespace, deleteNamespace, kubeconfig, kubectl } from './helpers.js';

jest.setTimeout(60_000);

let namespace: string;
beforeAll(async () => {
  namespace = await createTestNamespace('hl-k8s-lease');
});
afterAll(async () => {
  await deleteNamespace(namespace);
});

leaseLockContract('K8sLeaseLock on a real coordination.k8s.io Lease', () => {
  const kubeConfig = loadKubeConfig(kubeconfig());
  const clock = new SystemClock();
  const name = `heartline-test-${randomBytes(3).toString('hex')}`;
  return Promise.resolve({
    lock: (identity) =>
      new K8sLeaseLock({ kubeConfig, clock }, { namespace, name, identity, leaseDurationSeconds: 1 }),
    clock,
    advance: (ms) => new Promise((r) => setTimeout(r, ms)),
  });
});

// The controller's lease since docs/adr/0038 (no client-node): the same contract.
leaseLockContract('RestLeaseLock on a real coordination.k8s.io Lease', async () => {
  const client = new RestClient(await loadRestConfig({ path: kubeconfig() }));
  const clock = new SystemClock();
  const name = `heartline-rest-${randomBytes(3).toString('hex')}`;
  return {
    lock: (identity) =>
      new RestLeaseLock({ client, clock }, { namespace, name, identity, leaseDurationSeconds: 1 }),
    clock,
    advance: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
});

describe('RestLeaseLock', () => {
  it('writes the same Lease fields as K8sLeaseLock', async () => {
    const lock = new RestLeaseLock(
      { client: new RestClient(await loadRestConfig({ path: kubeconfig() })), clock: new SystemClock() },
      { namespace, name: 'heartline-controller-rest', identity: 'pod-r', leaseDurationSeconds: 15 },
    );
    expect(await lock.tryAcquireOrRenew()).toBe(true);
    const r = await kubectl(['get', 'lease', 'heartline-controller-rest', '-n', namespace, '-o', 'json']);
    expect(r.code).toBe(0);
    const spec = (JSON.parse(r.stdout) as { spec: Record<string, unknown> }).spec;
    expect(spec).toMatchObject({ holderIdentity: 'pod-r', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(typeof spec.acquireTime).toBe('string');
    expect(typeof spec.renewTime).toBe('string');
    await lock.release();
  });
});

describe('K8sLeaseLock', () => {
  it('writes holderIdentity, leaseDurationSeconds, acquire and renew times on the Lease object', async () => {
    const lock = new K8sLeaseLock(
      { kubeConfig: loadKubeConfig(kubeconfig()), clock: new SystemClock() },
      { namespace, name: 'heartline-controller', identity: 'pod-a', leaseDurationSeconds: 15 },
    );
    expect(await lock.tryAcquireOrRenew()).toBe(true);
    const r = await kubectl(['get', 'lease', 'heartline-controller', '-n', namespace, '-o', 'json']);
    expect(r.code).toBe(0);
    const spec = (JSON.parse(r.stdout) as { spec: Record<string, unknown> }).spec;
    expect(spec).toMatchObject({ holderIdentity: 'pod-a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(typeof spec.acquireTime).toBe('string');
    expect(typeof spec.renewTime).toBe('string');
    await lock.release();
  });
});
