/**
 * The CRDs in crds/ against a real kube-apiserver: they are accepted and Established,
 * the examples apply, the server's defaults equal zod's, `kubectl get` shows the
 * printer columns, and every bad object of the shared table is rejected by the server
 * AND by `heartline validate` offline, both naming the same field.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { parseAllDocuments, stringify } from 'yaml';
import { KINDS, checkManifest } from '../../src/api/index.js';
import { validateManifests } from '../../src/cli/manifests.js';
import { BAD_OBJECTS, goodVip as goodVipManifest } from '../fixtures/bad-objects.js';
import { createTestNamespace, deleteNamespace, kubectl } from './helpers.js';

jest.setTimeout(60_000);

const EXAMPLES = [
  'examples/auth-secret.yaml',
  'examples/two-node-web.yaml',
  'examples/ipv6-vip.yaml',
  'examples/health-checked-group.yaml',
];

/** Messages zod and the server word differently (built-in OpenAPI checks); CEL rule messages are shared verbatim. */
const BUILT_IN = /^(Invalid value|Unsupported value|Required value|Duplicate value|unknown field)/;

describe('CRDs on a real API server', () => {
  let ns: string;

  beforeAll(async () => {
    ns = await createTestNamespace('hl-api-crds');
  });

  afterAll(async () => {
    if (ns) await deleteNamespace(ns);
  });

  it.each(KINDS.map((k) => `${k.plural}.heartline.dev`))('%s is Established', async (name) => {
    const r = await kubectl([
      'get',
      'crd',
      name,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Established")].status}',
    ]);
    expect(r).toMatchObject({ code: 0, stdout: 'True' });
  });

  it('applies the examples, and the server defaults them exactly as zod does', async () => {
    for (const file of EXAMPLES) {
      const r = await kubectl(['apply', '-n', ns, '-f', file]);
      expect({ file, code: r.code, stderr: r.stderr }).toEqual({ file, code: 0, stderr: '' });
    }
    for (const file of EXAMPLES) {
      for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
        const manifest = doc.toJS() as { kind: string; metadata: { name: string } };
        const check = checkManifest(manifest);
        if (!check.handled) continue;
        if (!check.result.ok) throw new Error(`${file}: ${JSON.stringify(check.result.errors)}`);
        const got = await kubectl([
          'get',
          '-n',
          ns,
          `${manifest.kind.toLowerCase()}.heartline.dev`,
          manifest.metadata.name,
          '-o',
          'json',
        ]);
        expect(got.code).toBe(0);
        const stored = JSON.parse(got.stdout) as { spec: unknown };
        expect({ file, name: manifest.metadata.name, spec: stored.spec }).toEqual({
          file,
          name: manifest.metadata.name,
          spec: (check.result.value as { spec: unknown }).spec,
        });
      }
    }
  });

  it('shows the printer columns in kubectl get', async () => {
    const vip = await kubectl(['get', 'vip', '-n', ns]);
    expect(vip.code).toBe(0);
    const [header, ...rows] = vip.stdout.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'ADDRESS', 'HOLDER', 'EPOCH', 'READY', 'AGE']);
    expect(rows.map((r) => r.split(/\s+/).slice(0, 2))).toEqual(
      expect.arrayContaining([
        ['web', '198.18.0.100/24'],
        ['edge-v6', '2001:db8:0:1::100/64'],
        ['app', '198.18.1.10/24'],
      ]),
    );
    const hac = await kubectl(['get', 'hac', '-n', ns]);
    expect(hac.stdout.split('\n')[0]!.split(/\s+/)).toEqual([
      'NAME',
      'MEMBERS',
      'QUORUM',
      'VIPS',
      'READY',
      'AGE',
    ]);
    const hares = await kubectl(['get', 'hares', '-n', ns]);
    expect(hares.stdout.split('\n')[0]!.split(/\s+/)).toEqual(['NAME', 'KIND', 'RUNNING-ON', 'READY', 'AGE']);
    expect(hares.stdout).toMatch(/^webserver\s+exec\s/m);
  });

  it('fills HOLDER, EPOCH and READY from a status written through the status subresource', async () => {
    const status = {
      holder: 'node-a',
      epoch: 7,
      since: '2026-01-01T00:00:00Z',
      phase: 'Bound',
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Bound',
          message: 'bound on node-a',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
      failoverCount: 1,
      lastFailover: { from: 'node-b', to: 'node-a', reason: 'HolderDead', durationMs: 412 },
    };
    expect(checkManifest({ ...goodVipManifest(), status }).handled).toBe(true);
    const offline = checkManifest({ ...goodVipManifest(), status });
    expect(offline.handled && offline.result.ok).toBe(true);
    const patch = await kubectl([
      'patch',
      'vip',
      'web',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    expect({ code: patch.code, stderr: patch.stderr }).toEqual({ code: 0, stderr: '' });
    const get = await kubectl(['get', 'vip', 'web', '-n', ns, '--no-headers']);
    expect(get.stdout.split(/\s+/).slice(0, 5)).toEqual(['web', '198.18.0.100/24', 'node-a', '7', 'True']);

    const bad = { ...status, phase: 'Floating' };
    const rejected = await kubectl([
      'patch',
      'vip',
      'web',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: bad }),
    ]);
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toContain('status.phase');
    const offlineBad = checkManifest({ ...goodVipManifest(), status: bad });
    expect(
      offlineBad.handled && !offlineBad.result.ok && offlineBad.result.errors.map((e) => e.path),
    ).toEqual(['status.phase']);
  });

  it('validates what the server stores (kubectl get -o yaml) offline', async () => {
    const get = await kubectl(['get', 'hac,vip,hares', '-n', ns, '-o', 'yaml']);
    expect(get.code).toBe(0);
    const report = validateManifests('kubectl', get.stdout);
    expect(report.errors).toEqual([]);
    expect(report.checked).toBe(9);
  });

  describe('bad objects', () => {
    let offline: Map<string, string[]>;

    beforeAll(async () => {
      // One `heartline validate` run over all bad objects (a process per case would be slow).
      const dir = await mkdtemp(path.join(os.tmpdir(), 'hl-api-bad-'));
      try {
        const file = path.join(dir, 'bad.yaml');
        await writeFile(
          file,
          BAD_OBJECTS.map((b) => stringify(JSON.parse(JSON.stringify(b.manifest)))).join('---\n'),
        );
        const out = await promisify(execFile)('npx', ['tsx', 'src/cli/main.ts', 'validate', '-f', file], {
          timeout: 60_000,
        }).then(
          () => {
            throw new Error('heartline validate accepted the bad objects');
          },
          (err: { code?: number; stdout?: string }) => {
            expect(err.code).toBe(1);
            return err.stdout ?? '';
          },
        );
        offline = new Map();
        for (const line of out.trim().split('\n')) {
          // `<file>: <Kind> <ns>/<name>: <path>: <message>`
          const m = /^[^:]+: \w+ [^/]+\/([^:]+): (.*)$/.exec(line);
          if (!m) throw new Error(`unexpected line from heartline validate: ${line}`);
          offline.set(m[1]!, [...(offline.get(m[1]!) ?? []), m[2]!]);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it.each(BAD_OBJECTS.map((b) => [b.name, b] as const))('%s', async (_name, bad) => {
      const server = await kubectl(['create', '--dry-run=server', '-n', ns, '-f', '-'], {
        input: JSON.stringify(bad.manifest),
      });
      expect({ code: server.code === 0 ? 0 : 1, path: bad.path }).toEqual({ code: 1, path: bad.path });
      expect(server.stderr).toContain(bad.path);

      const lines = offline.get(bad.manifest.metadata.name) ?? [];
      expect(lines).toHaveLength(1);
      expect(lines[0]!.startsWith(`${bad.path}: `)).toBe(true);
      const message = lines[0]!.slice(bad.path.length + 2);
      if (!BUILT_IN.test(message)) expect(server.stderr).toContain(message);
    });
  });
});
