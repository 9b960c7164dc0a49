import { z } from 'zod';
import { objectSchema, conditionList, objectName, statusSchema, timestamp } from './meta.js';
import { INIT_DIR, RESOURCE_DIR } from './resource-paths.js';
import { has, isNum, isStr, withRules, mapListOf, type Rule } from './rules.js';

export { INIT_DIR, RESOURCE_DIR };

/** One path segment: no "/", not "." or "..", no hidden files, no spaces or control characters. */
const SEGMENT = '[A-Za-z0-9_+@-][A-Za-z0-9._+@-]*';
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A program inside RESOURCE_DIR (subdirectories allowed). Shared by CEL (RE2) and zod. */
export const RESOURCE_PROGRAM_PATTERN = `^${escapeRe(RESOURCE_DIR)}(/${SEGMENT})+$`;
/** An init script directly in INIT_DIR. */
export const LSB_SCRIPT_PATTERN = `^${escapeRe(INIT_DIR)}/${SEGMENT}$`;
const resourceProgram = new RegExp(RESOURCE_PROGRAM_PATTERN);

/**
 * argv of a command, run without a shell. Its program (argv[0]) must be a file in
 * RESOURCE_DIR; the arguments are passed as they are. `path` names the field in messages.
 */
const command = (path: string, what: string) =>
  withRules(
    z
      .array(z.string().min(1).max(4096))
      .min(1)
      .max(64)
      .describe(
        `${what}: argv, run without a shell as an unprivileged user; argv[0] must be a program in ${RESOURCE_DIR} on the node, e.g. ["${RESOURCE_DIR}/apache", "start"].`,
      ),
    [
      {
        cel: `size(self) == 0 || self[0].matches('${RESOURCE_PROGRAM_PATTERN.replace(/\\/g, '\\\\')}')`,
        check: (argv: unknown) => !Array.isArray(argv) || !isStr(argv[0]) || resourceProgram.test(argv[0]),
        message: `${path}[0] must be a program in ${RESOURCE_DIR} on the node (an absolute path without "." or ".." segments); install the script there (root-owned) and name it, e.g. ${RESOURCE_DIR}/apache; arguments follow in ${path}[1..] and are passed without a shell`,
        messageExpression: `'${path}[0] ' + self[0] + ' is not in ${RESOURCE_DIR}: a Resource runs only programs installed in ${RESOURCE_DIR} on the node (an absolute path without "." or ".." segments); install the script there (root-owned) and name it, e.g. ${RESOURCE_DIR}/apache; arguments follow in ${path}[1..] and are passed without a shell'`,
        messageFor: (argv: unknown) =>
          `${path}[0] ${Array.isArray(argv) ? String(argv[0]) : ''} is not in ${RESOURCE_DIR}: a Resource runs only programs installed in ${RESOURCE_DIR} on the node (an absolute path without "." or ".." segments); install the script there (root-owned) and name it, e.g. ${RESOURCE_DIR}/apache; arguments follow in ${path}[1..] and are passed without a shell`,
      },
    ],
  );

const port = () => z.int().min(1).max(65535);

export const ExecActionsSchema = z
  .strictObject({
    start: command('exec.start', 'Starts the service; exit 0 means started'),
    stop: command('exec.stop', 'Stops the service; exit 0 means stopped'),
    status: command('exec.status', 'Optional; exit 0 running, 3 stopped (LSB status codes)').optional(),
  })
  .describe('Commands for kind exec. start and stop are required.');

export const LsbSchema = z
  .strictObject({
    script: z
      .string()
      .min(2)
      .max(1024)
      .regex(new RegExp(LSB_SCRIPT_PATTERN), {
        error: `lsb.script must be an init script directly in ${INIT_DIR} (no "." or ".." segments, no subdirectories), e.g. ${INIT_DIR}/apache2; for any other program use kind exec with a script in ${RESOURCE_DIR}`,
      })
      .describe(
        `LSB init script in ${INIT_DIR}, called with start, stop and status as an unprivileged user, e.g. ${INIT_DIR}/apache2.`,
      ),
  })
  .describe('Init script for kind lsb.');

/**
 * Unit types `systemctl start` can start. device and scope units cannot be started; slices
 * are made by systemd itself.
 */
export const SYSTEMD_UNIT_TYPES = [
  'service',
  'socket',
  'target',
  'mount',
  'automount',
  'swap',
  'timer',
  'path',
] as const;
/**
 * A unit name by systemd's rules (unit_name_is_valid): a prefix of letters, digits and
 * ":-_.\\", an optional "@instance" (a template needs one to be started), a known type
 * suffix, at most 255 characters. A leading "-" is valid ("-.mount" is the root mount): the
 * agent passes "--" before the name, so it is never read as an option.
 */
