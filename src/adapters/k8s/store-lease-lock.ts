import type { Clock, LeaseLock, LeaseRecord, Millis } from '../../core/ports.js';

/** A lease as stored, with the version used for optimistic concurrency. */
export interface StoredLease extends LeaseRecord {
  resourceVersion: string;
}

/** The fields a candidate writes. */
export interface LeaseWrite {
  holderIdentity: string;
  leaseDurationSeconds: number;
  leaseTransitions: number;
  /** Set on a change of holder. */
  acquired: boolean;
}

/**
 * Where a lease lives. `create` and `update` resolve 'conflict' when someone else wrote first
 * (409 / resourceVersion mismatch) and reject on other errors. Implemented on
 * coordination.k8s.io (K8sLeaseStore) and in memory (test/fakes/k8s.ts).
 */
export interface LeaseStore {
  get(): Promise<StoredLease | undefined>;
  create(write: LeaseWrite): Promise<StoredLease | 'conflict'>;
  update(write: LeaseWrite, resourceVersion: string): Promise<StoredLease | 'conflict'>;
}

/** What both Lease stores read back: the fields of a coordination.k8s.io/v1 Lease they use. */
export interface LeaseObject {
  metadata?: { resourceVersion?: string };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; leaseTransitions?: number };
}

export function storedLease(l: LeaseObject): StoredLease {
  return {
    holderIdentity: l.spec?.holderIdentity ?? '',
    leaseDurationSeconds: l.spec?.leaseDurationSeconds ?? 15,
    leaseTransitions: l.spec?.leaseTransitions ?? 0,
    resourceVersion: l.metadata?.resourceVersion ?? '',
  };
}

/**
 * The Lease a write sends, for either client: `now` is the renewTime (and the acquireTime on a
 * change of holder, else the one read last), in the client's MicroTime form.
 */
export function leaseBody<T>(
  at: { namespace: string; name: string },
  w: LeaseWrite,
  now: T,
  lastAcquireTime: T | undefined,
  resourceVersion?: string,
) {
  const acquireTime = w.acquired ? now : lastAcquireTime;
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: at.name,
      namespace: at.namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    spec: {
      holderIdentity: w.holderIdentity,
      leaseDurationSeconds: w.leaseDurationSeconds,
      leaseTransitions: w.leaseTransitions,
      renewTime: now,
      ...(acquireTime ? { acquireTime } : {}),
    },
  };
}

export interface StoreLeaseLockInit {
  identity: string;
  /** Written into the lease; others wait this long after the last change they saw. */
  leaseDurationSeconds: number;
}

/**
 * The lease algorithm of client-go's leaderelection, on any LeaseStore: a lease held by
 * someone else counts as expired only when this candidate has seen the same
 * resourceVersion for leaseDuration on its own monotonic clock, so wall-clock skew between
 * machines does not matter. A released lease (empty holder) is free at once.
 */
export class StoreLeaseLock implements LeaseLock {
  readonly identity: string;
  private readonly durationS: number;
  private observed: { resourceVersion: string; at: Millis } | undefined;

  constructor(
    private readonly components: { store: LeaseStore; clock: Clock },
    init: StoreLeaseLockInit,
  ) {
    if (!init.identity)
      throw new Error('lease identity must not be empty; set it to the pod name (POD_NAME)');
    if (!Number.isInteger(init.leaseDurationSeconds) || init.leaseDurationSeconds < 1) {
      throw new Error(`leaseDurationSeconds must be a whole number >= 1, got ${init.leaseDurationSeconds}`);
    }
    this.identity = init.identity;
    this.durationS = init.leaseDurationSeconds;
  }

  async tryAcquireOrRenew(): Promise<boolean> {
    const { store, clock } = this.components;
    const now = clock.now();
    const cur = await store.get();
    if (!cur) {
      const created = await store.create({
        holderIdentity: this.identity,
        leaseDurationSeconds: this.durationS,
        leaseTransitions: 0,
        acquired: true,
      });
      if (created === 'conflict') return false;
      this.observed = { resourceVersion: created.resourceVersion, at: now };
      return true;
    }
    if (this.observed?.resourceVersion !== cur.resourceVersion)
      this.observed = { resourceVersion: cur.resourceVersion, at: now };
    const ours = cur.holderIdentity === this.identity;
    const free = cur.holderIdentity === '';
    const expired = this.observed.at + cur.leaseDurationSeconds * 1000 <= now;
    if (!ours && !free && !expired) return false;
    const updated = await store.update(
      {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.durationS,
        leaseTransitions: cur.leaseTransitions + (ours ? 0 : 1),
        acquired: !ours,
      },
      cur.resourceVersion,
    );
    if (updated === 'conflict') return false;
    this.observed = { resourceVersion: updated.resourceVersion, at: now };
    return true;
  }

  async release(): Promise<void> {
    const { store } = this.components;
    const cur = await store.get();
    if (!cur || cur.holderIdentity !== this.identity) return;
    // As client-go: empty holder and a 1 s duration, so candidates take over at once.
    await store.update(
      {
        holderIdentity: '',
        leaseDurationSeconds: 1,
        leaseTransitions: cur.leaseTransitions,
        acquired: false,
      },
      cur.resourceVersion,
    );
  }

  async read(): Promise<LeaseRecord | undefined> {
    const cur = await this.components.store.get();
    if (!cur) return undefined;
    return {
      holderIdentity: cur.holderIdentity,
      leaseDurationSeconds: cur.leaseDurationSeconds,
      leaseTransitions: cur.leaseTransitions,
    };
  }
}
