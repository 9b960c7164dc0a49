/**
 * Who should hold a VIP: a pure, deterministic function, run by every member on its own
 * view (so failover needs no controller) and by the controller. The reason string goes to
 * status, logs and Events.
 */
import type { Epoch, MemberId, VipId } from './messages.js';

export interface ElectionVip {
  vip: VipId;
  /** Ordered preference; members not listed rank after all listed ones. */
  preferredNodes: readonly MemberId[];
  /** Members allowed to hold it (from the VIP's nodeSelector); undefined = every member. */
  eligible?: readonly MemberId[] | undefined;
  /**
   * An operator's move (`kubectl heartline move`, docs/adr/0031): while this member is
   * usable it ranks first and holds the VIP whatever stickiness says; the holder hands the
   * VIP over by the planned path. Unusable: ignored (the ordinary ranking applies).
   */
  moveTo?: MemberId | undefined;
}

/** The preference order with the move target (if any) first. */
function preferenceOf(spec: ElectionVip): readonly MemberId[] {
  const t = spec.moveTo;
  if (t === undefined) return spec.preferredNodes;
  return [t, ...spec.preferredNodes.filter((id) => id !== t)];
}

export interface ElectionMember {
  id: MemberId;
  /** Heard within deadMs (alive or warn). */
  alive: boolean;
  /** Its Resources for this VIP are healthy. */
  healthy: boolean;
  /** Drained / standby: must not be given VIPs. */
  standby: boolean;
  /** VIPs it holds other than this one. */
  load: number;
}

export interface ElectionInput {
  spec: ElectionVip;
  members: readonly ElectionMember[];
  current: { holder: MemberId | null; epoch: Epoch };
  autoFailback: boolean;
  /**
   * Bounded load (see {@link loadCap}): members already holding this many other VIPs rank
   * after every member below it. Undefined = no bound (pure hash after preference).
   */
  loadCap?: number | undefined;
}

/** Slack of the bounded load: a member may hold up to 25 % more than an even share. */
export const LOAD_SLACK = 1.25;

/**
 * The load bound for `vipCount` VIPs over `usable` members: `ceil(1.25 · V / M)`.
 *
 * Placement is rendezvous hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
 * "Consistent Hashing with Bounded Loads", 2016): after preference, members rank by
 * hash(vip, member), and only a member at the bound steps back. Ranking by exact load
 * (the earlier rule) made every member's choice depend on holdings still propagating, so
 * members with slightly different views elected different candidates for the same VIP and
 * their split votes kept each other from a quorum (docs/adr/0005). The hash does not
 * depend on anyone's view; the bound only matters near it.
 */
export function loadCap(vipCount: number, usable: number): number {
  if (vipCount <= 0 || usable <= 0) return Infinity;
  return Math.max(1, Math.ceil((LOAD_SLACK * vipCount) / usable));
}

export interface ElectionResult {
  holder: MemberId | null;
  reason: string;
}

/** FNV-1a 32-bit of a string: the deterministic tie-break. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * murmur3's 32-bit finalizer. FNV-1a alone avalanches poorly on ids that differ in their last
 * characters (node-1, node-2, ...): as a rendezvous hash over 100 members it gave 0 to 43
 * VIPs per member for 1000 VIPs; mixed, 4 to 17 (a fair hash: 4 to 19).
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Why a member cannot hold the VIP, or undefined if it can. */
function unusable(m: ElectionMember, eligible: ReadonlySet<MemberId> | undefined): string | undefined {
  if (eligible && !eligible.has(m.id)) return 'not eligible (nodeSelector, eligibleNodes)';
  if (!m.alive) return 'not alive';
  if (m.standby) return 'in standby';
  if (!m.healthy) return 'Resources unhealthy';
  return undefined;
}

const hashMemo = new Map<VipId, Map<MemberId, number>>();
let memoSize = 0;
function tieBreak(vip: VipId, member: MemberId): number {
  let perVip = hashMemo.get(vip);
  if (perVip === undefined) {
    if (memoSize > 100_000) {
      hashMemo.clear();
      memoSize = 0;
    }
    perVip = new Map();
    hashMemo.set(vip, perVip);
  }
  let h = perVip.get(member);
  if (h === undefined) {
    h = mix32(fnv1a(`${vip}\u0000${member}`));
    perVip.set(member, h);
    memoSize++;
  }
  return h;
}

/**
 * Ranks usable members: preferred order first, then members below the load bound before
 * those at it, then hash of (vip, member), by sorting. The definition of the order: elect()
 * and rankIndex() walk it without sorting, and the tests check them against this.
 */
export function rank(
  spec: ElectionVip,
  members: readonly ElectionMember[],
  cap: number = Infinity,
): ElectionMember[] {
  const pref = new Map(preferenceOf(spec).map((id, i) => [id, i] as const));
  // Sort keys computed once per member, not once per comparison.
  const keyed = members.map((m) => ({
    m,
    score: pref.get(m.id) ?? Number.MAX_SAFE_INTEGER,
    full: m.load >= cap ? 1 : 0,
    hash: tieBreak(spec.vip, m.id),
  }));
  keyed.sort(
    (a, b) =>
      a.score - b.score ||
      a.full - b.full ||
      a.hash - b.hash ||
      (a.m.id < b.m.id ? -1 : a.m.id > b.m.id ? 1 : 0),
  );
  return keyed.map((k) => k.m);
}

/**
 * Indexes of `members` in rendezvous order for `vip`: by hash of (vip, member), then id.
 * Computed once per VIP and member list (the order never changes while the members do not).
 */
