/**
 * Draws the failover-time distribution of bench/results/failover.json as an SVG strip + box
 * plot (one row per configuration, one panel per fault, log time axis), with the dual-holder
 * time of each row beside it. Plain string building, no dependencies.
 *
 *   npx tsx bench/plot.ts [--in bench/results/failover.json] [--out docs/img/failover.svg]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, type TrialResult } from './failover/stats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (f: string, d: string) => {
  const i = argv.indexOf(f);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : d;
};
const inFile = resolve(opt('--in', resolve(ROOT, 'bench/results/failover.json')));
const outFile = resolve(opt('--out', resolve(ROOT, 'docs/img/failover.svg')));

interface Results {
  meta: {
    startedAt: string;
    loadStart: number[];
    loadEnd: number[];
    machine: { nproc: number; kernel: string };
    params: { trials: number };
  };
  trials: TrialResult[];
}

const FAULT_TITLES: Record<string, string> = {
  poweroff: 'Holder power-off (processes killed, link down)',
  sigkill: 'Daemon SIGKILL, node left up',
  planned: 'Planned switchover: standby annotation (Heartline) / graceful stop (keepalived)',
};
const COLORS: Record<string, string> = {
  'heartline-default': '#1f77b4',
  'heartline-fast': '#2ca02c',
  'keepalived-1s': '#d62728',
  'keepalived-0.1s': '#ff7f0e',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Deterministic jitter in [-1, 1] from an index (no Math.random: the SVG is reproducible). */
function jitter(i: number): number {
  const x = Math.sin(i * 12.9898 + 78.233) * 43758.5453;
  return (x - Math.floor(x)) * 2 - 1;
}

