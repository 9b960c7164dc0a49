import { hostname } from 'node:os';
import type { Command } from 'commander';
import { Agent } from '../../agent/agent.js';
import { SystemClock } from '../../adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../adapters/k8s/api-source.js';
import { NetdNetworkDriver } from '../../adapters/linux/netd-driver.js';
import { ProcessServiceRunner } from '../../adapters/services/process-service-runner.js';
import { UdpTransport } from '../../adapters/udp/udp-transport.js';
import { OpsServer } from '../../ops/http.js';
import { createLogger, type Logger } from '../../ops/log.js';
import { parseHostPort } from './controller.js';

export interface AgentOptions {
  node: string;
  namespace: string;
  cluster: string;
  kubeconfig?: string;
  listenAddress: string;
  metricsListen: string;
  netd?: string;
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
      'address the heartbeat socket binds (port from the HACluster)',
      '0.0.0.0',
    )
    .option('--metrics-listen <host:port>', 'address of /metrics, /healthz, /readyz', '0.0.0.0:9694')
    .option(
      '--netd <path>',
      'heartline-netd binary (default: $HEARTLINE_NETD or native/build/heartline-netd)',
    )
    .action(async (opts: AgentOptions) => {
      await runAgent(opts);
    });
}

export async function runAgent(opts: AgentOptions): Promise<void> {
  const log = createLogger({ role: 'agent', node: opts.node });
  parseHostPort('--metrics-listen', opts.metricsListen);
  const clock = new SystemClock({ logger: log });
  const driver = await NetdNetworkDriver.fromEnvironment({
    ...(opts.netd ? { binary: opts.netd } : {}),
    logger: log,
    onExpired: (addr) => log.warn({ addr }, 'fence removed an address at its deadline (agent late)'),
    onExit: (code, signal) => {
      // Without the fence only kernel lifetimes protect the VIPs: stop at once so that peers
      // take over cleanly and the kubelet (or the lab) restarts us with a fresh fence.
      log.fatal({ code, signal }, 'heartline-netd exited: fence lost, exiting');
      process.exit(70);
    },
  });
  try {
    await serve(opts, log, clock, driver);
  } finally {
    // Whatever happened (a bad kubeconfig at start, or a clean stop), end the fence's pipe:
    // netd sweeps every Heartline address and exits, so this process can exit too.
    await driver.close().catch(() => {});
  }
}

async function serve(
  opts: AgentOptions,
  log: Logger,
  clock: SystemClock,
  driver: NetdNetworkDriver,
): Promise<void> {
  const kubeConfig = loadKubeConfig(opts.kubeconfig);
  const api = new K8sApiSource(
    { kubeConfig, clock, logger: log },
    { identity: opts.node, reportingController: 'heartline.dev/agent' },
  );
  const runner = new ProcessServiceRunner({ clock, logger: log });
  const agent: Agent = new Agent(
    {
      clock,
      api,
      driver,
      runner,
      log,
      openTransport: (port) => UdpTransport.open({ address: opts.listenAddress, port, logger: log }),
    },
    { node: opts.node, namespace: opts.namespace, cluster: opts.cluster },
  );
  const ops = new OpsServer({
    listen: opts.metricsListen,
    registry: agent.metrics.registry,
    healthy: () => agent.healthy(),
    ready: () => agent.ready(),
  });
  const bound = await ops.start();
  agent.start();
  log.info(
    { cluster: `${opts.namespace}/${opts.cluster}`, metrics: `${bound.address}:${bound.port}` },
    'agent started',
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: releasing VIPs');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await agent.stop();
  await ops.stop();
  await api.close();
  log.info('agent stopped');
}