const orderMemo = new Map<VipId, { ids: MemberId[]; order: Int32Array }>();
export function hashOrder(vip: VipId, members: readonly { id: MemberId }[]): Int32Array {
  const memo = orderMemo.get(vip);
  if (memo && memo.ids.length === members.length && members.every((m, i) => m.id === memo.ids[i])) {
    return memo.order;
  }
  const keyed = members.map((m, i) => ({ i, id: m.id, hash: tieBreak(vip, m.id) }));
  keyed.sort((a, b) => a.hash - b.hash || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const order = Int32Array.from(keyed, (k) => k.i);
  if (orderMemo.size > 20_000) orderMemo.clear();
  orderMemo.set(vip, { ids: members.map((m) => m.id), order });
  return order;
}

const eligibleMemo = new WeakMap<readonly MemberId[], ReadonlySet<MemberId>>();
function eligibleSet(list: readonly MemberId[] | undefined): ReadonlySet<MemberId> | undefined {
  if (!list) return undefined;
  let set = eligibleMemo.get(list);
  if (!set) {
    set = new Set(list);
    eligibleMemo.set(list, set);
  }
  return set;
}

/**
 * The first member of {@link rank}'s order without sorting: the first usable preferred
 * member, else the first usable member in hash order below the bound, else the first usable
 * one at it. Also counts the usable members at the bound that the hash placed before it.
 */
function pickBest(
  spec: ElectionVip,
  members: readonly ElectionMember[],
  cap: number,
  eligible: ReadonlySet<MemberId> | undefined,
): { best: ElectionMember | undefined; skipped: number } {
  const pref = preferenceOf(spec);
  for (const id of pref) {
    const m = members.find((x) => x.id === id);
    if (m && unusable(m, eligible) === undefined) return { best: m, skipped: 0 };
  }
  let firstFull: ElectionMember | undefined;
  let skipped = 0;
  for (const i of hashOrder(spec.vip, members)) {
    const m = members[i] as ElectionMember;
    if ((pref.length > 0 && pref.includes(m.id)) || unusable(m, eligible) !== undefined) continue;
    if (m.load < cap) return { best: m, skipped };
    firstFull ??= m;
    skipped++;
  }
  return { best: firstFull, skipped: 0 };
}

/**
 * Position of `id` in {@link rank}'s order of the usable members (0 = first), or -1 if it is
 * not usable; without sorting (preferred in order, then below the bound by hash, then at it).
 */
export function rankIndex(
  spec: ElectionVip,
  members: readonly ElectionMember[],
  cap: number,
  id: MemberId,
): number {
  const eligible = eligibleSet(spec.eligible);
  let k = 0;
  const pref = preferenceOf(spec);
  for (const p of pref) {
    const m = members.find((x) => x.id === p);
    if (!m || unusable(m, eligible) !== undefined) continue;
    if (m.id === id) return k;
    k++;
  }
  const order = hashOrder(spec.vip, members);
  for (const full of [false, true]) {
    for (const i of order) {
      const m = members[i] as ElectionMember;
      if (m.load >= cap !== full) continue;
      if ((pref.length > 0 && pref.includes(m.id)) || unusable(m, eligible) !== undefined) continue;
      if (m.id === id) return k;
      k++;
    }
  }
  return -1;
}

export function elect(input: ElectionInput): ElectionResult {
  const { spec, members, current, autoFailback } = input;
  const cap = input.loadCap ?? Infinity;
  const eligible = eligibleSet(spec.eligible);
  const byId = (id: MemberId) => members.find((m) => m.id === id);

  const { best, skipped } = pickBest(spec, members, cap, eligible);
  if (!best) {
    return { holder: null, reason: 'no alive, healthy, eligible member outside standby' };
  }
  const cur = current.holder ? byId(current.holder) : undefined;
  const curWhy = current.holder ? (cur ? unusable(cur, eligible) : 'not a member') : undefined;
  if (cur && curWhy === undefined) {
    if (cur.id === best.id) return { holder: cur.id, reason: `${cur.id} holds it and ranks first` };
    // An operator's move overrides stickiness and failback: the holder hands it over (planned).
    if (best.id === spec.moveTo)
      return { holder: best.id, reason: `moved to ${best.id} from ${cur.id} (heartline.dev/move-to)` };
    if (!autoFailback)
      return { holder: cur.id, reason: `${cur.id} holds it and is healthy (sticky, autoFailback off)` };
    const pref = spec.preferredNodes;
    const bi = pref.indexOf(best.id);
    const ci = pref.indexOf(cur.id);
    if (bi >= 0 && (ci < 0 || bi < ci)) {
      return { holder: best.id, reason: `fail back to preferred ${best.id} from ${cur.id} (autoFailback)` };
    }
    return { holder: cur.id, reason: `${cur.id} holds it; no more preferred member is usable` };
  }
  const lost = current.holder ? `holder ${current.holder} is ${curWhy}; ` : '';
  const pi = spec.preferredNodes.indexOf(best.id);
  const why =
    best.id === spec.moveTo
      ? 'move target (heartline.dev/move-to)'
      : pi >= 0
        ? `preferred #${pi + 1}`
        : skipped > 0
          ? `hash, ${skipped} member${skipped === 1 ? '' : 's'} at the load bound (${cap} VIPs) skipped`
          : 'hash';
  return { holder: best.id, reason: `${lost}${best.id} elected: ${why}` };
}