export const SYSTEMD_UNIT_PATTERN = `^[a-zA-Z0-9:_.\\\\-]+(@[a-zA-Z0-9:_.\\\\@-]+)?\\.(${SYSTEMD_UNIT_TYPES.join('|')})$`;

export const SystemdSchema = z
  .strictObject({
    unit: z
      .string()
      .min(3)
      .max(255)
      .regex(new RegExp(SYSTEMD_UNIT_PATTERN), {
        error: `systemd.unit must be a systemd unit name with its type (letters, digits, ":", "_", ".", "\\", "-", an "@instance" for a template), ending in .${SYSTEMD_UNIT_TYPES.join(', .')}, e.g. nginx.service or getty@tty1.service`,
      })
      .describe(
        'systemd unit to start and stop with systemctl (as an unprivileged user: see docs/security.md), e.g. nginx.service.',
      ),
  })
  .describe('Unit for kind systemd.');

export const HttpCheckSchema = withRules(
  z
    .strictObject({
      url: z
        .string()
        .min(8)
        .max(2048)
        .regex(/^https?:\/\/[^\s]+$/, {
          error: 'healthCheck.http.url must be an http:// or https:// URL, e.g. http://127.0.0.1/healthz',
        })
        .optional()
        .describe(
          "Full URL to GET. Set url, or port (and path), not both. The agent connects only to the node's own addresses (and the HACluster's spec.healthCheckTargets), checked on the address a host name resolves to.",
        ),
      port: port()
        .optional()
        .describe('Port to GET on the VIP address of the holder. Set url, or port (and path).'),
      path: z
        .string()
        .min(1)
        .max(2048)
        .regex(/^\/[^\s]*$/, {
          error: 'healthCheck.http.path must start with "/" and have no spaces, e.g. /healthz',
        })
        .optional()
        .describe('Path used with port; default "/".'),
      expectStatus: z.int().min(100).max(599).default(200).describe('HTTP status that means healthy.'),
      insecureSkipTLSVerify: z
        .boolean()
        .optional()
        .describe(
          'With an https:// url: accept any certificate (no chain or name check). Default false: the certificate must verify against the system CAs (plus NODE_EXTRA_CA_CERTS) for the url host.',
        ),
    })
    .describe('HTTP GET probe; an https:// url is probed over TLS and its certificate verified.'),
  [
    {
      cel: 'has(self.url) != has(self.port)',
      check: (h) => has(h, 'url') !== has(h, 'port'),
      message:
        'healthCheck.http needs exactly one of url or port (with optional path); set one and remove the other',
    },
    {
      cel: '!has(self.path) || has(self.port)',
      check: (h) => !has(h, 'path') || has(h, 'port'),
      field: ['path'],
      reason: 'FieldValueForbidden',
      message:
        'healthCheck.http.path is only used with port; put the path into url or use port instead of url',
    },
    {
      cel: "!has(self.url) || !self.url.matches('^https?://[^/?#]*@')",
      check: (h) => !isStr(h.url) || !/^https?:\/\/[^/?#]*@/.test(h.url),
      field: ['url'],
      message:
        'healthCheck.http.url must not contain user information (user:password@): it is never sent, and everyone who can read Resources could read it; remove it, e.g. http://127.0.0.1:8080/healthz',
    },
    {
      cel: "!has(self.insecureSkipTLSVerify) || (has(self.url) && self.url.startsWith('https://'))",
      check: (h) =>
        !has(h, 'insecureSkipTLSVerify') || (typeof h.url === 'string' && h.url.startsWith('https://')),
      field: ['insecureSkipTLSVerify'],
      reason: 'FieldValueForbidden',
      message:
        'healthCheck.http.insecureSkipTLSVerify is only used with an https:// url; remove it or probe an https:// url',
    },
  ],
);

export const HealthCheckSchema = withRules(
  z
    .strictObject({
      http: HttpCheckSchema.optional(),
      tcp: z
        .strictObject({ port: port().describe('Port to connect to on the VIP address.') })
        .optional()
        .describe('TCP connect probe.'),
      exec: z
        .strictObject({ command: command('healthCheck.exec.command', 'Probe command; exit 0 means healthy') })
        .optional()
        .describe('Command probe.'),
      intervalMs: z.int().min(100).max(3_600_000).default(2000).describe('Milliseconds between probes.'),
      timeoutMs: z.int().min(10).max(600_000).default(1000).describe('A probe that takes longer fails.'),
      failureThreshold: z
        .int()
        .min(1)
        .max(100)
        .default(3)
        .describe('Consecutive failures after which the Resource is failed and its VIP moves.'),
    })
    .describe(
      'Probe run on the holder while the Resource is running (like mon or ldirectord). Exactly one of http, tcp, exec.',
    ),
  [
    {
      cel: '(has(self.http) ? 1 : 0) + (has(self.tcp) ? 1 : 0) + (has(self.exec) ? 1 : 0) == 1',
      check: (h) => ['http', 'tcp', 'exec'].filter((k) => has(h, k)).length === 1,
      message: 'healthCheck needs exactly one of http, tcp or exec; keep one probe and remove the others',
    },
    {
      cel: 'self.timeoutMs <= self.intervalMs',
      check: (h) => !isNum(h.timeoutMs) || !isNum(h.intervalMs) || h.timeoutMs <= h.intervalMs,
      field: ['timeoutMs'],
      message:
        'healthCheck.timeoutMs must not exceed healthCheck.intervalMs; lower timeoutMs or raise intervalMs',
    },
  ],
);

export const ResourceKinds = ['exec', 'lsb', 'systemd'] as const;
export type ResourceKind = (typeof ResourceKinds)[number];

type SpecShape = { kind?: unknown };
const kindRules = (k: ResourceKind): Rule<SpecShape>[] => [
  {
    cel: `self.kind != '${k}' || has(self.${k})`,
    check: (s) => s.kind !== k || has(s, k),
    field: [k],
    reason: 'FieldValueRequired',
    message: `${k} is required when kind is ${k}; ${
      k === 'exec' ? 'set exec.start and exec.stop' : k === 'lsb' ? 'set lsb.script' : 'set systemd.unit'
    }`,
  },
  {
    cel: `self.kind == '${k}' || !has(self.${k})`,
    check: (s) => s.kind === k || !has(s, k),
    field: [k],
    reason: 'FieldValueForbidden',
    message: `${k} is only allowed when kind is ${k}; remove ${k} or set kind: ${k}`,
  },
];

export const ResourceSpecSchema = withRules(
  z
    .strictObject({
      kind: z
        .enum(ResourceKinds)
        .describe('exec: commands; lsb: init script; systemd: unit. Only the matching field may be set.'),
      exec: ExecActionsSchema.optional(),
      lsb: LsbSchema.optional(),
      systemd: SystemdSchema.optional(),
      healthCheck: HealthCheckSchema.optional(),
      startTimeoutMs: z.int().min(100).max(600_000).default(20_000).describe('Start fails after this long.'),
      stopTimeoutMs: z
        .int()
        .min(100)
        .max(600_000)
        .default(20_000)
        .describe('Stop fails after this long; the VIP is then released anyway and the failure reported.'),
    })
    .describe('Desired state of a Resource: a service started with a VIP (haresources).'),
  ResourceKinds.flatMap(kindRules),
);

export const ResourceNodeStates = [
  'stopped',
  'starting',
  'running',
  'stopping',
  'failed',
  'unknown',
] as const;
export const ProbeResults = ['success', 'failure', 'timeout', 'error'] as const;

export const ResourceStatusSchema = statusSchema(
  {
    nodes: mapListOf(
      z.strictObject({
        name: objectName('nodes[].name').describe('Node name.'),
        state: z.enum(ResourceNodeStates).describe('State of the Resource on that node.'),
        since: timestamp().optional().describe('When it entered that state.'),
        message: z.string().max(1024).optional().describe('Detail, e.g. the exit code of a failed start.'),
        lastProbe: z
          .strictObject({
            time: timestamp().describe('When the probe ran.'),
            result: z.enum(ProbeResults).describe('success, failure, timeout or error.'),
            latencyMs: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('How long it took.'),
            message: z.string().max(1024).optional().describe('e.g. "HTTP 503" or "connection refused".'),
            consecutiveFailures: z
              .int()
              .min(0)
              .max(1_000_000)
              .optional()
              .describe('Failures in a row so far.'),
          })
          .optional()
          .describe('Last health-check result on that node.'),
      }),
      'name',
      128,
    )
      .optional()
      .describe('Per-node state of the Resource.'),
    summary: z
      .strictObject({
        running: z
          .string()
          .max(1024)
          .describe('Nodes where it runs, comma-separated (empty: nowhere): the RUNNING-ON column.'),
      })
      .optional()
      .describe('For kubectl get (a printer column on a list shows only its first element).'),
    conditions: conditionList()
      .optional()
      .describe('Ready: True while it runs on some node and fails on none (written by the agents).'),
  },
  'Observed state of a Resource.',
);

export const ResourceSchema = objectSchema('Resource', ResourceSpecSchema, ResourceStatusSchema);

export type ExecActions = z.output<typeof ExecActionsSchema>;
export type HealthCheckSpec = z.output<typeof HealthCheckSchema>;
export type ResourceSpec = z.output<typeof ResourceSpecSchema>;
export type ResourceStatus = z.output<typeof ResourceStatusSchema>;
export type Resource = z.output<typeof ResourceSchema>;
export type ResourceInput = z.input<typeof ResourceSchema>;
export type ResourceNodeState = (typeof ResourceNodeStates)[number];
