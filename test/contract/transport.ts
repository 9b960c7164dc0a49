/**
 * Transport contract, run against UdpTransport (127.0.0.1, ephemeral ports) and SimTransport
 * (fault-free SimNetwork). `open()` binds a new endpoint on the shared network; `settle()`
 * lets in-flight datagrams arrive.
 */
import type { MulticastTransport, Peer, Transport } from '../../src/core/ports.js';

export interface TransportSubject {
  open(): Promise<Transport>;
  settle(): Promise<void>;
  /** Closes everything the subject opened. */
  teardown(): Promise<void>;
}

/** A transport that can join multicast links, with the interface to join them on. */
export interface MulticastEndpoint {
  transport: MulticastTransport;
  /** An interface of this endpoint (e.g. lo) and its IPv4 address. */
  interface: string;
  address: string;
}

export interface MulticastSubject {
  /** Binds a new multicast-capable endpoint on the shared network. */
  open(): Promise<MulticastEndpoint>;
  /** A group to use (unique to the run, so parallel runs do not cross). */
  group: string;
  settle(): Promise<void>;
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

/**
 * Multicast links: a datagram to a joined group reaches the other endpoints that joined it
 * at the destination port, from the sender's address on the link; a group nobody joined
 * here is never sent; leaving stops delivery; a link that cannot be joined is refused and
 * changes nothing.
 */
export function multicastTransportContract(name: string, make: () => MulticastSubject): void {
  describe(`MulticastTransport contract: ${name}`, () => {
    let s: MulticastSubject;
    let a: MulticastEndpoint;
    let b: MulticastEndpoint;
    let atB: Received[];
    beforeEach(async () => {
      s = make();
      a = await s.open();
      b = await s.open();
      atB = [];
      b.transport.onMessage((d, from) => atB.push({ bytes: [...d], from }));
    });
    afterEach(() => s.teardown());

    const waitFor = async (cond: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !cond(); i++) await s.settle();
    };
    const join = (e: MulticastEndpoint) =>
      e.transport.setMulticast([{ group: s.group, interface: e.interface }]);
    const toB = () => ({ address: s.group, port: b.transport.address().port });

    it('joins on the named interface and reports the link', async () => {
      expect(await join(a)).toEqual([{ group: s.group, interface: a.interface, address: a.address }]);
    });

    it('joins on the interface holding the default address when none is named', async () => {
      expect(await a.transport.setMulticast([{ group: s.group }], a.address)).toEqual([
        { group: s.group, interface: a.interface, address: a.address },
      ]);
    });

    it("delivers a datagram to the group to a member at its port, from the sender's link address", async () => {
      await join(a);
      await join(b);
      expect(await a.transport.send(toB(), Uint8Array.from([4, 2, 0xff]))).toBe(true);
      await waitFor(() => atB.length > 0);
      expect(atB.map((r) => ({ bytes: r.bytes, from: r.from.address }))).toEqual([
        { bytes: [4, 2, 0xff], from: a.address },
      ]);
    });

    it('never sends to a group it has not joined (no default interface)', async () => {
      await join(b);
      expect(await a.transport.send(toB(), Uint8Array.from([1]))).toBe(false);
      for (let i = 0; i < 5; i++) await s.settle();
      expect(atB).toEqual([]);
    });

    // Whether a left endpoint still receives is not part of the contract: on one Linux host
    // a socket on the unspecified address receives a group's datagrams while any socket of
    // the host is a member there (IP_MULTICAST_ALL). The UdpTransport tests check the
    // kernel membership itself.
    it('sends to a group no more once it left it', async () => {
      await join(a);
      await join(b);
      expect(await a.transport.setMulticast([])).toEqual([]);
      expect(await a.transport.send(toB(), Uint8Array.from([1]))).toBe(false);
      for (let i = 0; i < 5; i++) await s.settle();
      expect(atB).toEqual([]);
    });

    it('refuses a link it cannot join, naming the interface, and keeps the links it had', async () => {
      await join(a);
      await join(b);
      await expect(
        b.transport.setMulticast([
          { group: s.group, interface: b.interface },
          { group: s.group, interface: 'nosuch9' },
        ]),
      ).rejects.toThrow(/nosuch9 does not exist/);
      await expect(b.transport.setMulticast([{ group: s.group }], '198.18.255.254')).rejects.toThrow(
        /198\.18\.255\.254 is on none of its interfaces/,
      );
      await a.transport.send(toB(), Uint8Array.from([7]));
      await waitFor(() => atB.length > 0);
      expect(atB.map((r) => r.bytes)).toEqual([[7]]);
    });

    it('after close: multicast sends resolve false and setMulticast rejects', async () => {
      await join(a);
      await a.transport.close();
      expect(await a.transport.send(toB(), Uint8Array.from([1]))).toBe(false);
      await expect(join(a)).rejects.toThrow(/closed/);
    });
  });
}
