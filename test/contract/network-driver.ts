/**
 * NetworkDriver contract: the fake (test/fakes/network.ts) and the real driver
 * (NetdNetworkDriver in a fresh network namespace) must both pass it.
 *
 * The harness provides one node with:
 *   - `iface`: up, carrying the node's own addresses 198.18.1.1/24 and 2001:2:0:1::1/64
 *     (its connected subnets; 2001:2::/48 is IPv6's benchmarking range, RFC 5180, the
 *     counterpart of 198.18.0.0/15);
 *   - `downIface`: exists, carrier down, no addresses.
 */
import type { NetworkDriver } from '../../src/core/ports.js';

export interface NetworkDriverHarness {
  driver: NetworkDriver;
  iface: string;
  downIface: string;
  /** Adds an address the way an operator would (`ip addr add`): not Heartline's. */
  addForeign(iface: string, cidr: string): Promise<void>;
  /** Every address on `iface` as the kernel has it, Heartline's or not, as canonical CIDRs. */
  addressesOn(iface: string): Promise<string[]>;
  /** Lets `ms` pass (really, or on the simulated clock). */
  wait(ms: number): Promise<void>;
  teardown(): Promise<void>;
}

const V4 = '198.18.1.100/24';
const V6 = '2001:2:0:1::100/64';

