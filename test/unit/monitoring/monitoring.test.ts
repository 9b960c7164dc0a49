/**
 * deploy/monitoring: the PrometheusRule passes `promtool check rules`, every alert passes its
 * `promtool test rules` unit test on series recorded from a lab run with power-offs
 * (test/fixtures/monitoring/lab-power-off.json, made by hack/monitoring/record-lab.ts), the
 * Grafana dashboard is valid against the schema subset in grafana-dashboard.schema.json, and
 * every PromQL expression of both reads only metrics Heartline registers.
 *
 * promtool is built from Go modules by hack/build-promtool.sh and cached under
 * ~/.cache/heartline/bin (hack/install.sh builds it; the first build takes minutes).
 */
import { describe, expect, it, beforeAll } from '@jest/globals';
import Ajv from 'ajv';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { familyOf, metricNamesIn, registeredFamilies } from './families.js';
import { alertTests, type Recording } from './alert-tests.js';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');
const RULE_FILE = join(ROOT, 'deploy', 'monitoring', 'prometheus-rule.yaml');
const DASHBOARD_FILE = join(ROOT, 'deploy', 'monitoring', 'grafana-dashboard.json');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'monitoring', 'lab-power-off.json');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}

const prometheusRule = parse(readFileSync(RULE_FILE, 'utf8')) as {
  apiVersion: string;
  kind: string;
  spec: { groups: RuleGroup[] };
};
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as {
  panels: Array<{
    id: number;
    type: string;
    title: string;
    gridPos: { x: number; y: number; w: number; h: number };
    targets?: Array<{ expr: string }>;
  }>;
  templating: { list: Array<{ name: string; query?: unknown }> };
};

let promtool = '';
let dir = '';

beforeAll(async () => {
  const { stdout } = await run('bash', [join(ROOT, 'hack', 'build-promtool.sh')], {
    maxBuffer: 64 << 20,
    timeout: 3_600_000,
  });
  promtool = /^promtool=(.*)$/m.exec(stdout)?.[1] ?? '';
  dir = mkdtempSync(join(tmpdir(), 'heartline-promtool-'));
}, 3_600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs promtool; resolves its output, rejects with it (stdout and stderr) on a non-zero exit. */
async function promtoolRun(args: string[]): Promise<string> {
  try {
    const r = await run(promtool, args, { cwd: dir, timeout: 120_000 });
    return r.stdout + r.stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

describe('deploy/monitoring/prometheus-rule.yaml', () => {
  it('is a PrometheusRule whose rules pass promtool check rules', async () => {
    expect(prometheusRule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(prometheusRule.kind).toBe('PrometheusRule');
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, stringify({ groups: prometheusRule.spec.groups }));
    const out = await promtoolRun(['check', 'rules', file]);
    expect(out).toMatch(/SUCCESS: 6 rules found/);
  });

  it('has the six standard alerts, each with a severity, a summary and a description', () => {
    const alerts = prometheusRule.spec.groups.flatMap((g) => g.rules);
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'HeartlineDatagramsDropped',
      'HeartlineFailoverRateHigh',
      'HeartlineMemberDown',
      'HeartlineQuorumLost',
      'HeartlineResourceFailing',
      'HeartlineVIPNoHolder',
    ]);
    for (const a of alerts) {
      expect(['critical', 'warning']).toContain(a.labels?.severity);
      expect(a.annotations?.summary).toBeTruthy();
      expect(a.annotations?.description).toBeTruthy();
    }
  });

  it('every alert fires on the lab recording when it should and not before (promtool test rules)', async () => {
    const recording = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Recording;
    // Annotations are templates for people (checked by promtool check rules above); the unit
    // tests check what fires, when, and with which labels.
    const groups = prometheusRule.spec.groups.map((g) => ({
      ...g,
      rules: g.rules.map(({ annotations: _a, ...r }) => r),
    }));
    writeFileSync(join(dir, 'rules-under-test.yaml'), stringify({ groups }));
    const tests = alertTests(recording);
    const tested = new Set(tests.alert_rule_test.map((t) => t.alertname));
    expect([...tested].sort()).toEqual(
      prometheusRule.spec.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort(),
    );
    // Every alert is tested both firing and silent.
    for (const name of tested) {
      const cases = tests.alert_rule_test.filter((t) => t.alertname === name);
      expect(cases.some((t) => t.exp_alerts.length > 0)).toBe(true);
      expect(cases.some((t) => t.exp_alerts.length === 0)).toBe(true);
    }
    writeFileSync(
      join(dir, 'tests.yaml'),
      stringify({
        rule_files: ['rules-under-test.yaml'],
        evaluation_interval: '5s',
        tests: [tests],
      }),
    );
    const out = await promtoolRun(['test', 'rules', 'tests.yaml']);
    expect(out).toMatch(/SUCCESS/);
  });

  it('reads only metrics that Heartline registers', async () => {
    const families = new Map((await registeredFamilies()).map((f) => [f.name, f.type]));
    for (const r of prometheusRule.spec.groups.flatMap((g) => g.rules)) {
      const names = metricNamesIn(r.expr);
      expect(names.length).toBeGreaterThan(0);
      for (const n of names)
        expect({ alert: r.alert, metric: n, known: Boolean(familyOf(n, families)) }).toEqual({
          alert: r.alert,
          metric: n,
          known: true,
        });
    }
  });
});

describe('deploy/monitoring/grafana-dashboard.json', () => {
  it('is valid against the Grafana dashboard schema subset', () => {
    const schema = JSON.parse(readFileSync(join(HERE, 'grafana-dashboard.schema.json'), 'utf8')) as object;
    const ajv = new Ajv({ allErrors: true });
    const valid = ajv.validate(schema, dashboard);
    expect(ajv.errorsText(ajv.errors, { separator: '\n' })).toBe('No errors');
    expect(valid).toBe(true);
  });

  it('has unique panel ids, and no two panels overlap on the grid', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          const k = `${i},${j}`;
          expect({ cell: k, taken: cells.get(k) ?? null, by: p.title }).toEqual({
            cell: k,
            taken: null,
            by: p.title,
          });
          cells.set(k, p.title);
        }
    }
  });

  it('every query reads only metrics that Heartline registers, and every registered family is on it', async () => {
    const all = await registeredFamilies();
    const families = new Map(all.map((f) => [f.name, f.type]));
    const exprs = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
      ...dashboard.templating.list.flatMap((v) => {
        const q = (v.query as { query?: string } | undefined)?.query;
        return q
          ? [{ where: `variable ${v.name}`, expr: q.replace(/^label_values\((.*),\s*\w+\)$/, '$1') }]
          : [];
      }),
    ];
    const used = new Set<string>();
    for (const { where, expr } of exprs) {
      const names = metricNamesIn(expr);
      expect({ where, names: names.length > 0 }).toEqual({ where, names: true });
      for (const n of names) {
        const f = familyOf(n, families);
        expect({ where, metric: n, known: Boolean(f) }).toEqual({ where, metric: n, known: true });
        used.add(f!);
      }
    }
    // Process metrics and controller-runtime gauges of the worker pool are left to generic dashboards.
    const unshown = all
      .map((f) => f.name)
      .filter((n) => !used.has(n))
      .filter((n) => !/^(controller_runtime_(max_concurrent_reconciles|active_workers)|workqueue_)/.test(n));
    expect(unshown).toEqual([]);
  });
});
