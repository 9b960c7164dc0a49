/**
 * ApiSource contract, run against FakeApiSource (unit) and K8sApiSource on a real
 * kube-apiserver with the Heartline CRDs (integration). Objects are changed the way users
 * change them (`apply` / `remove`: kubectl for the real one), observed through the port.
 */
import {
  ConflictError,
  NotFoundError,
  type ApiKind,
  type ApiObject,
  type ApiSource,
  type ObjectKey,
  type WatchEvent,
} from '../../src/core/ports.js';

export interface SeenEvent {
  type: string;
  reason: string;
  note: string;
  action: string;
  regardingName: string;
  regardingKind: string;
}

export interface ApiSourceSubject {
  api: ApiSource;
  /** A namespace that exists and is this suite's alone. */
  namespace: string;
  apply(kind: ApiKind, obj: ApiObject): Promise<void>;
  remove(kind: ApiKind, key: ObjectKey): Promise<void>;
  readEvents(namespace: string): Promise<SeenEvent[]>;
  /** Lets asynchronous work progress a little. */
  settle(): Promise<void>;
}

export function resourceObject(
  namespace: string,
  name: string,
  labels: Record<string, string> = {},
  start = '/etc/heartline/resource.d/web',
): ApiObject {
  return {
    apiVersion: 'heartline.dev/v1alpha1',
    kind: 'Resource',
    metadata: { name, namespace, labels },
    spec: { kind: 'exec', exec: { start: [start], stop: ['/etc/heartline/resource.d/web', 'stop'] } },
  };
}

function secretObject(namespace: string, name: string): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'Opaque',
    data: { key: Buffer.from('k').toString('base64') },
  };
}

