/**
 * The NetworkDriver contract against the real thing: NetdNetworkDriver (heartline-netd) in a
 * fresh network namespace per test (`hl-nd-<pid>-<n>`), deleted afterwards. Needs root.
 *
 * Each namespace: eth0 (veth, up, carrier) with 198.18.1.1/24 and 2001:2:0:1::1/64, and eth1
 * (veth whose peer is down: no carrier).
 *
 * Everything runs in both owner modes (docs/adr/0013-netd-owner-mode.md): `proto` (IFA_PROTO,
 * what this kernel keeps) and `fallback` (the prefix-route metric mark of kernels 5.4-5.17,
 * forced with --owner-mode=fallback).
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { resolveNetdBinary } from '../../src/adapters/linux/netd-binary.js';
import { NetdNetworkDriver } from '../../src/adapters/linux/netd-driver.js';
import type { NetdOwnerMode } from '../../src/adapters/linux/netd-protocol.js';
import { networkDriverContract } from '../contract/network-driver.js';

const sh = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const prefix = `hl-nd-${process.pid}-`;
let seq = 0;
const MODES: NetdOwnerMode[] = ['proto', 'fallback'];
/** The fallback mode's mark: the address's prefix-route metric (native/heartline-netd.c HL_METRIC). */
const MARK_METRIC = 0x484c4e44;

async function ip(...args: string[]): Promise<string> {
  return (await sh('ip', args, { timeout: 10_000 })).stdout;
}

async function deleteNetns(name: string): Promise<void> {
  await ip('netns', 'del', name).catch(() => undefined);
}

