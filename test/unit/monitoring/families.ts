/**
 * The metric families Heartline registers (agent and controller), read from the real
 * registries: what docs/metrics.md must list and what the alerts and the dashboard may use.
 */
import { AgentMetrics } from '../../../src/agent/metrics.js';
import { ControllerMetrics } from '../../../src/controller/metrics.js';

export interface Family {
  name: string;
  type: string;
  labels: string[];
  component: 'agent' | 'controller';
}

/** Families of both components, without the Node.js process metrics (prefixed heartline_agent_ / heartline_controller_ by collectDefaultMetrics). */
export async function registeredFamilies(): Promise<Family[]> {
  const out: Family[] = [];
  const agent = new AgentMetrics(() => undefined);
  const controller = new ControllerMetrics({ defaultMetrics: true });
  for (const [component, registry] of [
    ['agent', agent.registry],
    ['controller', controller.registry],
  ] as const) {
    for (const m of registry.getMetricsAsArray()) {
      const name = m.name;
      if (/^heartline_(agent|controller)_(process|nodejs)_/.test(name)) continue;
      const labels = ((m as unknown as { labelNames?: string[] }).labelNames ?? []).slice();
      out.push({ name, type: (m as unknown as { type: string }).type, labels, component });
    }
  }
  return out;
}

/** The Node.js process metrics' family names (documented as a group). */
export async function processFamilies(): Promise<string[]> {
  const agent = new AgentMetrics(() => undefined);
  const controller = new ControllerMetrics({ defaultMetrics: true });
  return [...agent.registry.getMetricsAsArray(), ...controller.registry.getMetricsAsArray()]
    .map((m) => m.name)
    .filter((n) => /^heartline_(agent|controller)_(process|nodejs)_/.test(n));
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'Inf', 'NaN']);

/**
 * The metric names a PromQL expression reads (label matchers, grouping clauses, range
 * selectors, strings and function names removed). Histogram and summary sample names
 * (`_bucket`, `_sum`, `_count`) are returned as written.
 */
export function metricNamesIn(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = s.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith('(')) continue; // a function or aggregation
    if (PROMQL_WORDS.has(m[0])) continue;
    if (m.index! > 0 && /[0-9.]/.test(s[m.index! - 1]!)) continue; // 1e3, 5m
    names.push(m[0]);
  }
  return names;
}

/** The family a sample name belongs to, among `families` (histogram suffixes resolved). */
export function familyOf(sample: string, families: ReadonlyMap<string, string>): string | undefined {
  if (families.has(sample)) return sample;
  const m = /^(.*)_(bucket|sum|count)$/.exec(sample);
  if (m && families.get(m[1]!) === 'histogram') return m[1];
  return undefined;
}
