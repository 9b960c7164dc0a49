/**
 * Protocol messages exchanged by members (agents and the controller's witness) over the
 * heartbeat channel. These are the objects the wire codec (`src/core/wire`) encodes; the
 * core never sees bytes. Field types are chosen to be wire-friendly:
 *
 * - every number is an unsigned 32-bit integer unless noted (epochs, sequence numbers,
 *   incarnations, holdings versions), or a small code (uint8);
 * - members and VIPs are string ids in the core (MemberId = node name, VipId =
 *   "namespace/name"); the wire maps them to 32-bit tags through a table built from the
 *   configuration, so per-entry data stays small;
 * - lists are bounded by {@link LIMITS} so that every message fits in one 1200-byte
 *   datagram whatever the number of members and VIPs (heartbeats are per peer with one
 *   echo each; holdings are paged across heartbeats).
 *
 * Every message carries the sender, its incarnation and a sequence number. Sequence numbers
 * are per sender and per incarnation, shared by all message kinds, strictly increasing; the
 * wire drops replays by (incarnation, seq). A new incarnation is a new life (a restart),
 * not a replay: it must be strictly greater than the previous one.
 */

/** A member: the Kubernetes node name (or the controller witness's id). */
export type MemberId = string;
/** A VIP: "namespace/name" of its VirtualIP object. */
export type VipId = string;
/** Epoch of a VIP's holdership (uint32). Only grows. 0 means "never held". */
export type Epoch = number;
/** Per-sender, per-incarnation message sequence number (uint32, starts at 1). */
export type Seq = number;
/** Life number of a sender (uint32). Grows on every restart. */
export type Incarnation = number;
/**
 * Number of a member set published by the controller (uint32, starts at 1; 0 means none
 * published). Consecutive generations differ by one voter.
 */
export type Generation = number;
/** Version of a member's holdings set (uint32, per incarnation, starts at 1, grows on change). */
export type HoldingsVersion = number;

/** Bounds on list lengths, so every message fits in {@link LIMITS.maxDatagramBytes}. */
export const LIMITS = {
  /** Never fragmented. */
  maxDatagramBytes: 1200,
  /**
   * Members in a cluster (witness included). Not a datagram bound (heartbeats are per peer):
   * the cost of a member is M·(M-1) heartbeats per interval cluster-wide (256 members at
   * 5 Hz: 1,275 sent and received per member per second).
   */
  maxMembers: 256,
  /** Holding entries per heartbeat page (8 bytes each on the wire: tag + epoch). */
  holdingsPerPage: 32,
  /** Pages in one holdings version (so at most 32 * 255 VIPs per member). */
  maxHoldingsPages: 255,
  /** Echo entries per heartbeat (16 bytes each on the wire). */
  echoesPerHeartbeat: 16,
  /** Conflict entries per heartbeat (16 bytes each). */
  conflictsPerHeartbeat: 8,
  /** Recent releases repeated per heartbeat (8 bytes each). */
  releasesPerHeartbeat: 8,
  /** VIPs this member reports unhealthy per heartbeat (4 bytes each). */
  unhealthyPerHeartbeat: 16,
  /** VIPs per takeover request (17 bytes each) and per ack (21 bytes each). */
  takeoversPerMessage: 32,
  /** VIPs per Release (the first, then up to 63 more in `also`, 8 bytes each; docs/adr/0041). */
  releasesPerMessage: 64,
} as const;

/** Fields every message carries. */
export interface Header {
  /** Cluster id (HACluster uid or namespace/name); messages for another cluster are dropped. */
  clusterId: string;
  /** Sender. */
  from: MemberId;
  /** Sender's life number. */
  incarnation: Incarnation;
  /** Sender's sequence number for this message. */
  seq: Seq;
}

/** One VIP a member holds, at the epoch it acquired it. */
export interface HoldingEntry {
  vip: VipId;
  epoch: Epoch;
}

/**
 * One page of the sender's holdings set at `version`. The full set is the union of pages
 * `0 .. pages-1` of the same version; a receiver knows the set only once it has all pages
 * of one version. An empty set is one page with no entries.
 */
export interface HoldingsPage {
  version: HoldingsVersion;
  /** 0-based page index (uint8). */
  page: number;
  /** Number of pages in this version (uint8, >= 1). */
  pages: number;
  entries: HoldingEntry[];
}

/**
 * "I heard your message (incarnation, seq), and at that moment I knew your holdings at
 * `holdingsVersion` (0 = none)". An echo is a grant: the addressee may count it, for every
 * VIP in that holdings version not listed in a conflict from the same sender, until
 * sendTime(seq) + lease on its own clock.
 */
export interface Echo {
  member: MemberId;
  incarnation: Incarnation;
  seq: Seq;
  holdingsVersion: HoldingsVersion;
}

/**
 * "You (member) claim `vip` but I know a newer holdership: `epoch` held by `holder` (null:
 * released or unknown holder)". The addressee gets no grant from the sender for that VIP
 * and must give it up.
 */
export interface Conflict {
  member: MemberId;
  vip: VipId;
  epoch: Epoch;
  holder: MemberId | null;
}

