import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Clock } from '../../core/ports.js';
import { makeApiClient } from './connections.js';
import {
  leaseBody,
  storedLease,
  StoreLeaseLock,
  type LeaseStore,
  type LeaseWrite,
  type StoredLease,
} from './store-lease-lock.js';

function code(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | undefined)?.code;
  return typeof c === 'number' ? c : undefined;
}

/** A coordination.k8s.io/v1 Lease as a LeaseStore. */
export class K8sLeaseStore implements LeaseStore {
  private readonly api: CoordinationV1Api;
  private acquireTime: Date | undefined;

  constructor(
    kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly name: string,
  ) {
    this.api = makeApiClient(kubeConfig, CoordinationV1Api);
  }

  private get at() {
    return { namespace: this.namespace, name: this.name };
  }

  private toStored(l: V1Lease): StoredLease {
    this.acquireTime = l.spec?.acquireTime;
    return storedLease(l);
  }

  private body(w: LeaseWrite, resourceVersion?: string): V1Lease {
    const last = this.acquireTime as V1MicroTime | undefined;
    return leaseBody(this.at, w, new V1MicroTime(), last, resourceVersion);
  }

  async get(): Promise<StoredLease | undefined> {
    try {
      return this.toStored(
        await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace }),
      );
    } catch (err) {
      if (code(err) === 404) return undefined;
      throw err;
    }
  }

  async create(w: LeaseWrite): Promise<StoredLease | 'conflict'> {
    try {
      return this.toStored(
        await this.api.createNamespacedLease({ namespace: this.namespace, body: this.body(w) }),
      );
    } catch (err) {
      if (code(err) === 409) return 'conflict';
      throw err;
    }
  }

  async update(w: LeaseWrite, resourceVersion: string): Promise<StoredLease | 'conflict'> {
    try {
      return this.toStored(
        await this.api.replaceNamespacedLease({
          name: this.name,
          namespace: this.namespace,
          body: this.body(w, resourceVersion),
        }),
      );
    } catch (err) {
      if (code(err) === 409) return 'conflict';
      throw err;
    }
  }
}

export interface K8sLeaseLockInit {
  namespace: string;
  /** Lease name, e.g. heartline-controller. */
  name: string;
  /** Usually the pod name. */
  identity: string;
  leaseDurationSeconds: number;
}

/** The controller's leader lease: a coordination.k8s.io/v1 Lease (see StoreLeaseLock for the rules). */
export class K8sLeaseLock extends StoreLeaseLock {
  constructor(components: { kubeConfig: KubeConfig; clock: Clock }, init: K8sLeaseLockInit) {
    super(
      { store: new K8sLeaseStore(components.kubeConfig, init.namespace, init.name), clock: components.clock },
      { identity: init.identity, leaseDurationSeconds: init.leaseDurationSeconds },
    );
  }
}
