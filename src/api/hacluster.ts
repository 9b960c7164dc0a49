import { z } from 'zod';
import {
  objectSchema,
  conditionList,
  interfaceName,
  labelMap,
  objectName,
  statusSchema,
  timestamp,
} from './meta.js';
import { KEY_ID_MAX, KEY_ID_MIN, KEY_ID_PATTERN } from '../core/wire/auth-secret.js';
import { parseCidr, parseIp, isMulticast } from './net.js';
import { has, isNum, isStr, mapListOf, setOf, withRules, type Rule } from './rules.js';
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

const MULTICAST_EXAMPLE = 'use an administratively scoped group, e.g. 239.192.0.94';

const multicastGroup = (path: string) =>
  withRules(
    z
      .string()
      .min(7)
      .max(15)
      .describe(
        'IPv4 multicast group the link sends to and joins, e.g. 239.192.0.94 (224.0.0.0/4 outside 224.0.0.0/24).',
      ),
    [
      {
        cel: "isIP(self) && ip(self).family() == 4 && cidr('224.0.0.0/4').containsIP(self) && !cidr('224.0.0.0/24').containsIP(self)",
        check: (g) => {
          const ip = isStr(g) ? parseIp(g) : undefined;
          return (
            !isStr(g) ||
            (ip !== undefined &&
              ip.family === 4 &&
              isMulticast(ip) &&
              !(ip.bytes[0] === 224 && ip.bytes[1] === 0 && ip.bytes[2] === 0))
          );
        },
        message: `${path} must be an IPv4 multicast address in 224.0.0.0/4 outside the local control block 224.0.0.0/24 (IPv6 multicast is not implemented: use unicast for IPv6 heartbeats); ${MULTICAST_EXAMPLE}`,
      },
    ],
  );

const linkNetwork = (path: string) =>
  withRules(
    z
      .string()
      .min(3)
      .max(49)
      .describe(
        "Unicast only: send to each member's address in this network (CIDR), taken from its Node: the heartline.dev/heartbeat-address annotation (comma-separated), then status.addresses. Default: the member's heartbeat address (the annotation's first entry, else the InternalIP).",
      ),
    [
      {
        cel: 'isCIDR(self)',
        check: (n) => !isStr(n) || parseCidr(n) !== undefined,
        message: `${path} must be a CIDR, e.g. 198.19.0.0/24 or 2001:db8:1::/64`,
      },
    ],
  );

/** UDP port of Heartbeat (IANA "ha-cluster"). */
export const DEFAULT_TRANSPORT_PORT = 694;

/**
 * How a link carries heartbeats. Heartbeat's `bcast` has no mode here: multicast to a group
 * on the same interface is what a plain switch floods alike (see docs/adr/0016).
 */
export const TransportModes = ['unicast', 'multicast'] as const;
export type TransportMode = (typeof TransportModes)[number];

/** Most links a cluster may have (Heartbeat setups use two or three). */
export const MAX_LINKS = 4;

/** A link's mode; "broadcast" is refused like any unknown value (supported values listed). */
const modeField = () => z.enum(TransportModes);

type LinkShape = { mode?: unknown; group?: unknown; interface?: unknown; network?: unknown };

/**
 * The rules one link obeys, for a list entry (`links[i]`) and for the one-link form at the
 * top of `transport`. `isLink`: whether `self` is a list entry (mode required there).
 */
