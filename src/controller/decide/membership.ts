/**
 * The member set an HACluster's status publishes, one member at a time (docs/protocol.md
 * "Membership changes"). Pure.
 */
import type { Millis } from '../../core/ports.js';
import { WITNESS_ID } from '../../runtime/cluster-config.js';

/** The member set published in an HACluster's status (status.membership). */
export interface PublishedMembership {
  generation: number;
  members: string[];
  /** Members of generation - 1 (absent at generation 1). */
  previous?: string[];
}

export interface MembershipInput {
  published: PublishedMembership | undefined;
  /** The Nodes the member set converges to (ClusterConfig.candidates, docs/adr/0024). */
  candidates: readonly string[];
  /** Highest generation each member was heard advertising (the observer's view). */
  advertised: ReadonlyMap<string, number>;
  /** The controller's witness votes (quorum "witness"): it is always at the published generation. */
  witnessVotes: boolean;
  now: Millis;
  /** When the barrier for the next generation was first seen met (kept by the caller). */
  barrierSince: Millis | undefined;
  /** lease + margin, scaled for clock drift: grants given before the barrier have expired after it. */
  waitMs: Millis;
  /** How soon to look again while a majority has not moved. */
  pollMs: Millis;
}

export interface MembershipDecision {
  /** What status.membership should say (unchanged when nothing may be published). */
  membership: PublishedMembership | undefined;
  barrierSince: Millis | undefined;
  /** Look again after this long (a change is pending), or undefined. */
  retryInMs: Millis | undefined;
  reason: string;
}

/**
 * The next member set to publish (docs/protocol.md "Membership changes"): generation 1 is the
 * candidate set (the selected Nodes, docs/adr/0024); each later generation adds or removes one member (additions first), and
 * generation g+1 is published only when a majority of the voters of g-1 advertise g (they
 * grant no member still at g-1) and lease + margin has passed since (grants they gave before
 * have expired). Then at most two adjacent generations can count quorums, and majorities of
 * two voter sets one member apart intersect. Never publishes an empty set.
 */
export function decideMembership(input: MembershipInput): MembershipDecision {
  const { published, candidates } = input;
  const keep = (reason: string, barrierSince?: Millis, retryInMs?: Millis): MembershipDecision => ({
    membership: published,
    barrierSince,
    retryInMs,
    reason,
  });
  if (!published) {
    if (candidates.length === 0)
      return keep('no Node matches spec.nodeSelector (an empty selector: no Node runs the agent)');
    return {
      membership: { generation: 1, members: [...candidates].sort() },
      barrierSince: undefined,
      retryInMs: undefined,
      reason: 'first member set',
    };
  }
  const cur = published.members;
  const add = [...candidates].sort().find((id) => !cur.includes(id));
  const remove = [...cur].sort().find((id) => !candidates.includes(id));
  if (add === undefined && remove === undefined) return keep('member set matches the selected Nodes');
  if (add === undefined && cur.length <= 1) return keep('the last member is not removed');
  const g = published.generation;
  if (published.previous) {
    const voters = [...published.previous, ...(input.witnessVotes ? [WITNESS_ID] : [])];
    const moved = voters.filter((id) => id === WITNESS_ID || (input.advertised.get(id) ?? 0) >= g).length;
    const need = Math.floor(voters.length / 2) + 1;
    if (moved < need)
      return keep(
        `waiting for ${need} of generation ${g - 1}'s ${voters.length} voters to run generation ${g} (${moved} do)`,
        undefined,
        input.pollMs,
      );
    const since = input.barrierSince ?? input.now;
    if (input.now < since + input.waitMs)
      return keep(
        `waiting lease + margin after generation ${g - 1}'s majority moved`,
        since,
        since + input.waitMs - input.now,
      );
  }
  const members = add !== undefined ? [...cur, add].sort() : cur.filter((id) => id !== remove);
  return {
    membership: { generation: g + 1, members, previous: [...cur] },
    barrierSince: undefined,
    retryInMs: input.pollMs,
    reason: add !== undefined ? `${add} joins` : `${remove} leaves`,
  };
}
