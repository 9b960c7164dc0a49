import { z } from 'zod';
import { mapListOf } from './rules.js';

export const GROUP = 'heartline.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An object name (DNS-1123 subdomain), as Kubernetes requires for names. */
export const objectName = (what: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(DNS_SUBDOMAIN, {
      error: `${what} must be a lowercase DNS-1123 subdomain (a-z, 0-9, "-" and "."; start and end alphanumeric), e.g. node-a`,
    });

/** Linux interface name: at most 15 bytes (IFNAMSIZ - 1), no "/", ":" or whitespace. */
export const interfaceName = () =>
  z
    .string()
    .min(1)
    .max(15)
    .regex(/^[a-zA-Z0-9][-a-zA-Z0-9_.@]*$/, {
      error:
        'must be a Linux interface name (up to 15 characters from a-z, A-Z, 0-9, "-", "_", ".", "@"), e.g. eth0',
    });

/** Label map (nodeSelector), matched against Node labels. */
export const labelMap = () => z.record(z.string().min(1).max(317), z.string().max(63));

/** RFC 3339 timestamp as metav1.Time serialises it. */
export const timestamp = () => z.iso.datetime({ offset: true });

/**
 * The metadata of a manifest. Only what Heartline reads is checked; the API server
 * validates the rest, so unknown metadata keys pass.
 */
export const ObjectMetaSchema = z
  .looseObject({
    name: objectName('metadata.name').optional(),
    generateName: z.string().optional(),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    generation: z.int().optional(),
    resourceVersion: z.string().optional(),
    uid: z.string().optional(),
    creationTimestamp: z.string().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.name === undefined && m.generateName === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['name'],
        message: 'Required value: name or generateName is required; set metadata.name',
      });
    }
  });
export type ObjectMeta = z.output<typeof ObjectMetaSchema>;

/** The standard metav1.Condition shape. */
export const ConditionSchema = z
  .strictObject({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
        {
          error: 'condition type must be CamelCase or a qualified name, e.g. Ready',
        },
      )
      .describe('Type of condition in CamelCase, e.g. Ready.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown.'),
    observedGeneration: z
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('The .metadata.generation the condition was set for.'),
    lastTransitionTime: timestamp().describe('When the condition last changed status.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/, {
        error: 'reason must be CamelCase, e.g. HolderLost',
      })
      .describe('Machine-readable CamelCase reason for the last transition.'),
    message: z.string().max(32768).describe('Human-readable explanation of the last transition.'),
  })
  .describe('A metav1.Condition.');
export type Condition = z.output<typeof ConditionSchema>;

export const conditionList = () =>
  mapListOf(ConditionSchema, 'type', 16).describe('Standard conditions, keyed by type.');

export const observedGeneration = () =>
  z
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('The .metadata.generation this status was computed from.');

/** A kind's status: its fields, then the observedGeneration every status carries (kstatus). */
export function statusSchema<F extends z.ZodRawShape>(fields: F, description: string) {
  return z.strictObject({ ...fields, observedGeneration: observedGeneration() }).describe(description);
}

/** A Heartline object's schema: apiVersion, its kind, metadata, spec and (optional) status. */
export function objectSchema<K extends string, S extends z.ZodType, T extends z.ZodType>(
  kind: K,
  spec: S,
  status: T,
) {
  return z.strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(kind),
    metadata: ObjectMetaSchema,
    spec,
    status: status.optional(),
  });
}
