/**
 * The on-call commands, also run as a kubectl plugin (`kubectl heartline ...`, the same
 * binary installed as kubectl-heartline): `status` (crm_mon-like view), `move VIP --to NODE`
 * (a planned handoff, docs/adr/0031), `standby NODE` and `unstandby NODE`.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Command } from 'commander';
import type { ApiObject } from '../../core/ports.js';

interface Common {
  kubeconfig?: string;
  namespace?: string;
}

const GROUP_PATH = '/apis/heartline.dev/v1alpha1';
const MERGE = 'application/merge-patch+json';

class CliError extends Error {}

/** Connection and namespace as kubectl resolves them (--kubeconfig, KUBECONFIG, ~/.kube/config, in-cluster). */
async function connect(opts: Common) {
  const { loadRestConfig } = await import('../../adapters/k8s/kubeconfig.js');
  const { RestClient } = await import('../../adapters/k8s/rest-client.js');
  const config = await loadRestConfig(opts.kubeconfig ? { path: opts.kubeconfig } : {});
  const client = new RestClient(config, { userAgent: 'kubectl-heartline', requestTimeoutMs: 15_000 });
  const namespace = opts.namespace ?? config.namespace ?? 'default';
  return { client, config, namespace };
}

type Client = Awaited<ReturnType<typeof connect>>['client'];

async function getOrUndefined(client: Client, path: string): Promise<ApiObject | undefined> {
  const { HttpStatusError } = await import('../../adapters/k8s/rest-client.js');
  try {
    return await client.request<ApiObject>('GET', path);
  } catch (err) {
    if (err instanceof HttpStatusError && err.code === 404) return undefined;
    throw err;
  }
}

async function list(client: Client, path: string): Promise<ApiObject[]> {
  return (await client.request<{ items: ApiObject[] }>('GET', path)).items;
}

