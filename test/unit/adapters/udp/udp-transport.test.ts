import type { Transport } from '../../../../src/core/ports.js';
import { UdpTransport } from '../../../../src/adapters/udp/udp-transport.js';
import { transportContract } from '../../../contract/transport.js';
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
