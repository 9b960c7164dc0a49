import type { z } from 'zod';
import { AddressPoolSchema, AddressPoolSpecSchema, AddressPoolStatusSchema } from './addresspool.js';
import { HAClusterSchema, HAClusterSpecSchema, HAClusterStatusSchema } from './hacluster.js';
import { ResourceSchema, ResourceSpecSchema, ResourceStatusSchema } from './resource.js';
import { VirtualIPSchema, VirtualIPSpecSchema, VirtualIPStatusSchema } from './virtualip.js';

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

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const ready: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'Ready condition (kstatus).',
};

export const KINDS: readonly KindInfo[] = [
  {
    kind: 'HACluster',
    plural: 'haclusters',
    singular: 'hacluster',
    shortNames: ['hac'],
    description:
      'HACluster is a set of nodes that watch each other with signed UDP heartbeats and share virtual IPs (ha.cf plus authkeys).',
    schema: HAClusterSchema,
    spec: HAClusterSpecSchema,
    status: HAClusterStatusSchema,
    printerColumns: [
      {
        name: 'Members',
        type: 'string',
        jsonPath: '.status.summary.members',
        description: 'Members alive (or late) / members.',
      },
      {
        name: 'Quorum',
        type: 'string',
        jsonPath: '.status.quorum.state',
        description: 'quorate, lost or ignored.',
      },
      {
        name: 'VIPs',
        type: 'string',
        jsonPath: '.status.summary.vips',
        description: 'VirtualIPs with a holder / VirtualIPs.',
      },
      ready,
      age,
      {
        name: 'Votes',
        type: 'integer',
        jsonPath: '.status.quorum.have',
        description: 'Votes reachable (quorum needs .status.quorum.need).',
        priority: 1,
      },
      {
        name: 'Generation',
        type: 'integer',
        jsonPath: '.status.membership.generation',
        description: 'Member set generation.',
        priority: 1,
      },
    ],
  },
  {
    kind: 'VirtualIP',
    plural: 'virtualips',
    singular: 'virtualip',
    shortNames: ['vip'],
    description:
      'VirtualIP is an address that exactly one member of an HACluster holds at a time, with the Resources started beside it.',
    schema: VirtualIPSchema,
    spec: VirtualIPSpecSchema,
    status: VirtualIPStatusSchema,
    printerColumns: [
      { name: 'Address', type: 'string', jsonPath: '.spec.address', description: 'The VIP with its prefix.' },
      { name: 'Holder', type: 'string', jsonPath: '.status.holder', description: 'Node holding the VIP.' },
      { name: 'Epoch', type: 'integer', jsonPath: '.status.epoch', description: 'Ownership epoch.' },
      ready,
      age,
      {
        name: 'Cluster',
        type: 'string',
        jsonPath: '.spec.clusterRef.name',
        description: 'The HACluster.',
        priority: 1,
      },
      {
        name: 'Phase',
        type: 'string',
        jsonPath: '.status.phase',
        description: 'Pending, Binding, Bound, Releasing or Unassigned.',
        priority: 1,
      },
      {
        name: 'Last-Failover',
        type: 'date',
        jsonPath: '.status.lastFailover.time',
        description: 'When the VIP last changed holder.',
        priority: 1,
      },
      {
        name: 'Reason',
        type: 'string',
        jsonPath: '.status.lastFailover.reason',
        description: 'Why it last changed holder, e.g. HolderDead, Drain, Moved.',
        priority: 1,
      },
      {
        name: 'Failovers',
        type: 'integer',
        jsonPath: '.status.failoverCount',
        description: 'How many times it changed holder.',
        priority: 1,
      },
    ],
  },
  {
    kind: 'Resource',
    plural: 'resources',
    singular: 'resource',
    shortNames: ['hares'],
    description:
      'Resource is a service started, probed and stopped on the node that holds a VirtualIP (haresources).',
    schema: ResourceSchema,
    spec: ResourceSpecSchema,
    status: ResourceStatusSchema,
    printerColumns: [
      { name: 'Kind', type: 'string', jsonPath: '.spec.kind', description: 'exec, lsb or systemd.' },
      {
        name: 'Running-On',
        type: 'string',
        jsonPath: '.status.summary.running',
        description: 'Nodes where it runs.',
      },
      ready,
      age,
      {
        name: 'Reason',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
        description: 'Reason of the Ready condition.',
        priority: 1,
      },
    ],
  },
  {
    kind: 'AddressPool',
    plural: 'addresspools',
    singular: 'addresspool',
    shortNames: ['hapool'],
    description:
      'AddressPool is a set of addresses that Services of type LoadBalancer get, each held as a VirtualIP by the members of an HACluster.',
    schema: AddressPoolSchema,
    spec: AddressPoolSpecSchema,
    status: AddressPoolStatusSchema,
    printerColumns: [
      { name: 'Cluster', type: 'string', jsonPath: '.spec.clusterRef.name', description: 'The HACluster.' },
      { name: 'Addresses', type: 'string', jsonPath: '.spec.addresses', description: 'CIDRs and ranges.' },
      { name: 'Assigned', type: 'integer', jsonPath: '.status.assigned', description: 'Addresses in use.' },
      age,
    ],
  },
];

export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}
