/**
 * ObjectCache, the informer-style cache the controller and the agent watch through: the
 * latest copy per object, changes with the previous copy, sync state per kind, and single
 * objects watched by name (the auth Secret) that come and go.
 */
import type { ApiObject } from '../../../src/core/ports.js';
import { ObjectCache, type CacheChange } from '../../../src/runtime/object-cache.js';
import { FakeApiSource } from '../../fakes/k8s.js';

const flush = () => new Promise((r) => setImmediate(r));

function vip(name: string, address: string): ApiObject {
  return {
    metadata: { name, namespace: 'lab' },
    spec: { clusterRef: { name: 'web' }, address },
  } as ApiObject;
}

describe('ObjectCache', () => {
  it('keeps the latest copy, reports each change with the copy before it, and says when a kind synced', async () => {
    const api = new FakeApiSource();
    api.apply('VirtualIP', vip('a', '198.18.0.100/24'));
    const changes: CacheChange[] = [];
    const synced: string[] = [];
    const cache = new ObjectCache(
      api,
      (c) => changes.push(c),
      (k) => synced.push(k),
    );
    expect(cache.isSynced('VirtualIP')).toBe(false);
    cache.watch('VirtualIP', { namespace: 'lab' });
    await flush();
    expect(cache.isSynced('VirtualIP')).toBe(true);
    expect(cache.hasSynced()).toBe(true);
    expect(synced).toEqual(['VirtualIP']);
    expect(cache.get('VirtualIP', 'lab/a')?.spec).toMatchObject({ address: '198.18.0.100/24' });

    api.apply('VirtualIP', vip('a', '198.18.0.101/24'));
    await flush();
    const update = changes.at(-1)!;
    expect(update.type).toBe('updated');
    expect((update.old?.spec as { address: string }).address).toBe('198.18.0.100/24');
    expect((update.object.spec as { address: string }).address).toBe('198.18.0.101/24');

    api.delete('VirtualIP', { namespace: 'lab', name: 'a' });
    await flush();
    expect(changes.at(-1)?.type).toBe('deleted');
    expect(cache.get('VirtualIP', 'lab/a')).toBeUndefined();
    expect(cache.list('VirtualIP', 'lab')).toEqual([]);
    cache.stop();
  });

  it('watches one object by name: synced once even when absent, forgotten when unwatched', async () => {
    const api = new FakeApiSource();
    const cache = new ObjectCache(api, () => {});
    let syncs = 0;
    cache.watchNamed('Secret', 'lab', 'auth', () => syncs++);
    cache.watchNamed('Secret', 'lab', 'auth', () => syncs++); // idempotent
    await flush();
    expect(syncs).toBe(1);
    expect(cache.namedSynced('Secret', 'lab', 'auth')).toBe(true);
    expect(cache.get('Secret', 'lab/auth')).toBeUndefined();
    expect(cache.namedOf('Secret')).toEqual(['lab/auth']);

    api.apply('Secret', { metadata: { name: 'auth', namespace: 'lab' }, data: { '1': 'AAAA' } } as ApiObject);
    api.apply('Secret', { metadata: { name: 'other', namespace: 'lab' }, data: {} } as ApiObject);
    await flush();
    expect(cache.get('Secret', 'lab/auth')).toBeDefined();
    expect(cache.get('Secret', 'lab/other')).toBeUndefined();

    cache.unwatchNamed('Secret', 'lab', 'auth');
    expect(cache.get('Secret', 'lab/auth')).toBeUndefined();
    expect(cache.namedSynced('Secret', 'lab', 'auth')).toBe(false);
    expect(cache.namedOf('Secret')).toEqual([]);
    cache.stop();
  });
});
