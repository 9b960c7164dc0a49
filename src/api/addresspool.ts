import { z } from 'zod';
import { conditionList, interfaceName, labelMap, objectName, objectSchema, statusSchema } from './meta.js';
import { poolEntryProblem } from './pool-range.js';
import { isStr, setOf, withRules } from './rules.js';
import { AnnounceSchema } from './virtualip.js';

const ENTRY_EXAMPLE = 'write e.g. 198.18.10.0/28, 198.18.10.20-198.18.10.40 or 2001:db8:1::/120';
const LEFT = "self.split('-')[0]";
const RIGHT = "self.split('-')[1]";

/** One entry of `addresses`: a CIDR (network address, no host bits) or a `first-last` range. */
export const PoolEntrySchema = withRules(
  z
    .string()
    .min(1)
    .max(90)
    .describe(
      'A CIDR (198.18.10.0/28, 2001:db8:1::/120) or an inclusive range of one family (198.18.10.20-198.18.10.40).',
    ),
  [
    {
      // The API server cannot order two IPs; a range that ends before it starts is refused by
      // `heartline validate` and reported by the controller (Warning Event, pool not used).
      cel: `self.contains('-') ? (${LEFT}.size() > 0 && ${RIGHT}.size() > 0 && self.split('-').size() == 2 && isIP(${LEFT}) && isIP(${RIGHT}) && ip(${LEFT}).family() == ip(${RIGHT}).family()) : (isCIDR(self) && cidr(self).masked() == cidr(self))`,
      check: (e) => !isStr(e) || poolEntryProblem(e) === undefined,
      message: `addresses[]: must be a CIDR without host bits or a range first-last of one family; ${ENTRY_EXAMPLE}`,
      messageFor: (e) => `addresses[]: ${poolEntryProblem(e) ?? ENTRY_EXAMPLE}`,
    },
  ],
);

export const AddressPoolSpecSchema = z
  .strictObject({
    clusterRef: z
      .strictObject({ name: objectName('clusterRef.name').describe('Name of the HACluster.') })
      .describe('The HACluster (same namespace) whose members hold the addresses of this pool.'),
    addresses: setOf(PoolEntrySchema, 32)
      .min(1)
      .describe('The addresses of the pool: CIDRs and ranges, IPv4 and IPv6, in any mix. Unique.'),
    prefixLength: z
      .strictObject({
        ipv4: z.int().min(8).max(32).default(24).describe('Prefix of IPv4 addresses when bound. Default 24.'),
        ipv6: z
          .int()
          .min(16)
          .max(128)
          .default(64)
          .describe('Prefix of IPv6 addresses when bound. Default 64.'),
      })
      .prefault({ ipv4: 24, ipv6: 64 })
      .describe(
        "The prefix each address is bound with (it picks the member's interface like findif when interface is not set; use the nodes' subnet prefix).",
      ),
    autoAssign: z
      .boolean()
      .default(true)
      .describe('Hand out addresses to Services that do not ask for one. False: only requested addresses.'),
    avoidBuggyIPs: z
      .boolean()
      .default(false)
      .describe('Never hand out IPv4 addresses ending in .0 or .255 (for clients that drop them).'),
    assignClassless: z
      .boolean()
      .default(false)
      .describe(
        'Also serve LoadBalancer Services without spec.loadBalancerClass (opt-in; Services with class heartline.dev/vip are always served).',
      ),
    interface: interfaceName()
      .optional()
      .describe('Interface to bind on; default: the member interface whose subnet contains the address.'),
    nodeSelector: labelMap()
      .optional()
      .describe('Only members whose Node labels match all of these may hold addresses of this pool.'),
    announce: AnnounceSchema.optional().describe('Announcements of the VirtualIPs made from this pool.'),
  })
  .describe(
    'An address pool for Services of type LoadBalancer (MetalLB IPAddressPool, bound to an HACluster).',
  );

export const PoolConditionTypes = ['Ready'] as const;

export const AddressPoolStatusSchema = statusSchema(
  {
    assigned: z
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('Addresses of this pool held by VirtualIPs for Services.'),
    conditions: conditionList()
      .optional()
      .describe(
        'Ready: True when the pool hands out addresses; False, reason Refused, when it is invalid or overlaps an older pool (standard metav1.Condition shape).',
      ),
  },
  'Observed state of an AddressPool.',
);

export const AddressPoolSchema = objectSchema('AddressPool', AddressPoolSpecSchema, AddressPoolStatusSchema);

export type AddressPoolSpec = z.output<typeof AddressPoolSpecSchema>;
export type AddressPoolStatus = z.output<typeof AddressPoolStatusSchema>;
export type AddressPool = z.output<typeof AddressPoolSchema>;
