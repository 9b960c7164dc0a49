import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Clock, HealthCheckSpec, Millis } from '../../core/ports.js';

/** Says whether a check may connect to an address (ProbeTargets): undefined yes, else why not. */
export interface TargetGuard {
  refusal(address: string): string | undefined;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for net/http that resolves a host name and keeps only the addresses `guard`
 * allows, so the address connected to is the address checked (no second resolution to race).
 */
function guardedLookup(guard: TargetGuard) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const allowed = addresses.filter((a) => guard.refusal(a.address) === undefined);
      if (allowed.length === 0) {
        const first = addresses[0]?.address ?? hostname;
        const e: NodeJS.ErrnoException = new Error(
          `not probed: ${hostname} resolves to ${first}: ${guard.refusal(first)}`,
        );
        e.code = 'ETARGETREFUSED';
        return callback(e, '');
      }
      if (options.all) return callback(null, allowed);
      return callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

/** A refusal for an IP-literal host (Node connects to those without a lookup). */
function literalRefusal(host: string, guard: TargetGuard | undefined): string | undefined {
  if (!guard || net.isIP(host) === 0) return undefined;
  const why = guard.refusal(host);
  return why === undefined ? undefined : `not probed: ${why}`;
}

const errorText = (err: NodeJS.ErrnoException): string =>
  err.code === 'ETARGETREFUSED' ? err.message : (err.code ?? err.message);

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
 * does not verify fails the check, naming the reason and the option. With `guard`, an address
 * it refuses is never connected to (a host name: none of its addresses is allowed) and the
 * check fails saying so.
 */
export function httpCheck(
  spec: NonNullable<HealthCheckSpec['http']>,
  timeoutMs: Millis,
  clock: Clock,
  guard?: TargetGuard,
): Promise<CheckOutcome> {
  const path = spec.path ?? '/';
  const scheme = spec.scheme ?? 'http';
  const url = `${scheme}://${hostPort(spec.host, spec.port)}${path}`;
  const get = scheme === 'https' ? https.get : http.get;
  const refused = literalRefusal(spec.host, guard);
  if (refused) return Promise.resolve({ ok: false, detail: `GET ${url}: ${refused}` });
  return probeOnce(`GET ${url}`, timeoutMs, clock, (finish) => {
    const options = {
      host: spec.host,
      port: spec.port,
      path,
      agent: false,
      headers: { 'user-agent': 'heartline' },
      ...(guard ? { lookup: guardedLookup(guard) } : {}),
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
      const code = errorText(err);
      const hint =
        scheme === 'https' && CERT_ERROR.test(code)
          ? ': the certificate does not verify; give the service a certificate for this host from a trusted CA, or set healthCheck.http.insecureSkipTLSVerify: true'
          : '';
      finish({ ok: false, detail: `GET ${url}: ${code}${hint}` });
    });
    return req;
  });
}

/** Opens a TCP connection; ok once connected. `guard` as for httpCheck. */
export function tcpCheck(
  spec: NonNullable<HealthCheckSpec['tcp']>,
  timeoutMs: Millis,
  clock: Clock,
  guard?: TargetGuard,
): Promise<CheckOutcome> {
  const target = hostPort(spec.host, spec.port);
  const refused = literalRefusal(spec.host, guard);
  if (refused) return Promise.resolve({ ok: false, detail: `tcp ${target}: ${refused}` });
  return probeOnce(`tcp ${target}`, timeoutMs, clock, (finish) => {
    const socket = net.connect({
      host: spec.host,
      port: spec.port,
      ...(guard ? { lookup: guardedLookup(guard) } : {}),
    });
    socket.once('connect', () => finish({ ok: true, detail: `tcp ${target}: connected` }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      finish({ ok: false, detail: `tcp ${target}: ${errorText(err)}` }),
    );
    return socket;
  });
}

/**
 * Runs one network probe that settles once: `start` opens the connection and calls `finish`
 * with the outcome; `what` fails with "timed out" after `timeoutMs`. Either way the timer
 * stops and the connection is destroyed.
 */
function probeOnce(
  what: string,
  timeoutMs: Millis,
  clock: Clock,
  start: (finish: (o: CheckOutcome) => void) => { destroy(): void },
): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    let done = false;
    const opened: { conn?: { destroy(): void } } = {};
    const finish = (o: CheckOutcome): void => {
      if (done) return;
      done = true;
      timer.stop();
      opened.conn?.destroy();
      resolve(o);
    };
    const timer = clock.after(timeoutMs, () =>
      finish({ ok: false, detail: `${what}: timed out after ${timeoutMs} ms` }),
    );
    opened.conn = start(finish);
    if (done) opened.conn.destroy();
  });
}
