import { SimClock } from '../../../fakes/clock.js';
import { FakeNetworkDriver } from '../../../fakes/network.js';
import { networkDriverContract } from '../../../contract/network-driver.js';

function fakeNode(clock = new SimClock()): FakeNetworkDriver {
  return new FakeNetworkDriver(
    { clock },
    {
      interfaces: [
        { name: 'eth0', addresses: ['198.18.1.1/24', '2001:2:0:1::1/64'] },
        { name: 'eth1', up: false },
      ],
    },
  );
}

networkDriverContract('FakeNetworkDriver on a SimClock', async () => {
  const clock = new SimClock();
  const driver = fakeNode(clock);
  return {
    driver,
    iface: 'eth0',
    downIface: 'eth1',
    addForeign: async (iface, cidr) => driver.addForeign(iface, cidr),
    addressesOn: async (iface) => driver.addresses(iface).map((a) => a.cidr),
    wait: (ms) => clock.advance(ms),
    teardown: () => driver.close(),
  };
});

describe('FakeNetworkDriver fault hooks', () => {
  const vip = { iface: 'eth0', cidr: '198.18.1.100/24' };

  it('agentDied removes every Heartline address at once, like the fence on EOF', async () => {
    const clock = new SimClock();
    const net = fakeNode(clock);
    await net.add(vip, 5, 10_000);
    await clock.advance(10);
    net.agentDied();
    expect(net.holds(vip.cidr)).toBe(false);
    expect(net.removals).toEqual([{ addr: vip, at: 10, by: 'agent-death' }]);
    expect(net.holds('198.18.1.1/24')).toBe(true);
  });

  it('fenceDied leaves only the kernel lifetime, counted in whole seconds rounded up', async () => {
    const clock = new SimClock();
    const net = fakeNode(clock);
    await net.add(vip, 0.3, 200);
    net.fenceDied();
    await clock.advance(999);
    expect(net.holds(vip.cidr)).toBe(true); // the 200 ms deadline is no longer enforced
    await clock.advance(1);
    expect(net.holds(vip.cidr)).toBe(false);
    expect(net.removals).toEqual([{ addr: vip, at: 1000, by: 'lifetime' }]);
  });

  it('the deadline fires on the simulated clock even if nobody looks, and is recorded', async () => {
    const clock = new SimClock();
    const net = fakeNode(clock);
    await net.add(vip, 5, 300);
    await clock.advance(1000);
    expect(net.removals).toEqual([{ addr: vip, at: 300, by: 'deadline' }]);
  });

  it('a drifting clock moves the deadline with it (the fence reads the node’s own clock)', async () => {
    const clock = new SimClock({ rate: 1.5 });
    const net = fakeNode(clock);
    await net.add(vip, 5, 300);
    await clock.advance(199);
    expect(net.holds(vip.cidr)).toBe(true);
    await clock.advance(2);
    expect(net.holds(vip.cidr)).toBe(false);
  });

  it('records calls with their time and arguments', async () => {
    const clock = new SimClock({ start: 42 });
    const net = fakeNode(clock);
    await net.add(vip, 2, 500);
    await net.announce(vip, 3, 100);
    await net.linkUp('eth1');
    expect(net.calls).toEqual([
      { op: 'add', at: 42, addr: vip, lifetimeSec: 2, deadlineMs: 500 },
      { op: 'announce', at: 42, addr: vip, count: 3, intervalMs: 100 },
      { op: 'linkUp', at: 42, iface: 'eth1' },
    ]);
  });

  it('setLink changes what linkUp reports', async () => {
    const net = fakeNode();
    net.setLink('eth0', false);
    expect(await net.linkUp('eth0')).toBe(false);
  });

  it('canonicalises IPv6 like the kernel (RFC 5952)', async () => {
    const net = fakeNode();
    await net.add({ iface: 'eth0', cidr: '2001:0002:0000:0001:0000:0000:0000:0100/64' }, 5, 1000);
    expect(await net.list()).toEqual([{ iface: 'eth0', cidr: '2001:2:0:1::100/64' }]);
  });
});
