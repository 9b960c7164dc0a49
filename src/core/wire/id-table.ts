import { createHash } from 'node:crypto';
import { IdCollisionError, WireError } from './errors.js';

/** What an IdTable is built from: the cluster's configuration, identical on every member. */
export interface IdTableInit {
  /** The cluster's id (e.g. "namespace/name" of the HACluster). */
  clusterId: string;
  /** Member ids (node names). */
  members: Iterable<string>;
  /** VIP ids ("namespace/name"). */
  vips?: Iterable<string>;
  /**
   * Mixed into every tag. Change it only to get out of a tag collision, and on every member
   * at once (members with different salts cannot talk). Default "".
   */
  salt?: string;
}

/** The 32-bit wire tag of `id` in `space` ("cluster", "member" or "vip"): first 4 bytes of SHA-256. */
export function wireTag(space: 'cluster' | 'member' | 'vip', id: string, salt = ''): number {
  const h = createHash('sha256').update(`heartline/${space}\0${salt}\0${id}`, 'utf8').digest();
  return h.readUInt32BE(0);
}

class TagSpace {
  readonly byId = new Map<string, number>();
  readonly byTag = new Map<number, string>();

  constructor(space: 'member' | 'vip', ids: Iterable<string>, salt: string) {
    for (const id of ids) {
      if (id.length === 0) throw new WireError(`IdTable: a ${space} id is empty: give every ${space} a name`);
      if (this.byId.has(id)) continue;
      const tag = wireTag(space, id, salt);
      // Tag 0 is RECEIVER_ALL on the wire; treat it as taken.
      const other = tag === 0 ? '(reserved tag 0)' : this.byTag.get(tag);
      if (other !== undefined) throw new IdCollisionError(space, other, id, tag);
      this.byId.set(id, tag);
      this.byTag.set(tag, id);
    }
  }
}

/**
 * Maps the core's string ids (cluster, members, VIPs) to 32-bit wire tags and back. Built
 * once per configuration; throws IdCollisionError at build time when two ids of the same
 * space share a tag, so a collision is a configuration error, never a runtime confusion.
 * Every member must build it from the same configuration and salt.
 */
export class IdTable {
  readonly clusterId: string;
  readonly clusterTag: number;
  readonly salt: string;
  readonly #members: TagSpace;
  readonly #vips: TagSpace;

  constructor(init: IdTableInit) {
    this.salt = init.salt ?? '';
    this.clusterId = init.clusterId;
    this.clusterTag = wireTag('cluster', init.clusterId, this.salt);
    this.#members = new TagSpace('member', init.members, this.salt);
    this.#vips = new TagSpace('vip', init.vips ?? [], this.salt);
  }

  /** Tag of a member, or undefined when the member is not configured. */
  memberTag(id: string): number | undefined {
    return this.#members.byId.get(id);
  }
  /** Member id of a tag, or undefined. */
  memberId(tag: number): string | undefined {
    return this.#members.byTag.get(tag);
  }
  /** Tag of a VIP, or undefined when the VIP is not configured. */
  vipTag(id: string): number | undefined {
    return this.#vips.byId.get(id);
  }
  /** VIP id of a tag, or undefined. */
  vipId(tag: number): string | undefined {
    return this.#vips.byTag.get(tag);
  }
  /** Configured member ids. */
  members(): string[] {
    return [...this.#members.byId.keys()];
  }
  /** Configured VIP ids. */
  vips(): string[] {
    return [...this.#vips.byId.keys()];
  }
}
