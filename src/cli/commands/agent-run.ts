import { join } from 'node:path';
import { Agent } from '../../agent/agent.js';
import { IncarnationFile } from '../../adapters/state/incarnation-file.js';
import { loadMemberKey } from '../../adapters/state/member-key-file.js';
import { MEMBER_KEY_ANNOTATION } from '../../runtime/cluster-config.js';
import { SystemClock } from '../../adapters/clock.js';
import { loadRestConfig } from '../../adapters/k8s/kubeconfig.js';
import { restAccessReviewApi } from '../../adapters/k8s/rest-access-review.js';
import { RestApiSource } from '../../adapters/k8s/rest-api-source.js';
import { RestClient } from '../../adapters/k8s/rest-client.js';
import { NetdNetworkDriver } from '../../adapters/linux/netd-driver.js';
import { ProbeTargets } from '../../adapters/services/probe-targets.js';
import { ProcessServiceRunner } from '../../adapters/services/process-service-runner.js';
import { launcherFromEnvironment } from '../../adapters/services/sandbox.js';
import { InheritedUdpSocket } from '../../adapters/udp/inherited-socket.js';
import { udpSocketDrops } from '../../adapters/udp/socket-drops.js';
import { UdpTransport } from '../../adapters/udp/udp-transport.js';
import { OpsServer } from '../../ops/http.js';
import { exitOnBug } from '../../ops/crash.js';
import { createLogger, type Logger } from '../../ops/log.js';
import { metricsServing } from '../../ops/metrics-serving.js';
import { untilStopSignal } from '../signals.js';
import { hostPort, parseHostPort } from '../host-port.js';
import type { AgentOptions } from './agent.js';

