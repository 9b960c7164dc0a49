import { readFile } from 'node:fs/promises';
import type { Transport } from '../../../../src/core/ports.js';
import { HEARTBEAT_RECEIVE_BUFFER, UdpTransport } from '../../../../src/adapters/udp/udp-transport.js';
import { multicastTransportContract, transportContract } from '../../../contract/transport.js';
import { SimClock } from '../../../fakes/clock.js';
import { SimNetwork } from '../../../fakes/transport.js';

transportContract('UdpTransport udp4 on 127.0.0.1', () => {
  const opened: Transport[] = [];
  return {
    open: async () => {
      const t = await UdpTransport.open({ address: '127.0.0.1', port: 0 });
      opened.push(t);
      return t;
    },
    settle: () => new Promise((r) => setTimeout(r, 5)),
    teardown: async () => {
      await Promise.all(opened.map((t) => t.close()));
    },
  };
});

transportContract('SimTransport on a fault-free SimNetwork', () => {
  const clock = new SimClock();
  const net = new SimNetwork({ clock, faults: { delayMs: 1 } });
  const opened: Transport[] = [];
  return {
    open: () => {
      const t = net.transport('127.0.0.1');
      opened.push(t);
      return Promise.resolve(t);
    },
    settle: () => clock.advance(1),
    teardown: async () => {
      await Promise.all(opened.map((t) => t.close()));
    },
  };
});

// Multicast over the loopback interface of this namespace: TTL 1 on lo never leaves the
// machine, and nothing but the group membership of the test's own sockets changes.
multicastTransportContract('UdpTransport on lo (receiving socket on 0.0.0.0)', () => {
  const opened: Transport[] = [];
  return {
    group: `239.255.94.${1 + (process.pid % 250)}`,
    open: async () => {
      const transport = await UdpTransport.open({ address: '0.0.0.0', port: 0 });
      opened.push(transport);
      return { transport, interface: 'lo', address: '127.0.0.1' };
    },
    settle: () => new Promise((r) => setTimeout(r, 5)),
    teardown: async () => {
      await Promise.all(opened.map((t) => t.close()));
    },
  };
});

multicastTransportContract('SimTransport on a fault-free SimNetwork', () => {
  const clock = new SimClock();
  const net = new SimNetwork({ clock, faults: { delayMs: 1 } });
  const opened: Transport[] = [];
  let host = 10;
  return {
    group: '239.192.0.94',
    open: () => {
      const address = `198.18.0.${host++}`;
      const transport = net.transport([address, `198.19.0.${host}`]);
      opened.push(transport);
      return Promise.resolve({ transport, interface: 'eth0', address });
    },
    settle: () => clock.advance(1),
    teardown: async () => {
      await Promise.all(opened.map((t) => t.close()));
    },
  };
});

