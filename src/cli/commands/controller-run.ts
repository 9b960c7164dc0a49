import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { SystemClock } from '../../adapters/clock.js';
import { loadRestConfig } from '../../adapters/k8s/kubeconfig.js';
import { RestApiSource } from '../../adapters/k8s/rest-api-source.js';
import { restAccessReviewApi } from '../../adapters/k8s/rest-access-review.js';
import { RestClient } from '../../adapters/k8s/rest-client.js';
import { RestLeaseLock } from '../../adapters/k8s/rest-lease-lock.js';
import { UdpTransport } from '../../adapters/udp/udp-transport.js';
import { Controller, DEFAULT_WORKERS } from '../../controller/controller.js';
import { InstrumentedApiSource } from '../../controller/instrumented-api.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { OpsServer } from '../../ops/http.js';
import { exitOnBug } from '../../ops/crash.js';
import { createLogger } from '../../ops/log.js';
import { metricsServing } from '../../ops/metrics-serving.js';
import { untilStopSignal } from '../signals.js';
import { hostPort, parseHostPort } from '../host-port.js';
import type { ControllerOptions } from './controller.js';

/** The address agents should send to: --witness-address, else $POD_IP, else the listen host, else the first external IPv4. */
export function witnessAddress(explicit: string | undefined, listenHost: string): string {
  const candidate =
    explicit ??
    process.env.POD_IP ??
    (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::' ? listenHost : undefined);
  if (candidate) {
    if (!isIP(candidate))
      throw new Error(
        `--witness-address "${candidate}" is not an IP address; give the address agents reach the controller at`,
      );
    return candidate;
  }
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('cannot tell which address agents reach the witness at: set --witness-address (or POD_IP)');
}

export async function runController(opts: ControllerOptions): Promise<void> {
  const log = createLogger({ role: 'controller', identity: opts.identity });
  exitOnBug(log);
  const listen = parseHostPort('--witness-listen', opts.witnessListen);
  parseHostPort('--metrics-listen', opts.metricsListen);
  const leaseDurationMs = Number(opts.leaseDuration);
  const renewPeriodMs = Number(opts.renewPeriod);
  if (!(Number.isInteger(leaseDurationMs) && leaseDurationMs >= 3000 && leaseDurationMs % 1000 === 0)) {
    throw new Error(
      `--lease-duration ${opts.leaseDuration}: must be whole seconds in ms, at least 3000 (default 15000)`,
    );
  }
  if (!(Number.isInteger(renewPeriodMs) && renewPeriodMs > 0 && renewPeriodMs * 3 <= leaseDurationMs)) {
    throw new Error(
      `--renew-period ${opts.renewPeriod}: must be a positive integer at most a third of --lease-duration`,
    );
  }
  const workers = Number(opts.workers ?? DEFAULT_WORKERS);
  if (!(Number.isInteger(workers) && workers >= 1 && workers <= 64)) {
    throw new Error(
      `--workers ${opts.workers}: must be an integer from 1 to 64 (default ${DEFAULT_WORKERS}; env HEARTLINE_CONTROLLER_WORKERS)`,
    );
  }
  const address = witnessAddress(opts.witnessAddress, listen.host);
  const clock = new SystemClock();
  const config = await loadRestConfig(opts.kubeconfig ? { path: opts.kubeconfig } : {});
  log.info({ server: config.server.origin, source: config.source }, 'API server');
  const metrics = new ControllerMetrics({ defaultMetrics: true, now: () => clock.now() });
  // The REST client, not @kubernetes/client-node: loading client-node alone costs ~40 MB of
  // RSS, which put the controller past its 150 MB budget at 1,000 VIPs (docs/adr/0038).
  const api = new InstrumentedApiSource(
    new RestApiSource({ config, clock, logger: log }, { identity: opts.identity }),
    metrics,
  );
  // The leader Lease on a small pool of its own: a burst of status writes never delays a renewal.
  const lease = new RestLeaseLock(
    {
      client: new RestClient(config, {
        userAgent: 'heartline-controller-lease',
        maxRequestSockets: 2,
        requestTimeoutMs: 10_000,
      }),
      clock,
    },
    {
      namespace: opts.leaseNamespace,
      name: opts.leaseName,
      identity: opts.identity,
      leaseDurationSeconds: leaseDurationMs / 1000,
    },
  );
  const transport = await UdpTransport.open({
    address: listen.host || '0.0.0.0',
    port: listen.port,
    logger: log,
  });
  const controller = new Controller(
    {
      api,
      lease,
      clock,
      log: log.child({ component: 'controller' }),
      metrics,
      transport,
      ...(opts.loadBalancers !== false ? { objects: api.writer() } : {}),
    },
    {
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      ...(opts.agentPods
        ? { agentPods: { namespace: opts.agentPodsNamespace, labelSelector: opts.agentPods } }
        : {}),
      witness: { address, port: transport.address().port },
      leaseDurationMs,
      renewPeriodMs,
      renewDeadlineMs: Math.max(renewPeriodMs + 1, Math.round((leaseDurationMs * 2) / 3)),
      workers,
    },
  );
  let lastHealthy = true;
  // /metrics reviews go through a small pool of their own, as in the agent.
  const serving = await metricsServing(
    opts,
    () =>
      restAccessReviewApi(
        new RestClient(config, {
          userAgent: 'heartline-metrics-auth',
          maxRequestSockets: 2,
          requestTimeoutMs: 10_000,
        }),
      ),
    log,
  );
  const ops = new OpsServer({
    listen: opts.metricsListen,
    registry: metrics.registry,
    serving,
    log,
    healthy: () => {
      // The probe body stays generic; the reason (it may name an object) goes to the log.
      const l = controller.liveness();
      if (l.healthy !== lastHealthy) {
        if (l.healthy) log.info({ reason: l.reason }, 'healthy again');
        else
          log.error({ reason: l.reason }, 'unhealthy: /healthz fails, so the kubelet restarts this instance');
        lastHealthy = l.healthy;
      }
      return l.healthy;
    },
    ready: () => controller.ready(),
  });
  const bound = await ops.start();
  controller.start();
  log.info(
    {
      witness: `${address}:${transport.address().port}`,
      metrics: `${ops.scheme}://${hostPort(bound)}`,
      lease: `${opts.leaseNamespace}/${opts.leaseName}`,
    },
    'controller started',
  );
  await untilStopSignal(log, 'stopping: releasing the lease');
  await controller.stop();
  await ops.stop();
  await api.close();
  log.info('controller stopped');
}
