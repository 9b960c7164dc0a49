/**
 * What the on-call engineer uses, against the real API server with the controller running
 * (in-process, real K8sApiSource and K8sLeaseLock) and three members on real UDP sockets on
 * 127.0.0.1 (MemberHosts with recording effects, as in controller.test.ts):
 *
 * - kstatus: `kubectl wait --for=condition=Ready` and `--for=jsonpath=...` on the three kinds,
 *   observedGeneration following a spec change;
 * - printer columns (`kubectl get`, `-o wide`);
 * - the kubectl plugin: `kubectl heartline status | move | standby | unstandby`, with the
 *   heartline binary found on PATH as kubectl-heartline, as a user installs it.
 *
 * The members here do not watch the API server (agents do): the test rebuilds their
 * configuration from the API after each change, as an agent's watch would.
 */
import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { K8sLeaseLock } from '../../src/adapters/k8s/lease-lock.js';
import { UdpTransport } from '../../src/adapters/udp/udp-transport.js';
import { ResourceStatusReporter } from '../../src/agent/resource-status.js';
import { Controller } from '../../src/controller/controller.js';
import { ControllerMetrics } from '../../src/controller/metrics.js';
import {
  HEARTBEAT_ADDRESS_ANNOTATION,
  HEARTBEAT_PORT_ANNOTATION,
  MEMBER_KEY_ANNOTATION,
  MOVE_TO_ANNOTATION,
  buildClusterConfig,
  type ClusterConfig,
} from '../../src/runtime/cluster-config.js';
import { MemberHost } from '../../src/runtime/member-host.js';
import { argoHealth } from '../fixtures/argocd-health.js';
import { memberKeyOf, publicKeyOf } from '../fixtures/member-keys.js';
import {
  createTestNamespace,
  deleteNamespace,
  kubeconfig,
  kubectl,
  mustKubectl,
  until as untilShared,
} from './helpers.js';

jest.setTimeout(180_000);

const log = pino({ level: process.env.HEARTLINE_TEST_LOG ?? 'silent' });
const clock = new SystemClock();
const until = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000) =>
  untilShared(what, fn, timeoutMs, 100);

interface Agent {
  name: string;
  transport: UdpTransport;
  host?: MemberHost;
  /** Every bind and unbind, in order, for the one-holder check. */
  events: Array<{ vip: string; bound: boolean; at: number }>;
}

