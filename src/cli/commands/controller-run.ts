import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { SystemClock } from '../../adapters/clock.js';
import type { Logger } from 'pino';
import { loadRestConfig, UnsupportedKubeconfigError } from '../../adapters/k8s/kubeconfig.js';
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
import type { ApiSource, LeaseLock, ObjectWriter } from '../../core/ports.js';
import type { AccessReviewApi } from '../../ops/metrics-auth.js';
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

/** What the controller talks to the API server through. */
interface ApiAdapters {
  source: ApiSource & ObjectWriter;
  lease: LeaseLock;
  accessReview: () => AccessReviewApi;
}

/**
 * The REST client (RestApiSource, RestLeaseLock), not @kubernetes/client-node: loading
 * client-node alone costs ~40 MB of RSS, which put the controller past its 150 MB budget at
 * 1,000 VIPs (docs/adr/0038). A kubeconfig the REST client refuses by design (credential
 * plugin, auth provider, proxy, impersonation) falls back to client-node, with a warning.
 */
async function apiAdapters(
  opts: ControllerOptions,
  clock: SystemClock,
  log: Logger,
  leaseDurationMs: number,
): Promise<ApiAdapters> {
  const leaseInit = {
    namespace: opts.leaseNamespace,
    name: opts.leaseName,
    identity: opts.identity,
    leaseDurationSeconds: leaseDurationMs / 1000,
  };
  let config;
  try {
    config = await loadRestConfig(opts.kubeconfig ? { path: opts.kubeconfig } : {});
  } catch (err) {
    if (!(err instanceof UnsupportedKubeconfigError)) throw err;
    log.warn(
      { err },
      'the kubeconfig needs @kubernetes/client-node; loading it (about 40 MB more RSS, docs/adr/0038)',
    );
    const [{ K8sApiSource, loadKubeConfig }, { K8sLeaseLock }, { k8sAccessReviewApi }] = await Promise.all([
      import('../../adapters/k8s/api-source.js'),
      import('../../adapters/k8s/lease-lock.js'),
      import('../../adapters/k8s/access-review.js'),
    ]);
    const kubeConfig = loadKubeConfig(opts.kubeconfig);
    return {
      source: new K8sApiSource({ kubeConfig, clock, logger: log }, { identity: opts.identity }),
      lease: new K8sLeaseLock({ kubeConfig, clock }, leaseInit),
      accessReview: () => k8sAccessReviewApi(kubeConfig),
    };
  }
  log.info({ server: config.server.origin, source: config.source }, 'API server');
  // Small pools of their own for the leader Lease (a burst of status writes never delays a
  // renewal) and for /metrics reviews (a flood of scrapes never takes a connection from status).
  const client = (userAgent: string) =>
    new RestClient(config, { userAgent, maxRequestSockets: 2, requestTimeoutMs: 10_000 });
  return {
    source: new RestApiSource({ config, clock, logger: log }, { identity: opts.identity }),
    lease: new RestLeaseLock({ client: client('heartline-controller-lease'), clock }, leaseInit),
    accessReview: () => restAccessReviewApi(client('heartline-metrics-auth')),
  };
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
  const metrics = new ControllerMetrics({ defaultMetrics: true, now: () => clock.now() });
  const adapters = await apiAdapters(opts, clock, log, leaseDurationMs);
  const api = new InstrumentedApiSource(adapters.source, metrics);
  const lease = adapters.lease;
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
  const serving = await metricsServing(opts, adapters.accessReview, log);
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
