import type { z } from 'zod';
import { AddressPoolSchema } from './addresspool.js';
import { HAClusterSchema } from './hacluster.js';
import { ResourceSchema } from './resource.js';
import { VirtualIPSchema } from './virtualip.js';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

/** Everything the CRD generator and the validators need to know about one kind. */
export interface KindInfo {
  kind: 'HACluster' | 'VirtualIP' | 'Resource' | 'AddressPool';
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  schema: z.ZodType;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
}

/** A printer column; kubectl shows it by default. */
function column(
  name: string,
  type: PrinterColumn['type'],
  jsonPath: string,
  description?: string,
): PrinterColumn {
  return { name, type, jsonPath, ...(description !== undefined ? { description } : {}) };
}

/** A printer column kubectl shows only with `-o wide` (priority 1). */
function wide(
  name: string,
  type: PrinterColumn['type'],
  jsonPath: string,
  description: string,
): PrinterColumn {
  return { ...column(name, type, jsonPath, description), priority: 1 };
}

const age = column('Age', 'date', '.metadata.creationTimestamp');
const ready = column(
  'Ready',
  'string',
  '.status.conditions[?(@.type=="Ready")].status',
  'Ready condition (kstatus).',
);

/**
 * A kind's entry: its plural and singular names by the Kubernetes convention (lower case; the
 * plural adds "s"), its spec and status schemas taken from its object schema.
 */
function kind(
  name: KindInfo['kind'],
  schema: z.ZodType & { shape: { spec: z.ZodType; status: z.ZodOptional<z.ZodType> } },
  info: Pick<KindInfo, 'shortNames' | 'description' | 'printerColumns'>,
): KindInfo {
  const singular = name.toLowerCase();
  return {
    kind: name,
    plural: `${singular}s`,
    singular,
    ...info,
    schema,
    spec: schema.shape.spec,
    status: schema.shape.status.unwrap(),
  };
}

export const KINDS: readonly KindInfo[] = [
  kind('HACluster', HAClusterSchema, {
    shortNames: ['hac'],
    description:
      'HACluster is a set of nodes that watch each other with signed UDP heartbeats and share virtual IPs (ha.cf plus authkeys).',
    printerColumns: [
      column('Members', 'string', '.status.summary.members', 'Members alive (or late) / members.'),
      column('Quorum', 'string', '.status.quorum.state', 'quorate, lost or ignored.'),
      column('VIPs', 'string', '.status.summary.vips', 'VirtualIPs with a holder / VirtualIPs.'),
      ready,
      age,
      wide('Votes', 'integer', '.status.quorum.have', 'Votes reachable (quorum needs .status.quorum.need).'),
      wide('Generation', 'integer', '.status.membership.generation', 'Member set generation.'),
    ],
  }),
  kind('VirtualIP', VirtualIPSchema, {
    shortNames: ['vip'],
    description:
      'VirtualIP is an address that exactly one member of an HACluster holds at a time, with the Resources started beside it.',
    printerColumns: [
      column('Address', 'string', '.spec.address', 'The VIP with its prefix.'),
      column('Holder', 'string', '.status.holder', 'Node holding the VIP.'),
      column('Epoch', 'integer', '.status.epoch', 'Ownership epoch.'),
      ready,
      age,
      wide('Cluster', 'string', '.spec.clusterRef.name', 'The HACluster.'),
      wide('Phase', 'string', '.status.phase', 'Pending, Binding, Bound, Releasing or Unassigned.'),
      wide('Last-Failover', 'date', '.status.lastFailover.time', 'When the VIP last changed holder.'),
      wide(
        'Reason',
        'string',
        '.status.lastFailover.reason',
        'Why it last changed holder, e.g. HolderDead, Drain, Moved.',
      ),
      wide('Failovers', 'integer', '.status.failoverCount', 'How many times it changed holder.'),
    ],
  }),
  kind('Resource', ResourceSchema, {
    shortNames: ['hares'],
    description:
      'Resource is a service started, probed and stopped on the node that holds a VirtualIP (haresources).',
    printerColumns: [
      column('Kind', 'string', '.spec.kind', 'exec, lsb or systemd.'),
      column('Running-On', 'string', '.status.summary.running', 'Nodes where it runs.'),
      ready,
      age,
      wide(
        'Reason',
        'string',
        '.status.conditions[?(@.type=="Ready")].reason',
        'Reason of the Ready condition.',
      ),
    ],
  }),
  kind('AddressPool', AddressPoolSchema, {
    shortNames: ['hapool'],
    description:
      'AddressPool is a set of addresses that Services of type LoadBalancer get, each held as a VirtualIP by the members of an HACluster.',
    printerColumns: [
      column('Cluster', 'string', '.spec.clusterRef.name', 'The HACluster.'),
      column('Addresses', 'string', '.spec.addresses', 'CIDRs and ranges.'),
      column('Assigned', 'integer', '.status.assigned', 'Addresses in use.'),
      age,
    ],
  }),
];

export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}
