import { z } from 'zod';
import { stringify } from 'yaml';
import { KINDS, type KindInfo } from './kinds.js';
import { GROUP, VERSION } from './meta.js';

/** A JSON Schema / OpenAPI v3 node as the generator manipulates it. */
type Schema = Record<string, unknown>;

/** Keys of zod's JSON Schema output that a CRD's structural schema may carry. */
const ALLOWED = new Set([
  'type',
  'description',
  'properties',
  'required',
  'items',
  'additionalProperties',
  'default',
  'enum',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'example',
  'nullable',
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
]);

/** Keys dropped on purpose: JSON Schema only, or zod-only metadata. */
const DROPPED = new Set(['$schema', 'propertyNames', 'hint', 'examples']);

export class CrdSchemaError extends Error {
  override name = 'CrdSchemaError';
}

/**
 * Rewrites zod's JSON Schema (draft 2020-12) into a Kubernetes structural schema:
 * every node typed, no $ref/anyOf/oneOf/allOf, no `additionalProperties: false`
 * (pruning does that job), `const` as a one-value enum, zod's implicit safe-integer
 * bounds removed, and the regex zod adds next to `format: date-time` dropped (the API
 * server checks the format itself). Anything that cannot be expressed throws, naming
 * the path, so a schema change that breaks structure fails the build.
 */
export function toStructural(node: Schema, path = '$'): Schema {
  for (const bad of ['$ref', 'anyOf', 'oneOf', 'allOf', 'not', '$defs', 'definitions']) {
    if (bad in node) throw new CrdSchemaError(`${path}: "${bad}" is not allowed in a structural schema`);
  }
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED.has(key)) continue;
    if (key === 'const') {
      out.enum = [value];
      continue;
    }
    if (key === 'additionalProperties') {
      if (value === false) continue;
      if (typeof value === 'object' && value !== null) out[key] = toStructural(value as Schema, `${path}.*`);
      continue;
    }
    if (!ALLOWED.has(key)) throw new CrdSchemaError(`${path}: unsupported key "${key}"`);
    if (key === 'properties') {
      const props: Schema = {};
      for (const [name, sub] of Object.entries(value as Record<string, Schema>)) {
        props[name] = toStructural(sub, `${path}.${name}`);
      }
      out[key] = props;
    } else if (key === 'items') {
      out[key] = toStructural(value as Schema, `${path}[]`);
    } else {
      out[key] = value;
    }
  }
  if (Array.isArray(out.type))
    throw new CrdSchemaError(`${path}: one type per node, not ${JSON.stringify(out.type)}`);
  if (out.type === undefined) {
    if (Array.isArray(out.enum) && out.enum.every((v) => typeof v === 'string')) out.type = 'string';
    else throw new CrdSchemaError(`${path}: every node needs a type`);
  }
  if (out.type === 'integer' || out.type === 'number') {
    if (out.minimum === -Number.MAX_SAFE_INTEGER) delete out.minimum;
    if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
  }
  if (out.format === 'date-time') delete out.pattern;
  // Stable, readable order: type and description first, the rest as zod emitted it.
  const { type, description, ...rest } = out;
  return description === undefined ? { type, ...rest } : { type, description, ...rest };
}

/** The structural schema of one zod schema, as the API server will see it (input side). */
export function openApiOf(schema: z.ZodType): Schema {
  const json = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'throw',
    reused: 'inline',
    cycles: 'throw',
  });
  return toStructural(json as Schema);
}

/** The CustomResourceDefinition object of one kind. */
export function crdFor(info: KindInfo): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${info.plural}.${GROUP}`,
      annotations: {
        'heartline.dev/generated-by': 'heartline crds (src/api/crd.ts); do not edit, run npm run crds',
      },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: info.shortNames,
        categories: ['heartline'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: info.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'APIVersion: heartline.dev/v1alpha1.' },
                kind: { type: 'string', description: `Kind: ${info.kind}.` },
                metadata: { type: 'object' },
                spec: openApiOf(info.spec),
                status: openApiOf(info.status),
              },
            },
          },
        },
      ],
    },
  };
}

export function generateCrds(): { name: string; file: string; object: Schema; yaml: string }[] {
  return KINDS.map((info) => {
    const object = crdFor(info);
    return {
      name: `${info.plural}.${GROUP}`,
      file: `${GROUP}_${info.plural}.yaml`,
      object,
      yaml: stringify(object, { lineWidth: 0, aliasDuplicateObjects: false }),
    };
  });
}

/** All CRDs as one multi-document YAML stream. */
export function crdsYaml(): string {
  return generateCrds()
    .map((c) => `---\n${c.yaml}`)
    .join('');
}
