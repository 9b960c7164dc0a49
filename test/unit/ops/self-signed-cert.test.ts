/**
 * The DER encoder and the self-signed certificate: node:crypto and OpenSSL parse it, its
 * signature verifies with its own key, and node:tls accepts it when a client pins it.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { bitString, integer, oid, time, tlv } from '../../../src/ops/der.js';
import { ipBytes, selfSignedCertificate } from '../../../src/ops/self-signed-cert.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('DER encoder', () => {
  it('encodes lengths in short and long form', () => {
    expect(hex(tlv(0x04, Buffer.alloc(0)))).toBe('0400');
    expect(hex(tlv(0x04, Buffer.alloc(127))).slice(0, 4)).toBe('047f');
    expect(hex(tlv(0x04, Buffer.alloc(128))).slice(0, 6)).toBe('048180');
    expect(hex(tlv(0x04, Buffer.alloc(256))).slice(0, 8)).toBe('04820100');
  });

  it('encodes INTEGERs minimally and never negative', () => {
    expect(hex(integer(0))).toBe('020100');
    expect(hex(integer(2))).toBe('020102');
    expect(hex(integer(128))).toBe('02020080');
    expect(hex(integer(256))).toBe('02020100');
    expect(hex(integer(Buffer.from([0, 0, 0x7f])))).toBe('02017f');
    expect(hex(integer(Buffer.from([0xff, 0x01])))).toBe('020300ff01');
    expect(() => integer(-1)).toThrow(RangeError);
  });

  it('encodes OIDs (X.690 8.19 examples and the ones certificates use)', () => {
    expect(hex(oid('2.5.4.3'))).toBe('0603550403');
    expect(hex(oid('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302');
    expect(hex(oid('1.3.6.1.5.5.7.3.1'))).toBe('06082b06010505070301');
    expect(() => oid('1.40')).toThrow(RangeError);
    expect(() => oid('x.1')).toThrow(RangeError);
  });

  it('encodes times as UTCTime through 2049 and GeneralizedTime from 2050', () => {
    expect(time(new Date('2026-12-07T03:04:05.678Z')).toString('latin1').slice(2)).toBe('261207030405Z');
    expect(hex(time(new Date('2049-12-31T23:59:59Z'))).slice(0, 2)).toBe('17');
    expect(time(new Date('2050-01-01T00:00:00Z')).toString('latin1').slice(2)).toBe('20500101000000Z');
    expect(hex(time(new Date('2050-01-01T00:00:00Z'))).slice(0, 2)).toBe('18');
  });

  it('encodes BIT STRINGs with their unused-bit count', () => {
    expect(hex(bitString(Buffer.from([0x84]), 2))).toBe('03020284');
    expect(() => bitString(Buffer.alloc(0), 1)).toThrow(RangeError);
  });
});

describe('ipBytes', () => {
  it('encodes IPv4, IPv6 with "::" and IPv4-mapped IPv6', () => {
    expect(hex(ipBytes('198.18.0.1'))).toBe('c6120001');
    expect(hex(ipBytes('::1'))).toBe('00000000000000000000000000000001');
    expect(hex(ipBytes('2001:db8::1:2'))).toBe('20010db8000000000000000000010002');
    expect(hex(ipBytes('fe80::'))).toBe('fe800000000000000000000000000000');
    expect(hex(ipBytes('::ffff:198.18.0.1'))).toBe('00000000000000000000ffffc6120001');
    expect(() => ipBytes('node-a')).toThrow(/not an IP address/);
  });
});

describe('selfSignedCertificate', () => {
  const now = new Date('2026-12-07T00:00:00Z');
  const made = selfSignedCertificate({
    commonName: 'heartline-metrics',
    hosts: ['198.18.0.1', 'localhost', '2001:db8::1'],
    now,
    validDays: 30,
  });
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hl-cert-'));
    writeFileSync(join(dir, 'cert.pem'), made.cert);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is a self-signed P-256 certificate node:crypto parses, with the SANs and validity asked for', () => {
    const x = new X509Certificate(made.cert);
    expect(x.subject).toBe('CN=heartline-metrics');
    expect(x.issuer).toBe('CN=heartline-metrics');
    expect(x.subjectAltName).toBe('IP Address:198.18.0.1, DNS:localhost, IP Address:2001:DB8:0:0:0:0:0:1');
    expect(new Date(x.validFrom).getTime()).toBe(now.getTime() - 3_600_000);
    expect(new Date(x.validTo).getTime()).toBe(now.getTime() + 30 * 86_400_000);
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(x.checkIssued(x)).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.checkIP('198.18.0.1')).toBe('198.18.0.1');
    expect(x.checkHost('localhost')).toBe('localhost');
    expect(x.raw.equals(made.der)).toBe(true);
    expect(x.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
  });

  it('is parsed by openssl x509 -text and verifies against itself', async () => {
    const run = (args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile('openssl', args, (err, stdout, stderr) =>
          err ? reject(new Error(stderr)) : resolve(stdout),
        ),
      );
    const text = await run(['x509', '-in', join(dir, 'cert.pem'), '-noout', '-text']);
    expect(text).toContain('Version: 3 (0x2)');
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text).toContain('ASN1 OID: prime256v1');
    expect(text).toMatch(
      /X509v3 Subject Alternative Name:\s*\n\s*IP Address:198\.18\.0\.1, DNS:localhost, IP Address:2001:DB8:0:0:0:0:0:1/,
    );
    expect(text).toContain('TLS Web Server Authentication');
    const verify = await run([
      'verify',
      '-attime',
      String(now.getTime() / 1000 + 60),
      '-CAfile',
      join(dir, 'cert.pem'),
      join(dir, 'cert.pem'),
    ]);
    expect(verify.trim()).toMatch(/: OK$/);
  });

  it('is accepted by node:tls: pinned as ca, with the host checked against its IP SAN', async () => {
    const live = selfSignedCertificate({ commonName: 'heartline-metrics', hosts: ['127.0.0.1'] });
    const server = tls.createServer({ cert: live.cert, key: live.key }, (s) => s.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const got = await new Promise<{ authorized: boolean; data: string }>((resolve, reject) => {
        const sock = tls.connect({ host: '127.0.0.1', port, ca: live.cert }, () => {
          let data = '';
          sock.on('data', (d: Buffer) => (data += d.toString()));
          sock.on('end', () => resolve({ authorized: sock.authorized, data }));
        });
        sock.on('error', reject);
      });
      expect(got).toEqual({ authorized: true, data: 'hello' });
      // Another certificate pinned: refused.
      const other = selfSignedCertificate({ commonName: 'other', hosts: ['127.0.0.1'] });
      await expect(
        new Promise((resolve, reject) => {
          const sock = tls.connect({ host: '127.0.0.1', port, ca: other.cert }, () => resolve(sock.end()));
          sock.on('error', reject);
        }),
      ).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
