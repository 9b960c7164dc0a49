/** The metrics flags: what they choose, and the errors that name the flag and the fix. */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { OpsServer } from '../../../src/ops/http.js';
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

  it('serves a renewed certificate file without a restart, and keeps the served one when the files are broken', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'hl-metrics-reload-'));
    const lines: { msg: string }[] = [];
    const logs = pino(
      { level: 'info' },
      { write: (x: string) => void lines.push(JSON.parse(x) as { msg: string }) },
    );
    const crt = join(dir2, 'tls.crt');
    const key = join(dir2, 'tls.key');
    writeFileSync(crt, a.cert);
    writeFileSync(key, a.key);
    const serving = await metricsServing(
      { metricsListen: '127.0.0.1:0', metricsTlsCert: crt, metricsTlsKey: key },
      () => unused,
      logs,
      20,
    );
    const ops = new OpsServer({
      listen: '127.0.0.1:0',
      registry: new Registry(),
      serving,
      healthy: () => true,
      ready: () => ({ ready: true, reason: 'ok' }),
      log: logs,
    });
    const { port } = await ops.start();
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()!.fingerprint256);
          s.end();
        });
        s.on('error', reject);
      });
    const until = async (what: string, fn: () => Promise<boolean> | boolean) => {
      for (let i = 0; i < 500; i++) {
        if (await fn()) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`timed out waiting for ${what}`);
    };
    try {
      expect(await served()).toBe(new X509Certificate(a.cert).fingerprint256);
      writeFileSync(key, b.key);
      writeFileSync(crt, b.cert);
      const fb = new X509Certificate(b.cert).fingerprint256;
      await until('the renewed certificate', async () => (await served()) === fb);
      expect(lines.some((l) => l.msg === 'metrics TLS certificate reloaded')).toBe(true);
      lines.splice(0); // a reload between the two writes above may have failed already
      writeFileSync(crt, 'not a certificate');
      await until('the failed reload', () =>
        lines.some((l) => l.msg === 'metrics TLS certificate not reloaded; serving the previous one'),
      );
      expect(await served()).toBe(fb);
    } finally {
      await ops.stop();
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});
