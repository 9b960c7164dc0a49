/**
 * `heartline controller` as a process against the real API server: it becomes leader,
 * serves /healthz, /readyz and /metrics (here with the plain-HTTP opt-out; the HTTPS default
 * with tokens runs in deploy.test.ts), publishes the witness address, and on SIGTERM
 * releases the Lease and exits 0.
 */
import { jest } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  createTestNamespace,
  deleteNamespace,
  kubeconfig,
  kubectl,
  until as untilShared,
} from './helpers.js';

jest.setTimeout(90_000);

const until = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000) =>
  untilShared(what, fn, timeoutMs, 100);

describe('heartline controller (process)', () => {
  let ns: string;
  let child: ChildProcess | undefined;
  const lines: string[] = [];

  beforeAll(async () => {
    ns = await createTestNamespace('hl-controller-cli');
    const docs = [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'auth', namespace: ns },
        stringData: { '1': 'integration-only-key-0123456789abcdef0123' },
      },
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: 'pair', namespace: ns },
        spec: {
          nodeSelector: { 'heartline.dev/none': ns },
          authSecretRef: { name: 'auth', activeKeyId: '1' },
          quorum: 'witness',
        },
      },
    ];
    const r = await kubectl(['apply', '-f', '-'], { input: docs.map((d) => JSON.stringify(d)).join('\n') });
    if (r.code !== 0) throw new Error(r.stderr);
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await deleteNamespace(ns);
  });

  it('leads, serves ops endpoints, publishes the witness, and releases the Lease on SIGTERM', async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'controller',
        '--kubeconfig',
        kubeconfig(),
        '--namespace',
        ns,
        '--lease-namespace',
        ns,
        '--identity',
        'cli-test',
        '--witness-listen',
        '127.0.0.1:0',
        '--metrics-listen',
        '127.0.0.1:0',
        '--metrics-insecure-serving-no-auth',
      ],
      {
        cwd: process.cwd(),
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HEARTLINE_LOG_LEVEL: 'info' },
      },
    );
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));

    const started = await until('the "controller started" log line', async () => {
      const l = lines
        .map((x) => JSON.parse(x) as { msg: string; metrics?: string; witness?: string })
        .find((x) => x.msg === 'controller started');
      return l;
    });
    const metricsUrl = started.metrics!;
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(started.witness).toMatch(/^127\.0\.0\.1:\d+$/);

    await until('leadership', async () => {
      const r = await kubectl([
        'get',
        'lease',
        'heartline-controller',
        '-n',
        ns,
        '-o',
        'jsonpath={.spec.holderIdentity}',
      ]);
      return r.stdout === 'cli-test';
    });
    expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(200);
    const ready = await until('readyz 200', async () => {
      const r = await fetch(`${metricsUrl}/readyz`);
      return r.status === 200 ? r.text() : undefined;
    });
    expect(ready.trim()).toBe('leader');
    const metrics = await (await fetch(`${metricsUrl}/metrics`)).text();
    expect(metrics).toContain('heartline_controller_leader 1');
    expect(metrics).toContain('heartline_controller_api_requests_total');

    const witness = await until('status.witness', async () => {
      const r = await kubectl([
        'get',
        'hac',
        'pair',
        '-n',
        ns,
        '-o',
        'jsonpath={.status.witness.address}:{.status.witness.port}',
      ]);
      return r.stdout.includes('127.0.0.1') ? r.stdout : undefined;
    });
    expect(witness).toBe(started.witness);
    // No member matches the selector: the cluster says so.
    const reason = await until('Ready condition', async () => {
      const r = await kubectl([
        'get',
        'hac',
        'pair',
        '-n',
        ns,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
      ]);
      return r.stdout || undefined;
    });
    expect(['NoMembers', 'Observing']).toContain(reason);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    const holder = await kubectl([
      'get',
      'lease',
      'heartline-controller',
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ]);
    expect(holder.stdout).toBe('');
    expect(
      lines.some(
        (l) => (JSON.parse(l) as { msg: string }).msg === 'lease released' || l.includes('stopped leading'),
      ),
    ).toBe(true);
  });
});