async function addressesOn(ns: string, iface: string): Promise<string[]> {
  const links = JSON.parse(await ip('-n', ns, '-j', 'addr', 'show', 'dev', iface)) as {
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
}

async function makeNode(): Promise<string> {
  const ns = `${prefix}${seq++}`;
  await ip('netns', 'add', ns);
  try {
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
    await ip('-n', ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p');
    for (const l of ['eth0', 'eth0p', 'eth1']) await ip('-n', ns, 'link', 'set', l, 'up');
    await ip('-n', ns, 'addr', 'add', '198.18.1.1/24', 'dev', 'eth0');
    await ip('-n', ns, 'addr', 'add', '2001:2:0:1::1/64', 'dev', 'eth0', 'nodad');
  } catch (err) {
    await deleteNetns(ns);
    throw err;
  }
  return ns;
}

if (!isRoot) {
  describe('NetworkDriver contract: NetdNetworkDriver in a network namespace', () => {
    it.skip('SKIPPED: needs root to create network namespaces (run npm run test:e2e as root)', () =>
      undefined);
  });
} else {
  jest.setTimeout(20_000);

  afterAll(async () => {
    // Leftovers from a test that failed half-way.
    const left = (await ip('netns', 'list')).split('\n').map((l) => l.split(' ')[0]!);
    await Promise.all(left.filter((n) => n.startsWith(prefix)).map(deleteNetns));
  });

  for (const ownerMode of MODES)
    networkDriverContract(
      `NetdNetworkDriver (heartline-netd, owner mode ${ownerMode}) in a fresh network namespace`,
      async () => {
        const ns = await makeNode();
        let driver: NetdNetworkDriver;
        try {
          driver = await NetdNetworkDriver.start({ netns: ns, ownerMode });
        } catch (err) {
          await deleteNetns(ns);
          throw err;
        }
        return {
          driver,
          iface: 'eth0',
          downIface: 'eth1',
          addForeign: async (iface, cidr) => {
            await ip('-n', ns, 'addr', 'add', cidr, 'dev', iface, ...(cidr.includes(':') ? ['nodad'] : []));
          },
          addressesOn: (iface) => addressesOn(ns, iface),
          wait: (ms) => new Promise((r) => setTimeout(r, ms)),
          teardown: async () => {
            try {
              await driver.close();
            } finally {
              await deleteNetns(ns);
            }
          },
        };
      },
    );

  describe.each(MODES)('NetdNetworkDriver specifics (owner mode %s)', (ownerMode) => {
    const other: NetdOwnerMode = ownerMode === 'proto' ? 'fallback' : 'proto';
    let ns: string;
    let driver: NetdNetworkDriver | undefined;
    beforeEach(async () => {
      ns = await makeNode();
    });
    afterEach(async () => {
      await driver?.close().catch(() => undefined);
      driver = undefined;
      await deleteNetns(ns);
    });

    it(`marks its addresses the ${ownerMode} way, with a kernel lifetime, and leaves the node's routes alone`, async () => {
      driver = await NetdNetworkDriver.start({ netns: ns, ownerMode });
      expect(driver.ownerMode).toBe(ownerMode);
      const routesBefore = [
        await ip('-n', ns, 'route'),
        await ip('-n', ns, '-6', 'route', 'show', '2001:2:0:1::/64'),
      ];
      const vips = ['198.18.1.100/24', '2001:2:0:1::100/64', '198.19.5.10/24'];
      for (const cidr of vips) await driver.add({ iface: 'eth0', cidr }, 7, 5000);
      for (const cidr of vips) {
        const out = await ip(
          '-n',
          ns,
          '-d',
          'addr',
          'show',
          'dev',
          'eth0',
          'to',
          cidr.replace(/\/\d+$/, cidr.includes(':') ? '/128' : '/32'),
        );
        expect(out).toMatch(/valid_lft [67]sec/);
        // iproute2 6.1 cannot print IFA_PROTO: in proto mode the proof it is set is that LIST
        // finds the address while the node's own 198.18.1.1 (no proto, no metric) is not listed.
        if (ownerMode === 'fallback') expect(out).toContain(`metric ${MARK_METRIC}`);
        else expect(out).not.toMatch(/metric/);
      }
      expect((await driver.list()).map((a) => a.cidr).sort()).toEqual([...vips].sort());
      for (const cidr of vips) await driver.remove({ iface: 'eth0', cidr });
      // The node's own connected routes are as they were (the fallback mark is the metric of
      // the VIP's own prefix route, never of the node's).
      expect(await ip('-n', ns, 'route')).toBe(routesBefore[0]);
      expect(await ip('-n', ns, '-6', 'route', 'show', '2001:2:0:1::/64')).toContain(routesBefore[1]!.trim());
    });

    it('its start-up probe leaves nothing on lo and never touches an address already there', async () => {
      await ip('-n', ns, 'addr', 'add', '127.72.76.1/32', 'dev', 'lo'); // someone's, on the first candidate
      driver = await NetdNetworkDriver.start({ netns: ns, ownerMode });
      expect(driver.ownerMode).toBe(ownerMode);
      expect(await addressesOn(ns, 'lo')).toEqual(['127.0.0.1/8', '127.72.76.1/32', '::1/128']);
      expect(await driver.sweep()).toEqual([]);
      expect(await addressesOn(ns, 'lo')).toContain('127.72.76.1/32');
    });

    it('sweeps addresses left by a previous heartline-netd (stale from a previous life)', async () => {
      const first = await NetdNetworkDriver.start({ netns: ns, ownerMode });
      await first.add({ iface: 'eth0', cidr: '198.18.1.101/24' }, 30, 60_000);
      await first.add({ iface: 'eth0', cidr: '2001:2:0:1::101/64' }, 30, 60_000);
      process.kill(first.pid!, 'SIGKILL'); // no sweep on its way out
      await new Promise((r) => setTimeout(r, 100));
      expect(await addressesOn(ns, 'eth0')).toEqual(
        expect.arrayContaining(['198.18.1.101/24', '2001:2:0:1::101/64']),
      );
      driver = await NetdNetworkDriver.start({ netns: ns, ownerMode });
      expect((await driver.sweep()).map((a) => a.cidr).sort()).toEqual([
        '198.18.1.101/24',
        '2001:2:0:1::101/64',
      ]);
      const left = await addressesOn(ns, 'eth0');
      expect(left).not.toContain('198.18.1.101/24');
      expect(left).not.toContain('2001:2:0:1::101/64');
    });

    it(`sweeps addresses left by a heartline-netd that ran in ${other} mode`, async () => {
      const first = await NetdNetworkDriver.start({ netns: ns, ownerMode: other });
      await first.add({ iface: 'eth0', cidr: '198.18.1.104/24' }, 30, 60_000);
      await first.add({ iface: 'eth0', cidr: '2001:2:0:1::104/64' }, 30, 60_000);
      process.kill(first.pid!, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
      driver = await NetdNetworkDriver.start({ netns: ns, ownerMode });
      expect((await driver.sweep()).map((a) => a.cidr).sort()).toEqual([
        '198.18.1.104/24',
        '2001:2:0:1::104/64',
      ]);
    });

    it('never sweeps or adopts a foreign address, whatever its metric', async () => {
      const foreign = [
        ['198.18.1.60/24', 'metric', '1024'], // as systemd-networkd's DHCP client sets it
        ['198.18.1.61/24', 'metric', String(MARK_METRIC - 1)],
        ['198.19.6.1/24', 'metric', String(MARK_METRIC + 1)],
        ['2001:2:0:1::61/64', 'metric', '1024', 'nodad'],
        ['198.18.1.62/24', 'valid_lft', '60', 'preferred_lft', '60'], // dynamic, like a DHCP lease
      ];
      for (const [cidr, ...opts] of foreign) await ip('-n', ns, 'addr', 'add', cidr!, 'dev', 'eth0', ...opts);
      const stale = await NetdNetworkDriver.start({ netns: ns, ownerMode });
      await stale.add({ iface: 'eth0', cidr: '198.18.1.105/24' }, 30, 60_000);
      process.kill(stale.pid!, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
      driver = await NetdNetworkDriver.start({ netns: ns, ownerMode });
      expect(await driver.sweep()).toEqual([{ iface: 'eth0', cidr: '198.18.1.105/24' }]);
      expect(await driver.list()).toEqual([]);
      await expect(driver.add({ iface: 'eth0', cidr: '198.18.1.60/24' }, 10, 5000)).rejects.toThrow(
        /not Heartline's/,
      );
      expect(await addressesOn(ns, 'eth0')).toEqual(expect.arrayContaining(foreign.map(([cidr]) => cidr)));
    });

    it('reports the fence firing through onExpired', async () => {
      const expired: unknown[] = [];
      driver = await NetdNetworkDriver.start({ netns: ns, ownerMode, onExpired: (a) => expired.push(a) });
      await driver.add({ iface: 'eth0', cidr: '198.18.1.102/24' }, 30, 50);
      await new Promise((r) => setTimeout(r, 300));
      expect(expired).toEqual([{ iface: 'eth0', cidr: '198.18.1.102/24' }]);
    });

    it('counts a fence deadline from when the request was made, not from when netd read it', async () => {
      // The driver's clock reads 400 ms behind: as if each request had waited 400 ms in the
      // pipe for a starved netd. The deadline is absolute, so that wait comes off the fence.
      let lagNs = 400_000_000n;
      const expired: Array<{ addr: unknown; at: number }> = [];
      driver = await NetdNetworkDriver.start({
        netns: ns,
        ownerMode,
        monotonicNs: () => process.hrtime.bigint() - lagNs,
        onExpired: (addr) => expired.push({ addr, at: performance.now() }),
      });
      const a = { iface: 'eth0', cidr: '198.18.1.104/24' };
      // Passed before netd read it: nothing is added, and the error says why.
      await expect(driver.add(a, 30, 300)).rejects.toThrow(
        /passed \d+(\.\d)? ms before the request was read: not adding/,
      );
      expect(await addressesOn(ns, 'eth0')).not.toContain(a.cidr);
      // 600 ms asked, 400 of them gone: removed about 200 ms after the add, not 600.
      const t0 = performance.now();
      await driver.add(a, 30, 600);
      expect(await addressesOn(ns, 'eth0')).toContain(a.cidr);
      const t1 = performance.now();
      while (expired.length === 0 && performance.now() - t1 < 3000)
        await new Promise((r) => setTimeout(r, 10));
      expect(expired.map((e) => e.addr)).toEqual([a]);
      expect(expired[0]!.at - t0).toBeLessThan(550);
      expect(await addressesOn(ns, 'eth0')).not.toContain(a.cidr);
      // A renewal whose deadline has passed removes the address at once (the fence would have).
      lagNs = 0n;
      await driver.add(a, 30, 5000);
      lagNs = 400_000_000n;
      await expect(driver.refresh(a, 30, 300)).rejects.toThrow(
        /passed .* ms before the request was read: .* removed/,
      );
      expect(await addressesOn(ns, 'eth0')).not.toContain(a.cidr);
    });

    it("refuses an absolute deadline not on this host's clock, or malformed", async () => {
      const bin = await resolveNetdBinary();
      const netd = spawn('ip', ['netns', 'exec', ns, bin, `--owner-mode=${ownerMode}`], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let out = '';
      netd.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const nowUs = process.hrtime.bigint() / 1000n;
      netd.stdin.write(
        [
          `ADD 1 eth0 198.18.1.105/24 5 @${nowUs + 2n * 86_400_000_000n}`,
          'ADD 2 eth0 198.18.1.105/24 5 @',
          'ADD 3 eth0 198.18.1.105/24 5 @-5',
          'ADD 4 eth0 198.18.1.105/24 5 @1',
          `ADD 5 eth0 198.18.1.105/24 5 @${nowUs + 5_000_000n}`,
          'LIST 6',
        ].join('\n') + '\n',
      );
      const t0 = Date.now();
      while (!/^6 OK/m.test(out) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      const replies = out.trim().split('\n');
      for (const id of ['1', '2', '3'])
        expect(replies).toContainEqual(
          expect.stringMatching(new RegExp(`^${id} ERR bad deadline .*CLOCK_MONOTONIC`)),
        );
      expect(replies).toContainEqual(expect.stringMatching(/^4 ERR deadline @1 passed/));
      expect(replies).toContain('5 OK');
      expect(replies).toContain('6 OK eth0 198.18.1.105/24');
      netd.stdin.end();
      await new Promise((r) => netd.once('exit', r));
    });

    it('fails every call with a NetdError naming the address once heartline-netd is gone', async () => {
      const exits: unknown[] = [];
      driver = await NetdNetworkDriver.start({
        netns: ns,
        ownerMode,
        onExit: (code, signal) => exits.push({ code, signal }),
      });
      process.kill(driver.pid!, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      expect(exits).toEqual([{ code: null, signal: 'SIGKILL' }]);
      await expect(driver.add({ iface: 'eth0', cidr: '198.18.1.103/24' }, 5, 500)).rejects.toMatchObject({
        name: 'NetdError',
        op: 'add',
        target: '198.18.1.103/24',
        message: expect.stringMatching(/not running.*SIGKILL/),
      });
    });

    it('survives hostile input: garbage, overlong lines, bad numbers, split and batched writes', async () => {
      const bin = await resolveNetdBinary();
      const netd = spawn('ip', ['netns', 'exec', ns, bin, `--owner-mode=${ownerMode}`], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let out = '';
      netd.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const lines = [
        'BOGUS 1',
        'ADD',
        `ADD 2 eth0 198.18.1.100/24 ${'9'.repeat(30)} 100`,
        'ADD 3 eth0 198.18.1.100/33 5 100',
        'ADD 4 eth0 198.18.1.100/24 -1 100',
        'ANNOUNCE 5 eth0 198.18.1.100 100000 1',
        `LINK 6 ${'x'.repeat(40)}`,
        'X'.repeat(5000),
        '\u0000\u0001\u00ff',
      ];
      netd.stdin.write(lines.join('\n') + '\n');
      // A valid request split across writes, then two in one write.
      netd.stdin.write('ADD 7 eth0 198.18.');
      await new Promise((r) => setTimeout(r, 50));
      netd.stdin.write('1.100/24 5 5000\nLIST 8\nLINK 9 eth0\n');
      const t0 = Date.now();
      while (!/^9 OK/m.test(out) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      const replies = out.trim().split('\n');
      for (const id of ['1', '2', '3', '4', '5', '6'])
        expect(replies).toContainEqual(expect.stringMatching(new RegExp(`^${id} ERR `)));
      expect(replies).toContainEqual(expect.stringMatching(/^- ERR request longer than 1024 bytes/));
      expect(replies).toContain('7 OK');
      expect(replies).toContain('8 OK eth0 198.18.1.100/24');
      expect(replies).toContain('9 OK up');
      netd.stdin.end();
      await new Promise((r) => netd.once('exit', r));
      expect(await addressesOn(ns, 'eth0')).not.toContain('198.18.1.100/24');
    });

    it('fails to start with a clear error when the namespace does not exist', async () => {
      await expect(NetdNetworkDriver.start({ netns: `${prefix}missing`, ownerMode })).rejects.toThrow(
        /heartline-netd start/,
      );
    });
  });

  describe('owner mode selection at start', () => {
    let ns: string;
    beforeEach(async () => {
      ns = await makeNode();
    });
    afterEach(async () => {
      await deleteNetns(ns);
    });

    /** Runs heartline-netd with `args` and `env`, sends HELLO, returns its reply, stderr and exit code. */
    async function hello(
      args: string[],
      env: Record<string, string> = {},
    ): Promise<{ reply: string; stderr: string; code: number | null }> {
      const bin = await resolveNetdBinary();
      const netd = spawn(
        'ip',
        ['netns', 'exec', ns, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), bin, ...args],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let reply = '';
      let stderr = '';
      netd.stdout.setEncoding('utf8').on('data', (d: string) => (reply += d));
      netd.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      netd.stdin.on('error', () => undefined); // it may have exited already
      netd.stdin.end('HELLO 1\n');
      const code = await new Promise<number | null>((r) => netd.once('exit', r));
      return { reply: reply.trim(), stderr, code };
    }

    it('auto (the default) picks proto on this kernel, which keeps IFA_PROTO, and logs it', async () => {
      const { reply, stderr, code } = await hello([]);
      expect(code).toBe(0);
      expect(reply).toMatch(/^1 OK heartline-netd 2 \d+ proto$/);
      expect(stderr).toMatch(
        /owner mode proto: kernel \S+ keeps IFA_PROTO; Heartline's addresses carry proto 0x48/,
      );
      const driver = await NetdNetworkDriver.start({ netns: ns, ownerMode: 'auto' });
      expect(driver.ownerMode).toBe('proto');
      await driver.close();
    });

    it('HEARTLINE_NETD_OWNER_MODE sets the mode, --owner-mode wins over it', async () => {
      expect((await hello([], { HEARTLINE_NETD_OWNER_MODE: 'fallback' })).reply).toMatch(/ fallback$/);
      expect(
        (await hello(['--owner-mode', 'proto'], { HEARTLINE_NETD_OWNER_MODE: 'fallback' })).reply,
      ).toMatch(/ proto$/);
    });

    it('on a kernel that drops IFA_PROTO, auto picks fallback and proto refuses to start', async () => {
      // The test hook makes the probe behave as a kernel < 5.18 does (IFA_PROTO not kept).
      const old = { HEARTLINE_NETD_TEST_KERNEL_DROPS_PROTO: '1' };
      const auto = await hello(['--owner-mode=auto'], old);
      expect(auto.reply).toMatch(/^1 OK heartline-netd 2 \d+ fallback$/);
      expect(auto.stderr).toMatch(
        /owner mode fallback: kernel \S+ drops IFA_PROTO \(kept from Linux 5\.18\); Heartline's addresses carry prefix-route metric 1212960324/,
      );
      const proto = await hello(['--owner-mode=proto'], old);
      expect(proto.code).toBe(1);
      expect(proto.reply).toBe('');
      expect(proto.stderr).toMatch(
        /does not keep IFA_PROTO \(Linux >= 5\.18 does\): use --owner-mode=auto or fallback/,
      );
      expect(await addressesOn(ns, 'lo')).toEqual(['127.0.0.1/8', '::1/128']);
    });

    it('refuses an unknown mode, naming the flag or variable and the values', async () => {
      const flag = await hello(['--owner-mode=kernel']);
      expect(flag.code).toBe(2);
      expect(flag.stderr).toMatch(/--owner-mode=kernel: want auto, proto or fallback/);
      const env = await hello([], { HEARTLINE_NETD_OWNER_MODE: 'yes' });
      expect(env.code).toBe(2);
      expect(env.stderr).toMatch(/HEARTLINE_NETD_OWNER_MODE=yes: want auto, proto or fallback/);
      await expect(NetdNetworkDriver.start({ netns: ns, ownerMode: 'kernel' as 'auto' })).rejects.toThrow(
        /ownerMode must be one of auto, proto, fallback, got "kernel"/,
      );
    });
  });
}