export function apiSourceContract(
  name: string,
  make: () => Promise<ApiSourceSubject>,
  done: (s: ApiSourceSubject) => Promise<void>,
): void {
  describe(`ApiSource contract: ${name}`, () => {
    let s: ApiSourceSubject;
    let n = 0;
    const unique = (p: string): string => `${p}-${++n}`;
    beforeAll(async () => {
      s = await make();
    });
    afterAll(async () => {
      await s.api.close();
      await done(s);
    });

    const eventually = async <T>(
      what: string,
      fn: () => Promise<T | undefined | false> | T | undefined | false,
    ): Promise<T> => {
      for (let i = 0; i < 300; i++) {
        const v = await fn();
        if (v !== undefined && v !== false) return v;
        await s.settle();
      }
      throw new Error(`timed out waiting for ${what}`);
    };

    it('get returns undefined for a missing object and the object once applied; list filters', async () => {
      const ns = s.namespace;
      const a = unique('get');
      expect(await s.api.get('Resource', { namespace: ns, name: a })).toBeUndefined();
      await s.apply('Resource', resourceObject(ns, a, { tier: 'web' }));
      await s.apply('Resource', resourceObject(ns, unique('other'), { tier: 'db' }));
      const got = await s.api.get('Resource', { namespace: ns, name: a });
      expect(got).toMatchObject({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'Resource',
        metadata: { name: a, namespace: ns },
        spec: { kind: 'exec' },
      });
      expect(got!.metadata.resourceVersion).toEqual(expect.any(String));
      expect(got!.metadata.uid).toEqual(expect.any(String));
      const web = await s.api.list('Resource', { namespace: ns, labelSelector: 'tier=web' });
      expect(web.map((o) => o.metadata.name)).toEqual([a]);
      expect((await s.api.list('Resource', { namespace: ns })).length).toBeGreaterThanOrEqual(2);
    });

    it('reads core kinds (Secret) by name and by field selector', async () => {
      const ns = s.namespace;
      const a = unique('sec');
      await s.apply('Secret', secretObject(ns, a));
      await s.apply('Secret', secretObject(ns, unique('sec')));
      expect(await s.api.get('Secret', { namespace: ns, name: a })).toMatchObject({
        kind: 'Secret',
        metadata: { name: a },
      });
      const only = await s.api.list('Secret', { namespace: ns, fieldSelector: `metadata.name=${a}` });
      expect(only.map((o) => o.metadata.name)).toEqual([a]);
      const seen: WatchEvent[] = [];
      const w = s.api.watch('Secret', (e) => seen.push(e), {
        namespace: ns,
        fieldSelector: `metadata.name=${a}`,
      });
      try {
        await eventually('synced', () => seen.some((e) => e.type === 'synced'));
        expect(
          seen
            .filter((e) => e.type === 'added')
            .map((e) => (e as { object: ApiObject }).object.metadata.name),
        ).toEqual([a]);
      } finally {
        w.stop();
      }
    });

    it('watch delivers existing objects, then synced, then adds, updates and deletes; stop ends it', async () => {
      const ns = s.namespace;
      const label = { suite: unique('watch') };
      const sel = `suite=${label.suite}`;
      const first = unique('w');
      await s.apply('Resource', resourceObject(ns, first, label));
      const seen: { type: string; name?: string; generation?: number }[] = [];
      const w = s.api.watch(
        'Resource',
        (e) =>
          seen.push(
            e.type === 'synced'
              ? { type: e.type }
              : { type: e.type, name: e.object.metadata.name, generation: e.object.metadata.generation },
          ),
        { namespace: ns, labelSelector: sel },
      );
      await eventually('synced', () => seen.some((e) => e.type === 'synced'));
      expect(seen.slice(0, 2)).toEqual([{ type: 'added', name: first, generation: 1 }, { type: 'synced' }]);
      const second = unique('w');
      await s.apply('Resource', resourceObject(ns, second, label));
      await eventually('added', () => seen.some((e) => e.type === 'added' && e.name === second));
      await s.apply('Resource', resourceObject(ns, second, label, '/etc/heartline/resource.d/other'));
      await eventually('updated', () =>
        seen.some((e) => e.type === 'updated' && e.name === second && e.generation === 2),
      );
      await s.remove('Resource', { namespace: ns, name: second });
      await eventually('deleted', () => seen.some((e) => e.type === 'deleted' && e.name === second));
      w.stop();
      const count = seen.length;
      await s.remove('Resource', { namespace: ns, name: first });
      for (let i = 0; i < 10; i++) await s.settle();
      expect(seen.length).toBe(count);
    });

    it('hands out objects without managedFields (get, list, watch, write results)', async () => {
      const ns = s.namespace;
      const key = { namespace: ns, name: unique('mf') };
      await s.apply('Resource', resourceObject(ns, key.name, { suite: key.name }));
      const seen: ApiObject[] = [];
      const w = s.api.watch('Resource', (e) => e.type !== 'synced' && seen.push(e.object), {
        namespace: ns,
        labelSelector: `suite=${key.name}`,
      });
      try {
        await eventually('added', () => seen.length > 0);
        const written = await s.api.patchStatus('Resource', key, { nodes: [], observedGeneration: 1 });
        await eventually('status seen', () => seen.some((o) => o.status !== undefined));
        const got = await s.api.get('Resource', key);
        const listed = (await s.api.list('Resource', { namespace: ns })).find(
          (o) => o.metadata.name === key.name,
        );
        for (const o of [written.object, got, listed, ...seen]) {
          expect(o).toBeDefined();
          expect(o!.metadata.uid).toEqual(expect.any(String));
          expect(o!.metadata).not.toHaveProperty('managedFields');
        }
      } finally {
        w.stop();
      }
    });

    it('patchStatus writes only differences, reports no-ops, detects conflicts and absence', async () => {
      const ns = s.namespace;
      const key = { namespace: ns, name: unique('st') };
      await s.apply('Resource', resourceObject(ns, key.name));
      const status1 = {
        nodes: [{ name: 'node-a', state: 'running', message: 'started' }],
        observedGeneration: 1,
      };
      const r1 = await s.api.patchStatus('Resource', key, status1);
      expect(r1.changed).toBe(true);
      expect(r1.object.status).toEqual(status1);
      expect((await s.api.get('Resource', key))!.status).toEqual(status1);
      const r2 = await s.api.patchStatus('Resource', key, structuredClone(status1));
      expect(r2.changed).toBe(false);
      expect(r2.object.metadata.resourceVersion).toBe(r1.object.metadata.resourceVersion);
      const status2 = { nodes: [{ name: 'node-a', state: 'stopped' }], observedGeneration: 1 };
      const r3 = await s.api.patchStatus('Resource', key, status2, {
        expectResourceVersion: r1.object.metadata.resourceVersion!,
      });
      expect(r3.changed).toBe(true);
      expect((await s.api.get('Resource', key))!.status).toEqual(status2); // removed field is gone
      await expect(
        s.api.patchStatus('Resource', key, status1, {
          expectResourceVersion: r1.object.metadata.resourceVersion!,
        }),
      ).rejects.toBeInstanceOf(ConflictError);
      await expect(
        s.api.patchStatus('Resource', { namespace: ns, name: unique('absent') }, status1),
      ).rejects.toBeInstanceOf(NotFoundError);
    });

    it('finalizers are idempotent and hold deletion until removed', async () => {
      const ns = s.namespace;
      const key = { namespace: ns, name: unique('fin') };
      const f = 'heartline.dev/cleanup';
      await s.apply('Resource', resourceObject(ns, key.name));
      expect(await s.api.addFinalizer('Resource', key, f)).toBe(true);
      expect(await s.api.addFinalizer('Resource', key, f)).toBe(false);
      expect((await s.api.get('Resource', key))!.metadata.finalizers).toEqual([f]);
      await s.remove('Resource', key);
      const held = await eventually('deletionTimestamp', async () => {
        const o = await s.api.get('Resource', key);
        return o?.metadata.deletionTimestamp ? o : undefined;
      });
      expect(held.metadata.finalizers).toEqual([f]);
      expect(await s.api.removeFinalizer('Resource', key, f)).toBe(true);
      await eventually('gone', async () => (await s.api.get('Resource', key)) === undefined);
      expect(await s.api.removeFinalizer('Resource', key, f)).toBe(false);
      await expect(s.api.addFinalizer('Resource', key, f)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('records Events about an object', async () => {
      const ns = s.namespace;
      const name = unique('ev');
      await s.apply('Resource', resourceObject(ns, name));
      const regarding = (await s.api.get('Resource', { namespace: ns, name }))!;
      await s.api.event({
        regarding,
        type: 'Warning',
        reason: 'StartFailed',
        note: `start of ${name} exited 3`,
        action: 'Start',
      });
      const ev = await eventually('event', async () =>
        (await s.readEvents(ns)).find((e) => e.regardingName === name),
      );
      expect(ev).toEqual({
        type: 'Warning',
        reason: 'StartFailed',
        note: `start of ${name} exited 3`,
        action: 'Start',
        regardingName: name,
        regardingKind: 'Resource',
      });
    });
  });
}
