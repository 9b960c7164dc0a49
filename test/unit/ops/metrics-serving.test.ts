/** The metrics flags: what they choose, and the errors that name the flag and the fix. */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { AccessReviewApi } from '../../../src/ops/metrics-auth.js';
import { metricsServing } from '../../../src/ops/metrics-serving.js';
import { selfSignedCertificate } from '../../../src/ops/self-signed-cert.js';

const log = pino({ level: 'silent' });
const unused: AccessReviewApi = {
  tokenReview: () => Promise.reject(new Error('not in this test')),
  subjectAccessReview: () => Promise.reject(new Error('not in this test')),
};

describe('metricsServing', () => {
  let dir: string;
  const a = selfSignedCertificate({ commonName: 'a', hosts: ['198.18.0.1'] });
  const b = selfSignedCertificate({ commonName: 'b', hosts: ['198.18.0.1'] });
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hl-metrics-serving-'));
    writeFileSync(join(dir, 'a.crt'), a.cert);
    writeFileSync(join(dir, 'a.key'), a.key);
    writeFileSync(join(dir, 'b.key'), b.key);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to HTTPS with a self-signed certificate for the listen address, and asks for a review API', async () => {
    let asked = 0;
    const s = await metricsServing(
      { metricsListen: '198.18.0.7:9694' },
      () => {
        asked++;
        return unused;
      },
      log,
    );
    expect(s.kind).toBe('secure');
    if (s.kind !== 'secure') return;
    expect(asked).toBe(1);
    const x = new X509Certificate(s.tls.cert);
    expect(x.checkIP('198.18.0.7')).toBe('198.18.0.7');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.checkHost('localhost')).toBe('localhost');
  });

  it('uses the certificate files when given', async () => {
    const s = await metricsServing(
      { metricsListen: '127.0.0.1:0', metricsTlsCert: join(dir, 'a.crt'), metricsTlsKey: join(dir, 'a.key') },
      () => unused,
      log,
    );
    expect(s.kind === 'secure' && s.tls.cert.toString()).toBe(a.cert);
  });

  it('--metrics-insecure-serving-no-auth: plain HTTP and no review API at all', async () => {
    const s = await metricsServing(
      { metricsListen: '127.0.0.1:0', metricsInsecureServingNoAuth: true },
      () => {
        throw new Error('must not be asked');
      },
      log,
    );
    expect(s).toEqual({ kind: 'insecure-no-auth' });
  });

  it('refuses contradictory or broken flags, naming them', async () => {
    const flags = { metricsListen: '127.0.0.1:0' };
    await expect(
      metricsServing(
        { ...flags, metricsInsecureServingNoAuth: true, metricsTlsCert: 'x' },
        () => unused,
        log,
      ),
    ).rejects.toThrow(/--metrics-insecure-serving-no-auth serves plain HTTP: drop --metrics-tls-cert/);
    await expect(
      metricsServing({ ...flags, metricsTlsCert: join(dir, 'a.crt') }, () => unused, log),
    ).rejects.toThrow(/--metrics-tls-key is missing/);
    await expect(
      metricsServing({ ...flags, metricsTlsKey: join(dir, 'a.key') }, () => unused, log),
    ).rejects.toThrow(/--metrics-tls-cert is missing/);
    await expect(
      metricsServing(
        { ...flags, metricsTlsCert: join(dir, 'absent.crt'), metricsTlsKey: join(dir, 'a.key') },
        () => unused,
        log,
      ),
    ).rejects.toThrow(/--metrics-tls-cert .*absent\.crt: cannot read it/);
    await expect(
      metricsServing(
        { ...flags, metricsTlsCert: join(dir, 'a.crt'), metricsTlsKey: join(dir, 'b.key') },
        () => unused,
        log,
      ),
    ).rejects.toThrow(
      /--metrics-tls-cert .*a\.crt \/ --metrics-tls-key .*b\.key: .*give a PEM certificate and its PEM private key/,
    );
  });
});
