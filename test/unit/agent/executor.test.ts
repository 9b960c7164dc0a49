/** The executor's own guard against two VIPs on one address (defence behind the configuration rule). */
import { describe, expect, it } from '@jest/globals';
import { VipExecutor, type ExecutorEvent } from '../../../src/agent/executor.js';
import type { VirtualIPSpec } from '../../../src/api/index.js';
import { silentLogger } from '../../../src/ops/log.js';
import type { VipConfig } from '../../../src/runtime/cluster-config.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { FakeNetworkDriver } from '../../fakes/network.js';
import { ScriptedServiceRunner } from '../../fakes/services.js';

function vip(id: string, address: string): VipConfig {
  return {
    vip: id,
    preferredNodes: [],
    eligible: undefined,
    epochFloor: 0,
    deleting: false,
    resources: [],
    spec: {
      clusterRef: { name: 'web' },
      address,
      announce: { count: 1, intervalMs: 100, refreshMs: 0 },
    } as VirtualIPSpec,
  };
}

function rig(configs: VipConfig[]) {
  const world = new SimWorld();
  const clock = new SimClock({ world });
  const driver = new FakeNetworkDriver(
    { clock },
    { interfaces: [{ name: 'eth0', addresses: ['198.18.0.11/24'] }] },
  );
  const events: ExecutorEvent[] = [];
  const refused: Array<[string, string]> = [];
  const unhealthy: Array<[string, string]> = [];
  const table = new Map(configs.map((c) => [c.vip, c]));
  const ex = new VipExecutor({
    clock,
    driver,
    runner: new ScriptedServiceRunner({ clock }),
    log: silentLogger(),
    lookup: (id) => table.get(id),
    onUnhealthy: (id, reason) => unhealthy.push([id, reason]),
    onEvent: (e) => events.push(e),
    onAddressRefused: (id, other) => refused.push([id, other]),
  });
  const bind = (id: string, epoch = 1) =>
    ex.bind({ type: 'bind', vip: id, epoch, leaseExpiry: clock.now() + 900, reason: 'test' });
  return { world, clock, driver, ex, events, refused, unhealthy, table, bind };
}

describe('VipExecutor: one address, one VIP', () => {
  it('refuses to add an address another of its VIPs holds: logged, counted, reported; the lease is kept', async () => {
    const r = rig([vip('ns/a', '198.18.0.100/24'), vip('ns/b', '198.18.0.100/32')]);
    r.bind('ns/a');
    await r.ex.drain();
    r.bind('ns/b');
    await r.ex.drain();
    expect(r.driver.calls.flatMap((c) => (c.op === 'add' ? [c.addr] : []))).toEqual([
      { cidr: '198.18.0.100/24', iface: 'eth0' },
    ]);
    expect(r.refused).toEqual([['ns/b', 'ns/a']]);
    expect(r.events.find((e) => e.vip === 'ns/b')).toMatchObject({
      type: 'Warning',
      reason: 'AddressConflict',
      note: expect.stringContaining('VirtualIP ns/a holds this address on this node'),
    });
    // Not marked unhealthy: that would hand ns/b (and its address) to another node.
    expect(r.unhealthy).toEqual([]);
    expect(r.ex.bound().map((b) => b.vip)).toEqual(['ns/a']);
  });

  it('waits for a VIP releasing the same address, then binds: the removal cannot take the new address', async () => {
    const r = rig([vip('ns/a', '198.18.0.100/24'), vip('ns/b', '198.18.0.100/24')]);
    r.bind('ns/a');
    await r.ex.drain();
    void r.ex.unbind({ type: 'unbind', vip: 'ns/a', epoch: 1, reason: 'removed', detail: 'test' } as never);
    r.bind('ns/b');
    await r.ex.drain();
    const ops = r.driver.calls.filter((c) => c.op === 'add' || c.op === 'remove').map((c) => c.op);
    expect(ops).toEqual(['add', 'remove', 'add']);
    expect(r.driver.holds('198.18.0.100/24')).toBe(true);
    expect(r.refused).toEqual([]);
    expect(r.ex.bound().map((b) => b.vip)).toEqual(['ns/b']);
  });

  it('a spec.address changed while bound: the old address is kept until the member lets the VIP go', async () => {
    const r = rig([vip('ns/a', '198.18.0.100/24')]);
    r.bind('ns/a');
    await r.ex.drain();
    r.table.set('ns/a', vip('ns/a', '198.18.0.120/24'));
    r.ex.renew({ type: 'renew', vip: 'ns/a', epoch: 1, leaseExpiry: r.clock.now() + 900 });
    r.ex.renew({ type: 'renew', vip: 'ns/a', epoch: 1, leaseExpiry: r.clock.now() + 900 });
    await r.ex.drain();
    expect(r.unhealthy).toEqual([
      [
        'ns/a',
        'spec.address changed from 198.18.0.100/24 to 198.18.0.120/24: released to bind the new address',
      ],
    ]);
    expect(r.driver.holds('198.18.0.100/24')).toBe(true);
    expect(r.events.map((e) => e.reason)).toEqual(['Bound', 'AddressChanged']);
  });
});

describe('VipExecutor: the interface lookup', () => {
  it('a bind while warm() is still looking up the interface waits for that answer: one lookup, not two', async () => {
    const r = rig([vip('ns/a', '198.18.0.100/24')]);
    // Hold every interfaceFor until released, as a driver whose answer is a round trip away.
    const real = r.driver.interfaceFor.bind(r.driver);
    const held: Array<() => void> = [];
    r.driver.interfaceFor = (ip: string) =>
      new Promise((res, rej) => held.push(() => real(ip).then(res, rej)));
    r.ex.warm(['198.18.0.100/24']);
    r.bind('ns/a');
    await Promise.resolve();
    await Promise.resolve();
    expect(held).toHaveLength(1);
    held.splice(0).forEach((go) => go());
    await r.ex.drain();
    expect(r.driver.calls.filter((c) => c.op === 'interfaceFor')).toHaveLength(1);
    expect(r.driver.holds('198.18.0.100/24')).toBe(true);
  });
});
