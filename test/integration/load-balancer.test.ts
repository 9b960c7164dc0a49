/**
 * LoadBalancer Services against the real API server (issue 14): the controller runs
 * in-process with the real K8sApiSource (also its ObjectWriter) and K8sLeaseLock. The
 * HACluster names an auth Secret that does not exist, so no member can be observed and a
 * deleted VirtualIP keeps its finalizer until the release timeout: the window in which an
 * address must stay taken.
 */
import { jest } from '@jest/globals';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { K8sLeaseLock } from '../../src/adapters/k8s/lease-lock.js';
import { UdpTransport } from '../../src/adapters/udp/udp-transport.js';
import { Controller } from '../../src/controller/controller.js';
import { InstrumentedApiSource } from '../../src/controller/instrumented-api.js';
import { ControllerMetrics } from '../../src/controller/metrics.js';
import type { ApiObject } from '../../src/core/ports.js';
import { createTestNamespace, deleteNamespace, kubeconfig, kubectl, mustKubectl, until } from './helpers.js';

jest.setTimeout(120_000);

const log = pino({ level: process.env.HEARTLINE_TEST_LOG ?? 'silent' });
const clock = new SystemClock();
const RELEASE_TIMEOUT_MS = 4000;

interface Running {
  controller: Controller;
  api: InstrumentedApiSource;
  transport: UdpTransport;
}

interface SvcStatus {
  loadBalancer?: { ingress?: Array<{ ip: string; ipMode?: string }> };
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
}