export function networkDriverContract(name: string, setup: () => Promise<NetworkDriverHarness>): void {
  describe(`NetworkDriver contract: ${name}`, () => {
    let h: NetworkDriverHarness;
    beforeEach(async () => {
      h = await setup();
    });
    afterEach(async () => {
      await h.teardown();
    });

    it.each([
      ['IPv4', V4],
      ['IPv6', V6],
    ])('adds an %s address with a lifetime, lists it as Heartline-owned, removes it', async (_f, cidr) => {
      await h.driver.add({ iface: h.iface, cidr }, 10, 5000);
      expect(await h.driver.list()).toEqual([{ iface: h.iface, cidr }]);
      expect(await h.addressesOn(h.iface)).toContain(cidr);
      await h.driver.remove({ iface: h.iface, cidr });
      expect(await h.driver.list()).toEqual([]);
      expect(await h.addressesOn(h.iface)).not.toContain(cidr);
    });

    it('lists only Heartline addresses, never the node’s own', async () => {
      await h.driver.add({ iface: h.iface, cidr: V4 }, 10, 5000);
      await h.driver.add({ iface: h.iface, cidr: V6 }, 10, 5000);
      const listed = (await h.driver.list()).map((a) => a.cidr).sort();
      expect(listed).toEqual([V6, V4].sort());
      expect(await h.addressesOn(h.iface)).toEqual(
        expect.arrayContaining(['198.18.1.1/24', '2001:2:0:1::1/64']),
      );
    });

    it('adding the same address again on the same interface is a refresh, not an error', async () => {
      await h.driver.add({ iface: h.iface, cidr: V4 }, 10, 5000);
      await h.driver.add({ iface: h.iface, cidr: V4 }, 10, 5000);
      expect(await h.driver.list()).toEqual([{ iface: h.iface, cidr: V4 }]);
    });

    it('removing an absent address is not an error', async () => {
      await expect(h.driver.remove({ iface: h.iface, cidr: '198.18.1.77/24' })).resolves.toBeUndefined();
    });

    it('the fence removes an address at its deadline unless refreshed', async () => {
      await h.driver.add({ iface: h.iface, cidr: V4 }, 10, 150);
      await h.driver.add({ iface: h.iface, cidr: V6 }, 10, 400);
      await h.wait(100);
      await h.driver.refresh({ iface: h.iface, cidr: V6 }, 10, 400);
      await h.wait(250); // V4's deadline (150) passed; V6's moved to ~500
      expect(await h.addressesOn(h.iface)).not.toContain(V4);
      expect(await h.addressesOn(h.iface)).toContain(V6);
      expect(await h.driver.list()).toEqual([{ iface: h.iface, cidr: V6 }]);
      await h.wait(350);
      expect(await h.addressesOn(h.iface)).not.toContain(V6);
    });

    it('never resurrects: refreshing an address the fence already removed fails', async () => {
      await h.driver.add({ iface: h.iface, cidr: V4 }, 10, 50);
      await h.wait(150);
      await expect(h.driver.refresh({ iface: h.iface, cidr: V4 }, 10, 5000)).rejects.toThrow(/not bound/);
      expect(await h.addressesOn(h.iface)).not.toContain(V4);
    });

    it('refreshing an address never added fails and names it', async () => {
      await expect(h.driver.refresh({ iface: h.iface, cidr: V4 }, 10, 5000)).rejects.toThrow(V4);
    });

    it('sweep removes every Heartline address and only those', async () => {
      await h.addForeign(h.iface, '198.18.1.50/24');
      await h.driver.add({ iface: h.iface, cidr: V4 }, 10, 5000);
      await h.driver.add({ iface: h.iface, cidr: V6 }, 10, 5000);
      const removed = await h.driver.sweep();
      expect(removed.map((a) => a.cidr).sort()).toEqual([V6, V4].sort());
      expect(removed.every((a) => a.iface === h.iface)).toBe(true);
      const left = await h.addressesOn(h.iface);
      expect(left).toEqual(expect.arrayContaining(['198.18.1.50/24', '198.18.1.1/24', '2001:2:0:1::1/64']));
      expect(left).not.toContain(V4);
      expect(left).not.toContain(V6);
      expect(await h.driver.sweep()).toEqual([]);
    });

    it('refuses to take over an address someone else put on the interface', async () => {
      await h.addForeign(h.iface, '198.18.1.60/24');
      await expect(h.driver.add({ iface: h.iface, cidr: '198.18.1.60/24' }, 10, 5000)).rejects.toThrow(
        /not Heartline's/,
      );
      await h.driver.sweep();
      expect(await h.addressesOn(h.iface)).toContain('198.18.1.60/24');
    });

    it('rejects an unknown interface, naming it', async () => {
      await expect(h.driver.add({ iface: 'hlnope0', cidr: V4 }, 10, 5000)).rejects.toThrow(/hlnope0/);
      await expect(h.driver.linkUp('hlnope0')).rejects.toThrow(/hlnope0/);
    });

    it('rejects a malformed CIDR, naming it', async () => {
      await expect(h.driver.add({ iface: h.iface, cidr: '198.18.1.300/24' }, 10, 5000)).rejects.toThrow(
        /198\.18\.1\.300/,
      );
      await expect(h.driver.add({ iface: h.iface, cidr: '198.18.1.30' }, 10, 5000)).rejects.toThrow(
        /198\.18\.1\.30/,
      );
    });

    it('finds the interface by connected subnet (findif), v4 and v6', async () => {
      expect(await h.driver.interfaceFor('198.18.1.200')).toBe(h.iface);
      expect(await h.driver.interfaceFor('2001:2:0:1::abcd')).toBe(h.iface);
      expect(await h.driver.interfaceFor('198.19.200.1')).toBeUndefined();
      expect(await h.driver.interfaceFor('2001:2:0:99::1')).toBeUndefined();
    });

    it('a Heartline address does not make its own subnet (findif ignores VIPs)', async () => {
      await h.driver.add({ iface: h.iface, cidr: '198.19.5.10/24' }, 10, 5000);
      expect(await h.driver.interfaceFor('198.19.5.20')).toBeUndefined();
    });

    it('reports link state: up with carrier, down without', async () => {
      expect(await h.driver.linkUp(h.iface)).toBe(true);
      expect(await h.driver.linkUp(h.downIface)).toBe(false);
    });

    it('announces only addresses it holds', async () => {
      await expect(h.driver.announce({ iface: h.iface, cidr: V4 }, 1, 0)).rejects.toThrow(/not bound/);
      await h.driver.add({ iface: h.iface, cidr: V4 }, 10, 5000);
      await h.driver.add({ iface: h.iface, cidr: V6 }, 10, 5000);
      await expect(h.driver.announce({ iface: h.iface, cidr: V4 }, 3, 20)).resolves.toBeUndefined();
      await expect(h.driver.announce({ iface: h.iface, cidr: V6 }, 3, 20)).resolves.toBeUndefined();
    });

    it('calls take effect in the order made: announce right after an unawaited add', async () => {
      const added = h.driver.add({ iface: h.iface, cidr: V4 }, 10, 5000);
      const announced = h.driver.announce({ iface: h.iface, cidr: V4 }, 1, 0);
      await expect(added).resolves.toBeUndefined();
      await expect(announced).resolves.toBeUndefined();
      // After a failed add, the announce made right behind it fails too.
      const refused = h.driver.add({ iface: 'hlnope0', cidr: V6 }, 10, 5000);
      const orphan = h.driver.announce({ iface: h.iface, cidr: V6 }, 1, 0);
      await expect(refused).rejects.toThrow();
      await expect(orphan).rejects.toThrow(/not bound/);
    });

    it('close removes every Heartline address and later calls fail', async () => {
      await h.addForeign(h.iface, '198.18.1.51/24');
      await h.driver.add({ iface: h.iface, cidr: V4 }, 10, 5000);
      await h.driver.close();
      const left = await h.addressesOn(h.iface);
      expect(left).not.toContain(V4);
      expect(left).toContain('198.18.1.51/24');
      await expect(h.driver.list()).rejects.toThrow(/closed|not running/);
    });
  });
}
