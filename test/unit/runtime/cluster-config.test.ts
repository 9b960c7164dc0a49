/**
 * What `heartline validate` accepts is exactly what the agent runs with: generated
 * HAClusters and VirtualIPs (around every timing and address rule) either pass validate
 * and build a ClusterConfig holding every VirtualIP, or fail validate and are refused by
 * the builder, naming the same fields. The builder never throws anything but a
 * ClusterConfigError, whatever it is given.
 */
import fc from 'fast-check';
import { checkManifest, formatFieldError, type FieldError } from '../../../src/api/index.js';
import { PROFILES } from '../../../src/core/timing.js';
import type { ApiObject } from '../../../src/core/ports.js';
import {
  buildClusterConfig,
  ClusterConfigError,
  type ClusterConfig,
  MEMBER_KEY_ANNOTATION,
  MOVE_TO_ANNOTATION,
} from '../../../src/runtime/cluster-config.js';
import { publicKeyOf } from '../../fixtures/member-keys.js';
import { clusterWith, heartbeat, vipAddress, vipWith } from '../../fixtures/arbitraries.js';
import type { Manifest } from '../../fixtures/bad-objects.js';

const NS = 'default';
const SECRET = {
  metadata: { name: 'heartline-auth', namespace: NS },
  data: { '1': Buffer.alloc(32, 1).toString('base64') },
} as ApiObject;
const NODES = ['node-a', 'node-b', 'node-c'].map(
  (name, i) =>
    ({
      metadata: { name, annotations: { [MEMBER_KEY_ANNOTATION]: publicKeyOf(name) } },
      status: { addresses: [{ type: 'InternalIP', address: `198.18.0.${11 + i}` }] },
    }) as ApiObject,
);

function inNamespace(m: Manifest): ApiObject {
  return JSON.parse(JSON.stringify({ ...m, metadata: { ...m.metadata, namespace: NS } })) as ApiObject;
}

function validate(m: ApiObject): FieldError[] {
  const check = checkManifest(m);
  if (!check.handled) throw new Error('not a Heartline kind');
  return check.result.ok ? [] : check.result.errors;
}

type Built = { config: ClusterConfig } | { error: ClusterConfigError };

function build(cluster: ApiObject, vips: ApiObject[]): Built {
  try {
    return {
      config: buildClusterConfig({
        cluster,
        vips,
        resources: [],
        nodes: NODES,
        secret: SECRET,
        // An empty nodeSelector: the members are the Nodes that run the agent (docs/adr/0024).
        agentNodes: new Set(NODES.map((n) => n.metadata.name)),
      }),
    };
  } catch (err) {
    if (err instanceof ClusterConfigError) return { error: err };
    throw err; // anything else is a bug: the agent would only log it
  }
}

/** A cluster around the timing rules, now and then with another field wrong too. */
const cluster = fc
  .tuple(
    heartbeat,
    fc.constantFrom('majority', 'witness', 'ignore', 'always'),
    fc.constantFrom(694, 694, 694, 0, 70000),
  )
  .map(([hb, quorum, port]) => {
    const m = clusterWith('web', hb);
    m.spec.quorum = quorum;
    (m.spec.transport as Record<string, unknown>).port = port;
    return inNamespace(m);
  });

const vips = fc
  .array(vipAddress, { maxLength: 4 })
  .map((addresses) => addresses.map((a, i) => inNamespace(vipWith(`vip-${i}`, a))));

