/**
 * Random schedules: cluster shape, VIPs, clocks and a burst of faults, all from one seed.
 */
import type { QuorumMode, VipSpec } from '../../src/core/member.js';
import type { MemberId } from '../../src/core/messages.js';
import { deriveTiming, PROFILES, type ProfileName } from '../../src/core/timing.js';
import { Rng } from './rng.js';
import { CONTROLLER, type Fault, type MembershipPlan, type Scenario } from './world.js';

export interface ScheduleOptions {
  profile: ProfileName;
  /** Members: fixed, or random in [2, 9]. */
  members?: number;
  /** Upper bound on the number of VIPs (random in [1, maxVips]). */
  maxVips?: number;
  /** Quorum mode; default: witness for even sizes (sometimes majority), majority for odd. */
  quorum?: QuorumMode;
  /** Fault phase length (ms); default scales with deadMs. */
  faultMs?: number;
  /** Only these fault kinds (e.g. ['crash'] to measure clean failovers). */
  faultKinds?: readonly string[];
  /** Largest forward clock step the design tolerates (added to the margin). */
  maxStepMs?: number;
  /**
   * Chance (0..1) that a schedule has VirtualIPs sharing an address: 1 to 3 more VIP names,
   * each on the address of an existing one (prefix may differ), created before or after it.
   * Default 0.
   */
  duplicateAddresses?: number;
  /**
   * Operator moves (heartline.dev/move-to): static targets on some VIPs and move / clear
   * events during the faults. `true` in every schedule, a number (0..1) in that fraction of
   * the schedules (drawn from a stream of its own, so a schedule without moves is the same as
   * with the option off). Default off.
   */
  moves?: boolean | number;
  /** The replaying adversary (Scenario.replayer): always, never; default in 40 % of schedules. */
  replayer?: boolean;
  /**
   * Chance (0..1) that a schedule changes the member set while it runs (Scenario.membership:
   * nodes added, removed, relabelled, some members learning late). Default 0 (the CLI: 0.25).
   */
  membershipChanges?: number;
  /**
   * Fence delay budget the members' timing accounts for (Timing.fenceDelayMs); default the
   * profile's (defaultFenceDelayMs). 0 leaves fence lateness out of the margin.
   */
  fenceBudgetMs?: number;
  /** Largest fence delay the world injects (Scenario.fenceDelayMs); default the budget. */
  injectFenceDelayMs?: number;
}

export const SIM_MAX_STEP_MS = 20;

/** The L1 bound the simulator checks, after the network heals (see docs/protocol.md). */
export function l1Bound(t: { deadMs: number; intervalMs: number; quietMs: number }): number {
  return t.deadMs + 2 * t.intervalMs + l1Slack(t);
}

/** Documented slack: one more lease wait for a voter restarted at heal time, plus delays. */
export function l1Slack(t: { intervalMs: number; quietMs: number }): number {
  return t.quietMs + t.intervalMs;
}

/**
 * Whether schedule `seed` has operator moves: always for `true`, never for `false` or absent,
 * for a fraction `p` by a draw of its own stream (nothing else in the schedule depends on it).
 */
export function hasMoves(seed: number, moves: boolean | number | undefined): boolean {
  if (typeof moves !== 'number') return moves === true;
  return moves >= 1 || (moves > 0 && new Rng(seed ^ 0x6d6f7673).chance(moves));
}

