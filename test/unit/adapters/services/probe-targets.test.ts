import { pino } from 'pino';
import { SystemClock } from '../../../../src/adapters/clock.js';
import { ProbeTargets } from '../../../../src/adapters/services/probe-targets.js';
import { ProcessServiceRunner } from '../../../../src/adapters/services/process-service-runner.js';
import type { ServiceSpec } from '../../../../src/core/ports.js';

/** A node with one address and a VIP on eth0, and a link-local IPv6 address. */
const node = () => ({
  lo: [
    {
      address: '127.0.0.1',
      netmask: '255.0.0.0',
      family: 'IPv4' as const,
      mac: '',
      internal: true,
      cidr: '127.0.0.1/8',
    },
  ],
  eth0: [
    {
      address: '198.18.0.11',
      netmask: '255.255.255.0',
      family: 'IPv4' as const,
      mac: '',
      internal: false,
      cidr: '198.18.0.11/24',
    },
    {
      address: '198.18.0.100',
      netmask: '255.255.255.0',
      family: 'IPv4' as const,
      mac: '',
      internal: false,
      cidr: '198.18.0.100/24',
    },
    {
      address: 'fe80::1',
      netmask: 'ffff:ffff:ffff:ffff::',
      family: 'IPv6' as const,
      mac: '',
      internal: false,
      cidr: 'fe80::1/64',
      scopeid: 2,
    },
  ],
});

describe('ProbeTargets', () => {
  it("allows the node's own addresses (VIPs included) and loopback, nothing else by default", () => {
    const t = new ProbeTargets({ interfaces: node });
    for (const ok of ['198.18.0.11', '198.18.0.100', '127.0.0.1', '127.3.2.1', '::1', 'fe80::1'])
      expect([ok, t.refusal(ok)]).toEqual([ok, undefined]);
    for (const no of ['198.18.0.12', '10.0.0.1', '169.254.169.254', '0.0.0.0', '::', 'not-an-ip'])
      expect(t.refusal(no)).toBe(
        `${no} is not an address of this node nor in the HACluster's spec.healthCheckTargets; probe the VIP (port), an address of this node or 127.0.0.1, or add the network to spec.healthCheckTargets`,
      );
  });

  it('allows the networks of spec.healthCheckTargets, and names them when refusing', () => {
    const t = new ProbeTargets({ interfaces: node });
    t.setNetworks(['198.19.5.0/24', '2001:db8:5::/64']);
    expect(t.refusal('198.19.5.77')).toBeUndefined();
    expect(t.refusal('2001:db8:5::9')).toBeUndefined();
    expect(t.refusal('198.19.6.1')).toContain('spec.healthCheckTargets (198.19.5.0/24, 2001:db8:5::/64);');
    t.setNetworks([]);
    expect(t.refusal('198.19.5.77')).toBeDefined();
  });

  it('reads the interfaces at every check (a VIP bound later is allowed from then on)', () => {
    let bound = false;
    const t = new ProbeTargets({
      interfaces: () => (bound ? node() : { lo: node().lo }),
    });
    expect(t.refusal('198.18.0.100')).toBeDefined();
    bound = true;
    expect(t.refusal('198.18.0.100')).toBeUndefined();
  });
});

describe('ProcessServiceRunner: http and tcp checks only where ProbeTargets allows', () => {
  const clock = new SystemClock();
  const runner = (targets: { refusal(a: string): string | undefined }) =>
    new ProcessServiceRunner({ clock, logger: pino({ level: 'silent' }), targets }, { identity: null });
  const probe = (healthCheck: ServiceSpec['healthCheck']): ServiceSpec => ({
    name: 'ns/web',
    kind: 'exec',
    exec: { start: ['/etc/heartline/resource.d/web'] },
    ...(healthCheck ? { healthCheck } : {}),
  });
  const elsewhere = new ProbeTargets({ interfaces: node });

  it('refuses an address of another host before connecting, naming the fix', async () => {
    const http = await runner(elsewhere).probe(
      probe({ http: { host: '198.18.0.12', port: 10250, path: '/pods' }, timeoutMs: 1000 }),
    );
    expect(http).toMatchObject({ ok: false });
    expect(http.detail).toBe(
      `ns/web: probe: GET http://198.18.0.12:10250/pods: not probed: ${elsewhere.refusal('198.18.0.12')}`,
    );
    const tcp = await runner(elsewhere).probe(
      probe({ tcp: { host: '10.0.0.1', port: 22 }, timeoutMs: 1000 }),
    );
    expect(tcp.detail).toBe(`ns/web: probe: tcp 10.0.0.1:22: not probed: ${elsewhere.refusal('10.0.0.1')}`);
  });

  it('checks a host name on the addresses it resolves to (the address connected to is the one checked)', async () => {
    const none = { refusal: (a: string) => `${a} refused` };
    const http = await runner(none).probe(probe({ http: { host: 'localhost', port: 1 }, timeoutMs: 2000 }));
    expect(http.ok).toBe(false);
    expect(http.detail).toMatch(
      /^ns\/web: probe: GET http:\/\/localhost:1\/: not probed: localhost resolves to (127\.0\.0\.1|::1): \S+ refused$/,
    );
    const tcp = await runner(none).probe(probe({ tcp: { host: 'localhost', port: 1 }, timeoutMs: 2000 }));
    expect(tcp.detail).toMatch(/^ns\/web: probe: tcp localhost:1: not probed: localhost resolves to/);
  });
});
