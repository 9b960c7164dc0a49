/**
 * NetdNetworkDriver's failure handling, without root: stand-in "heartline-netd" binaries that
 * never answer or die at once. The real heartline-netd runs in test/e2e/netd*.test.ts.
 */
import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetdError, NetdNetworkDriver } from '../../../../src/adapters/linux/netd-driver.js';
import { NetdBinaryError, resolveNetdBinary } from '../../../../src/adapters/linux/netd-binary.js';

describe('NetdNetworkDriver failure handling', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hl-netd-unit-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function script(name: string, body: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  }

  it('rejects start with a NetdError when heartline-netd never answers', async () => {
    const binary = await script('silent', 'exec sleep 30');
    await expect(NetdNetworkDriver.start({ binary, requestTimeoutMs: 200 })).rejects.toMatchObject({
      name: 'NetdError',
      op: 'start',
      message: expect.stringMatching(/no reply within 200 ms/),
    });
  });

  it('rejects start naming the exit and the last thing heartline-netd said', async () => {
    const binary = await script(
      'dies',
      'echo "heartline-netd: cannot open rtnetlink: Permission denied" >&2; exit 1',
    );
    const err = await NetdNetworkDriver.start({ binary }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetdError);
    expect((err as Error).message).toMatch(
      /exited with code 1; last said: cannot open rtnetlink: Permission denied/,
    );
  });

  it('refuses a peer speaking another protocol version', async () => {
    const binary = await script(
      'v9',
      'read line; echo "${line#HELLO } OK heartline-netd 9 1"; exec sleep 30',
    );
    await expect(NetdNetworkDriver.start({ binary })).rejects.toThrow(/expected heartline-netd protocol 2/);
  });

  it('times out one request, names its op and address, and keeps serving later ones', async () => {
    // Answers HELLO and LIST; swallows everything else.
    const binary = await script(
      'partial',
      'while read op id rest; do case $op in HELLO) echo "$id OK heartline-netd 2 $$";; LIST) echo "$id OK eth0 198.18.0.9/24";; esac; done',
    );
    const driver = await NetdNetworkDriver.start({ binary, requestTimeoutMs: 200 });
    try {
      await expect(driver.remove({ iface: 'eth0', cidr: '198.18.0.100/24' })).rejects.toMatchObject({
        op: 'remove',
        target: '198.18.0.100/24',
        message: expect.stringMatching(/heartline-netd remove 198\.18\.0\.100\/24: no reply within 200 ms/),
      });
      expect(await driver.list()).toEqual([{ iface: 'eth0', cidr: '198.18.0.9/24' }]);
    } finally {
      await driver.close();
    }
  });

  it('rejects arguments that would break the line protocol before sending them', async () => {
    const binary = await script(
      'hello',
      'read op id rest; echo "$id OK heartline-netd 2 $$"; exec cat >/dev/null',
    );
    const driver = await NetdNetworkDriver.start({ binary });
    try {
      await expect(driver.linkUp('eth0 SWEEP')).rejects.toThrow(/heartline-netd linkUp eth0 SWEEP: .*spaces/);
      await expect(driver.add({ iface: 'eth0', cidr: '198.18.0.1/24' }, 0, 100)).rejects.toThrow(
        /lifetimeSec/,
      );
    } finally {
      await driver.close();
    }
  });

  it('passes --owner-mode to heartline-netd and reports the mode its HELLO names', async () => {
    // Answers HELLO with the mode it was given (the real one probes the kernel first).
    const binary = await script(
      'moded',
      'read op id rest; echo "$id OK heartline-netd 2 $$ ${1#--owner-mode=}"; exec cat >/dev/null',
    );
    const driver = await NetdNetworkDriver.start({ binary, ownerMode: 'fallback' });
    try {
      expect(driver.ownerMode).toBe('fallback');
    } finally {
      await driver.close();
    }
    const old = await NetdNetworkDriver.start({
      binary: await script('old', 'read op id rest; echo "$id OK heartline-netd 2 $$"; exec cat >/dev/null'),
    });
    try {
      expect(old.ownerMode).toBeUndefined(); // a netd from before owner modes: unknown, not guessed
    } finally {
      await old.close();
    }
  });

  it('refuses an unknown ownerMode before starting anything, naming the values', async () => {
    const binary = await script('never', 'touch "$0.ran"; exec sleep 30');
    await expect(NetdNetworkDriver.start({ binary, ownerMode: 'kernel' as 'auto' })).rejects.toMatchObject({
      name: 'NetdError',
      op: 'start',
      message: expect.stringMatching(/ownerMode must be one of auto, proto, fallback, got "kernel"/),
    });
    await expect(access(`${binary}.ran`)).rejects.toThrow();
  });

  it('names the fix when the binary is missing', async () => {
    await expect(resolveNetdBinary(join(dir, 'nope'))).rejects.toThrow(NetdBinaryError);
    await expect(resolveNetdBinary(join(dir, 'nope'))).rejects.toThrow(/not an executable file/);
  });
});
