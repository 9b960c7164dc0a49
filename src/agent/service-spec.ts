/** Maps a Resource object's spec onto what the ServiceRunner port needs. */
import type { ResourceSpec } from '../api/index.js';
import type { HealthCheckSpec, ServiceSpec } from '../core/ports.js';

/**
 * `vipAddress` (no prefix) is where port-based health checks connect: the check tests the
 * service as clients reach it, through the VIP.
 */
export function toServiceSpec(name: string, spec: ResourceSpec, vipAddress: string): ServiceSpec {
  const healthCheck = toHealthCheck(spec, vipAddress);
  const base = { name, ...(healthCheck ? { healthCheck } : {}) };
  switch (spec.kind) {
    case 'exec': {
      // The API's exec Resources are start/stop commands (Heartbeat's model), not daemons.
      const e = spec.exec!;
      return {
        ...base,
        kind: 'exec',
        exec: {
          start: e.start,
          ...(e.stop ? { stop: e.stop } : {}),
          ...(e.status ? { status: e.status } : {}),
        },
      };
    }
    case 'lsb':
      return { ...base, kind: 'lsb', lsb: { script: spec.lsb!.script } };
    case 'systemd':
      return { ...base, kind: 'systemd', systemd: { unit: spec.systemd!.unit } };
  }
}

function toHealthCheck(spec: ResourceSpec, vipAddress: string): HealthCheckSpec | undefined {
  const h = spec.healthCheck;
  if (!h) return undefined;
  const host = vipAddress;
  if (h.http) {
    if (h.http.url) {
      const u = new URL(h.http.url);
      const https = u.protocol === 'https:';
      return {
        http: {
          host: u.hostname.replace(/^\[|\]$/g, ''),
          port: Number(u.port || (https ? 443 : 80)),
          path: `${u.pathname}${u.search}`,
          expectStatus: h.http.expectStatus,
          scheme: https ? 'https' : 'http',
          ...(https && h.http.insecureSkipTLSVerify ? { insecureSkipTLSVerify: true } : {}),
        },
        timeoutMs: h.timeoutMs,
      };
    }
    return {
      http: { host, port: h.http.port!, path: h.http.path ?? '/', expectStatus: h.http.expectStatus },
      timeoutMs: h.timeoutMs,
    };
  }
  if (h.tcp) return { tcp: { host, port: h.tcp.port }, timeoutMs: h.timeoutMs };
  if (h.exec) return { exec: { command: h.exec.command }, timeoutMs: h.timeoutMs };
  return undefined;
}
