import {
  DEFAULT_HEARTBEAT,
  FAST_HEARTBEAT,
  checkManifest,
  parseHACluster,
  parseResource,
  parseVirtualIP,
  type FieldError,
  type ParseResult,
} from '../../../src/api/index.js';
import { BAD_OBJECTS, goodCluster, goodResource, goodVip } from '../../fixtures/bad-objects.js';

function errorsOf<T>(r: ParseResult<T>): FieldError[] {
  if (r.ok) throw new Error('expected the object to be rejected');
  return r.errors;
}

function valueOf<T>(r: ParseResult<T>): T {
  if (!r.ok) throw new Error(`expected the object to be valid: ${JSON.stringify(r.errors)}`);
  return r.value;
}

describe('defaults', () => {
  it('fills HACluster heartbeat, transport, quorum and autoFailback', () => {
    const c = valueOf(
      parseHACluster({
        apiVersion: 'heartline.dev/v1alpha1',
        kind: 'HACluster',
        metadata: { name: 'web' },
        spec: { authSecretRef: { name: 'auth', activeKeyId: '1' } },
      }),
    );
    expect(c.spec.heartbeat).toEqual({ intervalMs: 200, deadMs: 1000, warnMs: 500, initDeadMs: 2000 });
    expect(c.spec.heartbeat).toEqual(DEFAULT_HEARTBEAT);
    expect(c.spec.transport).toEqual({ port: 694 });
    expect(c.spec.quorum).toBe('majority');
    expect(c.spec.autoFailback).toBe(false);
  });

  it('fills the fields of a partly given heartbeat', () => {
    const m = goodCluster();
    m.spec.heartbeat = { deadMs: 1500 };
    expect(valueOf(parseHACluster(m)).spec.heartbeat).toEqual({
      intervalMs: 200,
      deadMs: 1500,
      warnMs: 500,
      initDeadMs: 2000,
    });
  });

  it('applies defaults before the cross-field rules, like the API server', () => {
    const m = goodCluster();
    m.spec.heartbeat = { deadMs: 3000 }; // default initDeadMs 2000 is now too short
    expect(errorsOf(parseHACluster(m)).map((e) => e.path)).toEqual(['spec.heartbeat.initDeadMs']);
  });

  it('accepts the fast profile', () => {
    const m = goodCluster();
    m.spec.heartbeat = { ...FAST_HEARTBEAT };
    expect(valueOf(parseHACluster(m)).spec.heartbeat).toEqual({
      intervalMs: 100,
      deadMs: 300,
      warnMs: 200,
      initDeadMs: 1000,
    });
  });

  it('fills VirtualIP announce', () => {
    const m = goodVip();
    delete m.spec.announce;
    expect(valueOf(parseVirtualIP(m)).spec.announce).toEqual({ count: 3, intervalMs: 100, refreshMs: 0 });
  });

  it('fills Resource timeouts and health-check timing', () => {
    const m = goodResource();
    m.spec.healthCheck = { http: { port: 8080, path: '/healthz' } };
    const r = valueOf(parseResource(m));
    expect(r.spec.startTimeoutMs).toBe(20000);
    expect(r.spec.stopTimeoutMs).toBe(20000);
    expect(r.spec.healthCheck).toEqual({
      http: { port: 8080, path: '/healthz', expectStatus: 200 },
      intervalMs: 2000,
      timeoutMs: 1000,
      failureThreshold: 3,
    });
  });
});

