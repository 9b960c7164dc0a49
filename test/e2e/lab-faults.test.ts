/**
 * The lab's fault functions on real namespaces: power-off (processes die, instruments
 * survive, the VIP stops counting as held), partition and heal, one-way blackhole, group
 * split, pause and resume. Needs root, iproute2 and iputils-ping; skipped otherwise.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { countProbes, holderTimeline } from '../../hack/lab/analyze.js';
import { labNow } from '../../hack/lab/clock.js';
import { startProber } from '../../hack/lab/prober.js';
import { startSampler, type Sampler } from '../../hack/lab/sampler.js';
import { nsPids, nsRun, nsSpawn, sleep } from '../../hack/lab/sh.js';
import * as lab from '../../hack/lab/topology.js';

const ID = 'e2efault';
const VIP = '198.18.0.101';

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'ping']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed (apt-get install -y iproute2 iputils-ping)`;
    }
  }
  return undefined;
}

const why = missing();
if (why) console.warn(`lab-faults e2e skipped: ${why}; it needs root and network namespaces`);
const maybe = why ? describe.skip : describe;

async function startHttp(l: lab.Lab, name: string): Promise<ChildProcess> {
  const child = nsSpawn(
    lab.node(l, name).ns,
    process.execPath,
    ['--import', 'tsx', 'hack/lab/http-resource.ts', '--name', name],
    {
      cwd: process.cwd(),
    },
  );
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`http-resource on ${name} did not listen within 15 s`)),
      15_000,
    );
    createInterface({ input: child.stdout! }).once('line', () => {
      clearTimeout(t);
      resolve();
    });
  });
  return child;
}

maybe('lab faults (real namespaces)', () => {
  let l: lab.Lab;
  let sampler: Sampler | undefined;

  beforeAll(async () => {
    l = await lab.up({ id: ID, nodes: 3, heartbeatNet: true });
  }, 20_000);

  afterAll(async () => {
    await sampler?.stop().catch(() => undefined);
    await lab.down(ID);
    expect(await lab.labNamespaces(ID)).toEqual([]);
  }, 20_000);

  it('reconstructs the lab from its namespaces', async () => {
    expect(await lab.inspect(ID)).toEqual(l);
  });

  it('partition cuts a node off at the switch and heal restores it', async () => {
    await lab.partition(l, ['n3']);
    expect(await lab.ping(l.client.ns, l.nodes[2]!.ip)).toBe(false);
    expect(await lab.ping(l.nodes[0]!.ns, l.nodes[2]!.hbIp!)).toBe(false);
    await lab.heal(l, ['n3']);
    // ARP for n3 failed during the partition; the kernel needs up to 3 s to retry.
    expect(await lab.reachable(l.client.ns, l.nodes[2]!.ip)).toBe(true);
    expect(await lab.reachable(l.nodes[0]!.ns, l.nodes[2]!.hbIp!)).toBe(true);
  }, 20_000);

  it('blackhole drops one direction only, at the sender', async () => {
    const n2 = l.nodes[1]!.ip;
    await lab.blackhole(l, 'n1', n2);
    // n1 cannot send to n2; n2 still reaches n1's kernel (its echo request arrives) but the reply is dropped.
    await expect(nsRun(l.nodes[0]!.ns, 'ping', ['-n', '-c', '1', '-W', '1', n2])).rejects.toThrow();
    const rx0 = Number(
      (await nsRun(l.nodes[0]!.ns, 'cat', ['/sys/class/net/eth0/statistics/rx_packets'])).trim(),
    );
    await lab.ping(l.nodes[1]!.ns, l.nodes[0]!.ip);
    const rx1 = Number(
      (await nsRun(l.nodes[0]!.ns, 'cat', ['/sys/class/net/eth0/statistics/rx_packets'])).trim(),
    );
    expect(rx1).toBeGreaterThan(rx0);
    expect(await lab.ping(l.nodes[0]!.ns, l.nodes[2]!.ip)).toBe(true);
    await lab.unblackhole(l, 'n1', n2);
    await lab.unblackhole(l, 'n1', n2); // idempotent
    expect(await lab.reachable(l.nodes[0]!.ns, n2)).toBe(true);
  }, 20_000);

  it('split separates node groups but keeps the client reaching all of them', async () => {
    const groups = [['n1'], ['n2', 'n3']];
    await lab.split(l, groups);
    expect(await lab.ping(l.nodes[0]!.ns, l.nodes[1]!.ip)).toBe(false);
    expect(await lab.ping(l.nodes[0]!.ns, l.nodes[2]!.hbIp!)).toBe(false);
    expect(await lab.ping(l.nodes[1]!.ns, l.nodes[2]!.ip)).toBe(true);
    expect(await lab.ping(l.client.ns, l.nodes[0]!.ip)).toBe(true);
    await lab.unsplit(l, groups);
    expect(await lab.reachable(l.nodes[0]!.ns, l.nodes[1]!.ip)).toBe(true);
  }, 20_000);

  it('pause freezes a server (probes time out) and resume thaws it', async () => {
    await lab.addAddress(l, 'n2', `${VIP}/24`);
    const server = await startHttp(l, 'n2');
    const prober = await startProber({ ns: l.client.ns, target: VIP });
    try {
      await sleep(300);
      const pausedAt = labNow();
      lab.pause(server.pid!);
      await sleep(400);
      const resumedAt = labNow();
      lab.resume(server.pid!);
      await sleep(400);
      await prober.stop();
      const during = countProbes(prober.records, { from: pausedAt + 20, to: resumedAt - 150 });
      const after = countProbes(prober.records, { from: resumedAt + 200 });
      expect(during.ok).toBe(0);
      expect(during.lost).toBeGreaterThan(10);
      expect(after.byNode).toEqual({ n2: after.sent });
    } finally {
      await prober.stop();
      server.kill('SIGKILL');
      await lab.delAddress(l, 'n2', `${VIP}/24`);
    }
  }, 30_000);

  it('powerOff kills the node but spares instruments, and the VIP stops counting as held', async () => {
    await lab.addAddress(l, 'n1', `${VIP}/24`);
    await startHttp(l, 'n1');
    sampler = await startSampler({ nodes: l.nodes });
    await sleep(100);
    const before = (await nsPids(l.nodes[0]!.ns)).length;
    const offAt = labNow();
    const killed = await lab.powerOff(l, 'n1');
    await sleep(100);
    expect(killed.length).toBeGreaterThanOrEqual(1);
    // The sampler's two ip helpers live on in the namespace.
    expect((await nsPids(l.nodes[0]!.ns)).length).toBe(before - killed.length);
    expect(await lab.ping(l.client.ns, l.nodes[0]!.ip)).toBe(false);
    const tl = holderTimeline(sampler.samples, VIP);
    expect(tl.at(-1)!.holders).toEqual([]);
    const lastN1 = sampler.samples.filter((s) => s.node === 'n1').at(-1)!;
    expect(lastN1.t).toBeGreaterThan(offAt);
    expect(lastN1.dead).toEqual([VIP]);
    await lab.powerOn(l, 'n1');
    expect(await lab.reachable(l.client.ns, l.nodes[0]!.ip)).toBe(true);
  }, 30_000);
});