export async function runAgent(opts: AgentOptions): Promise<void> {
  const log = createLogger({ role: 'agent', node: opts.node });
  exitOnBug(log);
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
  const config = await loadRestConfig(opts.kubeconfig ? { path: opts.kubeconfig } : {});
  log.info({ server: config.server.origin, source: config.source }, 'API server');
  // The REST ApiSource, not K8sApiSource: client-node alone would take the agent past its
  // memory budget (docs/adr/0007-agent-rest-client.md).
  const api = new RestApiSource(
    { config, clock, logger: log },
    { identity: opts.node, reportingController: 'heartline.dev/agent' },
  );
  // /metrics reviews go through a small pool of their own: a flood of scrapes never takes a
  // connection the agent's watches and status writes need.
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
  // Under `heartline-netd --heartbeat-bind`, netd bound the heartbeat socket (port 694 needs a
  // capability this process does not have: docs/adr/0020) and handed it over on an fd.
  const inherited = await InheritedUdpSocket.fromEnvironment(process.env, { logger: log });
  if (inherited)
    log.info(
      {
        bound: hostPort(inherited.bound),
        receiveBuffer: inherited.receiveBufferBytes,
        uid: process.getuid?.(),
      },
      'heartbeat socket bound by heartline-netd (--listen-address is not used)',
    );
  const openTransport = (port: number) =>
    inherited
      ? inherited.transport(port)
      : UdpTransport.open({ address: opts.listenAddress, port, logger: log });
  // Resources run programs from the allowlisted directory only, with no capability and a
  // minimal environment, and probe only this node's addresses and the HACluster's
  // spec.healthCheckTargets (docs/security.md), as a user of their own:
  // - under `heartline-netd --resource-uid` (the DaemonSet) this agent is unprivileged and
  //   netd starts each Resource as that uid on its request (the launcher, ADR 0020 addendum);
  // - a root agent runs them as --resource-uid through setpriv (ADR 0019);
  // - an unprivileged agent without a launcher cannot switch users: they run as its own uid
  //   (no capability either), and it says so.
  const agentUid = process.getuid?.() ?? 0;
  const launcher = launcherFromEnvironment(process.env);
  if (!launcher && agentUid === 0 && opts.resourceUid === 0) {
    throw new Error('--resource-uid 0: Resources never run as root; choose an unprivileged uid, e.g. 65534');
  }
  const identity = launcher
    ? launcher.identity
    : agentUid === 0
      ? { uid: opts.resourceUid, gid: opts.resourceGid }
      : null;
  if (launcher) {
    log.info(
      { uid: launcher.identity.uid, gid: launcher.identity.gid, launcher: launcher.binary },
      "Resources are started by heartline-netd as its --resource-uid (the agent's --resource-uid is not used)",
    );
  } else if (!identity) {
    log.warn(
      { uid: agentUid },
      'Resources run as the agent user (it has no capability to start them as --resource-uid, and heartline-netd runs without --resource-uid): they could signal the agent or read what it reads',
    );
  }
  const targets = new ProbeTargets();
  const runner = new ProcessServiceRunner(
    { clock, logger: log, targets },
    { identity, resourceDir: opts.resourceDir, ...(launcher ? { launcher } : {}) },
  );
  // Every life of this member takes the next number of a counter on the node's disk, durable
  // before use (docs/adr/0015). Throws, and the agent does not start, if it cannot be written.
  const lives = new IncarnationFile(join(opts.stateDir, `incarnation-${opts.namespace}.${opts.cluster}`));
  const first = lives.next();
  if (first.source === 'wall-clock') {
    log.warn(
      { incarnation: first.incarnation, file: lives.path, note: first.note },
      'incarnation seeded from the wall clock (no usable state file)',
    );
  } else {
    log.info({ incarnation: first.incarnation, file: lives.path }, 'incarnation from the state file');
  }
  // This node's signing key (docs/adr/0021): kept in the state directory, never sent anywhere;
  // its public half goes on the Node.
  const memberKey = loadMemberKey(join(opts.stateDir, `member-key-${opts.namespace}.${opts.cluster}.pem`));
  if (memberKey.source === 'memory') {
    log.warn({ note: memberKey.note }, 'member key kept in memory only: a restart makes a new one');
  } else {
    log.info({ source: memberKey.source, note: memberKey.note }, 'member key loaded');
  }
  // For measuring what the limit saves only (test/e2e/udp-flood.test.ts): never in a deployment.
  const noVerifyBudget = process.env.HEARTLINE_BENCH_NO_VERIFY_BUDGET === '1';
  if (noVerifyBudget) {
    log.warn(
      { env: 'HEARTLINE_BENCH_NO_VERIFY_BUDGET' },
      'signature checks are not rate-limited: a flood of forged datagrams costs a verification each (benchmark setting, docs/adr/0026)',
    );
  }
  const agent: Agent = new Agent(
    {
      clock,
      api,
      driver,
      runner,
      log,
      openTransport,
      socketDrops: (local) => udpSocketDrops(local),
      onConfig: (config) => targets.setNetworks(config.healthCheckTargets ?? []),
      publishMemberKey: (publicKey) => api.annotateNode(opts.node, { [MEMBER_KEY_ANNOTATION]: publicKey }),
    },
    {
      node: opts.node,
      namespace: opts.namespace,
      cluster: opts.cluster,
      incarnation: first.incarnation,
      nextIncarnation: () => lives.next().incarnation,
      memberKey: memberKey.key,
      ...(noVerifyBudget ? { verifyBudget: false } : {}),
    },
  );
  const ops = new OpsServer({
    listen: opts.metricsListen,
    registry: agent.metrics.registry,
    serving,
    log,
    healthy: () => agent.healthy(),
    // The probe port is open to anyone who reaches it: no node or cluster names (the agent
    // logs what it waits for).
    ready: () =>
      agent.ready().ready
        ? { ready: true, reason: 'member running' }
        : { ready: false, reason: 'not running as a member yet' },
  });
  const bound = await ops.start();
  agent.start();
  log.info(
    { cluster: `${opts.namespace}/${opts.cluster}`, metrics: `${ops.scheme}://${hostPort(bound)}` },
    'agent started',
  );
  await untilStopSignal(log, 'stopping: releasing VIPs');
  await agent.stop();
  await ops.stop();
  await api.close();
  log.info('agent stopped');
  // Everything is released. Handles that outlive the member (the sockets heartline-netd handed
  // over: heartbeat, launcher) would keep the event loop alive, and the kubelet would SIGKILL
  // the pod only at the end of its grace period (found on real kubelets: every agent pod
  // restart took 120 s, so a DaemonSet rollout timed out).
  process.exit(0);
}