export function makeScenario(seed: number, o: ScheduleOptions): Scenario {
  const rng = new Rng(seed);
  const maxStepMs = o.maxStepMs ?? SIM_MAX_STEP_MS;
  const timing = deriveTiming({
    ...PROFILES[o.profile],
    maxForwardStepMs: maxStepMs,
    ...(o.fenceBudgetMs !== undefined ? { fenceDelayMs: o.fenceBudgetMs } : {}),
  });
  const n = o.members ?? rng.pick([2, 2, 3, 3, 3, 4, 5, 5, 6, 7, 8, 9]);
  const members: MemberId[] = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const quorum: QuorumMode =
    o.quorum ?? (n % 2 === 0 ? (n === 2 || rng.chance(0.7) ? 'witness' : 'majority') : 'majority');
  const witness = quorum === 'witness';
  const nv = rng.int(1, Math.max(1, o.maxVips ?? 50));
  const vips: VipSpec[] = [];
  for (let i = 0; i < nv; i++) {
    const pref = rng.shuffle([...members]).slice(0, rng.int(0, Math.min(3, n)));
    const eligible = rng.chance(0.25) ? rng.shuffle([...members]).slice(0, rng.int(1, n)) : undefined;
    vips.push({ vip: `default/vip-${i + 1}`, preferredNodes: pref, ...(eligible ? { eligible } : {}) });
  }
  // Operator moves (heartline.dev/move-to, docs/adr/0031) on some VIPs, drawn from their own
  // generator so that the schedules of existing seeds stay as they were.
  const moves = new Rng(seed ^ 0x6d6f7665);
  const withMoves = hasMoves(seed, o.moves);
  if (withMoves) for (const v of vips) if (moves.chance(0.15)) v.moveTo = moves.pick(members);
  const clocks: Scenario['clocks'] = {};
  for (const id of [...members, ...(witness ? [CONTROLLER] : [])]) {
    clocks[id] = {
      rate: 1 + rng.range(-timing.driftRate, timing.driftRate) * 0.999,
      offset: rng.range(0, 1e6),
    };
  }

  const { deadMs, intervalMs, initDeadMs, quietMs } = timing;
  const warm = Math.max(initDeadMs, quietMs) + 4 * intervalMs;
  const faultMs = o.faultMs ?? 4 * deadMs + rng.int(0, 2 * deadMs);
  const healAt = warm + faultMs;
  const bound = l1Bound(timing);
  const endAt = healAt + bound + 2 * deadMs;
  const all = [...members, ...(witness ? [CONTROLLER] : [])];
  const faults: Fault[] = [];
  const nf = rng.int(1, 6);
  const at = () => warm + rng.range(0, faultMs);
  for (let i = 0; i < nf; i++) {
    const t = at();
    const kinds = [
      'crash',
      'crash',
      'crash',
      'pause',
      'pause',
      'partition',
      'partition',
      'oneway',
      'flap',
      'net',
      'step',
      'standby',
      'unhealthy',
      'assign', // retired: draws, makes no fault (see below)
    ] as const;
    const allowed = o.faultKinds ? kinds.filter((k) => o.faultKinds?.includes(k)) : kinds;
    const kind = rng.pick(allowed.length ? allowed : kinds);
    const node = rng.pick(all);
    const member = rng.pick(members);
    switch (kind) {
      case 'crash': {
        const restart = rng.chance(0.6) ? t + rng.range(0.2, 3) * deadMs : null;
        faults.push({ at: t, kind, node, fenceKilled: rng.chance(0.15), restartAt: restart });
        break;
      }
      case 'pause':
        // Often longer than the lease: the member resumes with stale state.
        faults.push({ at: t, kind, node, forMs: rng.range(0.2, 3) * deadMs });
        break;
      case 'partition': {
        const shuffled = rng.shuffle([...all]);
        const cut = rng.int(1, Math.max(1, shuffled.length - 1));
        faults.push({
          at: t,
          kind,
          groups: [shuffled.slice(0, cut), shuffled.slice(cut)],
          untilMs: t + rng.range(0.3, 4) * deadMs,
        });
        break;
      }
      case 'oneway': {
        const to = rng.pick(all.filter((x) => x !== node));
        if (to) faults.push({ at: t, kind, from: node, to, untilMs: t + rng.range(0.3, 4) * deadMs });
        break;
      }
      case 'flap': {
        const b = rng.pick(all.filter((x) => x !== node));
        if (b)
          faults.push({
            at: t,
            kind,
            a: node,
            b,
            periodMs: rng.range(0.2, 2) * intervalMs,
            untilMs: t + rng.range(1, 4) * deadMs,
          });
        break;
      }
      case 'net':
        faults.push({
          at: t,
          kind,
          loss: rng.range(0.02, 0.4),
          dup: rng.range(0, 0.2),
          spikeMs: rng.chance(0.5) ? rng.range(0.2, 1.5) * intervalMs : 0,
          untilMs: t + rng.range(0.5, 3) * deadMs,
        });
        break;
      case 'step':
        faults.push({ at: t, kind, node, ms: rng.int(1, maxStepMs) });
        break;
      case 'standby':
        faults.push({ at: t, kind, node: member, on: true });
        if (rng.chance(0.6))
          faults.push({ at: t + rng.range(0.5, 3) * deadMs, kind, node: member, on: false });
        break;
      case 'unhealthy': {
        const vip = rng.pick(vips).vip;
        faults.push({ at: t, kind, node: member, vip, on: true });
        if (rng.chance(0.6))
          faults.push({ at: t + rng.range(0.5, 3) * deadMs, kind, node: member, vip, on: false });
        break;
      }
      case 'assign':
        // Retired with the controller's Assignment message (docs/adr/0033): no fault. The slot
        // and its draw stay, so every seed keeps the rest of its schedule.
        rng.pick(vips);
        break;
    }
  }
  // Graceful stops come from their own stream so that the rest of each seed's schedule is
  // unchanged by them.
  const rs = new Rng(seed ^ 0x5a0f5a0f);
  const stopAllowed = !o.faultKinds || o.faultKinds.includes('stop');
  if (stopAllowed && (o.faultKinds?.length === 1 || rs.chance(0.3))) {
    const t = warm + rs.range(0, faultMs);
    faults.push({
      at: t,
      kind: 'stop',
      node: rs.pick(members),
      restartAt: rs.chance(0.5) ? t + rs.range(0.2, 3) * deadMs : null,
    });
  }
  // Operator moves during the faults (kubectl heartline move / --clear), from their own stream
  // too; each member's watch sees the change after its own lag.
  const rm = new Rng(seed ^ 0x6d766d76);
  const moveAllowed = withMoves && (!o.faultKinds || o.faultKinds.includes('move'));
  if (moveAllowed && (o.faultKinds?.length === 1 || rm.chance(0.4))) {
    for (let i = rm.int(1, 3); i > 0; i--) {
      const lagMs: Record<MemberId, number> = {};
      for (const id of members) lagMs[id] = rm.chance(0.3) ? rm.range(0, deadMs) : rm.range(0, 20);
      faults.push({
        at: warm + rm.range(0, faultMs),
        kind: 'move',
        vip: rm.pick(vips).vip,
        to: rm.chance(0.8) ? rm.pick(members) : null,
        lagMs,
      });
    }
  }
  faults.sort((a, b) => a.at - b.at);
  // Duplicate addresses, from their own stream too.
  const ra = new Rng(seed ^ 0x0add0add);
  let addresses: Record<string, string> | undefined;
  if ((o.duplicateAddresses ?? 0) > 0 && ra.chance(o.duplicateAddresses ?? 0)) {
    addresses = {};
    vips.forEach((v, i) => (addresses![v.vip] = `198.18.${Math.floor(i / 200)}.${100 + (i % 200)}/24`));
    const nd = ra.int(1, 3);
    for (let d = 0; d < nd; d++) {
      const twin = ra.pick(vips);
      const pref = ra.shuffle([...members]).slice(0, ra.int(0, Math.min(3, n)));
      const dup: VipSpec = { vip: `default/dup-${d + 1}`, preferredNodes: pref };
      addresses[dup.vip] = `${addresses[twin.vip]!.split('/')[0]}/${ra.pick([24, 32, 25])}`;
      // Created before or after its twin: either may be the older one.
      vips.splice(ra.int(0, vips.length), 0, dup);
    }
  }
  // Also from its own stream, for the same reason.
  const replayer = o.replayer ?? new Rng(seed ^ 0x2e91a7c3).chance(0.4);
  const membership = membershipPlan(new Rng(seed ^ 0x6d656d62), o, members, vips, warm, healAt, deadMs);
  return {
    seed,
    timing,
    members,
    witness,
    quorum,
    vips,
    ...(addresses ? { addresses } : {}),
    autoFailback: rng.chance(0.3),
    clocks,
    faults,
    healAt,
    endAt,
    l1BoundMs: bound,
    fenceDelayMs: o.injectFenceDelayMs ?? timing.fenceDelayMs,
    replayer,
    ...(membership ? { membership } : {}),
  };
}

