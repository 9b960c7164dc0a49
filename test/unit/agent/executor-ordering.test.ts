/**
 * The executor's ordering rules on their own (src/agent/executor.ts, top comment): the safety
 * argument depends on them, so each is checked here against the fake driver and runner,
 * without a member or an agent around it.
 */
import { describe, expect, it } from '@jest/globals';
import { VipExecutor } from '../../../src/agent/executor.js';
import type { ResourceSpec, VirtualIPSpec } from '../../../src/api/index.js';
import { silentLogger } from '../../../src/ops/log.js';
import type { VipConfig } from '../../../src/runtime/cluster-config.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { FakeNetworkDriver } from '../../fakes/network.js';
import { ScriptedServiceRunner } from '../../fakes/services.js';

const VIP = 'ns/web';
const ADDR = '198.18.0.100/24';

function resource(name: string): { name: string; spec: ResourceSpec } {
  return {
    name,
    spec: {
      kind: 'exec',
      exec: { start: [`/bin/${name}`], stop: [`/bin/${name}`] },
      startTimeoutMs: 5000,
      stopTimeoutMs: 5000,
    } as ResourceSpec,
  };
}

function rig(resources: string[]) {
  const world = new SimWorld();
  const clock = new SimClock({ world });
  const driver = new FakeNetworkDriver(
    { clock },
    { interfaces: [{ name: 'eth0', addresses: ['198.18.0.11/24'] }] },
  );
  const runner = new ScriptedServiceRunner({ clock });
  const config: VipConfig = {
    vip: VIP,
    preferredNodes: [],
    eligible: undefined,
    epochFloor: 0,
    deleting: false,
    resources: resources.map(resource),
    spec: {
      clusterRef: { name: 'web' },
      address: ADDR,
      announce: { count: 1, intervalMs: 100, refreshMs: 0 },
    } as VirtualIPSpec,
  };
  const ex = new VipExecutor({
    clock,
    driver,
    runner,
    log: silentLogger(),
    lookup: (id) => (id === VIP ? config : undefined),
    onUnhealthy: () => {},
  });
  /** The address operations (add, refresh, remove) in the order the driver got them. */
  const timeline = (): string[] => {
    const addr = driver.calls.flatMap((c) =>
      c.op === 'add' || c.op === 'refresh' || c.op === 'remove' ? [{ at: c.at, what: `addr:${c.op}` }] : [],
    );
    return addr.map((a) => a.what);
  };
  const bind = (epoch = 1, leaseMs = 900) =>
    ex.bind({ type: 'bind', vip: VIP, epoch, leaseExpiry: clock.now() + leaseMs, reason: 'test' });
  const renew = (epoch = 1) => ex.renew({ type: 'renew', vip: VIP, epoch, leaseExpiry: clock.now() + 900 });
  return { world, clock, driver, runner, ex, bind, renew, timeline };
}

/** The op sequence of runner and driver interleaved, as each recorded it (both append in call order). */
function ordered(r: ReturnType<typeof rig>, before: () => void): string[] {
  const seq: string[] = [];
  const driverPush = r.driver.calls.push.bind(r.driver.calls);
  const runnerPush = r.runner.calls.push.bind(r.runner.calls);
  r.driver.calls.push = (...items) => {
    for (const c of items)
      if (c.op === 'add' || c.op === 'remove' || c.op === 'refresh') seq.push(`addr:${c.op}`);
    return driverPush(...items);
  };
  r.runner.calls.push = (...items) => {
    for (const c of items)
      if (c.op === 'start' || c.op === 'stop') seq.push(`${c.op}:${c.name.split('/')[1]}`);
    return runnerPush(...items);
  };
  before();
  return seq;
}

describe('VipExecutor ordering rules', () => {
  it('binds the address first, then starts the Resources in order', async () => {
    const r = rig(['db', 'app']);
    const seq = ordered(r, () => r.bind());
    await r.ex.drain();
    expect(seq).toEqual(['addr:add', 'start:db', 'start:app']);
  });

  it('a slow Resource start never delays a renewal: the address queue is separate', async () => {
    const r = rig(['slow']);
    r.runner.once('ns/slow', 'start', 'hang');
    r.bind();
    await r.world.advance(10);
    expect(r.runner.calls.map((c) => c.op)).toEqual(['start']);
    r.renew();
    await r.world.advance(10);
    // The start still hangs (until its 5 s timeout); the refresh went out already.
    expect(r.driver.calls.filter((c) => c.op === 'refresh')).toHaveLength(1);
    expect(r.runner.calls.filter((c) => c.op === 'start')).toHaveLength(1);
  });

  it('a planned unbind stops the Resources (in reverse) before it removes the address', async () => {
    const r = rig(['db', 'app']);
    r.bind();
    await r.ex.drain();
    const seq = ordered(r, () => {
      void r.ex.unbind({ type: 'unbind', vip: VIP, epoch: 1, reason: 'planned', detail: 'test' } as never);
    });
    await r.ex.drain();
    expect(seq).toEqual(['stop:app', 'stop:db', 'addr:remove']);
  });

  it('an unplanned unbind (lease expired) removes the address first, the Resources follow', async () => {
    const r = rig(['db', 'app']);
    r.bind();
    await r.ex.drain();
    const seq = ordered(r, () => {
      void r.ex.unbind({
        type: 'unbind',
        vip: VIP,
        epoch: 1,
        reason: 'lease-expired',
        detail: 'test',
      } as never);
    });
    await r.ex.drain();
    expect(seq[0]).toBe('addr:remove');
    expect(seq.slice(1).sort()).toEqual(['stop:app', 'stop:db']);
  });

  it('unbind resolves only once the address is gone', async () => {
    const r = rig(['slow']);
    r.bind(1, 60_000); // a lease (fence deadline) that outlasts the test
    await r.ex.drain();
    r.runner.once('ns/slow', 'stop', 'hang');
    let resolved = false;
    const done = r.ex
      .unbind({ type: 'unbind', vip: VIP, epoch: 1, reason: 'planned', detail: 'test' } as never)
      .then(() => {
        resolved = true;
        expect(r.driver.holds(ADDR)).toBe(false);
      });
    await r.world.advance(1000);
    // The stop hangs (planned: Resources first), so the address is still there and unbind waits.
    expect(resolved).toBe(false);
    expect(r.driver.holds(ADDR)).toBe(true);
    await r.world.advance(5000);
    await done;
    expect(resolved).toBe(true);
  });

  it('address operations run in command order, and an unbind voids a renewal queued before it', async () => {
    const r = rig([]);
    const unbind = () =>
      r.ex.unbind({ type: 'unbind', vip: VIP, epoch: 1, reason: 'lease-expired', detail: 'test' } as never);
    r.bind();
    await r.ex.drain();
    r.renew();
    await r.ex.drain();
    expect(r.timeline()).toEqual(['addr:add', 'addr:refresh']);
    // Queued together: the renewal belongs to the holding the unbind ends, so it never runs
    // (a refresh after the removal would find the address gone, or add it back).
    r.renew();
    void unbind();
    await r.ex.drain();
    expect(r.timeline()).toEqual(['addr:add', 'addr:refresh', 'addr:remove']);
    expect(r.driver.holds(ADDR)).toBe(false);
  });
});