describe('UdpTransport', () => {
  it('works over udp6 on ::1', async () => {
    const a = await UdpTransport.open({ type: 'udp6', address: '::1' });
    const b = await UdpTransport.open({ address: '::1' });
    try {
      const got = new Promise<{ d: number[]; from: string }>((resolve) =>
        b.onMessage((d, from) => resolve({ d: [...d], from: from.address })),
      );
      expect(await a.send(b.address(), Uint8Array.from([6, 6]))).toBe(true);
      expect(await got).toEqual({ d: [6, 6], from: '::1' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses to bind a port in use unless both ask for reuseAddr', async () => {
    const a = await UdpTransport.open({ address: '127.0.0.1' });
    const port = a.address().port;
    try {
      await expect(UdpTransport.open({ address: '127.0.0.1', port })).rejects.toThrow(
        /cannot bind UDP udp4 127\.0\.0\.1:\d+: .*spec\.transport\.port/,
      );
    } finally {
      await a.close();
    }
    const r1 = await UdpTransport.open({ address: '127.0.0.1', reuseAddr: true });
    const r2 = await UdpTransport.open({ address: '127.0.0.1', port: r1.address().port, reuseAddr: true });
    expect(r2.address()).toEqual(r1.address());
    await r1.close();
    await r2.close();
  });

  it('joins a group on the interface in the kernel and leaves it on setMulticast([]) and on close', async () => {
    const group = `239.255.95.${1 + (process.pid % 250)}`;
    // /proc/net/igmp lists each interface's groups as little-endian hex, with a user count.
    const hex = group
      .split('.')
      .reverse()
      .map((o) => Number(o).toString(16).padStart(2, '0'))
      .join('')
      .toUpperCase();
    const users = async (): Promise<number> => {
      let device = '';
      for (const line of (await readFile('/proc/net/igmp', 'utf8')).split('\n')) {
        const head = /^\d+\s+(\S+)\s*:/.exec(line);
        if (head) device = head[1]!;
        const m = /^\s+([0-9A-F]{8})\s+(\d+)/.exec(line);
        if (m && m[1] === hex && device === 'lo') return Number(m[2]);
      }
      return 0;
    };
    const a = await UdpTransport.open({ address: '0.0.0.0' });
    const b = await UdpTransport.open({ address: '0.0.0.0' });
    try {
      expect(await users()).toBe(0);
      await a.setMulticast([{ group, interface: 'lo' }]);
      // Setting the same links again changes nothing.
      await a.setMulticast([{ group, interface: 'lo' }]);
      await b.setMulticast([{ group, interface: 'lo' }]);
      expect(await users()).toBe(2);
      expect(await a.setMulticast([])).toEqual([]);
      expect(await users()).toBe(1);
      await b.close();
      expect(await users()).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses multicast on a socket bound to one address, naming the fix', async () => {
    const t = await UdpTransport.open({ address: '127.0.0.1' });
    try {
      await expect(t.setMulticast([{ group: '239.255.96.1', interface: 'lo' }])).rejects.toThrow(
        /multicast needs the heartbeat socket bound to 0\.0\.0\.0, not 127\.0\.0\.1: start the agent with --listen-address 0\.0\.0\.0/,
      );
    } finally {
      await t.close();
    }
  });

  it('asks for a heartbeat-sized receive buffer (capped by net.core.rmem_max), or the one given', async () => {
    const rmemMax = Number((await readFile('/proc/sys/net/core/rmem_max', 'utf8')).trim());
    const a = await UdpTransport.open({ address: '127.0.0.1' });
    const b = await UdpTransport.open({ address: '127.0.0.1', receiveBufferBytes: 65536 });
    try {
      expect(a.receiveBufferBytes()).toBe(2 * Math.min(HEARTBEAT_RECEIVE_BUFFER, rmemMax));
      expect(b.receiveBufferBytes()).toBe(2 * Math.min(65536, rmemMax));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('keeps delivering to other handlers when one throws', async () => {
    const a = await UdpTransport.open({ address: '127.0.0.1' });
    const b = await UdpTransport.open({
      address: '127.0.0.1',
      logger: (await import('pino')).pino({ level: 'silent' }),
    });
    try {
      b.onMessage(() => {
        throw new Error('handler bug');
      });
      const got = new Promise<number[]>((resolve) => b.onMessage((d) => resolve([...d])));
      await a.send(b.address(), Uint8Array.from([1]));
      expect(await got).toEqual([1]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('SimNetwork faults', () => {
  function setup(seed = 7) {
    const clock = new SimClock();
    const net = new SimNetwork({ clock, seed });
    const a = net.transport('198.18.0.1', 694);
    const b = net.transport('198.18.0.2', 694);
    const atA: number[] = [];
    const atB: number[] = [];
    a.onMessage((d) => atA.push(d[0]!));
    b.onMessage((d) => atB.push(d[0]!));
    return { clock, net, a, b, atA, atB };
  }
  const send = async (from: Transport, to: Transport, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await from.send(to.address(), Uint8Array.from([i]));
  };

  it('delays delivery by delayMs on the clock', async () => {
    const { clock, net, a, b, atB } = setup();
    net.setFaults({ delayMs: 50 });
    await send(a, b, 1);
    await clock.advance(49);
    expect(atB).toEqual([]);
    await clock.advance(1);
    expect(atB).toEqual([0]);
  });

  it('drops about `loss` of the datagrams, deterministically per seed', async () => {
    const run = async (seed: number): Promise<number[]> => {
      const { clock, net, a, b, atB } = setup(seed);
      net.setFaults({ loss: 0.3 });
      await send(a, b, 200);
      await clock.advance(1);
      return atB;
    };
    const first = await run(42);
    expect(first.length).toBeGreaterThan(100);
    expect(first.length).toBeLessThan(180);
    expect(await run(42)).toEqual(first);
  });

  it('partitions both ways, one-way blocks only one direction, heal restores', async () => {
    const { clock, net, a, b, atA, atB } = setup();
    net.partition(['198.18.0.1'], ['198.18.0.2']);
    await send(a, b, 1);
    await send(b, a, 1);
    await clock.advance(1);
    expect([atA, atB]).toEqual([[], []]);
    net.heal();
    net.block('198.18.0.1', '198.18.0.2');
    await send(a, b, 1);
    await send(b, a, 1);
    await clock.advance(1);
    expect([atA, atB]).toEqual([[0], []]);
    expect(net.stats.blocked).toBe(3);
  });

  it('duplicates and reorders when asked', async () => {
    const { clock, net, a, b, atB } = setup(3);
    net.setFaults({ duplicate: 1 });
    await send(a, b, 1);
    await clock.advance(1);
    expect(atB).toEqual([0, 0]);
    atB.length = 0;
    net.setFaults({ delayMs: 1, reorder: 1, reorderMs: 10 }, '198.18.0.1', '198.18.0.2');
    await a.send(b.address(), Uint8Array.from([1]));
    net.setFaults({ delayMs: 1 }, '198.18.0.1', '198.18.0.2');
    await a.send(b.address(), Uint8Array.from([2]));
    await clock.advance(20);
    expect(atB).toEqual([2, 1]);
  });

  it('applies per-link faults only to that direction', async () => {
    const { clock, net, a, b, atA, atB } = setup();
    net.setFaults({ loss: 1 }, '198.18.0.2', '198.18.0.1');
    await send(a, b, 3);
    await send(b, a, 3);
    await clock.advance(1);
    expect(atB).toEqual([0, 1, 2]);
    expect(atA).toEqual([]);
  });

  it('refuses a second bind of the same address and port', () => {
    const { net } = setup();
    expect(() => net.transport('198.18.0.1', 694)).toThrow(/already bound/);
  });
});
