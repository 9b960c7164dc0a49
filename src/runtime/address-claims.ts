/**
 * One address, one VirtualIP: which VirtualIPs may be bound, given every VirtualIP that
 * claims an address and the Nodes' own addresses. Pure; the controller (for status and
 * Events), the agent's configuration builder (so a refused VIP never enters the member's VIP
 * set) and the simulator all call this one function.
 *
 * Leases are per VirtualIP name, so the quorum cannot see two names sharing one address: this
 * rule is what keeps them apart. An address is compared by its IP alone (198.18.0.100/24 and
 * 198.18.0.100/32 are the same address). Among the VirtualIPs that share one, the older object
 * owns it (creationTimestamp, then "namespace/name", so every reader decides alike); the others
 * are refused and never bound. An address equal to a Node's address is refused for every
 * VirtualIP. The owner itself waits while another VirtualIP that shares the address may still
 * be bound somewhere (`held`, or bound at an address it has since left: `heldAddress`), or
 * while the controller's last verdict still holds it back (`blocked`): a handover of an
 * address between two names goes through "nobody holds it".
 */
import { hostOf, parseCidr, parseIp } from '../api/net.js';

/** A VirtualIP as the rule sees it. */
export interface AddressClaimant {
  /** "namespace/name". */
  id: string;
  /** spec.address, with its prefix (e.g. 198.18.0.100/24). */
  address: string;
  /** metadata.creationTimestamp (RFC 3339); missing counts as youngest. */
  created?: string | undefined;
  /** May be bound on some node now (a holder in status, or one the controller observes). */
  held?: boolean;
  /** Where it may still be bound when that differs from `address` (spec.address changed while held). */
  heldAddress?: string | undefined;
  /** The controller's last verdict (condition AddressConflict True) still holds it back. */
  blocked?: boolean;
}

export interface NodeAddressOf {
  node: string;
  address: string;
}

export type AddressRefusal =
  /** A older VirtualIP owns the address. */
  | 'DuplicateAddress'
  /** The address is a Node's own. */
  | 'NodeAddress'
  /** Owner, but another VirtualIP with this address may still be bound: wait for its release. */
  | 'AwaitingRelease'
  /** Owner, but the controller has not yet confirmed that nobody else holds the address. */
  | 'AwaitingController';

export type AddressVerdict =
  { ok: true } | { ok: false; reason: AddressRefusal; message: string; others: string[] };

const OK: AddressVerdict = { ok: true };

/** The IP of an address, normalised (family and bytes); the prefix is ignored. */
export function addressKey(address: string): string {
  const text = address.trim();
  const p = text.includes('/') ? parseCidr(text) : parseIp(text);
  if (p) return `${p.family}:${p.bytes.join('.')}`;
  return `raw:${hostOf(text).toLowerCase()}`;
}

function createdMs(c: AddressClaimant): number {
  const t = c.created ? Date.parse(c.created) : NaN;
  return Number.isNaN(t) ? Infinity : t;
}

/** Older first: creationTimestamp, then "namespace/name". */
export function olderFirst(a: AddressClaimant, b: AddressClaimant): number {
  const ta = createdMs(a);
  const tb = createdMs(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

interface Claim {
  claimant: AddressClaimant;
  /** Not the spec address: where the VIP may still be bound after leaving it. */
  ghost: boolean;
}

/** The verdict for every claimant, by id. */
export function resolveAddressClaims(
  claimants: readonly AddressClaimant[],
  nodes: readonly NodeAddressOf[] = [],
): Map<string, AddressVerdict> {
  const nodeByKey = new Map<string, string>();
  for (const n of nodes) {
    const k = addressKey(n.address);
    if (!nodeByKey.has(k)) nodeByKey.set(k, n.node);
  }
  const groups = new Map<string, Claim[]>();
  const add = (key: string, claim: Claim) => {
    const g = groups.get(key);
    if (g) g.push(claim);
    else groups.set(key, [claim]);
  };
  for (const c of claimants) {
    const key = addressKey(c.address);
    add(key, { claimant: c, ghost: false });
    if (c.heldAddress !== undefined && addressKey(c.heldAddress) !== key)
      add(addressKey(c.heldAddress), { claimant: c, ghost: true });
  }

  const out = new Map<string, AddressVerdict>();
  for (const [key, group] of groups) {
    const node = nodeByKey.get(key);
    const primaries = group.filter((g) => !g.ghost).map((g) => g.claimant);
    if (node !== undefined) {
      for (const c of primaries) {
        out.set(c.id, {
          ok: false,
          reason: 'NodeAddress',
          message: `spec.address: ${hostOf(c.address)} is an address of Node ${node}; a VirtualIP must not take a node's own address: choose an address no Node uses`,
          others: [node],
        });
      }
      continue;
    }
    if (primaries.length === 0) continue;
    const sorted = [...group].sort((a, b) => olderFirst(a.claimant, b.claimant));
    const owner = sorted[0]!;
    for (const c of primaries) {
      if (c !== owner.claimant || owner.ghost) {
        const o = owner.claimant;
        out.set(
          c.id,
          owner.ghost
            ? {
                ok: false,
                reason: 'AwaitingRelease',
                message: `spec.address: ${hostOf(c.address)} may still be bound for VirtualIP ${o.id}, which moved to ${o.address}; this VirtualIP binds it once that one is released`,
                others: [o.id],
              }
            : {
                ok: false,
                reason: 'DuplicateAddress',
                message: `spec.address: ${hostOf(c.address)} is already the address of VirtualIP ${o.id} (the older one keeps it; an address is held by one VirtualIP only): give this VirtualIP another address, or delete one of the two; it stays unbound until then`,
                others: [o.id],
              },
        );
        continue;
      }
      const stillHeld = group
        .filter((g) => g.claimant !== c && (g.ghost || g.claimant.held))
        .map((g) => g.claimant.id);
      if (stillHeld.length > 0) {
        out.set(c.id, {
          ok: false,
          reason: 'AwaitingRelease',
          message: `spec.address: ${hostOf(c.address)} may still be bound for VirtualIP ${stillHeld.join(', ')}; this VirtualIP (the older one) binds it once that is released`,
          others: stillHeld,
        });
      } else if (c.blocked) {
        const others = primaries.filter((p) => p !== c).map((p) => p.id);
        out.set(c.id, {
          ok: false,
          reason: 'AwaitingController',
          message: `spec.address: ${hostOf(c.address)} was held for another VirtualIP; waiting for the controller to confirm it is released (condition AddressConflict)`,
          others,
        });
      }
    }
  }
  for (const c of claimants) if (!out.has(c.id)) out.set(c.id, OK);
  return out;
}
