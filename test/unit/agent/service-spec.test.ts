import { parseResource } from '../../../src/api/index.js';
import { toServiceSpec } from '../../../src/agent/service-spec.js';
import { goodResource } from '../../fixtures/bad-objects.js';

function spec(http: Record<string, unknown>) {
  const m = goodResource();
  m.spec.healthCheck = { http };
  const p = parseResource(m);
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  return toServiceSpec('ns/web', p.value.spec, '198.18.0.100').healthCheck?.http;
}

describe('toServiceSpec: http health checks', () => {
  it('probes an https:// url over TLS, verifying the certificate by default', () => {
    expect(spec({ url: 'https://svc.example:8443/healthz?deep=1' })).toEqual({
      host: 'svc.example',
      port: 8443,
      path: '/healthz?deep=1',
      expectStatus: 200,
      scheme: 'https',
    });
    expect(spec({ url: 'https://[2001:db8::1]/' })).toMatchObject({ host: '2001:db8::1', port: 443 });
  });

  it('skips verification only when insecureSkipTLSVerify is true', () => {
    expect(spec({ url: 'https://127.0.0.1/', insecureSkipTLSVerify: true })).toMatchObject({
      scheme: 'https',
      insecureSkipTLSVerify: true,
    });
    expect(spec({ url: 'https://127.0.0.1/', insecureSkipTLSVerify: false })).not.toHaveProperty(
      'insecureSkipTLSVerify',
    );
  });

  it('keeps http:// urls and port checks on plain HTTP', () => {
    expect(spec({ url: 'http://127.0.0.1/healthz' })).toMatchObject({ scheme: 'http', port: 80 });
    expect(spec({ port: 8080, path: '/up' })).toEqual({
      host: '198.18.0.100',
      port: 8080,
      path: '/up',
      expectStatus: 200,
    });
  });
});
