import { z } from 'zod';
import {
  API_VERSION,
  ObjectMetaSchema,
  conditionList,
  interfaceName,
  labelMap,
  objectName,
  observedGeneration,
  timestamp,
} from './meta.js';
import { KEY_ID_MAX, KEY_ID_MIN, KEY_ID_PATTERN } from '../core/wire/auth-secret.js';
import { parseIp, isMulticast } from './net.js';
import { has, isNum, isStr, mapListOf, withRules } from './rules.js';
import { HEARTBEAT_RULES, PROFILES, type HeartbeatRule, type HeartbeatTiming } from '../core/timing.js';

/** Default heartbeat timing (the `default` profile of src/core/timing.ts): safe on any LAN. */
export const DEFAULT_HEARTBEAT = PROFILES.default;

/**
 * The `fast` profile: sub-second failover for quiet, dedicated links. Documented in
 * docs/api.md and measured in bench/; set these four fields to use it.
 */
export const FAST_HEARTBEAT = PROFILES.fast;

const ms = (p: HeartbeatTiming) => `${p.intervalMs}/${p.deadMs}/${p.warnMs}/${p.initDeadMs}`;

/**
 * CEL twin of each of the core's {@link HEARTBEAT_RULES}, by blamed field. The zod side and
 * the agent run the core's `holds` itself; test/integration/api-rules.test.ts checks on a
 * real API server that the two agree.
 */
const HEARTBEAT_CEL: Partial<Record<HeartbeatRule['field'], string>> = {
  deadMs: 'self.deadMs >= 3 * self.intervalMs',
  warnMs: 'self.warnMs > self.intervalMs && self.warnMs < self.deadMs',
  initDeadMs: 'self.initDeadMs >= self.deadMs',
};

function celTwin(rule: HeartbeatRule): string {
  const cel = HEARTBEAT_CEL[rule.field];
  if (!cel) throw new Error(`heartbeat rule on ${rule.field} has no CEL twin in src/api/hacluster.ts`);
  return cel;
}

export const HeartbeatSchema = withRules(
  z
    .strictObject({
      intervalMs: z
        .int()
        .min(10)
        .max(10_000)
        .default(DEFAULT_HEARTBEAT.intervalMs)
        .describe(
          "Milliseconds between heartbeats from every member to every other (Heartbeat's keepalive).",
        ),
      deadMs: z
        .int()
        .min(30)
        .max(120_000)
        .default(DEFAULT_HEARTBEAT.deadMs)
        .describe(
          "Silence after which a member is declared dead and its VIPs fail over (Heartbeat's deadtime).",
        ),
      warnMs: z
        .int()
        .min(10)
        .max(120_000)
        .default(DEFAULT_HEARTBEAT.warnMs)
        .describe("Silence after which a member is reported as late (state warn; Heartbeat's warntime)."),
      initDeadMs: z
        .int()
        .min(30)
        .max(600_000)
        .default(DEFAULT_HEARTBEAT.initDeadMs)
        .describe(
          "How long a starting member waits to hear its peers before it acts (Heartbeat's initdead).",
        ),
    })
    .describe(
      `Heartbeat timing, interval/dead/warn/initDead. Defaults ${ms(PROFILES.default)} ms; the fast profile is ${ms(PROFILES.fast)} ms.`,
    ),
  HEARTBEAT_RULES.map((rule) => ({
    cel: celTwin(rule),
    // zod runs this even when a field is missing or mistyped: no opinion then.
    check: (h: Partial<Record<keyof HeartbeatTiming, unknown>>) =>
      !rule.reads.every((f) => isNum(h[f])) || rule.holds(h as HeartbeatTiming),
    field: [rule.field],
    message: rule.message,
  })),
);

const multicastGroup = withRules(
  z.string().min(2).max(45).describe('Multicast group for mode multicast, e.g. 239.192.0.94 or ff12::694.'),
  [
    {
      cel: "isIP(self) && (cidr('224.0.0.0/4').containsIP(self) || cidr('ff00::/8').containsIP(self))",
      check: (g) => {
        const ip = isStr(g) ? parseIp(g) : undefined;
        return !isStr(g) || (ip !== undefined && isMulticast(ip));
      },
      message:
        'transport.group must be an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address; use e.g. 239.192.0.94',
    },
  ],
);

/** UDP port of Heartbeat (IANA "ha-cluster"). */
export const DEFAULT_TRANSPORT_PORT = 694;

export const TransportModes = ['unicast', 'multicast', 'broadcast'] as const;

export const TransportSchema = withRules(
  z
    .strictObject({
      port: z
        .int()
        .min(1)
        .max(65535)
        .default(DEFAULT_TRANSPORT_PORT)
        .describe('UDP port for heartbeats (694, the Heartbeat port).'),
      mode: z
        .enum(TransportModes)
        .default('unicast')
        .describe(
          'unicast: to each member address; multicast: to transport.group; broadcast: IPv4 subnet broadcast.',
        ),
      interface: interfaceName()
        .optional()
        .describe('Interface to send heartbeats on; default: the one holding the node InternalIP.'),
      group: multicastGroup.optional(),
    })
    .describe('How heartbeats travel (ha.cf ucast / mcast / bcast).'),
  [
    {
      cel: "self.mode != 'multicast' || has(self.group)",
      check: (t) => t.mode !== 'multicast' || has(t, 'group'),
      field: ['group'],
      reason: 'FieldValueRequired',
      message:
        'transport.group is required when transport.mode is multicast; set a multicast group, e.g. 239.192.0.94',
    },
    {
      cel: "self.mode == 'multicast' || !has(self.group)",
      check: (t) => t.mode === 'multicast' || !has(t, 'group'),
      field: ['group'],
      reason: 'FieldValueForbidden',
      message:
        'transport.group is only used with transport.mode multicast; remove group or set mode: multicast',
    },
  ],
);

