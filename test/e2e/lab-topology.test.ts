/**
 * The lab's building blocks on real namespaces: topology, http-resource, prober, sampler and
 * analyzer, with the VIP moved by hand (no agent). Needs root, iproute2, and
 * iputils-arping/iputils-ping; skipped with a message otherwise.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { analyze, countProbes } from '../../hack/lab/analyze.js';
import { labNow } from '../../hack/lab/clock.js';
import { startProber, type Prober } from '../../hack/lab/prober.js';
import { startSampler, type Sampler } from '../../hack/lab/sampler.js';
import { nsSpawn, sleep } from '../../hack/lab/sh.js';
import * as lab from '../../hack/lab/topology.js';

const ID = 'e2etopo';
const VIP = '198.18.0.100';
const CIDR = `${VIP}/24`;

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'arping', 'ping']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed (apt-get install -y iproute2 iputils-arping iputils-ping)`;
    }
  }
  return undefined;
}

const why = missing();
if (why) {
  console.warn(`lab-topology e2e skipped: ${why}; it needs root and network namespaces`);
}
const maybe = why ? describe.skip : describe;

/** Starts hack/lab/http-resource.ts in node `name`'s namespace and waits until it listens. */
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
    child.once('exit', (code) => reject(new Error(`http-resource on ${name} exited with ${code}`)));
  });
  return child;
}

maybe('lab topology (real namespaces)', () => {
  let l: lab.Lab;
  let sampler: Sampler | undefined;
  let prober: Prober | undefined;

  beforeAll(async () => {
    l = await lab.up({ id: ID, nodes: 3 });
  }, 20_000);

  afterAll(async () => {
    await prober?.stop().catch(() => undefined);
    await sampler?.stop().catch(() => undefined);
    await lab.down(ID);
    expect(await lab.labNamespaces(ID)).toEqual([]);
  }, 20_000);

  it('connects nodes to each other and the client to every node', async () => {
    const checks = [
      [l.nodes[0]!.ns, l.nodes[1]!.ip],
      [l.nodes[1]!.ns, l.nodes[2]!.ip],
      [l.nodes[2]!.ns, l.nodes[0]!.ip],
      [l.cp.ns, l.nodes[0]!.ip],
      ...l.nodes.map((n) => [l.client.ns, n.ip]),
    ] as const;
    for (const [from, to] of checks) expect([from, to, await lab.ping(from, to)]).toEqual([from, to, true]);
  }, 20_000);

  it('moves a VIP by hand and measures the failover; then shows an overlap', async () => {
    await lab.addAddress(l, 'n1', CIDR);
    await startHttp(l, 'n1');
    await startHttp(l, 'n2');
    sampler = await startSampler({ nodes: l.nodes });
    prober = await startProber({ ns: l.client.ns, target: VIP });
    const probeStart = labNow();
    await sleep(1000);

    const before = countProbes(prober.records, { from: probeStart, to: labNow() - 150 });
    expect(before.sent).toBeGreaterThan(50);
    expect(Object.keys(before.byNode)).toEqual(['n1']);
    expect(before.lost).toBeLessThanOrEqual(before.sent * 0.05);

    // Planned move: release on n1, bind on n2, announce.
    const moveAt = labNow();
    await lab.delAddress(l, 'n1', CIDR);
    await lab.addAddress(l, 'n2', CIDR);
    await lab.garp(l, 'n2', VIP, 1);
    await sleep(800);
    const overlapAt = labNow();

    const move = analyze({
      probes: prober.records,
      samples: sampler.samples,
      vip: VIP,
      faultAt: moveAt,
      window: { from: moveAt - 500, to: overlapAt },
    });
    console.log(
      'manual move',
      JSON.stringify({ failover: move.failover, noHolderMs: move.noHolderMs, lost: move.probesAfterFault }),
    );
    expect(move.failover.from).toBe('n1');
    expect(move.failover.to).toBe('n2');
    expect(move.failover.failoverMs).toBeGreaterThan(0);
    expect(move.failover.failoverMs).toBeLessThan(2000);
    expect(move.dualHolderMs).toBe(0);

    // Deliberate split brain: n1 binds the VIP again while n2 still holds it.
    await lab.addAddress(l, 'n1', CIDR);
    await sleep(200);
    await lab.delAddress(l, 'n1', CIDR);
    await sleep(100);
    const end = labNow();
    await prober.stop();
    await sampler.stop();

    const overlap = analyze({
      probes: prober.records,
      samples: sampler.samples,
      vip: VIP,
      faultAt: overlapAt,
      window: { from: overlapAt, to: end },
    });
    console.log(
      'overlap',
      JSON.stringify({ dualHolder: overlap.dualHolder, dualHolderMs: overlap.dualHolderMs }),
    );
    expect(overlap.dualHolder).toHaveLength(1);
    expect(overlap.dualHolderMs).toBeGreaterThan(100);
    expect(overlap.dualHolderMs).toBeLessThan(1000);
  }, 30_000);
});
