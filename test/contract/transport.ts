/**
 * Transport contract, run against UdpTransport (127.0.0.1, ephemeral ports) and SimTransport
 * (fault-free SimNetwork). `open()` binds a new endpoint on the shared network; `settle()`
 * lets in-flight datagrams arrive.
 */
import type { Peer, Transport } from '../../src/core/ports.js';

export interface TransportSubject {
  open(): Promise<Transport>;
  settle(): Promise<void>;
  /** Closes everything the subject opened. */
  teardown(): Promise<void>;
}

interface Received {
  bytes: number[];
  from: Peer;
}

export function transportContract(name: string, make: () => TransportSubject): void {
  describe(`Transport contract: ${name}`, () => {
    let s: TransportSubject;
    let a: Transport;
    let b: Transport;
    let atB: Received[];
    beforeEach(async () => {
      s = make();
      a = await s.open();
      b = await s.open();
      atB = [];
      b.onMessage((d, from) => atB.push({ bytes: [...d], from }));
    });
    afterEach(() => s.teardown());

    const waitFor = async (cond: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !cond(); i++) await s.settle();
    };

    it('binds to a concrete port and reports it', () => {
      expect(a.address().port).toBeGreaterThan(0);
      expect(a.address().port).not.toBe(b.address().port);
    });

    it('delivers the exact bytes, with the sender as seen by the network', async () => {
      const data = Uint8Array.from([1, 2, 3, 250, 0, 7]);
      await expect(a.send(b.address(), data)).resolves.toBe(true);
      await waitFor(() => atB.length > 0);
      expect(atB).toEqual([{ bytes: [1, 2, 3, 250, 0, 7], from: a.address() }]);
    });

    it('delivers a 1200-byte datagram intact', async () => {
      const data = Uint8Array.from({ length: 1200 }, (_, i) => (i * 7) & 0xff);
      expect(await a.send(b.address(), data)).toBe(true);
      await waitFor(() => atB.length > 0);
      expect(atB[0]!.bytes).toEqual([...data]);
    });

    it('lets the sender reuse its buffer once send returns', async () => {
      const data = Uint8Array.from([9, 9, 9]);
      const sent = a.send(b.address(), data);
      data.fill(0);
      expect(await sent).toBe(true);
      await waitFor(() => atB.length > 0);
      expect(atB[0]!.bytes).toEqual([9, 9, 9]);
    });

    it('gives every handler its own copy', async () => {
      const seen: number[][] = [];
      b.onMessage((d) => {
        seen.push([...d]);
        d.fill(0);
      });
      b.onMessage((d) => seen.push([...d]));
      await a.send(b.address(), Uint8Array.from([5, 6]));
      await waitFor(() => seen.length >= 2);
      expect(seen).toEqual([
        [5, 6],
        [5, 6],
      ]);
      expect(atB[0]!.bytes).toEqual([5, 6]);
    });

    it('delivers a burst of datagrams (order not promised)', async () => {
      for (let i = 0; i < 20; i++) expect(await a.send(b.address(), Uint8Array.from([i]))).toBe(true);
      await waitFor(() => atB.length >= 20);
      expect(atB.map((r) => r.bytes[0]).sort((x, y) => x! - y!)).toEqual([...Array(20).keys()]);
    });

    it('resolves false instead of throwing for an invalid destination', async () => {
      const d = Uint8Array.from([1]);
      await expect(a.send({ address: '127.0.0.1', port: 70000 }, d)).resolves.toBe(false);
      await expect(a.send({ address: '127.0.0.1', port: 0 }, d)).resolves.toBe(false);
      await expect(a.send({ address: 'not-an-ip.example', port: 694 }, d)).resolves.toBe(false);
    });

    it('after close: sends resolve false, nothing is delivered, close is idempotent', async () => {
      await b.close();
      await b.close();
      expect(await a.send(b.address(), Uint8Array.from([1]))).toBe(true); // UDP: nobody tells the sender
      await a.close();
      expect(await a.send(b.address(), Uint8Array.from([2]))).toBe(false);
      for (let i = 0; i < 5; i++) await s.settle();
      expect(atB).toEqual([]);
    });
  });
}
