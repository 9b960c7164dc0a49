import type { Command } from 'commander';

/**
 * The flags of the ops server (/metrics, /healthz, /readyz) that the agent and the controller
 * share (ops/metrics-serving.ts reads them as MetricsFlags): where it listens (`where`: the
 * address to use in the DaemonSet or Deployment, for the help text) and how /metrics is served.
 */
export function metricsFlags(command: Command, listenDefault: string, where: string): Command {
  return command
    .option(
      '--metrics-listen <host:port>',
      `address of /metrics, /healthz, /readyz (${where})`,
      listenDefault,
    )
    .option(
      '--metrics-tls-cert <file>',
      'PEM certificate for /metrics over HTTPS (default: a self-signed one made at start)',
    )
    .option('--metrics-tls-key <file>', 'PEM private key of --metrics-tls-cert')
    .option(
      '--metrics-insecure-serving-no-auth',
      'serve /metrics over plain HTTP to anyone who reaches the port (default: HTTPS, bearer token + RBAC)',
    );
}
