import { z } from 'zod';
import { AddressPoolSchema, type AddressPool } from './addresspool.js';
import { HAClusterSchema, type HACluster } from './hacluster.js';
import { API_VERSION, GROUP } from './meta.js';
import { kindInfo } from './kinds.js';
import { ResourceSchema, type Resource } from './resource.js';
import { VirtualIPSchema, type VirtualIP } from './virtualip.js';

/** One problem with one field: `path` is Kubernetes-style (`spec.preferredNodes[1]`). */
export interface FieldError {
  path: string;
  message: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** `spec.a[0].b` from a zod path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** `path: message`, the line users see. */
export function formatFieldError(e: FieldError): string {
  return e.path ? `${e.path}: ${e.message}` : e.message;
}

const show = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'array' : 'object';
};

/** Reads the description of the schema a zod issue came from, to say what the field is for. */
function describeInst(inst: unknown): string | undefined {
  if (!inst || typeof inst !== 'object' || !('_zod' in inst)) return undefined;
  const meta = z.globalRegistry.get(inst as z.ZodType);
  return typeof meta?.description === 'string' ? meta.description : undefined;
}

/**
 * Turns zod's raw issues into Kubernetes-flavoured messages that say what to do.
 * Messages set on a schema (regex hints, rule messages) take precedence over these.
 */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  const plural = (n: number | bigint, word: string) => `${n} ${word}${Number(n) === 1 ? '' : 's'}`;
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.input === undefined) {
        const what = describeInst(iss.inst);
        return what ? `Required value: ${what}` : 'Required value';
      }
      return `Invalid value: ${show(iss.input)}: must be ${iss.expected === 'int' ? 'an integer' : `of type ${iss.expected}`}`;
    }
    case 'invalid_value':
      return `Unsupported value: ${show(iss.input)}: supported values: ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
    case 'too_big': {
      const small = iss.code === 'too_small';
      const bound = small ? iss.minimum : iss.maximum;
      const cmp = small ? 'greater than or equal to' : 'less than or equal to';
      if (iss.origin === 'string')
        return `Invalid value: ${show(iss.input)}: must be ${small ? 'at least' : 'at most'} ${plural(bound as number, 'character')}`;
      if (iss.origin === 'array')
        return `Invalid value: ${small ? 'too few' : 'too many'} items: must have ${small ? 'at least' : 'at most'} ${plural(bound as number, 'item')}`;
      return `Invalid value: ${show(iss.input)}: must be ${cmp} ${String(bound)}`;
    }
    case 'invalid_format':
      return `Invalid value: ${show(iss.input)}: must be ${iss.format === 'regex' ? `a string matching ${String((iss as { pattern?: unknown }).pattern)}` : `a valid ${iss.format}`}`;
    default:
      return undefined;
  }
};

/** Value-quoting prefix for messages given on a schema (e.g. a regex hint). */
function withValue(issue: z.core.$ZodIssue & { input?: unknown }): string {
  if (issue.code === 'invalid_format' && !issue.message.startsWith('Invalid value'))
    return `Invalid value: ${show(issue.input)}: ${issue.message}`;
  return issue.message;
}

/** Runs a schema and returns the parsed value or every field error. */
export function parseWith<T>(schema: z.ZodType<T>, input: unknown): ParseResult<T> {
  const r = schema.safeParse(input, { error: errorMap, reportInput: true });
  if (r.success) return { ok: true, value: r.data };
  const errors: FieldError[] = r.error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      // One line per unknown key, at the key's own path, like the API server.
      return issue.keys.map((k) => ({
        path: formatPath([...issue.path, k]),
        message: 'unknown field; remove it (check the spelling against docs/api.md)',
      }));
    }
    return [{ path: formatPath(issue.path), message: withValue(issue) }];
  });
  return { ok: false, errors };
}

export const parseHACluster = (input: unknown): ParseResult<HACluster> => parseWith(HAClusterSchema, input);
export const parseVirtualIP = (input: unknown): ParseResult<VirtualIP> => parseWith(VirtualIPSchema, input);
export const parseResource = (input: unknown): ParseResult<Resource> => parseWith(ResourceSchema, input);
export const parseAddressPool = (input: unknown): ParseResult<AddressPool> =>
  parseWith(AddressPoolSchema, input);

export type HeartlineObject = HACluster | VirtualIP | Resource | AddressPool;

/** Where a manifest stands with respect to Heartline's kinds. */
export type ManifestCheck =
  { handled: false; reason: string } | { handled: true; kind: string; result: ParseResult<HeartlineObject> };

/**
 * Validates any manifest object: Heartline kinds are parsed with their schema; objects
 * of other groups are not Heartline's business (handled: false); a heartline.dev
 * object of an unknown kind or version is an error.
 */
export function checkManifest(obj: unknown): ManifestCheck {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    return { handled: false, reason: 'not an object' };
  }
  const { apiVersion, kind } = obj as { apiVersion?: unknown; kind?: unknown };
  const av = typeof apiVersion === 'string' ? apiVersion : '';
  if (av.split('/')[0] !== GROUP) {
    return {
      handled: false,
      reason: `${av || '<no apiVersion>'}/${typeof kind === 'string' ? kind : '<no kind>'} is not a Heartline kind`,
    };
  }
  const info = typeof kind === 'string' ? kindInfo(kind) : undefined;
  if (!info) {
    const result: ParseResult<HeartlineObject> = {
      ok: false,
      errors: [
        {
          path: 'kind',
          message: `Unsupported value: ${show(kind)}: supported values: "HACluster", "VirtualIP", "Resource", "AddressPool"`,
        },
      ],
    };
    return { handled: true, kind: String(kind), result };
  }
  if (av !== API_VERSION) {
    return {
      handled: true,
      kind: info.kind,
      result: {
        ok: false,
        errors: [{ path: 'apiVersion', message: `Unsupported value: ${show(av)}: use ${API_VERSION}` }],
      },
    };
  }
  return {
    handled: true,
    kind: info.kind,
    result: parseWith(info.schema as z.ZodType<HeartlineObject>, obj),
  };
}
