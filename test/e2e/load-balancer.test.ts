/**
 * LoadBalancer Services in the lab (issue 14, docs/load-balancer.md): an AddressPool in the
 * lab's HACluster namespace, a Service with externalTrafficPolicy Local, and an EndpointSlice
 * written by the test (there is no kubelet or kube-proxy here: this kernel has no netfilter or
 * IPVS, so the client reaches the lab's HTTP service on the holder directly, on the address).
 *
 * 1. The endpoint is on n2: the controller allocates an address, the VirtualIP may be held by
 *    n2 only, n2 binds it and the client gets answers from n2.
 * 2. The endpoint moves to n3: the address follows by planned handoff; client outage measured.
 * 3. Endpoints on n2 and n3, holder powered off: failover to the other one, measured; never two
 *    holders.
 */
import { LAB_NAMESPACE } from '../../hack/lab/cluster.js';
import { sleep } from '../../hack/lab/sh.js';
import { powerOff } from '../../hack/lab/topology.js';
import { holdersAtEnd, measure } from './helpers/lab-run.js';
import { labDescribe, revive, withLabCluster } from './helpers/suite.js';

const POOL_FIRST = '198.18.0.150';

labDescribe('LoadBalancer Service, externalTrafficPolicy Local, default profile (3 nodes)', () => {
  const cluster = withLabCluster({ id: 'e2elb', nodes: 3, profile: 'default', quorum: 'majority' });

  it('the address lands on the endpoint node, follows the endpoint by planned handoff, fails over on power-off', async () => {
    const c = cluster();
    const until = async <T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> => {
      const end = Date.now() + ms;
      for (;;) {
        const v = await fn();
        if (v !== undefined) return v;
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(50);
      }
    };
    const slice = (nodes: string[]) =>
      JSON.stringify({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: 'ingress-lab',
          namespace: LAB_NAMESPACE,
          labels: { 'kubernetes.io/service-name': 'ingress' },
        },
        addressType: 'IPv4',
        ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
        endpoints: nodes.map((nodeName, i) => ({
          addresses: [`10.244.${i}.10`],
          nodeName,
          conditions: { ready: true },
        })),
      });
    await c.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'AddressPool',
        metadata: { name: 'ingress', namespace: LAB_NAMESPACE },
        spec: { clusterRef: { name: 'lab' }, addresses: [`${POOL_FIRST}-198.18.0.159`] },
      }),
    );
    await c.kubectl(['apply', '-f', '-'], slice(['n2']));
    const created = Date.now();
    await c.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'ingress', namespace: LAB_NAMESPACE },
        spec: {
          type: 'LoadBalancer',
          loadBalancerClass: 'heartline.dev/vip',
          externalTrafficPolicy: 'Local',
          selector: { app: 'ingress' },
          ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
        },
      }),
    );
    const ip = await until('an EXTERNAL-IP', async () => {
      const out = await c.kubectl([
        'get',
        'svc',
        'ingress',
        '-n',
        LAB_NAMESPACE,
        '-o',
        'jsonpath={.status.loadBalancer.ingress[0].ip}',
      ]);
      return out.trim() || undefined;
    });
    const allocatedMs = Date.now() - created;
    expect(ip).toBe(POOL_FIRST);
    await until(`${ip} bound on n2`, async () =>
      (await c.boundOn('n2')).some((a) => a === ip) ? true : undefined,
    );
    const boundMs = Date.now() - created;
    process.stdout.write(
      `[e2e] Service created -> EXTERNAL-IP ${allocatedMs} ms, -> bound on n2 ${boundMs} ms\n`,
    );
    for (const n of ['n1', 'n3']) expect((await c.boundOn(n)).some((a) => a === ip)).toBe(false);

    // The endpoint moves to n3: planned handoff.
    const moved = await measure(c, {
      scenario: 'lb-local-endpoint-move',
      profile: 'default',
      vip: ip,
      observeMs: 4000,
      fault: async (holder) => {
        expect(holder).toBe('n2');
        await c.kubectl(['apply', '-f', '-'], slice(['n3']));
      },
    });
    expect(moved.summary.dualHolderMs).toBe(0);
    expect(holdersAtEnd(moved.samples, ip)).toEqual(['n3']);
    process.stdout.write(
      `[e2e] endpoint n2 -> n3: client outage ${moved.summary.maxOutageMs} ms, lost probes ${moved.summary.lostProbes}/${moved.summary.probes}\n`,
    );

    // Endpoints on n2 and n3; the holder (n3) loses power: n2 takes over.
    await c.kubectl(['apply', '-f', '-'], slice(['n2', 'n3']));
    await sleep(1000);
    const power = await measure(c, {
      scenario: 'lb-local-power-off',
      profile: 'default',
      vip: ip,
      observeMs: 5000,
      fault: (holder) => powerOff(c.lab, holder),
    });
    expect(power.summary.dualHolderMs).toBe(0);
    expect(power.summary.failoverMs).not.toBeNull();
    expect(holdersAtEnd(power.samples, ip)).toEqual(['n2']);
    await revive(c, power.from);
  }, 240_000);
});
