import { KINDS as CRD_KINDS } from '../../api/kinds.js';
import { GROUP, VERSION } from '../../api/meta.js';
import type { ApiKind, ApiObject } from '../../core/ports.js';

/** Where a kind lives in the API (its REST paths). */
export interface KindLocation {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

/**
 * Where each kind Heartline reads lives in the API: Heartline's own kinds as src/api defines
 * them (the table the CRDs are generated from; all namespaced), and the core kinds it reads.
 */
export const LOCATIONS: Readonly<Record<ApiKind, KindLocation>> = {
  ...(Object.fromEntries(
    CRD_KINDS.map((k) => [k.kind, { group: GROUP, version: VERSION, plural: k.plural, namespaced: true }]),
  ) as Record<(typeof CRD_KINDS)[number]['kind'], KindLocation>),
  Node: { group: '', version: 'v1', plural: 'nodes', namespaced: false },
  Secret: { group: '', version: 'v1', plural: 'secrets', namespaced: true },
  Service: { group: '', version: 'v1', plural: 'services', namespaced: true },
  EndpointSlice: { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true },
  Pod: { group: '', version: 'v1', plural: 'pods', namespaced: true },
};

export function apiVersionOf(kind: ApiKind): string {
  const k = LOCATIONS[kind];
  return k.group ? `${k.group}/${k.version}` : k.version;
}

/**
 * An object from the API server as the adapters keep and hand it out: `apiVersion` and `kind`
 * set, and `metadata.managedFields` dropped (in place: `o` is freshly parsed and owned by the
 * adapter). managedFields is server-side-apply bookkeeping Heartline never reads, and for a
 * VirtualIP with status it is most of the object (one entry, with a tree of field names, per
 * writer); kube-controller-manager's informers drop it the same way. In the scale benchmark
 * it was three of the nine copies of every VIP's strings in the controller's heap.
 */
export function keptObject(kind: ApiKind, o: object): ApiObject {
  const meta = (o as { metadata?: { managedFields?: unknown } }).metadata;
  if (meta && 'managedFields' in meta) delete meta.managedFields;
  return Object.assign(o, { apiVersion: apiVersionOf(kind), kind }) as ApiObject;
}

/** Collection path for a watch, e.g. /apis/heartline.dev/v1alpha1/namespaces/ns/virtualips. */
export function collectionPath(kind: ApiKind, namespace?: string): string {
  const k = LOCATIONS[kind];
  const base = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  return `${base}${k.namespaced && namespace ? `/namespaces/${namespace}` : ''}/${k.plural}`;
}

/** `kind ns/name` for messages. */
export function describeKey(kind: ApiKind, key: { namespace?: string; name: string }): string {
  return `${kind} ${key.namespace ? `${key.namespace}/` : ''}${key.name}`;
}
