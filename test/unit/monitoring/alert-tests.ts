/**
 * promtool rule unit tests (`promtool test rules`) built from a lab recording: the recorded
 * series as input_series (5 s apart, `_` where a target was not scraped), and for each alert
 * the evaluation times, taken from the recording's timeline, at which it must be silent and
 * at which it must fire, with the labels it must carry.
 */

export interface Recording {
  scrapeIntervalSeconds: number;
  scrapes: number;
  events: Array<{ at: number; what: string; node?: string }>;
  series: Record<string, Array<number | null>>;
}

interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts: Array<{ exp_labels: Record<string, string> }>;
}

export interface PromtoolTestGroup {
  interval: string;
  input_series: Array<{ series: string; values: string }>;
  alert_rule_test: AlertCase[];
}

function labelOf(r: Recording, metric: string, label: string): string {
  for (const k of Object.keys(r.series)) {
    if (!k.startsWith(`${metric}{`)) continue;
    const m = new RegExp(`[{,]${label}="([^"]*)"`).exec(k);
    if (m) return m[1]!;
  }
  throw new Error(`the recording has no ${metric} series with label ${label}`);
}

function event(r: Recording, prefix: string): { at: number; node: string } {
  const e = r.events.find((x) => x.what.startsWith(prefix));
  if (!e) throw new Error(`the recording's timeline has no step "${prefix}..."`);
  return { at: e.at, node: e.node ?? '' };
}

function value(v: number | null): string {
  if (v === null) return '_';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

export function alertTests(r: Recording): PromtoolTestGroup {
  const input_series = Object.entries(r.series).map(([series, values]) => ({
    series,
    values: values.map(value).join(' '),
  }));
  const healthKill = event(r, "holder's HTTP service killed");
  const standby = r.events.filter((e) => e.what.startsWith('holder annotated heartline.dev/standby'));
  const junk = event(r, 'junk datagrams');
  const off1 = event(r, 'holder powered off');
  const off2 = event(r, 'new holder powered off');
  const nodes = [
    ...new Set(
      Object.keys(r.series).flatMap((k) =>
        /job="heartline-agent"/.test(k) ? [/instance="([^"]*)"/.exec(k)![1]!] : [],
      ),
    ),
  ].sort();
  const survivor = nodes.filter((n) => n !== off1.node && n !== off2.node);
  if (survivor.length !== 1)
    throw new Error(`expected one node left after two power-offs, got ${survivor.join(', ')}`);
  const cluster = labelOf(r, 'heartline_cluster_quorate', 'cluster');
  const vip = labelOf(r, 'heartline_vip_unheld_seconds', 'vip');
  const resource = labelOf(r, 'heartline_resource_operations_total', 'resource');
  const controller = { instance: 'controller', job: 'heartline-controller' };
  const agent = (instance: string) => ({ instance, job: 'heartline-agent' });
  const at = (s: number) => `${s}s`;
  const tests: AlertCase[] = [
    // One node down of three: quorum holds. Two down: the controller and the last agent say so.
    { eval_time: at(off1.at + 60), alertname: 'HeartlineQuorumLost', exp_alerts: [] },
    {
      eval_time: at(off2.at + 60),
      alertname: 'HeartlineQuorumLost',
      exp_alerts: [
        { exp_labels: { severity: 'critical', cluster, ...controller } },
        { exp_labels: { severity: 'critical', ...agent(survivor[0]!) } },
      ],
    },
    // The first power-off moved the VIP within a second; after the second nobody can take it.
    { eval_time: at(off1.at + 20), alertname: 'HeartlineVIPNoHolder', exp_alerts: [] },
    {
      eval_time: at(off2.at + 60),
      alertname: 'HeartlineVIPNoHolder',
      exp_alerts: [{ exp_labels: { severity: 'critical', cluster, vip, ...controller } }],
    },
    // The health move alone is one move; with the three standby moves it is four in 15 minutes.
    { eval_time: at(healthKill.at + 20), alertname: 'HeartlineFailoverRateHigh', exp_alerts: [] },
    {
      eval_time: at(standby[standby.length - 1]!.at + 20),
      alertname: 'HeartlineFailoverRateHigh',
      exp_alerts: [{ exp_labels: { severity: 'warning', vip } }],
    },
    // Dead after deadMs, but the alert waits a minute.
    { eval_time: at(off1.at + 30), alertname: 'HeartlineMemberDown', exp_alerts: [] },
    {
      eval_time: at(off1.at + 80),
      alertname: 'HeartlineMemberDown',
      exp_alerts: [{ exp_labels: { severity: 'warning', member: off1.node } }],
    },
    // Junk on the heartbeat port of every node: each agent drops it (64 bytes: too short for a header and a signature).
    { eval_time: at(junk.at - 10), alertname: 'HeartlineDatagramsDropped', exp_alerts: [] },
    {
      eval_time: at(junk.at + 75), // rate > 0 from the first scrape after the junk began, then for: 1m
      alertname: 'HeartlineDatagramsDropped',
      exp_alerts: nodes.map((n) => ({
        exp_labels: { severity: 'warning', reason: 'too-short', instance: n },
      })),
    },
    { eval_time: at(junk.at + 60 + 180), alertname: 'HeartlineDatagramsDropped', exp_alerts: [] },
    // The killed service fails its health checks on the holder; five minutes later it is forgotten.
    { eval_time: at(healthKill.at - 5), alertname: 'HeartlineResourceFailing', exp_alerts: [] },
    {
      eval_time: at(healthKill.at + 15),
      alertname: 'HeartlineResourceFailing',
      exp_alerts: [
        { exp_labels: { severity: 'warning', vip, resource, operation: 'check', instance: healthKill.node } },
      ],
    },
    { eval_time: at(healthKill.at + 330), alertname: 'HeartlineResourceFailing', exp_alerts: [] },
  ];
  const end = (r.scrapes - 1) * r.scrapeIntervalSeconds;
  for (const t of tests)
    if (parseInt(t.eval_time, 10) > end)
      throw new Error(`${t.alertname} at ${t.eval_time}: after the recording (${end}s)`);
  return { interval: `${r.scrapeIntervalSeconds}s`, input_series, alert_rule_test: tests };
}
