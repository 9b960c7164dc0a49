import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Clock, HealthCheckSpec, Millis } from '../../core/ports.js';

export interface CheckOutcome {
  ok: boolean;
  detail: string;
}

const hostPort = (host: string, port: number): string =>
  net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;

/** Error codes of a TLS handshake that failed on the certificate (not on the network). */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|HOSTNAME|ISSUER/;

/**
 * GET http(s)://host:port/path; ok when the status equals `expectStatus` (default: any 2xx).
 * https verifies the certificate chain (system CAs and NODE_EXTRA_CA_CERTS) and that it
 * names `host`, unless `insecureSkipTLSVerify`: a service answering with a certificate that
 * does not verify fails the check, naming the reason and the option.
 */
export function httpCheck(
  spec: NonNullable<HealthCheckSpec['http']>,
  timeoutMs: Millis,
  clock: Clock,
): Promise<CheckOutcome> {
  const path = spec.path ?? '/';
  const scheme = spec.scheme ?? 'http';
  const url = `${scheme}://${hostPort(spec.host, spec.port)}${path}`;
  const get = scheme === 'https' ? https.get : http.get;
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: CheckOutcome): void => {
      if (done) return;
      done = true;
      timer.stop();
      req.destroy();
      resolve(o);
    };
    const options = {
      host: spec.host,
      port: spec.port,
      path,
      agent: false,
      headers: { 'user-agent': 'heartline' },
      ...(scheme === 'https' ? { rejectUnauthorized: spec.insecureSkipTLSVerify !== true } : {}),
    };
    const req = get(options, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      const ok =
        spec.expectStatus !== undefined ? status === spec.expectStatus : status >= 200 && status < 300;
      const want = spec.expectStatus !== undefined ? `${spec.expectStatus}` : '2xx';
      finish({ ok, detail: `GET ${url}: HTTP ${status} (want ${want})` });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.message;
      const hint =
        scheme === 'https' && CERT_ERROR.test(code)
          ? ': the certificate does not verify; give the service a certificate for this host from a trusted CA, or set healthCheck.http.insecureSkipTLSVerify: true'
          : '';
      finish({ ok: false, detail: `GET ${url}: ${code}${hint}` });
    });
    const timer = clock.after(timeoutMs, () =>
      finish({ ok: false, detail: `GET ${url}: timed out after ${timeoutMs} ms` }),
    );
  });
}

/** Opens a TCP connection; ok once connected. */
export function tcpCheck(
  spec: NonNullable<HealthCheckSpec['tcp']>,
  timeoutMs: Millis,
  clock: Clock,
): Promise<CheckOutcome> {
  const target = hostPort(spec.host, spec.port);
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: CheckOutcome): void => {
      if (done) return;
      done = true;
      timer.stop();
      socket.destroy();
      resolve(o);
    };
    const socket = net.connect({ host: spec.host, port: spec.port });
    socket.once('connect', () => finish({ ok: true, detail: `tcp ${target}: connected` }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      finish({ ok: false, detail: `tcp ${target}: ${err.code ?? err.message}` }),
    );
    const timer = clock.after(timeoutMs, () =>
      finish({ ok: false, detail: `tcp ${target}: timed out after ${timeoutMs} ms` }),
    );
  });
}
