import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Files produced by {@link generateCerts}; all PEM, all inside the control plane's data dir. */
export interface ControlPlaneCerts {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  /** Admin client certificate: CN=heartline-admin, O=system:masters (full access under RBAC). */
  adminCert: string;
  adminKey: string;
  /** Signs service-account tokens. */
  serviceAccountKey: string;
  /** Verifies service-account tokens. */
  serviceAccountPub: string;
}

/** Runs openssl with `command` split on spaces (no argument here contains one). */
async function openssl(command: string, cwd: string): Promise<void> {
  const args = command.split(' ');
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed in ${cwd}: ${e.stderr ?? e.message}`);
  }
}

async function ecKey(file: string, dir: string): Promise<void> {
  await openssl(`genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ${file}`, dir);
}

/** Signs a leaf certificate `name`.crt (key `name`.key) in `dir` with the CA there (ca.crt, ca.key). */
export async function signLeaf(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
  validityDays: number,
): Promise<void> {
  await ecKey(`${name}.key`, dir);
  await openssl(`req -new -key ${name}.key -subj ${subject} -out ${name}.csr`, dir);
  await writeFile(path.join(dir, `${name}.ext`), `[ext]\n${extensions}\n`);
  await openssl(
    `x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -set_serial 0x${randomBytes(8).toString('hex')} -days ${validityDays} -sha256 -extfile ${name}.ext -extensions ext -out ${name}.crt`,
    dir,
  );
}

/**
 * Creates a throw-away PKI in `dir` with openssl: a CA, a serving certificate whose SANs cover
 * `bindAddress`, loopback and the in-cluster `kubernetes` Service names/IP, an admin client
 * certificate in group system:masters, and a service-account signing key. EC P-256 keys keep
 * generation around a tenth of a second.
 */
export async function generateCerts(
  dir: string,
  opts: { bindAddress: string; serviceIp: string; validityDays?: number },
): Promise<ControlPlaneCerts> {
  const days = opts.validityDays ?? 7;
  await ecKey('ca.key', dir);
  await openssl(
    `req -x509 -new -key ca.key -subj /CN=heartline-test-ca -days ${days} -sha256 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.crt`,
    dir,
  );
  const ips = new Set(['127.0.0.1', opts.bindAddress, opts.serviceIp]);
  if (net.isIPv6(opts.bindAddress)) ips.add('::1');
  const sans = [
    ...[...ips].map((ip) => `IP:${ip}`),
    ...[
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ].map((d) => `DNS:${d}`),
  ].join(',');
  await Promise.all([
    signLeaf(
      dir,
      'serving',
      '/CN=kube-apiserver',
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans}`,
      days,
    ),
    signLeaf(
      dir,
      'admin',
      '/O=system:masters/CN=heartline-admin',
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth',
      days,
    ),
    ecKey('service-account.key', dir).then(() =>
      // --service-account-key-file wants a public key (it does not read PKCS#8 private keys).
      openssl('pkey -in service-account.key -pubout -out service-account.pub', dir),
    ),
  ]);
  const p = (f: string) => path.join(dir, f);
  return {
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    servingCert: p('serving.crt'),
    servingKey: p('serving.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    serviceAccountKey: p('service-account.key'),
    serviceAccountPub: p('service-account.pub'),
  };
}
