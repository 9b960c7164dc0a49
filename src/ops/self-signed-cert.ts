/**
 * A self-signed ECDSA P-256 certificate made in memory, for serving /metrics over HTTPS when
 * no certificate files are given (controller-runtime's metrics server does the same). Node 20
 * has no API that makes X.509 certificates, so the TBSCertificate is encoded here (der.ts) and
 * signed with node:crypto.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  boolean,
  explicit,
  implicit,
  integer,
  octetString,
  oid,
  sequence,
  set,
  time,
  utf8String,
} from './der.js';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

export interface SelfSignedInit {
  /** Subject and issuer common name. */
  commonName: string;
  /** Subject alternative names: IP literals (v4 or v6) become iPAddress, anything else dNSName. */
  hosts: string[];
  /** Start of validity; the certificate is valid from an hour before it. Default: now. */
  now?: Date;
  /** Days of validity after `now`. Default 365. */
  validDays?: number;
}

export interface SelfSigned {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
  /** The certificate in DER. */
  der: Buffer;
}

/** The bytes of an IP literal for an iPAddress SAN (4 or 16 bytes). */
export function ipBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6) throw new RangeError(`"${ip}" is not an IP address`);
  // Expand "::" and a trailing dotted IPv4 part into eight 16-bit groups.
  let text = ip.split('%')[0]!;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipBytes(v4[1]!);
    text =
      text.slice(0, -v4[1]!.length) +
      `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const pem = (label: string, der: Buffer): string =>
  `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;

const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));

/**
 * Makes a key pair and a self-signed certificate for `hosts`. The certificate is its own CA
 * (basicConstraints CA:TRUE, keyCertSign), so a client may pin it as `ca`; it is good for
 * serverAuth only.
 */
export function selfSignedCertificate(init: SelfSignedInit): SelfSigned {
  if (init.hosts.length === 0) throw new RangeError('selfSignedCertificate: give at least one host');
  const now = init.now ?? new Date();
  const validDays = init.validDays ?? 365;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const algorithm = sequence(oid(OID.ecdsaWithSha256));
  const name = sequence(set(sequence(oid(OID.commonName), utf8String(init.commonName))));
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, and exactly 16 bytes long
  const altNames = [...new Set(init.hosts)].map((h) =>
    isIP(h) ? implicit(7, ipBytes(h)) : implicit(2, Buffer.from(h, 'ascii')),
  );
  const tbs = sequence(
    explicit(0, integer(2)), // v3
    integer(serial),
    algorithm,
    name,
    sequence(
      time(new Date(now.getTime() - 3_600_000)),
      time(new Date(now.getTime() + validDays * 86_400_000)),
    ),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      sequence(
        extension(OID.basicConstraints, true, sequence(boolean(true))),
        // digitalSignature (bit 0) and keyCertSign (bit 5): 1000 0100, two unused bits.
        extension(OID.keyUsage, true, bitString(Buffer.from([0x84]), 2)),
        extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
        extension(OID.subjectAltName, false, sequence(...altNames)),
      ),
    ),
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(signature));
  return {
    cert: pem('CERTIFICATE', der),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    der,
  };
}
