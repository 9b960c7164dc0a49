/**
 * `heartline agent` and `heartline controller` must never load @kubernetes/client-node (its
 * import alone would take the agent past its memory budget and the controller past its own;
 * docs/adr/0007-agent-rest-client.md, docs/adr/0038). The CLI is run as a real process with a
 * loader hook that records every module it resolves; the agent is started far enough that its
 * whole implementation is loaded (it then stops at the fence, on purpose). The control: the
 * same recorder does see client-node when K8sApiSource's module is imported.
 */
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_WORKERS } from '../../../src/controller/controller.js';
import { buildProgram } from '../../../src/cli/program.js';

jest.setTimeout(90_000);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hl-lazy-commands-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI (through tsx) and returns its exit code, stderr and the modules it resolved. */
function run(name: string, args: string[], env: Record<string, string> = {}, entry = ['src/cli/main.ts']) {
  const log = join(dir, `${name}.modules`);
  return new Promise<{ code: number; stderr: string; modules: string[] }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--import', './test/unit/cli/record-modules.mjs', ...entry, ...args],
      {
        timeout: 60_000,
        env: { ...process.env, HL_MODULE_LOG: log, HEARTLINE_LOG_LEVEL: 'silent', KUBECONFIG: '', ...env },
      },
      (err, _stdout, stderr) => {
        let modules: string[] = [];
        try {
          modules = readFileSync(log, 'utf8').split('\n').filter(Boolean);
        } catch {
          modules = [];
        }
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr, modules });
      },
    );
  });
}

const clientNode = (modules: string[]) => modules.filter((m) => m.includes('@kubernetes/client-node'));

describe('lazy command modules', () => {
  it('heartline agent loads its whole implementation and never @kubernetes/client-node', async () => {
    // A bad fence descriptor stops the agent right after its modules loaded, before it touches
    // the network or the API server.
    const r = await run('agent', ['agent', '--cluster', 'c', '--metrics-listen', '127.0.0.1:0'], {
      HEARTLINE_NETD_FD: 'not-a-number',
    });
    expect(r.stderr).toContain('HEARTLINE_NETD_FD=not-a-number is not a file descriptor number');
    expect(r.code).not.toBe(0);
    for (const m of [
      'src/cli/commands/agent-run.ts',
      'src/agent/agent.ts',
      'src/adapters/k8s/rest-api-source.ts',
      // /metrics reviews without client-node (docs/adr/0017).
      'src/adapters/k8s/rest-access-review.ts',
      'src/ops/metrics-auth.ts',
    ])
      expect(r.modules.some((u) => u.endsWith(m))).toBe(true);
    expect(clientNode(r.modules)).toEqual([]);
  });

  it('heartline controller loads its implementation and never @kubernetes/client-node', async () => {
    const r = await run('controller', [
      'controller',
      '--kubeconfig',
      join(dir, 'absent'),
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    expect(r.code).not.toBe(0);
    for (const m of [
      'src/cli/commands/controller-run.ts',
      'src/controller/controller.ts',
      'src/adapters/k8s/rest-api-source.ts',
      'src/adapters/k8s/rest-lease-lock.ts',
      'src/adapters/k8s/rest-access-review.ts',
    ])
      expect(r.modules.some((u) => u.endsWith(m))).toBe(true);
    expect(clientNode(r.modules)).toEqual([]);
  });

  it('heartline controller falls back to client-node for a kubeconfig the REST client refuses (exec)', async () => {
    const kc = join(dir, 'exec-kubeconfig');
    writeFileSync(
      kc,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: c',
        'contexts: [{name: c, context: {cluster: k, user: u}}]',
        'clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]',
        'users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/false}}}]',
        '',
      ].join('\n'),
    );
    // The witness socket cannot bind (TEST-NET-1 is no local address): it stops right after the
    // API adapters were built, before any request.
    const r = await run('controller-exec', [
      'controller',
      '--kubeconfig',
      kc,
      '--witness-listen',
      '192.0.2.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('EADDRNOTAVAIL');
    expect(clientNode(r.modules).length).toBeGreaterThan(0);
  });

  it('control: the recorder sees client-node when K8sApiSource is imported', async () => {
    const r = await run('control', [], {}, [
      '--input-type=module',
      '-e',
      "await import('./src/adapters/k8s/api-source.ts')",
    ]);
    expect(r.code).toBe(0);
    expect(clientNode(r.modules).length).toBeGreaterThan(0);
  });

  it('help for every command loads no implementation', async () => {
    const r = await run('help', ['--help']);
    expect(r.code).toBe(0);
    expect(r.modules.filter((u) => /-run\.ts$|\/src\/(agent|controller|api)\//.test(u))).toEqual([]);
    expect(clientNode(r.modules)).toEqual([]);
  });

  it('the --workers help names the controller default', () => {
    const controller = buildProgram().commands.find((c) => c.name() === 'controller')!;
    const workers = controller.options.find((o) => o.long === '--workers')!;
    expect(workers.description).toContain(`default ${DEFAULT_WORKERS})`);
  });
});