/** Runs `fn`, prints a CliError (or any error) as `heartline: ...` and sets the exit code. */
async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    process.stderr.write(`heartline: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new CliError(`--timeout ${s}: use e.g. 30s, 500ms or 2m`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

/** GET a small text from an agent endpoint; never sends credentials unless `token` (verified TLS only). */
function fetchText(
  url: string,
  timeoutMs: number,
  tls: { ca?: string; token?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    const headers: Record<string, string> = {};
    if (tls.token && secure && tls.ca) headers.authorization = tls.token;
    const req = (secure ? httpsRequest : httpRequest)(
      u,
      {
        method: 'GET',
        headers,
        timeout: timeoutMs,
        ...(secure ? (tls.ca ? { ca: tls.ca } : { rejectUnauthorized: false }) : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (body.length < 4_000_000) body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The address an agent serves its endpoints on: the Node's InternalIP (the DaemonSet's $(HOST_IP)). */
function agentAddress(node: ApiObject): string | undefined {
  const addrs = (node.status as { addresses?: Array<{ type: string; address: string }> } | undefined)
    ?.addresses;
  const ip = addrs?.find((a) => a.type === 'InternalIP')?.address;
  if (ip) return ip.includes(':') ? `[${ip}]` : ip;
  return undefined;
}

export function opsCommands(program: Command): void {
  const common = (c: Command) =>
    c
      .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)')
      .option('-n, --namespace <ns>', "namespace (default: the context's, else default)");

  common(
    program
      .command('status')
      .description(
        'A cluster at a glance (crm_mon): members and liveness, holders, epochs, lease time left, last failovers with reasons. Read from the API, and live from the agents when reachable.',
      )
      .option('--cluster <name>', 'only this HACluster')
      .option('-A, --all-namespaces', 'every namespace')
      .option('--no-live', "do not ask the agents' endpoints")
      .option('--agent-port <port>', "the agents' ops port (the DaemonSet's --metrics-listen)", '9694')
      .option(
        '--agent-ca <file>',
        "CA of the agents' serving certificates: /metrics is read (with your token) only over HTTPS verified with it, or over plain HTTP",
      )
      .option('--timeout <duration>', 'per agent', '1s'),
  ).action(
    (
      opts: Common & {
        cluster?: string;
        allNamespaces?: boolean;
        live: boolean;
        agentPort: string;
        agentCa?: string;
        timeout: string;
      },
    ) =>
      run(async () => {
        const { client, config, namespace } = await connect(opts);
        const { renderStatus } = await import('../cluster-view.js');
        const scope = opts.allNamespaces ? '' : `/namespaces/${namespace}`;
        let clusters = await list(client, `${GROUP_PATH}${scope}/haclusters`);
        if (opts.cluster) clusters = clusters.filter((c) => c.metadata.name === opts.cluster);
        if (opts.cluster && clusters.length === 0)
          throw new CliError(`HACluster ${namespace}/${opts.cluster} not found`);
        const vips = await list(client, `${GROUP_PATH}${scope}/virtualips`);
        let nodes: ApiObject[] = [];
        try {
          nodes = await list(client, '/api/v1/nodes');
        } catch (err) {
          process.stderr.write(
            `heartline: cannot list Nodes (${(err as Error).message}): no standby/agent view\n`,
          );
        }
        const live = opts.live
          ? await liveView(clusters, nodes, {
              port: Number(opts.agentPort),
              timeoutMs: parseDuration(opts.timeout),
              ...(opts.agentCa
                ? { ca: await (await import('node:fs/promises')).readFile(opts.agentCa, 'utf8') }
                : {}),
              token: config.authorization(),
            })
          : undefined;
        process.stdout.write(
          renderStatus({ clusters, vips, nodes, ...(live ? { live } : {}), now: new Date() }),
        );
        client.closeIdle();
      }),
  );

  common(
    program
      .command('move <vip>')
      .description(
        'Move a VirtualIP to a node by a planned handoff (release first, then the node binds: never two holders). It stays there while that node is usable, until --clear (docs/adr/0031).',
      )
      .option('--to <node>', 'the member to move it to')
      .option('--clear', 'remove the move target (the VIP stays where it is)')
      .option('--no-wait', 'return once the move is requested')
      .option('--timeout <duration>', 'how long to wait for the new holder', '30s'),
  ).action(
    (vipName: string, opts: Common & { to?: string; clear?: boolean; wait: boolean; timeout: string }) =>
      run(async () => {
        const { MOVE_TO_ANNOTATION, moveTargetProblem, nodeStandby } =
          await import('../../runtime/cluster-config.js');
        if (!opts.to === !opts.clear) throw new CliError('move: give either --to NODE or --clear');
        const { client, namespace } = await connect(opts);
        const vipPath = `${GROUP_PATH}/namespaces/${namespace}/virtualips/${vipName}`;
        const vip = await getOrUndefined(client, vipPath);
        if (!vip) throw new CliError(`VirtualIP ${namespace}/${vipName} not found`);
        if (opts.clear) {
          await client.request('PATCH', vipPath, {
            body: { metadata: { annotations: { [MOVE_TO_ANNOTATION]: null } } },
            contentType: MERGE,
          });
          process.stdout.write(
            `virtualip ${namespace}/${vipName}: move target cleared; it stays on ${(vip.status as { holder?: string } | undefined)?.holder ?? 'its holder'}\n`,
          );
          client.closeIdle();
          return;
        }
        const to = opts.to!;
        const spec = vip.spec as { clusterRef: { name: string }; nodeSelector?: Record<string, string> };
        const cluster = await getOrUndefined(
          client,
          `${GROUP_PATH}/namespaces/${namespace}/haclusters/${spec.clusterRef.name}`,
        );
        if (!cluster)
          throw new CliError(`HACluster ${namespace}/${spec.clusterRef.name} (spec.clusterRef) not found`);
        const cst = (cluster.status ?? {}) as {
          membership?: { members: string[] };
          members?: Array<{ name: string; state: string }>;
        };
        const memberIds = cst.membership?.members ?? cst.members?.map((m) => m.name) ?? [];
        const nodes = await list(client, '/api/v1/nodes');
        const eligible = spec.nodeSelector
          ? nodes
              .filter((n) =>
                Object.entries(spec.nodeSelector!).every(([k, v]) => n.metadata.labels?.[k] === v),
              )
              .map((n) => n.metadata.name)
          : undefined;
        const why = moveTargetProblem(
          to,
          memberIds.map((id) => ({ id })),
          eligible,
        );
        const refuse = (reason: string) =>
          new CliError(`cannot move ${namespace}/${vipName} to ${to}: ${reason}; nothing changed`);
        if (why) throw refuse(`${why} of HACluster ${spec.clusterRef.name}`);
        const node = nodes.find((n) => n.metadata.name === to);
        if (node && nodeStandby(node))
          throw refuse(
            `${to} is in standby (cordoned or heartline.dev/standby); bring it back first: kubectl heartline unstandby ${to}`,
          );
        const state = cst.members?.find((m) => m.name === to)?.state;
        if (state === 'dead')
          throw refuse(`${to} is dead (not heard for deadMs); see kubectl heartline status`);
        const before = (vip.status ?? {}) as { holder?: string; epoch?: number };
        await client.request('PATCH', vipPath, {
          body: { metadata: { annotations: { [MOVE_TO_ANNOTATION]: to } } },
          contentType: MERGE,
        });
        if (before.holder === to) {
          process.stdout.write(
            `virtualip ${namespace}/${vipName} is on ${to} already; pinned there (${MOVE_TO_ANNOTATION})\n`,
          );
          client.closeIdle();
          return;
        }
        process.stdout.write(
          `virtualip ${namespace}/${vipName}: moving from ${before.holder ?? '<none>'} to ${to} (planned handoff)\n`,
        );
        if (!opts.wait) {
          client.closeIdle();
          return;
        }
        const deadline = Date.now() + parseDuration(opts.timeout);
        for (;;) {
          const cur = await getOrUndefined(client, vipPath);
          const s = (cur?.status ?? {}) as {
            holder?: string;
            epoch?: number;
            phase?: string;
            lastFailover?: { reason: string; durationMs?: number; to?: string };
          };
          if (s.holder === to && s.phase === 'Bound') {
            const f = s.lastFailover?.to === to ? s.lastFailover : undefined;
            process.stdout.write(
              `virtualip ${namespace}/${vipName}: on ${to} at epoch ${s.epoch ?? '?'}${f ? ` (${f.reason}${f.durationMs !== undefined ? `, ${f.durationMs} ms without a holder` : ''})` : ''}; it stays there while ${to} is usable (clear: kubectl heartline move ${vipName} --clear)\n`,
            );
            break;
          }
          if (Date.now() > deadline) {
            client.closeIdle();
            throw new CliError(
              `virtualip ${namespace}/${vipName}: still on ${s.holder ?? '<none>'} (phase ${s.phase ?? '?'}) after ${opts.timeout}; the move stays requested. See kubectl heartline status and kubectl describe vip ${vipName}`,
            );
          }
          await sleep(200);
        }
        client.closeIdle();
      }),
  );

  for (const [name, on] of [
    ['standby', true],
    ['unstandby', false],
  ] as const) {
    common(
      program
        .command(`${name} <node>`)
        .description(
          on
            ? 'Put a node in standby (annotation heartline.dev/standby=true): its VIPs move away by planned handoffs and it takes none.'
            : 'Take a node out of standby (removes heartline.dev/standby): it may hold VIPs again.',
        )
        .option(
          '--no-wait',
          on ? 'return without waiting for its VIPs to move' : 'no effect (kept for symmetry)',
        )
        .option('--timeout <duration>', 'how long to wait for its VIPs to move away', '30s'),
    ).action((nodeName: string, opts: Common & { wait: boolean; timeout: string }) =>
      run(async () => {
        const { STANDBY_ANNOTATION } = await import('../../runtime/cluster-config.js');
        const { client } = await connect(opts);
        const path = `/api/v1/nodes/${nodeName}`;
        const node = await getOrUndefined(client, path);
        if (!node) throw new CliError(`Node ${nodeName} not found`);
        await client.request('PATCH', path, {
          body: { metadata: { annotations: { [STANDBY_ANNOTATION]: on ? 'true' : null } } },
          contentType: MERGE,
        });
        const cordoned = (node.spec as { unschedulable?: boolean } | undefined)?.unschedulable === true;
        process.stdout.write(`node/${nodeName} ${on ? 'in standby' : 'out of standby'}\n`);
        if (!on && cordoned)
          process.stdout.write(
            `note: node/${nodeName} is cordoned, which counts as standby too: kubectl uncordon ${nodeName}\n`,
          );
        if (on && opts.wait) {
          const deadline = Date.now() + parseDuration(opts.timeout);
          for (;;) {
            const held = (await list(client, `${GROUP_PATH}/virtualips`)).filter(
              (v) => (v.status as { holder?: string } | undefined)?.holder === nodeName,
            );
            if (held.length === 0) {
              process.stdout.write(`node/${nodeName} holds no VirtualIP\n`);
              break;
            }
            if (Date.now() > deadline) {
              client.closeIdle();
              throw new CliError(
                `node/${nodeName} still holds ${held.map((v) => `${v.metadata.namespace}/${v.metadata.name}`).join(', ')} after ${opts.timeout} (no other eligible member?); see kubectl heartline status`,
              );
            }
            await sleep(200);
          }
        }
        client.closeIdle();
      }),
    );
  }
}

/** Asks every member's agent for /readyz and, when allowed, /metrics, in parallel. */
async function liveView(
  clusters: ApiObject[],
  nodes: ApiObject[],
  o: { port: number; timeoutMs: number; ca?: string; token: string | undefined },
) {
  const { parseAgentMetrics } = await import('../cluster-view.js');
  type AgentLive = import('../cluster-view.js').AgentLive;
  const names = new Set<string>();
  for (const c of clusters) {
    const st = (c.status ?? {}) as { members?: Array<{ name: string }>; membership?: { members: string[] } };
    for (const n of st.members?.map((m) => m.name) ?? st.membership?.members ?? []) names.add(n);
  }
  const out = new Map<string, AgentLive>();
  await Promise.all(
    [...names].map(async (name) => {
      const node = nodes.find((n) => n.metadata.name === name);
      const addr = node && agentAddress(node);
      if (!addr) return;
      const tls = { ...(o.ca ? { ca: o.ca } : {}), ...(o.token ? { token: o.token } : {}) };
      let base = `https://${addr}:${o.port}`;
      let ready: { status: number; body: string } | undefined;
      let error = '';
      for (const scheme of ['https', 'http']) {
        try {
          base = `${scheme}://${addr}:${o.port}`;
          ready = await fetchText(`${base}/readyz`, o.timeoutMs, tls);
          break;
        } catch (err) {
          error ||= (err as Error).message;
        }
      }
      if (!ready) {
        out.set(name, { url: `https://${addr}:${o.port}`, error });
        return;
      }
      const live: AgentLive = { url: base, ready: ready.status === 200, reason: ready.body.trim() };
      if (base.startsWith('http:') || o.ca) {
        try {
          const m = await fetchText(`${base}/metrics`, o.timeoutMs, tls);
          if (m.status === 200) Object.assign(live, parseAgentMetrics(m.body));
          else live.metricsNote = `/metrics: HTTP ${m.status}`;
        } catch (err) {
          live.metricsNote = `/metrics: ${(err as Error).message}`;
        }
      } else live.metricsNote = '/metrics not read: pass --agent-ca to send your token over verified HTTPS';
      out.set(name, live);
    }),
  );
  return out;
}