describe('validate and the runtime configuration builder agree', () => {
  it('a cluster validate accepts builds, one it refuses does not, naming the same fields', () => {
    let built = 0;
    let refused = 0;
    fc.assert(
      fc.property(cluster, vips, (c, vs) => {
        const errors = validate(c);
        const r = build(c, vs);
        if (errors.length === 0) {
          expect('config' in r).toBe(true);
          built++;
        } else {
          expect('error' in r).toBe(true);
          const message = 'error' in r ? r.error.message : '';
          for (const e of errors) expect(message).toContain(formatFieldError(e));
          refused++;
        }
      }),
      { seed: 18, numRuns: 1500 },
    );
    // Both sides of the equivalence were exercised.
    expect(built).toBeGreaterThan(150);
    expect(refused).toBeGreaterThan(150);
  });

  it('the builder keeps exactly the VirtualIPs validate accepts, and names the refused ones', () => {
    let kept = 0;
    let left = 0;
    const good = inNamespace(clusterWith('web', { ...PROFILES.default }));
    fc.assert(
      fc.property(vips, (vs) => {
        const r = build(good, vs);
        if (!('config' in r)) throw r.error;
        for (const v of vs) {
          const id = `${NS}/${v.metadata.name}`;
          const errors = validate(v);
          const inConfig = r.config.vips.some((x) => x.vip === id);
          expect({ id, inConfig }).toEqual({ id, inConfig: errors.length === 0 });
          if (errors.length === 0) kept++;
          else {
            left++;
            const problem = r.config.problems.find((p) => p.startsWith(`VirtualIP ${id}: `));
            for (const e of errors) expect(problem).toContain(formatFieldError(e));
          }
        }
      }),
      { seed: 18, numRuns: 500 },
    );
    expect(kept).toBeGreaterThan(100);
    expect(left).toBeGreaterThan(100);
  });

  it('the shipped profiles build, with the profile values the core defines', () => {
    for (const profile of Object.values(PROFILES)) {
      const r = build(inNamespace(clusterWith('web', { ...profile })), []);
      if (!('config' in r)) throw r.error;
      expect(r.config.timing).toMatchObject(profile);
    }
  });

  it('leaves out a VirtualIP the API server would refuse, saying which field and why', () => {
    const c = inNamespace(clusterWith('web', { ...PROFILES.default }));
    const r = build(c, [
      inNamespace(vipWith('metadata', '169.254.169.254/32')),
      inNamespace(vipWith('web', '198.18.0.100/24')),
    ]);
    if (!('config' in r)) throw r.error;
    expect(r.config.vips.map((v) => v.vip)).toEqual([`${NS}/web`]);
    expect(r.config.problems).toEqual([
      `VirtualIP ${NS}/metadata: spec.address: "169.254.169.254/32" is the cloud metadata address (169.254.169.254, fd00:ec2::254); holding it would answer metadata requests of every machine on the link; use an address of the nodes' subnet, e.g. 198.18.0.100/24 or 2001:db8::100/64`,
    ]);
  });

  it('reads the move target (heartline.dev/move-to) of a VirtualIP; ignores one that is not an eligible member, saying why', () => {
    const c = inNamespace(clusterWith('web', { ...PROFILES.default }));
    const moved = (name: string, address: string, to: string, selector?: Record<string, string>) => {
      const v = inNamespace(vipWith(name, address));
      v.metadata.annotations = { [MOVE_TO_ANNOTATION]: to };
      if (selector) (v.spec as Record<string, unknown>).nodeSelector = selector;
      return v;
    };
    const r = build(c, [
      moved('a', '198.18.0.100/24', 'node-b'),
      moved('b', '198.18.0.101/24', 'node-z'),
      moved('c', '198.18.0.102/24', 'node-c', { zone: 'east' }),
      inNamespace(vipWith('d', '198.18.0.103/24')),
    ]);
    if (!('config' in r)) throw r.error;
    expect(r.config.vips.map((v) => [v.vip, v.moveTo])).toEqual([
      [`${NS}/a`, 'node-b'],
      [`${NS}/b`, undefined],
      [`${NS}/c`, undefined],
      [`${NS}/d`, undefined],
    ]);
    expect(r.config.problems).toEqual([
      `VirtualIP ${NS}/b: annotation ${MOVE_TO_ANNOTATION}="node-z" is ignored: node-z is not a member (members: node-a, node-b, node-c) of HACluster web; move it to an eligible member or remove the annotation (kubectl heartline move b --clear)`,
      `VirtualIP ${NS}/c: annotation ${MOVE_TO_ANNOTATION}="node-c" is ignored: node-c does not match the VirtualIP's spec.nodeSelector (eligible: none) of HACluster web; move it to an eligible member or remove the annotation (kubectl heartline move c --clear)`,
    ]);
  });

  it('refuses warnMs equal to intervalMs, as the API server does', () => {
    const c = inNamespace(
      clusterWith('web', { intervalMs: 200, warnMs: 200, deadMs: 1000, initDeadMs: 2000 }),
    );
    const r = build(c, []);
    expect('error' in r && r.error.message).toMatch(
      /^HACluster default\/web: spec\.heartbeat\.warnMs: heartbeat\.warnMs must be above heartbeat\.intervalMs/,
    );
  });
});

describe('eligibleNodes (externalTrafficPolicy Local)', () => {
  const clusterObj = {
    apiVersion: 'heartline.dev/v1alpha1',
    kind: 'HACluster',
    metadata: { name: 'web', namespace: NS },
    spec: { authSecretRef: { name: 'heartline-auth', activeKeyId: '1' } },
  } as ApiObject;
  const vipObj = (spec: Record<string, unknown>) =>
    ({
      apiVersion: 'heartline.dev/v1alpha1',
      kind: 'VirtualIP',
      metadata: { name: 'lb', namespace: NS },
      spec: { clusterRef: { name: 'web' }, address: '198.18.0.100/24', ...spec },
    }) as ApiObject;
  const eligibleOf = (spec: Record<string, unknown>) => {
    const b = build(clusterObj, [vipObj(spec)]);
    if (!('config' in b)) throw b.error;
    return b.config.vips[0]!.eligible;
  };

  it('narrows who may hold the VIP; with nodeSelector both must match; empty means nobody', () => {
    expect(eligibleOf({})).toBeUndefined();
    expect(eligibleOf({ eligibleNodes: ['node-b'] })).toEqual(['node-b']);
    expect(eligibleOf({ eligibleNodes: [] })).toEqual([]);
    expect(eligibleOf({ eligibleNodes: ['node-b'], nodeSelector: { zone: 'x' } })).toEqual([]);
  });
});
