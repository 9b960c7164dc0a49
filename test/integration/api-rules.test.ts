/**
 * The CRD rules (CEL, on a real kube-apiserver) and their TypeScript twins (zod, used by
 * `heartline validate` and the agent) agree, on many generated objects: VirtualIP
 * addresses around every range and prefix edge of src/api/vip-address.ts, and heartbeat
 * timings around every rule of src/core/timing.ts. For each object both sides must accept
 * it, or both refuse it naming the same fields; where the message is a rule's own (not a
 * built-in OpenAPI check), the server's text must contain zod's verbatim.
 */
import fc from 'fast-check';
import { jest } from '@jest/globals';
import { checkManifest, type FieldError } from '../../src/api/index.js';
import { heartbeat, vipAddress, clusterWith, vipWith } from '../fixtures/arbitraries.js';
import type { Manifest } from '../fixtures/bad-objects.js';
import { createTestNamespace, deleteNamespace, kubectl } from './helpers.js';

jest.setTimeout(180_000);

/** Messages zod and the server word differently (built-in OpenAPI checks). */
const BUILT_IN = /^(Invalid value|Unsupported value|Required value|Duplicate value|unknown field)/;
const SEED = 18;

/** Addresses every rule must get right, beyond what the generator finds. */
const EDGES = [
  '198.18.0.100/24',
  '198.18.0.1/24',
  '198.18.0.254/24',
  '198.18.0.0/31',
  '198.18.0.1/31',
  '198.18.0.0/32',
  '198.18.0.255/32',
  '198.18.0.0/30',
  '198.18.0.3/30',
  '198.18.0.4/30',
  '198.18.0.7/30',
  '198.18.0.128/25',
  '198.18.0.127/25',
  '10.0.0.0/8',
  '10.0.0.1/8',
  '10.255.255.255/8',
  '1.0.0.1/8',
  '0.255.255.255/8',
  '126.255.255.255/8',
  '128.0.0.1/16',
  '169.253.255.255/16',
  '169.255.0.1/16',
  '223.255.255.254/24',
  '239.255.255.255/24',
  '240.0.0.1/24',
  '255.255.255.254/24',
  '2001:db8::1/64',
  '2001:db8::/127',
  '2001:db8::1/127',
  '2001:db8::/128',
  '2001:db8::/126',
  '2001:db8::4/126',
  '2001:DB8::C/126',
  '2001:db8:0:0:1::/80',
  '2001::/16',
  '2001::1/16',
  'fd00::1/64',
  'fd00:ec2::253/64',
  'fd00:ec2:0:0:0:0:0:254/64',
  'fe7f:ffff::1/64',
  'fec0::1/64',
  'febf::1/64',
  'feff::1/64',
  '::2/128',
  '::/128',
  '64:ff9b::198.18.0.0/120',
  '64:ff9b::198.18.0.1/120',
];

interface Verdict {
  ok: boolean;
  /** Server: the whole error text; zod: `path: message` per error. */
  errors: string[];
}

/** One `kubectl create --dry-run=server` for a whole batch; the verdict per object name. */
async function serverVerdicts(ns: string, manifests: Manifest[]): Promise<Map<string, Verdict>> {
  const items = manifests.map((m) => ({ ...m, metadata: { ...m.metadata, namespace: ns } }));
  const r = await kubectl(['create', '--dry-run=server', '-o', 'name', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    timeoutMs: 120_000,
  });
  const out = new Map<string, Verdict>();
  for (const line of r.stdout.split('\n')) {
    const m = /^[a-z.]+\/(.+)$/.exec(line.trim());
    if (m) out.set(m[1]!, { ok: true, errors: [] });
  }
  for (const line of r.stderr.split('\n')) {
    const m = /^Error from server \(Invalid\): .* "([^"]+)" is invalid: (.*)$/.exec(line);
    if (m) out.set(m[1]!, { ok: false, errors: [m[2]!] });
  }
  return out;
}

function zodVerdict(m: Manifest): FieldError[] {
  const check = checkManifest(JSON.parse(JSON.stringify(m)));
  if (!check.handled) throw new Error('not a Heartline kind');
  return check.result.ok ? [] : check.result.errors;
}

/** Field paths the server's error text names, in order (`spec.x: Invalid value: ...`). */
function serverPaths(text: string): string[] {
  const re =
    /(?:^|\[|, )((?:spec|metadata)\.[A-Za-z0-9.[\]]+): (?:Invalid value|Unsupported value|Required value|Duplicate value|Forbidden|Too long|Too many)/g;
  return [...text.matchAll(re)].map((m) => m[1]!);
}

function compare(manifests: Manifest[], server: Map<string, Verdict>): string[] {
  const disagreements: string[] = [];
  for (const m of manifests) {
    const name = m.metadata.name;
    const s = server.get(name);
    const z = zodVerdict(m);
    const what = `${m.kind} ${JSON.stringify(m.spec)}`;
    if (!s) {
      disagreements.push(`${what}: no verdict from the server`);
      continue;
    }
    if (s.ok !== (z.length === 0)) {
      disagreements.push(
        `${what}: server ${s.ok ? 'accepts' : `refuses (${s.errors[0]})`}, zod ${z.length === 0 ? 'accepts' : `refuses (${z.map((e) => `${e.path}: ${e.message}`).join('; ')})`}`,
      );
      continue;
    }
    if (s.ok) continue;
    const text = s.errors[0]!;
    const paths = serverPaths(text).sort();
    const zodPaths = z.map((e) => e.path).sort();
    if (JSON.stringify(paths) !== JSON.stringify(zodPaths)) {
      disagreements.push(`${what}: server names ${paths.join(', ')}, zod ${zodPaths.join(', ')} (${text})`);
      continue;
    }
    for (const e of z) {
      if (!BUILT_IN.test(e.message) && !text.includes(e.message)) {
        disagreements.push(`${what}: server text lacks zod's message "${e.message}" (${text})`);
      }
    }
  }
  return disagreements;
}

describe('CRD rules and their TypeScript twins agree on a real API server', () => {
  let ns: string;

  beforeAll(async () => {
    ns = await createTestNamespace('hl-api-rules');
  });

  afterAll(async () => {
    if (ns) await deleteNamespace(ns);
  });

  it('VirtualIP addresses: the same verdict and the same message', async () => {
    const addresses = [...new Set([...EDGES, ...fc.sample(vipAddress, { seed: SEED, numRuns: 500 })])];
    const manifests = addresses.map((a, i) => vipWith(`a-${i}`, a));
    const server = await serverVerdicts(ns, manifests);
    const refused = [...server.values()].filter((v) => !v.ok).length;
    // Both verdicts occur in numbers, so agreement is not vacuous.
    expect(refused).toBeGreaterThan(addresses.length / 4);
    expect(addresses.length - refused).toBeGreaterThan(addresses.length / 8);
    expect(compare(manifests, server)).toEqual([]);
  });

  it('heartbeat timings: the same verdict on the same fields', async () => {
    const timings = fc.sample(heartbeat, { seed: SEED, numRuns: 300 });
    const manifests = timings.map((hb, i) => clusterWith(`h-${i}`, hb));
    const server = await serverVerdicts(ns, manifests);
    const refused = [...server.values()].filter((v) => !v.ok).length;
    expect(refused).toBeGreaterThan(timings.length / 4);
    expect(timings.length - refused).toBeGreaterThan(timings.length / 8);
    expect(compare(manifests, server)).toEqual([]);
  });
});