describe('LoadBalancer Services (real API server)', () => {
  let ns: string;
  let running: Running | undefined;
  const reader = new K8sApiSource(
    { kubeConfig: loadKubeConfig(kubeconfig()), clock, logger: log },
    { identity: 'test-reader' },
  );

  async function startController(identity: string): Promise<Running> {
    const kubeConfig = loadKubeConfig(kubeconfig());
    const transport = await UdpTransport.open({ address: '127.0.0.1', port: 0, logger: log });
    const api = new InstrumentedApiSource(new K8sApiSource({ kubeConfig, clock, logger: log }, { identity }));
    const lease = new K8sLeaseLock(
      { kubeConfig, clock },
      { namespace: ns, name: 'heartline-controller', identity, leaseDurationSeconds: 15 },
    );
    const controller = new Controller(
      {
        api,
        lease,
        clock,
        log: log.child({ identity }),
        metrics: new ControllerMetrics(),
        transport,
        objects: api.writer()!,
      },
      {
        namespace: ns,
        witness: { address: '127.0.0.1', port: transport.address().port },
        releaseTimeoutMs: RELEASE_TIMEOUT_MS,
      },
    );
    controller.start();
    await until('controller to lead', async () => controller.isLeader);
    return { controller, api, transport };
  }

  async function stopController(r: Running | undefined): Promise<void> {
    if (!r) return;
    await r.controller.stop();
    await r.transport.close();
  }

  const apply = (docs: object[]) =>
    mustKubectl(['apply', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n'));

  function service(
    name: string,
    opts: {
      cls?: string | null;
      annotations?: Record<string, string>;
      ports?: number[];
      loadBalancerIP?: string;
      policy?: string;
      families?: string[];
    } = {},
  ) {
    return {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: ns, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
      spec: {
        type: 'LoadBalancer',
        ...(opts.cls === null ? {} : { loadBalancerClass: opts.cls ?? 'heartline.dev/vip' }),
        ...(opts.loadBalancerIP ? { loadBalancerIP: opts.loadBalancerIP } : {}),
        ...(opts.policy ? { ipFamilyPolicy: opts.policy } : {}),
        ...(opts.families ? { ipFamilies: opts.families } : {}),
        selector: { app: name },
        ports: (opts.ports ?? [80]).map((port) => ({ name: `p${port}`, protocol: 'TCP', port })),
      },
    };
  }

  const svcStatus = async (name: string): Promise<SvcStatus> =>
    ((await reader.get('Service', { namespace: ns, name }))?.status ?? {}) as SvcStatus;
  const ingressOf = async (name: string) => (await svcStatus(name)).loadBalancer?.ingress ?? [];
  const ipsOf = async (name: string) => (await ingressOf(name)).map((i) => i.ip);
  const condition = async (name: string, type: string) =>
    (await svcStatus(name)).conditions?.find((c) => c.type === type);
  const allocated = (name: string) =>
    until(`an address for Service ${name}`, async () => {
      const ips = await ipsOf(name);
      return ips.length > 0 ? ips : undefined;
    });
  const vipOf = (ip: string): Promise<ApiObject | undefined> =>
    reader.get('VirtualIP', { namespace: ns, name: `lb-${ip.replace(/[.:]/g, '-')}` });
  const events = async () =>
    (
      JSON.parse(await mustKubectl(['get', 'events.events.k8s.io', '-n', ns, '-o', 'json'])) as {
        items: Array<{
          reason: string;
          type: string;
          note: string;
          regarding: { kind: string; name: string };
        }>;
      }
    ).items;
  const eventFor = (name: string, reason: string) =>
    until(`Event ${reason} for Service ${name}`, async () =>
      (await events()).find(
        (e) => e.regarding.kind === 'Service' && e.regarding.name === name && e.reason === reason,
      ),
    );

  beforeAll(async () => {
    ns = await createTestNamespace('hl-lb');
    await apply([
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: 'web', namespace: ns },
        spec: {
          nodeSelector: { 'heartline.dev/test-cluster': ns },
          authSecretRef: { name: 'missing', activeKeyId: '1' },
          quorum: 'majority',
        },
      },
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'AddressPool',
        metadata: { name: 'main', namespace: ns },
        spec: {
          clusterRef: { name: 'web' },
          addresses: ['198.18.20.0/29', '2001:db8:20::/125'],
        },
      },
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'AddressPool',
        metadata: { name: 'tiny', namespace: ns },
        spec: { clusterRef: { name: 'web' }, addresses: ['198.18.21.1-198.18.21.2'], autoAssign: false },
      },
    ]);
    running = await startController('lb-1');
  });

  afterAll(async () => {
    await stopController(running);
    await reader.close();
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

  it('the API server refuses a pool entry that is neither a CIDR nor a range', async () => {
    const r = await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'AddressPool',
        metadata: { name: 'bad', namespace: ns },
        spec: { clusterRef: { name: 'web' }, addresses: ['198.18.22.5/24'] },
      }),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('addresses[]');
  });

  it('allocates from the pool: a VirtualIP owned by the Service, ingress with ipMode VIP, condition and Event', async () => {
    await apply([service('web-a')]);
    expect(await allocated('web-a')).toEqual(['198.18.20.1']);
    expect(await ingressOf('web-a')).toEqual([{ ip: '198.18.20.1', ipMode: 'VIP' }]);
    const vip = (await vipOf('198.18.20.1'))!;
    const svc = (await reader.get('Service', { namespace: ns, name: 'web-a' }))!;
    expect(vip.spec).toMatchObject({ clusterRef: { name: 'web' }, address: '198.18.20.1/24' });
    expect(vip.metadata.labels).toMatchObject({
      'heartline.dev/load-balancer': 'true',
      'heartline.dev/address-pool': 'main',
    });
    expect(vip.metadata.annotations?.['heartline.dev/services']).toBe(`${ns}/web-a`);
    expect(vip.metadata.ownerReferences).toEqual([
      { apiVersion: 'v1', kind: 'Service', name: 'web-a', uid: svc.metadata.uid },
    ]);
    expect(await condition('web-a', 'IPAllocated')).toMatchObject({ status: 'True', reason: 'IPAllocated' });
    await eventFor('web-a', 'IPAllocated');
    // kubectl get svc shows the EXTERNAL-IP.
    const line = await mustKubectl(['get', 'svc', '-n', ns, 'web-a', '--no-headers']);
    expect(line).toContain('198.18.20.1');
  });

  it('leaves Services of another class, and class-less ones without a pool opting in, alone', async () => {
    await apply([service('other', { cls: 'example.com/lb' }), service('classless', { cls: null })]);
    await allocated('web-a');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await ingressOf('other')).toEqual([]);
    expect(await ingressOf('classless')).toEqual([]);
    expect(await condition('classless', 'IPAllocated')).toBeUndefined();
  });

  it('honours a requested address when free and refuses it with AddressInUse when taken', async () => {
    await apply([service('req-ok', { annotations: { 'heartline.dev/address': '198.18.20.5' } })]);
    expect(await allocated('req-ok')).toEqual(['198.18.20.5']);
    await apply([service('req-taken', { loadBalancerIP: '198.18.20.5' })]);
    const c = await until('IPAllocated False', async () => {
      const x = await condition('req-taken', 'IPAllocated');
      return x?.status === 'False' ? x : undefined;
    });
    expect(c.reason).toBe('AddressInUse');
    expect(c.message).toContain(`${ns}/req-ok`);
    const e = await eventFor('req-taken', 'AddressInUse');
    expect(e.type).toBe('Warning');
    expect(await ingressOf('req-taken')).toEqual([]);
  });

  it('shares one address between Services with the same allow-shared-ip key and disjoint ports', async () => {
    const shared = { 'heartline.dev/allow-shared-ip': 'edge' };
    await apply([service('share-http', { annotations: shared, ports: [80] })]);
    const [ip] = await allocated('share-http');
    await apply([service('share-https', { annotations: shared, ports: [443] })]);
    expect(await allocated('share-https')).toEqual([ip]);
    const vip = await until('both Services on the VirtualIP', async () => {
      const v = await vipOf(ip!);
      return v?.metadata.annotations?.['heartline.dev/services']?.includes(',') ? v : undefined;
    });
    expect(vip.metadata.annotations?.['heartline.dev/services']).toBe(`${ns}/share-http,${ns}/share-https`);
    expect((vip.metadata.ownerReferences as unknown[]).length).toBe(2);
    // Same port: its own address.
    await apply([service('share-clash', { annotations: shared, ports: [80] })]);
    const [other] = await allocated('share-clash');
    expect(other).not.toBe(ip);
  });

  it('reports pool exhaustion with an Event; dual-stack follows ipFamilies and ipFamilyPolicy', async () => {
    const tiny = { 'heartline.dev/address-pool': 'tiny' };
    await apply([service('tiny-1', { annotations: tiny }), service('tiny-2', { annotations: tiny })]);
    const got = [...(await allocated('tiny-1')), ...(await allocated('tiny-2'))].sort();
    expect(got).toEqual(['198.18.21.1', '198.18.21.2']);
    await apply([service('tiny-3', { annotations: tiny })]);
    const e = await eventFor('tiny-3', 'PoolExhausted');
    expect(e.note).toContain('tiny');
    expect(await condition('tiny-3', 'IPAllocated')).toMatchObject({
      status: 'False',
      reason: 'PoolExhausted',
    });

    // Dual-stack (the test API server has IPv4 and IPv6 Service CIDRs): one address per family,
    // in the order of ipFamilies; SingleStack IPv6 gets an IPv6 address only.
    await apply([service('dual', { policy: 'RequireDualStack', families: ['IPv6', 'IPv4'] })]);
    const ips = await until('two addresses for dual', async () => {
      const x = await ipsOf('dual');
      return x.length === 2 ? x : undefined;
    });
    expect(ips[0]).toMatch(/^2001:db8:20::/);
    expect(ips[1]).toMatch(/^198\.18\.20\./);
    await apply([service('v6only', { policy: 'SingleStack', families: ['IPv6'] })]);
    expect(await allocated('v6only')).toEqual([expect.stringMatching(/^2001:db8:20::/)]);
  });

  it('a restarted controller keeps every allocation and creates nothing', async () => {
    const names = [
      'web-a',
      'req-ok',
      'share-http',
      'share-https',
      'share-clash',
      'tiny-1',
      'tiny-2',
      'dual',
      'v6only',
    ];
    const before = Object.fromEntries(
      await Promise.all(names.map(async (n) => [n, await ipsOf(n)] as const)),
    );
    const vipsBefore = (await reader.list('VirtualIP', { namespace: ns })).map((v) => v.metadata.uid).sort();
    await stopController(running);
    running = await startController('lb-2');
    await new Promise((r) => setTimeout(r, 3000));
    const after = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await ipsOf(n)] as const)));
    expect(after).toEqual(before);
    expect((await reader.list('VirtualIP', { namespace: ns })).map((v) => v.metadata.uid).sort()).toEqual(
      vipsBefore,
    );
    const counts = running.api.snapshot();
    expect(counts['create VirtualIP'] ?? 0).toBe(0);
    expect(counts['delete VirtualIP'] ?? 0).toBe(0);
  });

  it('deleting a Service frees its address only after its VirtualIP is released', async () => {
    // req-taken waits for 198.18.20.5 too: out of the way, so req-next is the only one waiting.
    await mustKubectl(['delete', 'svc', '-n', ns, 'req-taken']);
    await mustKubectl(['delete', 'svc', '-n', ns, 'req-ok', '--wait=false']);
    const terminating = await until('the VirtualIP of 198.18.20.5 to be deleted', async () => {
      const v = await vipOf('198.18.20.5');
      return v?.metadata.deletionTimestamp ? v : undefined;
    });
    expect(terminating.metadata.finalizers).toContain('heartline.dev/release');
    await apply([service('req-next', { annotations: { 'heartline.dev/address': '198.18.20.5' } })]);
    const c = await until('req-next refused while the address is not released', async () => {
      const x = await condition('req-next', 'IPAllocated');
      return x?.status === 'False' ? x : undefined;
    });
    expect(c.reason).toBe('AddressInUse');
    expect(c.message).toContain('being released');
    // The release timeout ends the finalizer; then the address goes to the waiting Service.
    expect(
      await until(
        'req-next to get 198.18.20.5',
        async () => {
          const ips = await ipsOf('req-next');
          return ips.length > 0 ? ips : undefined;
        },
        20_000,
      ),
    ).toEqual(['198.18.20.5']);
    expect((await vipOf('198.18.20.5'))!.metadata.annotations?.['heartline.dev/services']).toBe(
      `${ns}/req-next`,
    );
  });

  it('externalTrafficPolicy Local: only nodes with a ready endpoint may hold the address', async () => {
    const local = { ...service('local'), spec: { ...service('local').spec, externalTrafficPolicy: 'Local' } };
    const slice = (nodes: Array<[string, boolean]>) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'local-abc', namespace: ns, labels: { 'kubernetes.io/service-name': 'local' } },
      addressType: 'IPv4',
      ports: [{ name: 'p80', protocol: 'TCP', port: 8080 }],
      endpoints: nodes.map(([nodeName, ready], i) => ({
        addresses: [`10.244.0.${i + 10}`],
        nodeName,
        conditions: { ready },
      })),
    });
    await apply([local]);
    const [ip] = await allocated('local');
    const eligible = (want: string[]) =>
      until(`eligibleNodes ${JSON.stringify(want)}`, async () => {
        const v = await vipOf(ip!);
        const e = (v?.spec as { eligibleNodes?: string[] } | undefined)?.eligibleNodes;
        return JSON.stringify(e) === JSON.stringify(want) ? v : undefined;
      });
    // No endpoint yet: nobody may hold it, and the Service says so.
    await eligible([]);
    const c = await until('AddressHeld NoEligibleNode', async () => {
      const x = await condition('local', 'AddressHeld');
      return x?.reason === 'NoEligibleNode' ? x : undefined;
    });
    expect(c.message).toContain('externalTrafficPolicy Local');
    await eventFor('local', 'NoEligibleNode');
    // An endpoint on n2 (and a not-ready one on n1): n2 only.
    await apply([
      slice([
        ['n2', true],
        ['n1', false],
      ]),
    ]);
    await eligible(['n2']);
    // The endpoint moves to n3.
    await apply([slice([['n3', true]])]);
    await eligible(['n3']);
  });

  it('pool status: assigned count; an overlapping younger pool is refused (Ready False)', async () => {
    await apply([
      {
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'AddressPool',
        metadata: { name: 'overlap', namespace: ns },
        spec: { clusterRef: { name: 'web' }, addresses: ['198.18.20.4-198.18.20.9'] },
      },
    ]);
    const poolStatus = async (name: string) =>
      ((await reader.get('AddressPool', { namespace: ns, name }))?.status ?? {}) as {
        assigned?: number;
        conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
      };
    const refused = await until('pool overlap refused', async () => {
      const c = (await poolStatus('overlap')).conditions?.find((x) => x.type === 'Ready');
      return c?.status === 'False' ? c : undefined;
    });
    expect(refused.reason).toBe('Refused');
    expect(refused.message).toContain(`overlaps pool ${ns}/main`);
    const tiny = await until('tiny pool status', async () => {
      const s = await poolStatus('tiny');
      return s.assigned !== undefined ? s : undefined;
    });
    expect(tiny.assigned).toBe(2);
    expect(tiny.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
  });

  it('changing type or class releases the address and clears the status', async () => {
    await mustKubectl([
      'patch',
      'svc',
      '-n',
      ns,
      'web-a',
      '--type=json',
      '-p',
      JSON.stringify([
        { op: 'replace', path: '/spec/type', value: 'ClusterIP' },
        { op: 'remove', path: '/spec/loadBalancerClass' },
      ]),
    ]);
    await until(
      'web-a status cleared',
      async () =>
        (await ingressOf('web-a')).length === 0 && (await condition('web-a', 'IPAllocated')) === undefined,
    );
    await until('the VirtualIP of 198.18.20.1 deleted', async () => {
      const v = await vipOf('198.18.20.1');
      return !v || Boolean(v.metadata.deletionTimestamp);
    });
  });
});
