import { hostname } from 'node:os';
import type { Command } from 'commander';
import { metricsFlags } from './metrics-flags.js';
import type { MetricsFlags } from '../../ops/metrics-serving.js';

export interface ControllerOptions extends MetricsFlags {
  kubeconfig?: string;
  namespace?: string;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  witnessListen: string;
  witnessAddress?: string;
  leaseDuration: string;
  renewPeriod: string;
  /** Default: the controller's DEFAULT_WORKERS. */
  workers?: string;
  /** false with --no-load-balancers: Services of type LoadBalancer are left alone. */
  loadBalancers: boolean;
  /** Label selector of the agent pods ('' or absent: not watched). */
  agentPods?: string;
  agentPodsNamespace: string;
}

/** `heartline controller`: the leader-elected controller and witness. Runs until SIGTERM / SIGINT. */
export function controllerCommand(program: Command): void {
  const command = program
    .command('controller')
    .description(
      'Run the controller: status, Events, finalizers, and the witness voter for two-node clusters (leader-elected).',
    )
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--namespace <ns>', 'watch only this namespace (default: all)')
    .option(
      '--lease-namespace <ns>',
      'namespace of the leader Lease',
      process.env.POD_NAMESPACE ?? 'heartline-system',
    )
    .option('--lease-name <name>', 'name of the leader Lease', 'heartline-controller')
    .option(
      '--identity <id>',
      'this instance in the Lease and Events (default: hostname_pid)',
      `${hostname()}_${process.pid}`,
    )
    .option('--witness-listen <host:port>', 'UDP address the witness and observer listen on', '0.0.0.0:694')
    .option(
      '--witness-address <ip>',
      'address agents send heartbeats to (published in HACluster status; default $POD_IP or the listen address)',
    )
    .option(
      '--agent-pods <selector>',
      'label selector of the agent DaemonSet pods: the Nodes they run on are the members of an HACluster with an empty nodeSelector (default: not watched; an empty selector then means the Nodes that published a member key)',
    )
    .option(
      '--agent-pods-namespace <ns>',
      'namespace of the agent pods',
      process.env.POD_NAMESPACE ?? 'heartline-system',
    )
    .option('--lease-duration <ms>', 'leader lease duration', '15000')
    .option('--renew-period <ms>', 'leader lease renew period', '2000')
    .option(
      '--workers <n>',
      // The default is the controller's DEFAULT_WORKERS (test/unit/cli/lazy-commands.test.ts checks it).
      'objects reconciled at once (one object is never reconciled twice at once; default 8); env HEARTLINE_CONTROLLER_WORKERS',
      process.env.HEARTLINE_CONTROLLER_WORKERS,
    )
    .option(
      '--no-load-balancers',
      'do not serve Services of type LoadBalancer from AddressPools (then Services are not watched)',
    );
  metricsFlags(command, '127.0.0.1:9695', "in the Deployment: the pod's address");
  command.action(async (opts: ControllerOptions) => {
    // The implementation (and @kubernetes/client-node with it) loads only when the command runs.
    const { runController } = await import('./controller-run.js');
    await runController(opts);
  });
}
