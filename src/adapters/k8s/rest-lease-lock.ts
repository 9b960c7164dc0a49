/**
 * The controller's leader Lease on the REST client (no @kubernetes/client-node: docs/adr/0038).
 * Same store semantics as K8sLeaseStore: read, create, replace with the read resourceVersion;
 * 409 is 'conflict'.
 */
import type { Clock } from '../../core/ports.js';
import { HttpStatusError, type RestClient } from './rest-client.js';
import {
  leaseBody,
  storedLease,
  StoreLeaseLock,
  type LeaseStore,
  type LeaseWrite,
  type StoredLease,
} from './store-lease-lock.js';
// A type only: lease-lock.ts (client-node) is not loaded.
import type { K8sLeaseLockInit } from './lease-lock.js';

interface LeaseBody {
  metadata?: { resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    leaseTransitions?: number;
    acquireTime?: string;
  };
}

/** An ISO time with microseconds (MicroTime), as coordination.k8s.io/v1 wants renewTime. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const code = (err: unknown) => (err instanceof HttpStatusError ? err.code : undefined);

/** A coordination.k8s.io/v1 Lease as a LeaseStore, over RestClient. */
export class RestLeaseStore implements LeaseStore {
  private acquireTime: string | undefined;
  private readonly collection: string;

  constructor(
    private readonly client: RestClient,
    private readonly namespace: string,
    private readonly name: string,
  ) {
    this.collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  }

  private get at() {
    return { namespace: this.namespace, name: this.name };
  }

  private toStored(l: LeaseBody): StoredLease {
    this.acquireTime = l.spec?.acquireTime;
    return storedLease(l);
  }

  private body(w: LeaseWrite, resourceVersion?: string): object {
    return leaseBody(this.at, w, microTime(new Date()), this.acquireTime, resourceVersion);
  }

  private get path(): string {
    return `${this.collection}/${encodeURIComponent(this.name)}`;
  }

  async get(): Promise<StoredLease | undefined> {
    try {
      return this.toStored(await this.client.request<LeaseBody>('GET', this.path));
    } catch (err) {
      if (code(err) === 404) return undefined;
      throw err;
    }
  }

  async create(w: LeaseWrite): Promise<StoredLease | 'conflict'> {
    try {
      return this.toStored(
        await this.client.request<LeaseBody>('POST', this.collection, { body: this.body(w) }),
      );
    } catch (err) {
      if (code(err) === 409) return 'conflict';
      throw err;
    }
  }

  async update(w: LeaseWrite, resourceVersion: string): Promise<StoredLease | 'conflict'> {
    try {
      return this.toStored(
        await this.client.request<LeaseBody>('PUT', this.path, { body: this.body(w, resourceVersion) }),
      );
    } catch (err) {
      if (code(err) === 409) return 'conflict';
      throw err;
    }
  }
}

/** The controller's leader lease on RestClient (see StoreLeaseLock for the rules). */
export class RestLeaseLock extends StoreLeaseLock {
  constructor(components: { client: RestClient; clock: Clock }, init: K8sLeaseLockInit) {
    super(
      { store: new RestLeaseStore(components.client, init.namespace, init.name), clock: components.clock },
      { identity: init.identity, leaseDurationSeconds: init.leaseDurationSeconds },
    );
  }
}
