import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { MetricsFlags } from '../../ops/metrics-serving.js';

export interface AgentOptions extends MetricsFlags {
  node: string;
  namespace: string;
  cluster: string;
  kubeconfig?: string;
  listenAddress: string;
  netd?: string;
  stateDir: string;
}

/** `heartline agent`: the node agent. Runs until SIGTERM / SIGINT, then releases its VIPs (planned). */
export function agentCommand(program: Command): void {
  program
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
      '--metrics-listen <host:port>',
      "address of /metrics, /healthz, /readyz (in the DaemonSet: the node's address, status.hostIP)",
      '127.0.0.1:9694',
    )
    .option(
      '--metrics-tls-cert <file>',
      'PEM certificate for /metrics over HTTPS (default: a self-signed one made at start)',
    )
    .option('--metrics-tls-key <file>', 'PEM private key of --metrics-tls-cert')
    .option(
      '--metrics-insecure-serving-no-auth',
      'serve /metrics over plain HTTP to anyone who reaches the port (default: HTTPS, bearer token + RBAC)',
    )
    .option(
      '--state-dir <dir>',
      'persistent directory for the incarnation counter (a hostPath in the DaemonSet; docs/adr/0015)',
      '/var/lib/heartline',
    )
    .option(
      '--netd <path>',
      'heartline-netd binary (default: $HEARTLINE_NETD or native/build/heartline-netd)',
    )
    .action(async (opts: AgentOptions) => {
      // The implementation loads only when the command runs: the definitions of all commands
      // stay cheap, and nothing here reaches @kubernetes/client-node (docs/adr/0007).
      const { runAgent } = await import('./agent-run.js');
      await runAgent(opts);
    });
}
