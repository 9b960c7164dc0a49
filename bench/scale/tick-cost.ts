/**
 * Cost of one core `tick` (the per-interval election sweep over every VIP) for one member of
 * an M-member cluster with V VIPs, peers not yet heard, on a simulated clock.
 * Usage: npx tsx bench/scale/tick-cost.ts [--members 63] [--vips 1000] [--ticks 50]
 */
import { Member } from '../../src/core/member.js';
import { deriveTiming } from '../../src/core/timing.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const M = arg('members', 63);
const V = arg('vips', 1000);
const TICKS = arg('ticks', 50);
const timing = deriveTiming({ intervalMs: 200, deadMs: 1000 });
const ids = Array.from({ length: M }, (_, i) => `node-${String(i).padStart(3, '0')}`);
const vips = Array.from({ length: V }, (_, i) => ({
  vip: `bench/vip-${String(i).padStart(4, '0')}`,
  preferredNodes: [],
}));
const m = new Member(
  {},
  {
    clusterId: 'bench/scale',
    self: ids[0]!,
    incarnation: 1,
    members: ids,
    witness: null,
    quorum: 'majority',
    timing,
    vips,
  },
);
m.start(0);
for (let i = 1; i <= 10; i++) m.tick(i * 200); // warm-up (JIT)
const t0 = performance.now();
let outputs = 0;
for (let i = 11; i < 11 + TICKS; i++) outputs += m.tick(i * 200).length;
const perTick = (performance.now() - t0) / TICKS;
console.log(
  JSON.stringify({
    members: M,
    vips: V,
    msPerTick: Math.round(perTick * 100) / 100,
    cpuMsPerSecondAtInterval200: Math.round((perTick * 1000) / timing.intervalMs),
    outputsPerTick: Math.round(outputs / TICKS),
  }),
);
