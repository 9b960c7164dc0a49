import { z } from 'zod';
import {
  objectSchema,
  conditionList,
  interfaceName,
  labelMap,
  objectName,
  statusSchema,
  timestamp,
} from './meta.js';
import { parseCidr } from './net.js';
import { isNum, isStr, setOf, withMeta, withRules } from './rules.js';
import { ADDRESS_CEL, ADDRESS_CEL_MESSAGE, ADDRESS_RULE_MESSAGE, addressProblem } from './vip-address.js';

const CIDR_EXAMPLE = 'use e.g. 198.18.0.100/24 or 2001:db8::100/64';

export const AddressSchema = withRules(
  withMeta(
    z
      .string()
      .min(1)
      .max(64)
      .describe(
        'The virtual IP with its prefix length, IPv4 or IPv6, e.g. 198.18.0.100/24 or 2001:db8::100/64. The prefix picks the interface when interface is not set.',
      ),
    { example: '198.18.0.100/24' },
  ),
  [
    {
      // isCIDR (Kubernetes >= 1.31 CEL library) also bounds the prefix: <= 32 (v4), <= 128 (v6).
      cel: 'isCIDR(self)',
      check: (a) => !isStr(a) || parseCidr(a) !== undefined,
      message: `address is not a valid IPv4 or IPv6 CIDR; ${CIDR_EXAMPLE}`,
      messageExpression: `'"' + self + '" is not a valid IPv4 or IPv6 CIDR; ${CIDR_EXAMPLE}'`,
      messageFor: (a) => `${JSON.stringify(a)} is not a valid IPv4 or IPv6 CIDR; ${CIDR_EXAMPLE}`,
    },
    {
      // Every rule of vip-address.ts in one CRD rule, so an address gets one message: the
      // first rule's that refuses it (0.0.0.0/24 is unspecified, not also a network address).
      cel: ADDRESS_CEL,
      check: (a) => !isStr(a) || addressProblem(a) === undefined,
      message: ADDRESS_RULE_MESSAGE,
      messageExpression: ADDRESS_CEL_MESSAGE,
      messageFor: (a) => addressProblem(a) ?? ADDRESS_RULE_MESSAGE,
    },
  ],
);

export const AnnounceSchema = z
  .strictObject({
    count: z
      .int()
      .min(1)
      .max(20)
      .default(3)
      .describe('Gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6) sent after binding.'),
    intervalMs: z
      .int()
      .min(10)
      .max(10_000)
      .default(100)
      .describe('Milliseconds between those announcements.'),
    refreshMs: withRules(
      z
        .int()
        .min(0)
        .max(3_600_000)
        .describe('Repeat one announcement this often while bound, for switches that forget; 0 means off.'),
      [
        {
          cel: 'self == 0 || self >= 1000',
          check: (r) => !isNum(r) || r === 0 || r >= 1000,
          message:
            'announce.refreshMs must be 0 (off) or at least 1000; set 0 or a period of 1000 ms or more',
        },
      ],
    ).default(0),
  })
  .describe('How the new holder tells the LAN where the address went.');

export const VirtualIPSpecSchema = z
  .strictObject({
    clusterRef: z
      .strictObject({ name: objectName('clusterRef.name').describe('Name of the HACluster.') })
      .describe('The HACluster (same namespace) whose members may hold this VIP.'),
    address: AddressSchema,
    interface: interfaceName()
      .optional()
      .describe(
        "Interface to bind on; default: the member's interface whose subnet contains address (like findif).",
      ),
    preferredNodes: setOf(objectName('preferredNodes[]'), 32)
      .optional()
      .describe('Node names in order of preference; the first live, healthy one holds the VIP. Unique.'),
    nodeSelector: labelMap()
      .optional()
      .describe('Only members whose Node labels match all of these may hold the VIP.'),
    eligibleNodes: setOf(objectName('eligibleNodes[]'), 1000)
      .optional()
      .describe(
        'Only these nodes may hold the VIP (and they must match nodeSelector too); empty: nobody. The Service reconciler sets it to the nodes with a ready endpoint for externalTrafficPolicy Local; when it changes, the VIP moves by planned handoff. Unique.',
      ),
    announce: AnnounceSchema.prefault({ count: 3, intervalMs: 100, refreshMs: 0 }),
    resources: setOf(objectName('resources[]'), 16)
      .optional()
      .describe(
        'Resource names (same namespace), started in this order after the address is bound and stopped in reverse before it is released. Unique.',
      ),
  })
  .describe('Desired state of a VirtualIP (a haresources line: IPaddr2 plus its services).');

export const VipPhases = ['Pending', 'Binding', 'Bound', 'Releasing', 'Unassigned'] as const;
export const VipConditionTypes = ['Ready', 'Bound', 'QuorumLost', 'Degraded'] as const;

export const VirtualIPStatusSchema = statusSchema(
  {
    holder: z
      .string()
      .max(253)
      .optional()
      .describe('Node that holds (or is being given) the VIP; empty: nobody.'),
    epoch: z
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('Ownership epoch; only grows. An agent never binds at an epoch lower than one it has seen.'),
    since: timestamp().optional().describe('When the current holder got the VIP.'),
    phase: z
      .enum(VipPhases)
      .optional()
      .describe(
        'Pending (not yet decided), Binding (assigned, holder not yet bound), Bound, Releasing (planned move in progress), Unassigned (no eligible healthy member).',
      ),
    conditions: conditionList()
      .optional()
      .describe('Ready, Bound, QuorumLost, Degraded (standard metav1.Condition shape).'),
    lastFailover: z
      .strictObject({
        from: z.string().max(253).optional().describe('Previous holder (empty for the first assignment).'),
        to: z.string().max(253).optional().describe('New holder (empty if nobody could take it).'),
        reason: z
          .string()
          .max(1024)
          .describe('Why the VIP moved, e.g. HolderDead, Drain, ResourceFailed, Failback.'),
        durationMs: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('Time without a holder.'),
        time: timestamp().optional().describe('When the move completed.'),
      })
      .optional()
      .describe('The most recent move of the VIP.'),
    failoverCount: z
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('How many times the VIP changed holder.'),
  },
  'Observed state of a VirtualIP.',
);

export const VirtualIPSchema = objectSchema('VirtualIP', VirtualIPSpecSchema, VirtualIPStatusSchema);

export type AnnounceSpec = z.output<typeof AnnounceSchema>;
export type VirtualIPSpec = z.output<typeof VirtualIPSpecSchema>;
export type VirtualIPStatus = z.output<typeof VirtualIPStatusSchema>;
export type VirtualIP = z.output<typeof VirtualIPSchema>;
export type VirtualIPInput = z.input<typeof VirtualIPSchema>;
export type VipPhase = (typeof VipPhases)[number];
export type VipConditionType = (typeof VipConditionTypes)[number];