/**
 * Membership changes for one schedule: one or two spare nodes, and one to four label changes
 * during the fault phase (add a spare, remove a member, which may be a VIP's preferred holder,
 * or relabel: remove and add back). Each node learns a published generation within 20 ms, but
 * in half of the schedules one node is a laggard (0.5 to 3 deadMs late).
 */
function membershipPlan(
  rng: Rng,
  o: ScheduleOptions,
  members: MemberId[],
  vips: VipSpec[],
  warm: number,
  healAt: number,
  deadMs: number,
): MembershipPlan | undefined {
  if (!rng.chance(o.membershipChanges ?? 0)) return undefined;
  const n = members.length;
  const spares = Array.from({ length: rng.int(1, 2) }, (_, i) => `n${n + i + 1}`);
  const universe = [...members, ...spares];
  const labelled = new Set(members);
  const changes: MembershipPlan['changes'] = [];
  const count = rng.int(1, 4);
  for (let i = 0; i < count; i++) {
    const at = warm + rng.range(0, Math.max(1, healAt - warm - deadMs));
    const outside = universe.filter((id) => !labelled.has(id));
    const kind = rng.pick(['add', 'add', 'remove', 'remove-holder', 'relabel'] as const);
    if (kind === 'add' && outside.length > 0) {
      const node = rng.pick(outside);
      labelled.add(node);
      changes.push({ at, op: 'add', node });
      continue;
    }
    if (labelled.size <= 2) continue;
    const inside = [...labelled];
    const holder = vips[0]?.preferredNodes[0];
    const node = kind === 'remove-holder' && holder && labelled.has(holder) ? holder : rng.pick(inside);
    labelled.delete(node);
    changes.push({ at, op: 'remove', node });
    if (kind === 'relabel') {
      labelled.add(node);
      changes.push({ at: at + rng.range(0.3, 2) * deadMs, op: 'add', node });
    }
  }
  if (changes.length === 0) return undefined;
  const lagMs: Record<MemberId, number> = {};
  for (const id of universe) lagMs[id] = rng.range(0, 20);
  if (rng.chance(0.5)) lagMs[rng.pick(universe)] = rng.range(0.5, 3) * deadMs;
  return { universe, changes: changes.sort((a, b) => a.at - b.at), lagMs };
}