export function plot(r: Results): string {
  const trials = r.trials.filter((t) => !t.skipped);
  const order = ['heartline-default', 'heartline-fast', 'keepalived-1s', 'keepalived-0.1s'];
  const configs = [...new Set(r.trials.map((t) => t.config))].sort(
    (a, b) => ((order.indexOf(a) + 99) % 99) - ((order.indexOf(b) + 99) % 99),
  );
  const faults = [...new Set(r.trials.map((t) => t.fault))];
  const W = 960;
  const left = 150;
  const right = 250;
  const plotW = W - left - right;
  const rowH = 34;
  const panelHead = 34;
  const axisH = 34;
  const top = 72;
  const panelH = panelHead + configs.length * rowH + axisH;
  const H = top + faults.length * panelH + 52;
  const lo = 100;
  const hi = Math.max(10_000, ...trials.map((t) => t.failoverMs ?? 0)) * 1.05;
  const x = (ms: number) => left + (Math.log10(Math.max(lo, ms) / lo) / Math.log10(hi / lo)) * plotW;
  const ticks = [100, 200, 300, 500, 1000, 2000, 3000, 5000, 10_000].filter((t) => t <= hi);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">Failover time, fault to first good client reply from another node (log scale)</text>`,
    `<text x="${W / 2}" y="41" text-anchor="middle" fill="#555" font-size="11">3 nodes in network namespaces, HTTP probes at 100 Hz from a client namespace; dots = trials, box = p25-p75, bar = median, ◆ = p99</text>`,
    `<text x="${W / 2}" y="56" text-anchor="middle" fill="#555" font-size="11">run ${esc(r.meta.startedAt.slice(0, 16).replace('T', ' '))} UTC, ${r.meta.machine.nproc} cores shared with other work, 1-min load average ${r.meta.loadStart[0]} at start, ${r.meta.loadEnd[0] ?? '?'} at end</text>`,
  );
  faults.forEach((fault, fi) => {
    const y0 = top + fi * panelH;
    out.push(
      `<text x="${left}" y="${y0 + 20}" font-size="14" font-weight="bold">${esc(FAULT_TITLES[fault] ?? fault)}</text>`,
    );
    out.push(
      `<text x="${W - right + 12}" y="${y0 + 20}" font-size="11" fill="#555">two holders (max) · lost probes (p50)</text>`,
    );
    const gy0 = y0 + panelHead;
    const gy1 = gy0 + configs.length * rowH;
    for (const t of ticks) {
      out.push(
        `<line x1="${x(t).toFixed(1)}" y1="${gy0}" x2="${x(t).toFixed(1)}" y2="${gy1}" stroke="#ddd"/>`,
      );
      out.push(
        `<text x="${x(t).toFixed(1)}" y="${gy1 + 16}" text-anchor="middle" fill="#333">${t >= 1000 ? `${t / 1000} s` : `${t} ms`}</text>`,
      );
    }
    out.push(
      `<rect x="${left}" y="${gy0}" width="${plotW}" height="${gy1 - gy0}" fill="none" stroke="#999"/>`,
    );
    configs.forEach((config, ci) => {
      const cy = gy0 + ci * rowH + rowH / 2;
      const color = COLORS[config] ?? '#444';
      const rows = trials.filter((t) => t.config === config && t.fault === fault);
      const fo = rows
        .filter((t) => t.failoverMs !== undefined)
        .map((t) => t.failoverMs!)
        .sort((a, b) => a - b);
      const none = rows.length - fo.length;
      out.push(
        `<text x="${left - 8}" y="${cy + 4}" text-anchor="end" fill="${color}" font-weight="bold">${esc(config)}</text>`,
      );
      if (fo.length) {
        const q1 = percentile(fo, 0.25);
        const q3 = percentile(fo, 0.75);
        const med = percentile(fo, 0.5);
        const p99 = percentile(fo, 0.99);
        out.push(
          `<rect x="${x(q1).toFixed(1)}" y="${cy - 10}" width="${Math.max(1, x(q3) - x(q1)).toFixed(1)}" height="20" fill="${color}" fill-opacity="0.15" stroke="${color}"/>`,
          `<line x1="${x(med).toFixed(1)}" y1="${cy - 12}" x2="${x(med).toFixed(1)}" y2="${cy + 12}" stroke="${color}" stroke-width="3"/>`,
          `<path d="M ${x(p99).toFixed(1)} ${cy - 6} l 5 6 l -5 6 l -5 -6 z" fill="${color}"/>`,
        );
        fo.forEach((ms, i) => {
          out.push(
            `<circle cx="${x(ms).toFixed(1)}" cy="${(cy + jitter(i + ci * 97 + fi * 13) * 7).toFixed(1)}" r="2.6" fill="${color}" fill-opacity="0.7"><title>${ms.toFixed(0)} ms</title></circle>`,
          );
        });
        out.push(
          `<text x="${W - right - 4}" y="${cy - 8}" text-anchor="end" font-size="10" fill="#333">p50 ${med.toFixed(0)} · p99 ${p99.toFixed(0)} ms</text>`,
        );
      }
      const dual = rows.map((t) => t.dualHolderMs);
      const dualMax = dual.length ? Math.max(...dual) : 0;
      const lost = percentile(
        rows.map((t) => t.lostProbes).sort((a, b) => a - b),
        0.5,
      );
      const dualTxt =
        dualMax > 0
          ? `${dualMax.toFixed(0)} ms (${dual.filter((d) => d > 0).length}/${rows.length})`
          : `0 (${rows.length} trials)`;
      out.push(
        `<text x="${W - right + 12}" y="${cy + 4}" fill="${dualMax > 0 ? '#c00' : '#333'}">${dualTxt} · ${Number.isFinite(lost) ? lost : '-'}${none ? ` · ${none} no failover` : ''}</text>`,
      );
    });
  });
  out.push(
    `<text x="${W / 2}" y="${H - 26}" text-anchor="middle" fill="#555" font-size="11">keepalived after SIGKILL leaves the VIP bound on the dead daemon's node: two holders until the daemon is restarted (here ~4 s after the fault).</text>`,
    `<text x="${W / 2}" y="${H - 10}" text-anchor="middle" fill="#555" font-size="11">Data: bench/results/failover.json · drawn by bench/plot.ts</text>`,
    '</svg>',
  );
  return out.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = JSON.parse(readFileSync(inFile, 'utf8')) as Results;
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${plot(r)}\n`);
  process.stdout.write(`wrote ${outFile} (${r.trials.length} trials)\n`);
}