describe('kubectl heartline, kstatus and printer columns (real API server, controller running)', () => {
  let ns: string;
  let pluginDir: string;
  const suffix = randomBytes(3).toString('hex');
  const [A, B, C] = ['a', 'b', 'c'].map((n) => `hl-kh-${suffix}-${n}`) as [string, string, string];
  const nodeNames = [A, B, C];
  const agents: Agent[] = [];
  let controller: Controller | undefined;
  const reader = new K8sApiSource(
    { kubeConfig: loadKubeConfig(kubeconfig()), clock, logger: log },
    { identity: 'test-reader' },
  );

  async function config(): Promise<ClusterConfig> {
    const cluster = (await reader.get('HACluster', { namespace: ns, name: 'web' }))!;
    return buildClusterConfig({
      cluster,
      vips: await reader.list('VirtualIP', { namespace: ns }),
      resources: [],
      nodes: (await reader.list('Node')).filter((n) => nodeNames.includes(n.metadata.name)),
      secret: await reader.get('Secret', { namespace: ns, name: 'auth' }),
      witness:
        (cluster.status as { witness?: { address: string; port: number } } | undefined)?.witness ?? null,
    });
  }

  /** What an agent's watch does: rebuild the configuration and apply it. */
  async function propagate(): Promise<void> {
    const cfg = await config();
    for (const a of agents) {
      a.host?.reconfigure(cfg);
      a.host?.setLocal({ standby: cfg.standby.has(a.name) });
    }
  }

  const vipStatus = async () =>
    ((await reader.get('VirtualIP', { namespace: ns, name: 'vip1' }))?.status ?? {}) as {
      holder?: string;
      epoch?: number;
      phase?: string;
      lastFailover?: { from?: string; to?: string; reason: string; durationMs?: number };
      failoverCount?: number;
    };

  /** Most members with the VIP bound at once, from the bind/unbind record. */
  function maxHolders(vip: string): number {
    const all = agents
      .flatMap((a) => a.events.filter((e) => e.vip === vip).map((e) => ({ ...e, who: a.name })))
      .sort((x, y) => x.at - y.at || (x.bound ? 1 : -1));
    const bound = new Set<string>();
    let max = 0;
    for (const e of all) {
      if (e.bound) bound.add(e.who);
      else bound.delete(e.who);
      max = Math.max(max, bound.size);
    }
    return max;
  }

  /** `kubectl heartline ARGS` (kubectl refuses its own flags before a plugin's name). */
  const heartline = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('kubectl', ['heartline', ...args, '--kubeconfig', kubeconfig(), '-n', ns], {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
        env: { ...process.env, PATH: `${pluginDir}:${process.env.PATH ?? ''}` },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });

  beforeAll(async () => {
    ns = await createTestNamespace('hl-kubectl-heartline');
    // The plugin as a user installs it: an executable named kubectl-heartline on PATH.
    pluginDir = await mkdtemp(join(tmpdir(), 'hl-plugin-'));
    const plugin = join(pluginDir, 'kubectl-heartline');
    await writeFile(
      plugin,
      `#!/bin/sh\nexec "${process.execPath}" --import tsx "${join(process.cwd(), 'src/cli/main.ts')}" "$@"\n`,
    );
    await chmod(plugin, 0o755);

    for (const name of nodeNames) {
      agents.push({
        name,
        transport: await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log }),
        events: [],
      });
    }
    const docs = [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'auth', namespace: ns },
        data: { '1': randomBytes(32).toString('base64') },
      },
      ...agents.map((a) => ({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: a.name,
          labels: { 'heartline.dev/test-cluster': suffix },
          annotations: {
            [HEARTBEAT_ADDRESS_ANNOTATION]: '127.0.0.1',
            [MEMBER_KEY_ANNOTATION]: publicKeyOf(a.name),
            [HEARTBEAT_PORT_ANNOTATION]: String(a.transport.address().port),
          },
        },
      })),
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: 'web', namespace: ns },
        spec: {
          nodeSelector: { 'heartline.dev/test-cluster': suffix },
          authSecretRef: { name: 'auth', activeKeyId: '1' },
          quorum: 'majority',
        },
      },
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'VirtualIP',
        metadata: { name: 'vip1', namespace: ns },
        spec: { clusterRef: { name: 'web' }, address: '198.18.0.100/24', preferredNodes: [A, B] },
      },
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'Resource',
        metadata: { name: 'app', namespace: ns },
        spec: {
          kind: 'exec',
          exec: {
            start: ['/etc/heartline/resource.d/app', 'start'],
            stop: ['/etc/heartline/resource.d/app', 'stop'],
          },
        },
      },
    ];
    await mustKubectl(['apply', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n'));

    const kubeConfig = loadKubeConfig(kubeconfig());
    const transport = await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log });
    controller = new Controller(
      {
        api: new K8sApiSource({ kubeConfig, clock, logger: log }, { identity: 'kh-controller' }),
        lease: new K8sLeaseLock(
          { kubeConfig, clock },
          { namespace: ns, name: 'heartline-controller', identity: 'kh', leaseDurationSeconds: 15 },
        ),
        clock,
        log,
        metrics: new ControllerMetrics(),
        transport,
      },
      { namespace: ns, witness: { address: '127.0.0.1', port: transport.address().port } },
    );
    controller.start();
    await until('status.witness', async () => {
      const c = await reader.get('HACluster', { namespace: ns, name: 'web' });
      return (c?.status as { witness?: unknown } | undefined)?.witness;
    });
    const cfg = await config();
    for (const a of agents) {
      a.host = new MemberHost(
        {
          clock,
          transport: a.transport,
          log: log.child({ agent: a.name }),
          effects: {
            bind: (cmd) => void a.events.push({ vip: cmd.vip, bound: true, at: performance.now() }),
            renew: () => {},
            unbind: (cmd) => void a.events.push({ vip: cmd.vip, bound: false, at: performance.now() }),
          },
        },
        {
          self: a.name,
          config: cfg,
          incarnation: Math.floor(Date.now() / 1000),
          signingKey: memberKeyOf(a.name),
        },
      );
      a.host.start();
    }
  });

  afterAll(async () => {
    for (const a of agents) {
      await a.host?.stop();
      await a.transport.close();
    }
    await controller?.stop();
    await reader.close();
    await rm(pluginDir, { recursive: true, force: true });
    await kubectl(['delete', 'node', ...nodeNames, '--ignore-not-found', '--wait=false']);
    const left = await kubectl(['get', 'virtualip', '-n', ns, '-o', 'name']);
    for (const n of left.stdout.split('\n').filter(Boolean))
      await kubectl([
        'patch',
        '-n',
        ns,
        n,
        '--type=json',
        '-p',
        '[{"op":"remove","path":"/metadata/finalizers"}]',
      ]);
    await deleteNamespace(ns);
  });

  it('kstatus: kubectl wait for Ready and for jsonpath on VirtualIP, HACluster and Resource; observedGeneration follows the spec', async () => {
    const wait = async (args: string[]) => {
      const r = await kubectl(['wait', '-n', ns, '--timeout=30s', ...args], { timeoutMs: 40_000 });
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
      return r.stdout;
    };
    expect(await wait(['--for=condition=Ready', 'virtualip/vip1'])).toMatch(/condition met/);
    await wait([`--for=jsonpath={.status.holder}=${A}`, 'vip/vip1']);
    await wait(['--for=jsonpath={.status.phase}=Bound', 'vip/vip1']);
    await wait(['--for=condition=Ready', 'hacluster/web']);
    await wait(['--for=jsonpath={.status.quorum.state}=quorate', 'hac/web']);
    await wait(['--for=condition=Degraded=False', 'hac/web']);

    // A spec change: the generation grows, status.observedGeneration and Ready's follow.
    const gen = async () =>
      JSON.parse(await mustKubectl(['get', 'vip', 'vip1', '-n', ns, '-o', 'json'])) as {
        metadata: { generation: number };
        status: {
          observedGeneration: number;
          conditions: Array<{ type: string; observedGeneration: number }>;
        };
      };
    const g1 = (await gen()).metadata.generation;
    await mustKubectl([
      'patch',
      'vip',
      'vip1',
      '-n',
      ns,
      '--type=merge',
      '-p',
      '{"spec":{"announce":{"count":4}}}',
    ]);
    const g2 = (await gen()).metadata.generation;
    expect(g2).toBe(g1 + 1);
    await wait([`--for=jsonpath={.status.observedGeneration}=${g2}`, 'vip/vip1']);
    const v = await gen();
    expect(v.status.conditions.find((c) => c.type === 'Ready')?.observedGeneration).toBe(g2);
    const hac = JSON.parse(await mustKubectl(['get', 'hac', 'web', '-n', ns, '-o', 'json'])) as {
      metadata: { generation: number };
      status: { observedGeneration: number; conditions: Array<{ type: string; observedGeneration: number }> };
    };
    expect(hac.status.observedGeneration).toBe(hac.metadata.generation);
    expect(hac.status.conditions.find((c) => c.type === 'Ready')?.observedGeneration).toBe(
      hac.metadata.generation,
    );

    // Resource: the agents' reporter writes Ready, summary and observedGeneration with its node entry.
    const api = new K8sApiSource(
      { kubeConfig: loadKubeConfig(kubeconfig()), clock, logger: log },
      { identity: 'kh-agent' },
    );
    try {
      const reporter = new ResourceStatusReporter({ api, log }, A);
      reporter.state(`${ns}/app`, 'starting');
      reporter.state(`${ns}/app`, 'running');
      await wait(['--for=condition=Ready', 'resource.heartline.dev/app']);
      await wait([`--for=jsonpath={.status.summary.running}=${A}`, 'hares/app']);
      await wait(['--for=jsonpath={.status.observedGeneration}=1', 'hares/app']);
      new ResourceStatusReporter({ api, log }, B).state(`${ns}/app`, 'failed', 'start exited 1');
      await wait(['--for=condition=Ready=False', 'hares/app']);
      // The Argo CD health checks of docs/gitops.md on what the controller and agents wrote.
      const json = async (what: string) =>
        JSON.parse(await mustKubectl(['get', what, '-n', ns, '-o', 'json'])) as unknown;
      expect(argoHealth('VirtualIP', await json('vip/vip1'))).toMatchObject({ status: 'Healthy' });
      expect(argoHealth('HACluster', await json('hac/web'))).toEqual({
        status: 'Healthy',
        message: 'Quorate: 3 votes reachable, 2 needed',
      });
      expect(argoHealth('Resource', await json('hares/app'))).toEqual({
        status: 'Degraded',
        message: `Failed: failed on ${B} (start exited 1)`,
      });
      const r = await mustKubectl(['get', 'hares', 'app', '-n', ns, '-o', 'wide']);
      expect(r).toMatch(/^NAME\s+KIND\s+RUNNING-ON\s+READY\s+AGE\s+REASON/);
      expect(r).toMatch(new RegExp(`app\\s+exec\\s+${A}\\s+False\\s+\\S+\\s+Failed`));
    } finally {
      await api.close();
    }
  });

  it('printer columns: kubectl get vip (-o wide) and hac', async () => {
    const vip = await mustKubectl(['get', 'vip', '-n', ns]);
    expect(vip).toMatch(/^NAME\s+ADDRESS\s+HOLDER\s+EPOCH\s+READY\s+AGE\n/);
    expect(vip).toMatch(new RegExp(`vip1\\s+198\\.18\\.0\\.100/24\\s+${A}\\s+1\\s+True`));
    const wide = await mustKubectl(['get', 'vip', '-n', ns, '-o', 'wide']);
    expect(wide).toMatch(
      /^NAME\s+ADDRESS\s+HOLDER\s+EPOCH\s+READY\s+AGE\s+CLUSTER\s+PHASE\s+LAST-FAILOVER\s+REASON\s+FAILOVERS\n/,
    );
    expect(wide).toMatch(/\s+web\s+Bound\s*\n/);
    const hac = await until('MEMBERS 3/3 and VIPS 1/1', async () => {
      const out = await mustKubectl(['get', 'hac', '-n', ns, '-o', 'wide']);
      return /web\s+3\/3\s+quorate\s+1\/1\s+True/.test(out) ? out : undefined;
    });
    expect(hac).toMatch(/^NAME\s+MEMBERS\s+QUORUM\s+VIPS\s+READY\s+AGE\s+VOTES\s+GENERATION\n/);
  });

  it('kubectl heartline move: planned handoff to the named node, one holder throughout; refusals name the reason', async () => {
    // Refused: not a member; nothing changes.
    const bad = await heartline(['move', 'vip1', '--to', 'no-such-node']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`cannot move ${ns}/vip1 to no-such-node: no-such-node is not a member`);
    expect(bad.stderr).toContain('nothing changed');
    const missing = await heartline(['move', 'nope', '--to', B]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`VirtualIP ${ns}/nope not found`);

    // Move to C, waiting for it (the members learn the target as an agent's watch would).
    const move = heartline(['move', 'vip1', '--to', C, '--timeout', '30s']);
    await until('move-to annotation', async () => {
      const o = await reader.get('VirtualIP', { namespace: ns, name: 'vip1' });
      return o?.metadata.annotations?.[MOVE_TO_ANNOTATION] === C;
    });
    await propagate();
    const r = await move;
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toContain(`moving from ${A} to ${C} (planned handoff)`);
    expect(r.stdout).toMatch(new RegExp(`on ${C} at epoch 2 \\(Moved, \\d+ ms without a holder\\)`));
    const s = await vipStatus();
    expect(s).toMatchObject({ holder: C, epoch: 2, failoverCount: 1 });
    expect(s.lastFailover).toMatchObject({ from: A, to: C, reason: 'Moved' });
    expect(maxHolders(`${ns}/vip1`)).toBe(1);
    const wide = await mustKubectl(['get', 'vip', 'vip1', '-n', ns, '-o', 'wide']);
    expect(wide).toMatch(
      new RegExp(`vip1\\s+\\S+\\s+${C}\\s+2\\s+True\\s+\\S+\\s+web\\s+Bound\\s+\\S+\\s+Moved\\s+1\\n`),
    );

    // Standby of the target: the VIP leaves it (planned), and comes back when it returns (pinned).
    const sb = await heartline(['standby', C, '--no-wait']);
    expect(sb).toMatchObject({ code: 0, stdout: `node/${C} in standby\n` });
    const refused = await heartline(['move', 'vip1', '--to', C]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${C} is in standby`);
    await propagate();
    await until('VIP off the standby node', async () => (await vipStatus()).holder === A);
    expect((await vipStatus()).lastFailover).toMatchObject({ from: C, to: A, reason: 'Drain' });
    expect((await heartline(['unstandby', C])).stdout).toBe(`node/${C} out of standby\n`);
    await propagate();
    await until('VIP back on the move target', async () => (await vipStatus()).holder === C);
    expect((await vipStatus()).lastFailover).toMatchObject({ from: A, to: C, reason: 'Moved' });

    // Clear: the target goes, the VIP stays (sticky).
    const clear = await heartline(['move', 'vip1', '--clear']);
    expect(clear.stdout).toContain(`move target cleared; it stays on ${C}`);
    await propagate();
    const o = await reader.get('VirtualIP', { namespace: ns, name: 'vip1' });
    expect(o?.metadata.annotations?.[MOVE_TO_ANNOTATION]).toBeUndefined();
    expect((await vipStatus()).holder).toBe(C);
    expect(maxHolders(`${ns}/vip1`)).toBe(1);
  });

  it('kubectl heartline status: members, holders, epochs, failovers with reasons', async () => {
    await until('status caught up', async () => (await vipStatus()).failoverCount === 3);
    const r = await heartline(['status']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const out = r.stdout;
    expect(out).toContain(`HACluster ${ns}/web: Ready`);
    expect(out).toMatch(
      /quorum quorate \(3 votes, 2 needed\), policy majority · members 3\/3 alive · VIPs 1\/1 held/,
    );
    expect(out).toMatch(/MEMBER\s+STATE\s+INCARNATION\s+LAST-SEEN\s+STANDBY\s+HOLDS\s+AGENT/);
    for (const n of nodeNames) expect(out).toMatch(new RegExp(`${n}\\s+alive\\s+\\d+\\s+now\\s+-\\s+`));
    expect(out).toMatch(new RegExp(`${C}\\s+alive\\s+\\d+\\s+now\\s+-\\s+vip1`));
    expect(out).toMatch(/VIP\s+ADDRESS\s+HOLDER\s+EPOCH\s+PHASE\s+READY\s+SINCE\s+LEASE-LEFT\s+FAILOVERS/);
    expect(out).toMatch(
      new RegExp(`vip1\\s+198\\.18\\.0\\.100/24\\s+${C}\\s+4\\s+Bound\\s+True\\s+\\S+\\s+-\\s+3`),
    );
    expect(out).toMatch(new RegExp(`Last failovers:\\n\\s+\\S+ ago\\s+vip1\\s+${A} -> ${C}\\s+Moved`));
    process.stdout.write(`kubectl heartline status:\n${out}`);
  });
});
