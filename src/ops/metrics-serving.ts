import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { MetricsServing, TlsPair } from './http.js';
import { MetricsAuthorizer, type AccessReviewApi } from './metrics-auth.js';
import { selfSignedCertificate } from './self-signed-cert.js';

/** The metrics flags of `heartline agent` and `heartline controller`. */
export interface MetricsFlags {
  metricsListen: string;
  metricsTlsCert?: string;
  metricsTlsKey?: string;
  metricsInsecureServingNoAuth?: boolean;
}

/**
 * How the ops server serves /metrics, from the flags: plain HTTP without authentication only
 * when --metrics-insecure-serving-no-auth says so; else HTTPS with the given certificate files
 * or a self-signed certificate made now, and TokenReview + SubjectAccessReview through the API
 * `reviews` returns (called only in that case). Certificate files are re-read every
 * `reloadEveryMs`. Throws naming the flag and the fix.
 */
export async function metricsServing(
  flags: MetricsFlags,
  reviews: () => AccessReviewApi,
  log: Logger,
  reloadEveryMs = 60_000,
): Promise<MetricsServing> {
  const { metricsTlsCert: certFile, metricsTlsKey: keyFile } = flags;
  if (flags.metricsInsecureServingNoAuth) {
    if (certFile || keyFile)
      throw new Error(
        '--metrics-insecure-serving-no-auth serves plain HTTP: drop --metrics-tls-cert / --metrics-tls-key, or drop it',
      );
    log.warn(
      { listen: flags.metricsListen },
      'metrics served over plain HTTP without authentication (--metrics-insecure-serving-no-auth)',
    );
    return { kind: 'insecure-no-auth' };
  }
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new Error(
      `${certFile ? '--metrics-tls-key' : '--metrics-tls-cert'} is missing: give both --metrics-tls-cert and --metrics-tls-key, or neither for a self-signed certificate`,
    );
  const authorizer = () => new MetricsAuthorizer({ api: reviews(), log });
  if (certFile && keyFile) {
    // Read now (a bad pair stops the start) and again every minute, so that a renewed
    // certificate (cert-manager, a mounted Secret) is served without a restart.
    const read = async (): Promise<TlsPair> => {
      const tls = {
        cert: await readFlagFile('--metrics-tls-cert', certFile),
        key: await readFlagFile('--metrics-tls-key', keyFile),
      };
      try {
        createSecureContext(tls);
      } catch (err) {
        throw new Error(
          `--metrics-tls-cert ${certFile} / --metrics-tls-key ${keyFile}: ${(err as Error).message}; give a PEM certificate and its PEM private key`,
          { cause: err },
        );
      }
      return tls;
    };
    return { kind: 'secure', tls: await read(), authorizer: authorizer(), reload: read, reloadEveryMs };
  }
  const host = /^\[?([^\]]*)\]?:\d+$/.exec(flags.metricsListen)?.[1] ?? '';
  const specific = isIP(host) && host !== '0.0.0.0' && host !== '::' ? [host] : [];
  const hosts = [...new Set([...specific, 'localhost', hostname(), '127.0.0.1', '::1'])];
  const tls = selfSignedCertificate({ commonName: 'heartline-metrics', hosts });
  log.info({ hosts }, 'metrics served over HTTPS with a self-signed certificate made at start');
  return { kind: 'secure', tls, authorizer: authorizer() };
}

async function readFlagFile(flag: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new Error(`${flag} ${file}: cannot read it (${(err as Error).message}); give a readable PEM file`, {
      cause: err,
    });
  }
}
