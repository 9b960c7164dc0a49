/**
 * Concurrent reconcile workers: several objects at once, never one object twice at once.
 * Every write the controller makes is held at a gate, so reconciles stay in flight while the
 * test piles more changes onto the same objects.
 */
import type {
  ApiEvent,
  ApiKind,
  ApiObject,
  ApiSource,
  ObjectKey,
  OwnedKind,
  Stoppable,
  WatchEvent,
  WatchOptions,
} from '../../../src/core/ports.js';
import { NS, Rig } from './rig.js';

/**
 * Passes reads through; holds writes to the objects `holds` picks until `open`, counting
 * writes in flight per object.
 */
class GatedApi implements ApiSource {
  private readonly held: Array<() => void> = [];
  private readonly inFlight = new Map<string, number>();
  private closed = true;
  maxPerObject = 0;
  maxTotal = 0;
  private total = 0;

  constructor(
    private readonly inner: ApiSource,
    private readonly holds: (id: string) => boolean = () => true,
  ) {}

  /** Lets every held write (and, while `stayOpen`, every later one) through. */
  open(stayOpen = false): void {
    this.closed = !stayOpen;
    for (const r of this.held.splice(0)) r();
  }

  get heldCount(): number {
    return this.held.length;
  }

  private async gate<T>(kind: string, key: ObjectKey, call: () => Promise<T>): Promise<T> {
    const id = `${kind}|${key.namespace ?? ''}/${key.name}`;
    const n = (this.inFlight.get(id) ?? 0) + 1;
    this.inFlight.set(id, n);
    this.total++;
    this.maxPerObject = Math.max(this.maxPerObject, n);
    this.maxTotal = Math.max(this.maxTotal, this.total);
    try {
      if (this.closed && this.holds(id)) await new Promise<void>((r) => this.held.push(r));
      return await call();
    } finally {
      this.inFlight.set(id, (this.inFlight.get(id) ?? 1) - 1);
      this.total--;
    }
  }

  watch(kind: ApiKind, handler: (event: WatchEvent) => void, options?: WatchOptions): Stoppable {
    return this.inner.watch(kind, handler, options);
  }
  get(kind: ApiKind, key: ObjectKey): Promise<ApiObject | undefined> {
    return this.inner.get(kind, key);
  }
  list(kind: ApiKind, options?: WatchOptions): Promise<ApiObject[]> {
    return this.inner.list(kind, options);
  }
  patchStatus(
    kind: OwnedKind,
    key: ObjectKey,
    status: unknown,
    options?: { expectResourceVersion?: string },
  ) {
    return this.gate(kind, key, () => this.inner.patchStatus(kind, key, status, options));
  }
  addFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    return this.gate(kind, key, () => this.inner.addFinalizer(kind, key, finalizer));
  }
  removeFinalizer(kind: OwnedKind, key: ObjectKey, finalizer: string): Promise<boolean> {
    return this.gate(kind, key, () => this.inner.removeFinalizer(kind, key, finalizer));
  }
  event(e: ApiEvent): Promise<void> {
    const m = e.regarding.metadata;
    return this.gate(e.regarding.kind ?? 'object', { namespace: m.namespace, name: m.name }, () =>
      this.inner.event(e),
    );
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const vips = Array.from({ length: 10 }, (_, i) => ({ name: `vip${i}`, address: `198.18.0.${100 + i}/24` }));

describe('controller workers', () => {
  let rig: Rig;
  afterEach(async () => {
    await rig?.close();
  });

  it('reconciles up to `workers` objects at once', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'], vips });
    let gated: GatedApi | undefined;
    rig.addController('c1', { workers: 4, wrap: (api) => (gated = new GatedApi(api)) });
    const gate = gated!;
    await rig.until(() => gate.heldCount === 4); // the leader's 4 workers, each stuck in a write
    await rig.advance(500);
    expect(gate.heldCount).toBe(4); // and no fifth
    gate.open(); // one write each; the next writes are held again
    await rig.until(() => gate.heldCount === 4);
    gate.open(true);
    await rig.until(async () => {
      for (const v of vips) if (!(await rig.vipStatus(v.name)).phase) return false;
      return true;
    });
    expect(gate.maxTotal).toBe(4);
  });

  it('never reconciles one object in two workers at once: changes meanwhile wait for it', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'], vips });
    let gated: GatedApi | undefined;
    rig.addController('c1', {
      workers: 4,
      wrap: (api) => (gated = new GatedApi(api, (id) => id === `VirtualIP|${NS}/vip0`)),
    });
    const gate = gated!;
    await rig.until(() => gate.heldCount === 1); // vip0's reconcile is stuck in a write
    for (let round = 0; round < 5; round++) {
      rig.api.apply('VirtualIP', {
        metadata: { name: 'vip0', namespace: NS, labels: { round: String(round) } },
        spec: { clusterRef: { name: 'web' }, address: vips[0]!.address },
      });
      await rig.advance(200); // three workers are free meanwhile
    }
    // The other objects were reconciled meanwhile; vip0 waited for its own reconcile.
    for (const v of vips.slice(1)) expect((await rig.vipStatus(v.name)).phase).toBeDefined();
    expect(gate.heldCount).toBe(1);
    expect(gate.maxPerObject).toBe(1);
    gate.open(true);
    await rig.until(async () => Boolean((await rig.vipStatus('vip0')).phase));
    expect(gate.maxPerObject).toBe(1);
  });

  it('with one worker, reconciles one object at a time', async () => {
    rig = new Rig({ nodes: ['node-a', 'node-b', 'node-c'], vips: vips.slice(0, 4) });
    let gated: GatedApi | undefined;
    rig.addController('c1', { workers: 1, wrap: (api) => (gated = new GatedApi(api)) });
    const gate = gated!;
    await rig.until(() => gate.heldCount === 1);
    for (let i = 0; i < 5; i++) {
      await rig.advance(100);
      expect(gate.heldCount).toBe(1);
      gate.open();
    }
    gate.open(true);
    await rig.until(async () => Boolean((await rig.vipStatus('vip3')).phase));
    expect(gate.maxTotal).toBe(1);
  });
});