function linkRules(path: string, topLevel: boolean): Rule<LinkShape>[] {
  // At the top level mode is optional (absent: unicast); in a link it is required.
  const multicast = topLevel ? "(has(self.mode) && self.mode == 'multicast')" : "self.mode == 'multicast'";
  const rules: Rule<LinkShape>[] = [
    {
      cel: `!(${multicast}) || has(self.group)`,
      check: (l) => l.mode !== 'multicast' || has(l, 'group'),
      field: ['group'],
      reason: 'FieldValueRequired',
      message: `${path}.group is required when ${path}.mode is multicast; ${MULTICAST_EXAMPLE}`,
    },
    {
      cel: `${multicast} || !has(self.group)`,
      check: (l) => l.mode === 'multicast' || !has(l, 'group'),
      field: ['group'],
      reason: 'FieldValueForbidden',
      message: `${path}.group is only used with ${path}.mode multicast; remove group or set mode: multicast`,
    },
    {
      cel: `${multicast} || !has(self.interface)`,
      check: (l) => l.mode === 'multicast' || !has(l, 'interface'),
      field: ['interface'],
      reason: 'FieldValueForbidden',
      message: `${path}.interface is only used with mode multicast (the interface it sends on and joins the group on); a unicast link follows the route to each member's address: remove interface${topLevel ? '' : ` and select those addresses with ${path}.network`}`,
    },
  ];
  if (!topLevel) {
    rules.push({
      cel: `!(${multicast}) || !has(self.network)`,
      check: (l) => l.mode !== 'multicast' || !has(l, 'network'),
      field: ['network'],
      reason: 'FieldValueForbidden',
      message: `${path}.network is only used with mode unicast; a multicast link sends to its group on ${path}.interface: remove network`,
    });
  }
  return rules;
}

export const TransportLinkSchema = withRules(
  z
    .strictObject({
      mode: modeField().describe(
        "unicast: to each member's address on this link (ha.cf ucast); multicast: to group on interface, TTL 1 (ha.cf mcast; use it for ha.cf bcast too, broadcast is not offered).",
      ),
      network: linkNetwork('transport.links[].network').optional(),
      interface: interfaceName()
        .optional()
        .describe(
          "Multicast only: interface to send on and join the group on; default: the one holding the node's heartbeat address.",
        ),
      group: multicastGroup('transport.links[].group').optional(),
    })
    .describe(
      'One heartbeat link. Every heartbeat goes over every link; a member is alive while any link delivers.',
    ),
  linkRules('transport.links[]', false),
);

