import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { CrdSchemaError, KINDS, crdFor, generateCrds, toStructural } from '../../../src/api/index.js';

type Node = Record<string, unknown>;

/** Visits every schema node with its path. */
function walk(node: Node, visit: (n: Node, p: string) => void, p = '$'): void {
  visit(node, p);
  for (const [name, sub] of Object.entries((node.properties as Record<string, Node> | undefined) ?? {}))
    walk(sub, visit, `${p}.${name}`);
  if (node.items) walk(node.items as Node, visit, `${p}[]`);
  if (node.additionalProperties && typeof node.additionalProperties === 'object')
    walk(node.additionalProperties as Node, visit, `${p}.*`);
}

// crds/ for tools and tests, deploy/base/crds/ for kustomize (which cannot load files above
// its root), deploy/helm/heartline/crds/ for Helm (a chart's crds/ folder): all are written by
// `npm run crds` and must match the generator.
const crdsDirs = ['crds', 'deploy/base/crds', 'deploy/helm/heartline/crds'];

describe('generated CRDs', () => {
  const crds = generateCrds();

  it.each(crdsDirs)('match the checked-in %s/ (run `npm run crds` after changing src/api)', async (dir) => {
    const onDisk = (await readdir(path.join(process.cwd(), dir))).filter((f) => f.endsWith('.yaml')).sort();
    expect(onDisk).toEqual(crds.map((c) => c.file).sort());
    for (const crd of crds) {
      const text = await readFile(path.join(process.cwd(), dir, crd.file), 'utf8');
      if (text !== crd.yaml) {
        throw new Error(
          `${dir}/${crd.file} is out of date with src/api: run \`npm run crds\` and commit the result`,
        );
      }
    }
  });

  it.each(KINDS.map((k) => [k.kind, k] as const))('%s: names, scope, status subresource', (_kind, info) => {
    const spec = crdFor(info).spec as Node;
    expect(spec.group).toBe('heartline.dev');
    expect(spec.scope).toBe('Namespaced');
    expect((spec.names as Node).shortNames).toEqual(info.shortNames);
    const version = (spec.versions as Node[])[0]!;
    expect(version.name).toBe('v1alpha1');
    expect(version.subresources).toEqual({ status: {} });
  });

  it('has the printer columns users see in kubectl get', () => {
    const columns = (kind: string) =>
      (
        (
          crdFor(KINDS.find((k) => k.kind === kind)!).spec as {
            versions: { additionalPrinterColumns: { name: string }[] }[];
          }
        ).versions[0]!.additionalPrinterColumns ?? []
      ).map((c) => c.name);
    // Priority 0 (kubectl get), then -o wide.
    expect(columns('VirtualIP')).toEqual([
      'Address',
      'Holder',
      'Epoch',
      'Ready',
      'Age',
      'Cluster',
      'Phase',
      'Last-Failover',
      'Reason',
      'Failovers',
    ]);
    expect(columns('HACluster')).toEqual([
      'Members',
      'Quorum',
      'VIPs',
      'Ready',
      'Age',
      'Votes',
      'Generation',
    ]);
    expect(columns('Resource')).toEqual(['Kind', 'Running-On', 'Ready', 'Age', 'Reason']);
  });

  it.each(crds.map((c) => [c.name, c] as const))('%s: structural schema', (_name, crd) => {
    const root = ((crd.object.spec as Node).versions as Node[])[0]!.schema as { openAPIV3Schema: Node };
    const props = root.openAPIV3Schema.properties as Record<string, Node>;
    for (const part of ['spec', 'status'])
      walk(
        props[part]!,
        (n, p) => {
          expect({ p, type: n.type }).toEqual({ p, type: expect.any(String) });
          for (const bad of ['$ref', 'anyOf', 'oneOf', 'allOf', 'const', 'propertyNames', '$schema'])
            expect(n[bad]).toBeUndefined();
          expect(n.additionalProperties).not.toBe(false);
          if (n.type === 'array')
            expect({ p, maxItems: n.maxItems }).toEqual({ p, maxItems: expect.any(Number) });
          if (n.type === 'string' && !n.enum && n.format !== 'date-time')
            expect({ p, maxLength: n.maxLength }).toEqual({ p, maxLength: expect.any(Number) });
          for (const rule of (n['x-kubernetes-validations'] as Node[] | undefined) ?? []) {
            expect(typeof rule.rule).toBe('string');
            expect(typeof rule.message).toBe('string');
          }
        },
        `$.${part}`,
      );
  });

  it('carries the cross-field rules as CEL with fieldPath and reason', () => {
    const text = crds.map((c) => c.yaml).join('\n');
    expect(text).toContain('rule: self.deadMs >= 3 * self.intervalMs');
    expect(text).toContain('fieldPath: .deadMs');
    expect(text).toContain('rule: self.initDeadMs >= self.deadMs');
    expect(text).toContain('rule: isCIDR(self)');
    expect(text).toContain("rule: self.kind == 'systemd' || !has(self.systemd)");
    expect(text).toContain('reason: FieldValueForbidden');
    expect(text).toContain('x-kubernetes-list-type: set');
  });

  it('gives object defaults every nested default (the server checks a default against CEL before nested defaulting)', () => {
    for (const crd of crds) {
      const root = ((crd.object.spec as Node).versions as Node[])[0]!.schema as { openAPIV3Schema: Node };
      walk(root.openAPIV3Schema, (n, p) => {
        if (n.type !== 'object' || n.default === undefined) return;
        const props = (n.properties as Record<string, Node> | undefined) ?? {};
        const expected = Object.fromEntries(
          Object.entries(props)
            .filter(([, sub]) => sub.default !== undefined)
            .map(([k, sub]) => [k, sub.default]),
        );
        expect({ p, default: n.default }).toEqual({ p, default: expect.objectContaining(expected) });
      });
    }
  });

  it('has defaults in the schema', () => {
    const text = crds.find((c) => c.name === 'haclusters.heartline.dev')!.yaml;
    expect(text).toMatch(/intervalMs:\n\s+type: integer\n\s+description: .*\n\s+default: 200/);
    expect(text).toMatch(/port:\n\s+type: integer\n\s+description: .*\n\s+default: 694/);
  });
});

describe('toStructural', () => {
  it('refuses unions, naming the path', () => {
    const json = z.toJSONSchema(
      z.object({ a: z.union([z.object({ x: z.string() }), z.object({ y: z.string() })]) }),
      { io: 'input' },
    );
    expect(() => toStructural(json as Node)).toThrow(CrdSchemaError);
    expect(() => toStructural(json as Node)).toThrow('$.a: "anyOf" is not allowed');
  });

  it('refuses a list of types', () => {
    const json = z.toJSONSchema(z.object({ a: z.union([z.string(), z.number()]) }), { io: 'input' });
    expect(() => toStructural(json as Node)).toThrow(CrdSchemaError);
  });

  it('turns literals into enums and drops additionalProperties: false', () => {
    const json = z.toJSONSchema(z.strictObject({ a: z.literal('x') }), { io: 'input' });
    expect(toStructural(json as Node)).toEqual({
      type: 'object',
      properties: { a: { type: 'string', enum: ['x'] } },
      required: ['a'],
    });
  });
});