describe('field rules: valid edge cases', () => {
  it.each([
    ['deadMs exactly 3 intervals', { intervalMs: 100, deadMs: 300, warnMs: 101, initDeadMs: 300 }],
    ['warnMs just above intervalMs', { intervalMs: 200, deadMs: 1000, warnMs: 201, initDeadMs: 1000 }],
    ['warnMs just below deadMs', { intervalMs: 200, deadMs: 1000, warnMs: 999, initDeadMs: 1000 }],
    ['slow Heartbeat-like timing', { intervalMs: 2000, deadMs: 30000, warnMs: 10000, initDeadMs: 120000 }],
  ])('accepts %s', (_name, heartbeat) => {
    const m = goodCluster();
    m.spec.heartbeat = heartbeat;
    expect(parseHACluster(m).ok).toBe(true);
  });

  it.each(['198.18.0.100/24', '198.18.0.1/32', '2001:db8::100/64', '2001:db8:0:1::100/128'])(
    'accepts address %s',
    (a) => {
      const m = goodVip();
      m.spec.address = a;
      expect(parseVirtualIP(m).ok).toBe(true);
    },
  );

  it('accepts multicast with an IPv4 group, in the one-link form and as a link', () => {
    for (const group of ['239.192.0.94', '224.0.1.1', '239.255.255.255']) {
      const m = goodCluster();
      m.spec.transport = { mode: 'multicast', group, interface: 'eth1' };
      expect(parseHACluster(m).ok).toBe(true);
      m.spec.transport = { links: [{ mode: 'multicast', group }] };
      expect(parseHACluster(m).ok).toBe(true);
    }
  });

  it('accepts redundant links: unicast (default addresses or a network) and multicast', () => {
    const m = goodCluster();
    m.spec.transport = {
      port: 6940,
      links: [
        { mode: 'unicast' },
        { mode: 'unicast', network: '198.19.0.0/24' },
        { mode: 'unicast', network: '2001:db8:1::/64' },
        { mode: 'multicast', interface: 'eth1', group: '239.192.0.94' },
      ],
    };
    expect(valueOf(parseHACluster(m)).spec.transport).toEqual(m.spec.transport);
  });

  it('accepts each Resource kind with its own field only', () => {
    const specs = [
      {
        kind: 'exec',
        exec: {
          start: ['/etc/heartline/resource.d/web', 'start'],
          stop: ['/etc/heartline/resource.d/web', 'stop'],
        },
      },
      { kind: 'lsb', lsb: { script: '/etc/init.d/apache2' } },
      { kind: 'systemd', systemd: { unit: 'nginx.service' } },
    ];
    for (const spec of specs) {
      const m = goodResource();
      m.spec = spec;
      expect(parseResource(m).ok).toBe(true);
    }
  });

  it('accepts each health-check probe kind alone', () => {
    for (const probe of [
      { http: { url: 'http://127.0.0.1/healthz' } },
      { tcp: { port: 5432 } },
      { exec: { command: ['/etc/heartline/resource.d/web', 'check'] } },
    ]) {
      const m = goodResource();
      m.spec.healthCheck = probe;
      expect(parseResource(m).ok).toBe(true);
    }
  });

  it('accepts refreshMs 0 and 1000', () => {
    for (const refreshMs of [0, 1000]) {
      const m = goodVip();
      m.spec.announce = { refreshMs };
      expect(parseVirtualIP(m).ok).toBe(true);
    }
  });
});

describe('bad objects (shared with the API-server integration test)', () => {
  it('has at least 12 cases', () => {
    expect(BAD_OBJECTS.length).toBeGreaterThanOrEqual(12);
  });

  it.each(BAD_OBJECTS.map((b) => [b.name, b] as const))('rejects: %s', (_name, bad) => {
    const check = checkManifest(JSON.parse(JSON.stringify(bad.manifest)));
    if (!check.handled) throw new Error('fixture is not a Heartline kind');
    const errors = errorsOf(check.result);
    expect(errors.map((e) => e.path)).toEqual([bad.path]);
    // The message says what to do, not only what is wrong.
    expect(errors[0]!.message.length).toBeGreaterThan(10);
  });
});

describe('error messages', () => {
  it('quote the bad address and give an example', () => {
    const m = goodVip();
    m.spec.address = '198.18.0.300/24';
    expect(errorsOf(parseVirtualIP(m))).toEqual([
      {
        path: 'spec.address',
        message:
          '"198.18.0.300/24" is not a valid IPv4 or IPv6 CIDR; use e.g. 198.18.0.100/24 or 2001:db8::100/64',
      },
    ]);
  });

  it('report every problem of one object, each at its own path', () => {
    const m = goodVip();
    m.spec.address = 'nope';
    m.spec.preferredNodes = ['a', 'a'];
    (m.spec.announce as Record<string, unknown>).count = 0;
    expect(errorsOf(parseVirtualIP(m)).map((e) => e.path)).toEqual([
      'spec.address',
      'spec.preferredNodes[1]',
      'spec.announce.count',
    ]);
  });

  it('name wrong kinds and versions in the heartline.dev group', () => {
    const wrongKind = checkManifest({ ...goodVip(), kind: 'VirtualAddress' });
    expect(wrongKind.handled && !wrongKind.result.ok && wrongKind.result.errors[0]?.path).toBe('kind');
    const wrongVersion = checkManifest({ ...goodVip(), apiVersion: 'heartline.dev/v1' });
    expect(
      wrongVersion.handled && !wrongVersion.result.ok && wrongVersion.result.errors[0]?.message,
    ).toContain('heartline.dev/v1alpha1');
  });

  it('leave other groups alone', () => {
    expect(checkManifest({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } })).toMatchObject({
      handled: false,
    });
  });
});