export const TransportSchema = withRules(
  z
    .strictObject({
      port: z
        .int()
        .min(1)
        .max(65535)
        .default(DEFAULT_TRANSPORT_PORT)
        .describe('UDP port for heartbeats on every link (694, the Heartbeat port).'),
      links: z
        .array(TransportLinkSchema)
        .min(1)
        .max(MAX_LINKS)
        .optional()
        .describe(
          'Redundant heartbeat links (ha.cf with several ucast / mcast lines): every heartbeat goes over each, a member is alive while any delivers. Replaces mode / interface / group. Default: one unicast link.',
        ),
      mode: modeField()
        .optional()
        .describe('One-link form (default unicast when links is not set): the mode of the only link.'),
      interface: interfaceName()
        .optional()
        .describe('One-link form, multicast only: the interface of the only link.'),
      group: multicastGroup('transport.group').optional(),
    })
    .describe(
      'How heartbeats travel: one link (mode, interface, group) or several (links). See docs/api.md#transport.',
    ),
  [
    {
      cel: '!has(self.links) || (!has(self.mode) && !has(self.interface) && !has(self.group))',
      check: (t) => !has(t, 'links') || !['mode', 'interface', 'group'].some((k) => has(t, k)),
      field: ['links'],
      reason: 'FieldValueForbidden',
      message:
        'transport.links replaces transport.mode, interface and group (the one-link form): move them into a link and remove them; an HACluster created before links existed has mode: unicast stored, remove it too (kubectl edit, or mode: null in the applied manifest)',
    },
    ...(linkRules('transport', true) as Rule<z.output<z.ZodObject>>[]),
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

/** Most entries of spec.healthCheckTargets. */
export const MAX_HEALTH_CHECK_TARGETS = 16;

const healthCheckTarget = () =>
  withRules(z.string().min(3).max(49), [
    {
      cel: 'isCIDR(self)',
      check: (n) => !isStr(n) || parseCidr(n) !== undefined,
      message:
        'spec.healthCheckTargets entries must be CIDRs, e.g. 198.19.5.0/24, 198.19.5.10/32 or 2001:db8:5::/64',
    },
  ]);

export const QuorumPolicies = ['majority', 'witness', 'ignore'] as const;

export const HAClusterSpecSchema = z
  .strictObject({
    nodeSelector: labelMap()
      .optional()
      .describe('Nodes whose labels match all of these are members; empty: every node running the agent.'),
    // Parent defaults are complete objects, not {}: the API server checks a default
    // against the CEL rules *before* filling nested defaults, so {} would fail them.
    heartbeat: HeartbeatSchema.prefault({ ...DEFAULT_HEARTBEAT }),
    transport: TransportSchema.prefault({ port: DEFAULT_TRANSPORT_PORT }),
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
    healthCheckTargets: setOf(healthCheckTarget(), MAX_HEALTH_CHECK_TARGETS)
      .optional()
      .describe(
        "Networks (CIDRs) that Resources' http and tcp health checks may reach besides the member's own addresses (its node's addresses, the VIPs it holds, loopback), e.g. [198.19.5.0/24] for a backend probed from the holder. Default: own addresses only.",
      ),
  })
  .describe('Desired state of an HACluster: who the members are and how they watch each other.');

export const MemberStates = ['alive', 'warn', 'dead'] as const;

export const HAClusterStatusSchema = statusSchema(
  {
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
    summary: z
      .strictObject({
        members: z
          .string()
          .max(32)
          .regex(/^\d+\/\d+$/)
          .describe('Members alive (or late) over members, e.g. 2/3: the MEMBERS column.'),
        vips: z
          .string()
          .max(32)
          .regex(/^\d+\/\d+$/)
          .describe('VirtualIPs with a holder over VirtualIPs of this cluster, e.g. 4/4: the VIPS column.'),
      })
      .optional()
      .describe(
        'Counts for kubectl get (a printer column on a list shows only its first element), written by the controller.',
      ),
    witness: z
      .strictObject({
        address: z.string().min(2).max(45).describe('IP address the controller listens on for heartbeats.'),
        port: z.int().min(1).max(65535).describe('UDP port the controller listens on.'),
        publicKey: z
          .string()
          .length(52)
          .regex(/^ed25519:[A-Za-z0-9+/]{43}=$/)
          .optional()
          .describe(
            "The witness's Ed25519 public key (ed25519:<base64 of 32 bytes>): agents accept its heartbeats and votes only when signed with it.",
          ),
      })
      .optional()
      .describe(
        "Where the leader controller's witness listens (written by the controller). Agents add it as a peer: a voter with quorum witness, a non-voting observer otherwise.",
      ),
    membership: z
      .strictObject({
        generation: z
          .int()
          .min(1)
          .max(2147483647)
          .describe('Number of this member set; grows by one per change of one member.'),
        members: z
          .array(objectName('membership.members[]'))
          .max(256)
          .describe('Node names of the members at this generation.'),
        previous: z
          .array(objectName('membership.previous[]'))
          .max(256)
          .optional()
          .describe('Node names of the members at the previous generation (absent at generation 1).'),
      })
      .optional()
      .describe(
        'The member set the agents run, written by the controller: Nodes matching spec.nodeSelector, reached one member at a time (docs/protocol.md, Membership changes).',
      ),
  },
  'Observed state of an HACluster.',
);

export const HAClusterSchema = objectSchema('HACluster', HAClusterSpecSchema, HAClusterStatusSchema);

export type HeartbeatSpec = z.output<typeof HeartbeatSchema>;
export type TransportSpec = z.output<typeof TransportSchema>;
export type TransportLinkSpec = z.output<typeof TransportLinkSchema>;
export type HAClusterSpec = z.output<typeof HAClusterSpecSchema>;
export type HAClusterStatus = z.output<typeof HAClusterStatusSchema>;
export type HACluster = z.output<typeof HAClusterSchema>;
/** What a user may write: fields with defaults are optional. */
export type HAClusterInput = z.input<typeof HAClusterSchema>;
export type MemberState = (typeof MemberStates)[number];
export type QuorumPolicy = (typeof QuorumPolicies)[number];