/** How the preferred member leaves in a failback schedule. */
export type FailbackShape = 'crash' | 'partition';

/**
 * Failback schedules: autoFailback on, every VIP prefers one member first (no nodeSelector),
 * and that member is the only fault: it crashes 3 deadMs before the heal and restarts at the
 * heal ('crash'), or it is cut off from every other member for 4 deadMs until the heal
 * ('partition'). Its VIPs fail over, then come back to it after the heal, where the world's
 * PLANNED and HELD checks apply.
 */
export function failbackScenario(shape: FailbackShape): (sc: Scenario) => MemberId {
  return (sc) => {
    const node = sc.members[sc.seed % sc.members.length] as MemberId;
    const { deadMs } = sc.timing;
    sc.autoFailback = true;
    sc.vips = sc.vips.map((v) => ({
      vip: v.vip,
      preferredNodes: [node, ...v.preferredNodes.filter((m) => m !== node)],
    }));
    if (shape === 'crash') {
      sc.faults = [{ at: sc.healAt - 3 * deadMs, kind: 'crash', node, fenceKilled: false, restartAt: null }];
    } else {
      const others = [...sc.members.filter((m) => m !== node), ...(sc.witness ? [CONTROLLER] : [])];
      sc.faults = [
        { at: sc.healAt - 4 * deadMs, kind: 'partition', groups: [[node], others], untilMs: sc.healAt },
      ];
    }
    return node;
  };
}