/** Heartbeat: liveness, the sender's holdings, echoes (grants) and conflicts. */
export interface Heartbeat extends Header {
  kind: 'heartbeat';
  /** The sender asks not to be given VIPs (drain / standby). */
  standby: boolean;
  /** The sender is a witness: it votes, never holds. */
  witness: boolean;
  /**
   * The sender restarted recently and cannot take a VIP yet: its quiet period as a voter
   * runs, or it has not yet heard every peer's complete holdings (nor declared it dead).
   * A holder hands a VIP over (a planned move, e.g. auto failback) only to a member that is
   * not settling (docs/adr/0014). Absent means false.
   */
  settling?: boolean;
  /**
   * The sender's membership generation (the controller's numbered member sets, see
   * docs/protocol.md "Membership changes"): a voter at a later generation grants it nothing.
   * Absent means 0 (no generation published).
   */
  generation?: Generation;
  /** VIPs whose Resources are failing on the sender (it must not be elected for them). */
  unhealthy: VipId[];
  holdings: HoldingsPage;
  /** Recently released holdings, repeated for a few intervals because datagrams get lost. */
  releases: HoldingEntry[];
  echoes: Echo[];
  conflicts: Conflict[];
}

/** Why a takeover is being asked for (uint8). */
export const TakeoverCause = {
  /** The previous holder was declared dead. */
  HolderDead: 1,
  /** The previous holder released it (planned move). */
  Released: 2,
  /** Nobody held it. */
  Unheld: 3,
  // 4 is retired ({@link RETIRED_TAKEOVER_CAUSES}): never reuse it.
  /** The holder renews at a higher epoch (e.g. after a conflict it did not lose). */
  Renew: 5,
} as const;
export type TakeoverCause = (typeof TakeoverCause)[keyof typeof TakeoverCause];

/**
 * Causes no member sends any more. A takeover request that carries one (from a peer of an
 * older version, during a rolling update) still decodes; the numbers are never reused.
 * 4 was "the controller assigned it", for the Assignment message (removed, docs/adr/0033).
 */
export const RETIRED_TAKEOVER_CAUSES = [4] as const;
export type RetiredTakeoverCause = (typeof RETIRED_TAKEOVER_CAUSES)[number];

/** One VIP a candidate asks for. */
export interface TakeoverEntry {
  vip: VipId;
  epoch: Epoch;
  /** Holder the candidate replaces, as it knows it (null: none). */
  previousHolder: MemberId | null;
  previousEpoch: Epoch;
  /**
   * Why the candidate asks. Received from an older peer it may be a retired cause
   * ({@link RETIRED_TAKEOVER_CAUSES}); no receiver acts on the cause (it is for the
   * candidate's own logs and metrics), and none is ever sent.
   */
  cause: TakeoverCause | RetiredTakeoverCause;
}

/**
 * A candidate asks a voter to ack it as holder of each listed VIP at the listed epoch
 * (1..{@link LIMITS.takeoversPerMessage} entries: a member taking many VIPs at once, at
 * start-up or after a peer died, asks for them in a few datagrams per voter, not one per VIP).
 */
export interface TakeoverRequest extends Header {
  kind: 'takeover';
  /** The candidate's membership generation; a voter at a later one refuses it. Absent means 0. */
  generation?: Generation;
  entries: TakeoverEntry[];
}

/** Why a voter refused a takeover (uint8). 0 means granted. */
export const AckRefusal = {
  None: 0,
  /** The voter still promises the current holder (promise not expired, no release). */
  PromiseActive: 1,
  /** The voter already acked another candidate at this epoch. */
  OtherCandidate: 2,
  /** The voter knows an epoch >= the requested one. */
  StaleEpoch: 3,
  /** The voter restarted recently and waits out promises it may have made in its last life. */
  Starting: 4,
  /** The voter is not allowed to vote (not in the configured voter set). */
  NotVoter: 5,
  /** The candidate's membership generation is older than the voter's. */
  OldGeneration: 6,
} as const;
export type AckRefusal = (typeof AckRefusal)[keyof typeof AckRefusal];

/** A voter's answer for one VIP of a takeover request. */
export interface AckEntry {
  vip: VipId;
  epoch: Epoch;
  granted: boolean;
  reason: AckRefusal;
  /** The voter's view after handling the request. */
  knownEpoch: Epoch;
  knownHolder: MemberId | null;
  /** Milliseconds (uint32, voter's clock) until the voter's promise to the known holder ends; 0 if none. */
  promiseRemainingMs: number;
}

/**
 * A voter's answer to a takeover request, one entry per requested VIP, in the request's
 * order. A granted entry is a grant that lasts until sendTime(request) + lease on the
 * candidate's clock. Either way it tells the candidate the newest holdership the voter
 * knows, so the candidate learns higher epochs.
 */
export interface TakeoverAck extends Header {
  kind: 'takeover-ack';
  candidate: MemberId;
  /** Incarnation and seq of the request being answered. */
  requestIncarnation: Incarnation;
  requestSeq: Seq;
  entries: AckEntry[];
}

/**
 * The holder gave `vip` up at `epoch` (address removed, Resources stopped) and will not
 * use that epoch again. `successor` is a hint for planned moves (null: none).
 */
export interface Release extends Header {
  kind: 'release';
  vip: VipId;
  epoch: Epoch;
  successor: MemberId | null;
  /**
   * More VIPs released at their epochs in the same step, each meaning what `vip` and `epoch`
   * do (only with no successor; up to {@link LIMITS.releasesPerMessage} - 1): a member that
   * lets go of many VIPs at once (a candidacy round that failed, a stop, leases that
   * expired) sends one datagram per peer, not one per VIP (docs/adr/0041). Absent: none.
   */
  also?: HoldingEntry[];
}

/** Every (vip, epoch) a Release releases: its own, then `also`. */
export function releasedBy(m: Release): HoldingEntry[] {
  return [{ vip: m.vip, epoch: m.epoch }, ...(m.also ?? [])];
}

export type Message = Heartbeat | TakeoverRequest | TakeoverAck | Release;
export type MessageKind = Message['kind'];

/** Recipient of a message: a member, or every other member ('*', broadcast/multicast). */
export type Destination = MemberId | '*';
