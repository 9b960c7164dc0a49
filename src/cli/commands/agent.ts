import { hostname } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { metricsFlags } from './metrics-flags.js';
import { DEFAULT_RESOURCE_IDENTITY } from '../../adapters/services/sandbox.js';

/** RESOURCE_DIR of src/api/resource-paths.ts (spelled out: help loads nothing of src/api). */
const RESOURCE_DIR = '/etc/heartline/resource.d';
import type { MetricsFlags } from '../../ops/metrics-serving.js';

export interface AgentOptions extends MetricsFlags {
  node: string;
  namespace: string;
  cluster: string;
  kubeconfig?: string;
  listenAddress: string;
  netd?: string;
  stateDir: string;
  resourceDir: string;
  resourceUid: number;
  resourceGid: number;
}

/** A uid or gid for Resources: a whole number 1..2^32-2, not 0 (root). */
function resourceId(flag: string) {
  return (value: string): number => {
    const n = /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 4294967294) {
      throw new InvalidArgumentError(
        `${flag} must be a number from 1 to 4294967294 (not 0: Resources never run as root), e.g. 65534`,
      );
    }
    return n;
  };
}

/** `heartline agent`: the node agent. Runs until SIGTERM / SIGINT, then releases its VIPs (planned). */
export function agentCommand(program: Command): void {
  const command = program
    .command('agent')
    .description('Run the node agent: heartbeats, quorum leases, VIP binding and announcements, Resources.')
    .option('--node <name>', 'this node (its Node object name)', process.env.NODE_NAME ?? hostname())
    .option(
      '--namespace <ns>',
      'namespace of the HACluster and its VirtualIPs',
      process.env.POD_NAMESPACE ?? 'default',
    )
    .requiredOption('--cluster <name>', 'HACluster this agent is a member of')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option(
      '--listen-address <ip>',
      'address the heartbeat socket binds (port from the HACluster); not used when heartline-netd --heartbeat-bind handed over the socket',
      '0.0.0.0',
    )
    .option(
      '--state-dir <dir>',
      'persistent directory for the incarnation counter (a hostPath in the DaemonSet; docs/adr/0015)',
      '/var/lib/heartline',
    )
    .option(
      '--resource-dir <dir>',
      `where the node's ${RESOURCE_DIR} is mounted (read-only) in the agent: Resources run programs from there only`,
      RESOURCE_DIR,
    )
    .option(
      '--resource-uid <uid>',
      'user Resources run as, with no capabilities (docs/security.md)',
      resourceId('--resource-uid'),
      DEFAULT_RESOURCE_IDENTITY.uid,
    )
    .option(
      '--resource-gid <gid>',
      'group Resources run as',
      resourceId('--resource-gid'),
      DEFAULT_RESOURCE_IDENTITY.gid,
    )
    .option(
      '--netd <path>',
      'heartline-netd binary (default: $HEARTLINE_NETD or native/build/heartline-netd)',
    );
  metricsFlags(command, '127.0.0.1:9694', "in the DaemonSet: the node's address, status.hostIP");
  command.action(async (opts: AgentOptions) => {
    // The implementation loads only when the command runs: the definitions of all commands
    // stay cheap, and nothing here reaches @kubernetes/client-node (docs/adr/0007).
    const { runAgent } = await import('./agent-run.js');
    await runAgent(opts);
  });
}
