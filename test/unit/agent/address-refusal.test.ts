/**
 * The agent refuses, at run time, a VirtualIP whose address the CRD would refuse (one
 * stored under an older CRD, or written with validation off: the fake API server, like
 * such a cluster, does not check): it never asks the network driver to add it, keeps
 * running, and binds the valid VirtualIPs next to it.
 */
import { describe, expect, it } from '@jest/globals';
import { Agent } from '../../../src/agent/agent.js';
import type { ApiObject } from '../../../src/core/ports.js';
import { PROFILES } from '../../../src/core/timing.js';
import { silentLogger } from '../../../src/ops/log.js';
import { SimClock, SimWorld } from '../../fakes/clock.js';
import { FakeApiSource } from '../../fakes/k8s.js';
import { FakeNetworkDriver } from '../../fakes/network.js';
import { ScriptedServiceRunner } from '../../fakes/services.js';
import { SimNetwork } from '../../fakes/transport.js';
import { MEMBER_KEY_ANNOTATION } from '../../../src/runtime/cluster-config.js';

const NS = 'default';
const IP = '198.18.0.11';
const GOOD = '198.18.0.100/24';
const UNSAFE = ['169.254.169.254/32', '198.18.0.0/24', '198.18.0.255/24', '10.0.0.5/1', '0.0.0.0/0'];

function vip(name: string, address: string): ApiObject {
  // interface set: the executor needs no subnet match, so only the address rules stop a bind.
  return {
    metadata: { name, namespace: NS },
    spec: { clusterRef: { name: 'web' }, address, interface: 'eth0' },
  };
}

describe('Agent and unsafe VirtualIP addresses', () => {
  it('binds the valid VirtualIP and never adds an unsafe one, before or after a change', async () => {
    const world = new SimWorld();
    const clock = new SimClock({ world });
    const net = new SimNetwork({ clock, seed: 1 });
    const api = new FakeApiSource();
    api.apply('Secret', {
      metadata: { name: 'auth', namespace: NS },
      data: { '1': Buffer.alloc(32, 7).toString('base64') },
    } as ApiObject);
    api.apply('HACluster', {
      metadata: { name: 'web', namespace: NS },
      spec: {
        nodeSelector: { 'heartline.dev/cluster': 'web' },
        heartbeat: { ...PROFILES.fast },
        transport: { port: 694, mode: 'unicast' },
        authSecretRef: { name: 'auth', activeKeyId: '1' },
        quorum: 'ignore',
        autoFailback: false,
      },
    });
    api.apply('Node', {
      metadata: { name: 'n1', labels: { 'heartline.dev/cluster': 'web' } },
      status: { addresses: [{ type: 'InternalIP', address: IP }] },
    } as ApiObject);
    api.apply('VirtualIP', vip('web', GOOD));
    UNSAFE.slice(0, 3).forEach((a, i) => api.apply('VirtualIP', vip(`unsafe-${i}`, a)));
    const driver = new FakeNetworkDriver(
      { clock },
      { interfaces: [{ name: 'eth0', addresses: [`${IP}/24`] }] },
    );
    const agent = new Agent(
      {
        clock,
        api,
        driver,
        runner: new ScriptedServiceRunner({ clock }),
        log: silentLogger(),
        openTransport: async (port) => net.transport(IP, port),
        publishMemberKey: (k) => api.annotateNode('n1', { [MEMBER_KEY_ANNOTATION]: k }),
      },
      { node: 'n1', namespace: NS, cluster: 'web', incarnation: 1, unhealthyCooldownMs: 5000 },
    );
    agent.start();
    await world.advance(3000);
    expect(driver.holds(GOOD)).toBe(true);

    // A valid VirtualIP edited to an unsafe address while bound: released, never re-added.
    api.apply('VirtualIP', vip('web', UNSAFE[3]!));
    UNSAFE.slice(4).forEach((a, i) => api.apply('VirtualIP', vip(`later-${i}`, a)));
    await world.advance(3000);

    const added = driver.calls.filter((c) => c.op === 'add').map((c) => JSON.stringify(c));
    for (const a of UNSAFE) expect(added.filter((c) => c.includes(a))).toEqual([]);
    expect(driver.holds(GOOD)).toBe(false);
    expect(agent.ready().ready).toBe(true);
    await agent.stop();
  });
});