export const AuthSecretRefSchema = z
  .strictObject({
    name: objectName('authSecretRef.name').describe(
      'Secret in the same namespace; each data key is a key id (1..255) and its value an HMAC key of at least 32 bytes.',
    ),
    activeKeyId: z
      .string()
      .max(63) // long enough that a wrong name is refused by the pattern below, with the fix
      .regex(new RegExp(KEY_ID_PATTERN), {
        error: `authSecretRef.activeKeyId must be a key id, ${KEY_ID_MIN}..${KEY_ID_MAX} without leading zeros, naming a data key of the Secret, e.g. "2"`,
      })
      .describe(
        `Id (${KEY_ID_MIN}..${KEY_ID_MAX}) of the Secret key used to sign; all keys in the Secret are accepted, for rotation without failover.`,
      ),
  })
  .describe("Secret with the HMAC-SHA256 keys that sign heartbeats (Heartbeat's authkeys).");

export const QuorumPolicies = ['majority', 'witness', 'ignore'] as const;

export const HAClusterSpecSchema = z
  .strictObject({
    nodeSelector: labelMap()
      .optional()
      .describe('Nodes whose labels match all of these are members; empty: every node running the agent.'),
    // Parent defaults are complete objects, not {}: the API server checks a default
    // against the CEL rules *before* filling nested defaults, so {} would fail them.
    heartbeat: HeartbeatSchema.prefault({ ...DEFAULT_HEARTBEAT }),
    transport: TransportSchema.prefault({ port: DEFAULT_TRANSPORT_PORT, mode: 'unicast' }),
    authSecretRef: AuthSecretRefSchema,
    quorum: z
      .enum(QuorumPolicies)
      .default('majority')
      .describe(
        'majority: a VIP is held only with grants from more than half of the members; witness: as majority, the controller votes too (use for two nodes); ignore: Heartbeat behaviour, CAN SPLIT BRAIN.',
      ),
    autoFailback: z
      .boolean()
      .default(false)
      .describe(
        'Move a VIP back to a more preferred node when it returns; false keeps it where it is (sticky).',
      ),
  })
  .describe('Desired state of an HACluster: who the members are and how they watch each other.');

export const MemberStates = ['alive', 'warn', 'dead'] as const;

export const HAClusterStatusSchema = z
  .strictObject({
    members: mapListOf(
      z.strictObject({
        name: objectName('members[].name').describe('Node name.'),
        state: z.enum(MemberStates).describe('alive, warn (late past warnMs) or dead (silent past deadMs).'),
        incarnation: z
          .int()
          .min(0)
          .max(Number.MAX_SAFE_INTEGER)
          .describe('Agent start counter; grows every time the agent restarts.'),
        lastSeen: timestamp().optional().describe('When a heartbeat from this member was last received.'),
      }),
      'name',
      128,
    )
      .optional()
      .describe('Members and their liveness as the controller sees them.'),
    quorum: z
      .strictObject({
        state: z.enum(['quorate', 'lost', 'ignored']).describe('quorate, lost, or ignored (quorum: ignore).'),
        have: z.int().min(0).max(1000).describe('Votes currently reachable.'),
        need: z.int().min(0).max(1000).describe('Votes needed for quorum.'),
      })
      .optional(),
    conditions: conditionList().optional(),
    witness: z
      .strictObject({
        address: z.string().min(2).max(45).describe('IP address the controller listens on for heartbeats.'),
        port: z.int().min(1).max(65535).describe('UDP port the controller listens on.'),
      })
      .optional()
      .describe(
        "Where the leader controller's witness listens (written by the controller). Agents add it as a peer: a voter with quorum witness, a non-voting observer otherwise.",
      ),
    observedGeneration: observedGeneration(),
  })
  .describe('Observed state of an HACluster.');

export const HAClusterSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('HACluster'),
  metadata: ObjectMetaSchema,
  spec: HAClusterSpecSchema,
  status: HAClusterStatusSchema.optional(),
});

export type HeartbeatSpec = z.output<typeof HeartbeatSchema>;
export type TransportSpec = z.output<typeof TransportSchema>;
export type HAClusterSpec = z.output<typeof HAClusterSpecSchema>;
export type HAClusterStatus = z.output<typeof HAClusterStatusSchema>;
export type HACluster = z.output<typeof HAClusterSchema>;
/** What a user may write: fields with defaults are optional. */
export type HAClusterInput = z.input<typeof HAClusterSchema>;
export type MemberState = (typeof MemberStates)[number];
export type QuorumPolicy = (typeof QuorumPolicies)[number];
