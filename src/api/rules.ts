import { z } from 'zod';

/** The `reason` values the API server accepts on an `x-kubernetes-validations` rule. */
export type FieldReason =
  'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';

/**
 * One validation rule stated twice, once in CEL for the API server and once in
 * TypeScript for zod, next to each other so they cannot drift apart. The rule sits on
 * the object (or field) it is attached to: `self` is that value in both languages.
 * `field` points at the field the user should change, relative to `self`; it becomes
 * the CRD rule's `fieldPath` and the zod issue's path, so both report the same path.
 */
export interface Rule<T> {
  /** CEL expression that is true when the value is valid. */
  cel: string;
  /** What is wrong and how to fix it; names the field. Used verbatim by zod and the CRD. */
  message: string;
  /** CEL expression building a message that quotes the value; zod uses `messageFor`. */
  messageExpression?: string;
  /** The same text as `messageExpression`, computed in TypeScript. */
  messageFor?: (self: T) => string;
  /** Field to blame, relative to `self` (e.g. ['deadMs']); empty or absent: `self`. */
  field?: string[];
  reason?: FieldReason;
  /**
   * TypeScript twin of `cel`: true when valid. zod runs refinements even when sibling
   * fields have errors, so the value may be partly malformed: return true (no opinion)
   * when the fields the rule reads are not of the expected type.
   */
  check: (self: T) => boolean;
}

/** Meta keys that only the zod side reads; the CRD generator strips them. */
export interface ZodOnlyMeta {
  /** How to fix a bad or missing value, appended to zod's generic messages. */
  hint?: string;
}

export type CelRule = {
  rule: string;
  message: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: FieldReason;
};

export function toCel(rule: Rule<never>): CelRule {
  const out: CelRule = { rule: rule.cel, message: rule.message };
  if (rule.messageExpression) out.messageExpression = rule.messageExpression;
  if (rule.field && rule.field.length > 0) out.fieldPath = rule.field.map((f) => `.${f}`).join('');
  if (rule.reason) out.reason = rule.reason;
  return out;
}

function metaOf(schema: z.ZodType): Record<string, unknown> {
  return { ...(z.globalRegistry.get(schema) ?? {}) };
}

/** Adds metadata to a schema, keeping what it already had. */
export function withMeta<S extends z.ZodType>(schema: S, extra: Record<string, unknown>): S {
  return schema.meta({ ...metaOf(schema), ...extra }) as S;
}

/** Attaches rules to a schema: a zod refinement plus `x-kubernetes-validations` metadata. */
export function withRules<S extends z.ZodType>(schema: S, rules: Rule<z.output<S>>[]): S {
  const meta = metaOf(schema);
  const refined = schema.superRefine((value, ctx) => {
    for (const rule of rules) {
      let ok: boolean;
      try {
        ok = rule.check(value);
      } catch {
        ok = true; // malformed input: the type errors are reported elsewhere
      }
      if (!ok) {
        ctx.addIssue({
          code: 'custom',
          message: rule.messageFor ? rule.messageFor(value) : rule.message,
          path: rule.field ?? [],
          params: { reason: rule.reason ?? 'FieldValueInvalid' },
        });
      }
    }
  }) as unknown as S;
  const previous = (meta['x-kubernetes-validations'] as CelRule[] | undefined) ?? [];
  return refined.meta({
    ...meta,
    'x-kubernetes-validations': [...previous, ...rules.map((r) => toCel(r as Rule<never>))],
  }) as S;
}

function duplicates(values: unknown[], key: (v: unknown) => unknown): number[] {
  const seen = new Set<unknown>();
  const dups: number[] = [];
  values.forEach((v, i) => {
    const k = key(v);
    if (seen.has(k)) dups.push(i);
    seen.add(k);
  });
  return dups;
}

/**
 * A list of unique scalars (`x-kubernetes-list-type: set`). The API server rejects a
 * repeated item at its index with "Duplicate value"; so does zod.
 */
export function setOf<T extends z.ZodType>(item: T, maxItems: number) {
  return z
    .array(item)
    .max(maxItems)
    .superRefine((values, ctx) => {
      for (const i of duplicates(values, (v) => v)) {
        ctx.addIssue({
          code: 'custom',
          message: `Duplicate value: ${JSON.stringify(values[i])}: list entries must be unique; remove the repeated entry`,
          path: [i],
          params: { reason: 'FieldValueDuplicate' },
        });
      }
    })
    .meta({ 'x-kubernetes-list-type': 'set' });
}

/** A list of objects keyed by one field (`x-kubernetes-list-type: map`). */
export function mapListOf<T extends z.ZodType>(item: T, key: string, maxItems: number) {
  return z
    .array(item)
    .max(maxItems)
    .superRefine((values, ctx) => {
      const keyOf = (v: unknown) =>
        v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
      for (const i of duplicates(values, keyOf)) {
        ctx.addIssue({
          code: 'custom',
          message: `Duplicate value: ${JSON.stringify({ [key]: keyOf(values[i]) })}: entries must have unique ${key}`,
          path: [i],
          params: { reason: 'FieldValueDuplicate' },
        });
      }
    })
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': [key] });
}

export const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const isStr = (v: unknown): v is string => typeof v === 'string';
export const has = (o: unknown, k: string): boolean =>
  !!o && typeof o === 'object' && (o as Record<string, unknown>)[k] !== undefined;
