/**
 * Helpers for integration tests against the control plane started by global-setup.ts.
 * Each test file works in its own namespace: createTestNamespace() in beforeAll,
 * deleteNamespace() in afterAll.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { runKubectl, type KubectlResult } from '../../hack/controlplane/kubectl.js';

export type { KubectlResult };

/** Path of the run's admin kubeconfig. Throws when the integration globalSetup did not run. */
export function kubeconfig(): string {
  const p = process.env.HEARTLINE_KUBECONFIG;
  if (!p) {
    throw new Error(
      'HEARTLINE_KUBECONFIG is not set: run integration tests with `npm run test:integration` so global-setup.ts starts the control plane',
    );
  }
  return p;
}

/** Runs kubectl against the test control plane; never throws on a non-zero exit code. */
export function kubectl(
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<KubectlResult> {
  return runKubectl(kubeconfig(), args, opts);
}

/** Runs kubectl and returns stdout; throws with the command and stderr on a non-zero exit. */
export async function mustKubectl(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `everyMs` until it returns something truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Creates a namespace named `<prefix>-<random>` (labelled heartline.dev/test=true) and returns its name. */
export async function createTestNamespace(prefix: string): Promise<string> {
  const base =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 50) || 'test';
  const name = `${base}-${randomBytes(3).toString('hex')}`;
  await mustKubectl(['create', 'namespace', name]);
  await mustKubectl(['label', 'namespace', name, 'heartline.dev/test=true']);
  return name;
}

/**
 * Deletes a namespace and waits until it is gone. There is no kube-controller-manager, so
 * nothing would ever empty and finalize a Terminating namespace: this clears its `kubernetes`
 * finalizer through the /finalize subresource itself. Objects left inside stay in etcd, which
 * is thrown away with the control plane. Missing namespaces are fine.
 */
export async function deleteNamespace(name: string, timeoutMs = 15_000): Promise<void> {
  const del = await kubectl(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
  if (del.code !== 0) throw new Error(`deleting namespace ${name} failed: ${del.stderr.trim()}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const get = await kubectl(['get', 'namespace', name, '-o', 'json', '--ignore-not-found']);
    if (get.code !== 0) throw new Error(`reading namespace ${name} failed: ${get.stderr.trim()}`);
    if (get.stdout.trim() === '') return;
    const ns = JSON.parse(get.stdout) as { spec?: { finalizers?: string[] } };
    if ((ns.spec?.finalizers ?? []).length > 0) {
      ns.spec = { ...ns.spec, finalizers: [] };
      await mustKubectl(
        ['replace', '--raw', `/api/v1/namespaces/${name}/finalize`, '-f', '-'],
        JSON.stringify(ns),
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `namespace ${name} still exists ${timeoutMs} ms after deletion; inspect it with kubectl get ns ${name} -o yaml`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * GET (or HEAD) over HTTP or HTTPS without verifying the server's certificate unless `ca` is
 * given (the ops servers' certificates are self-signed). Resolves with status and body.
 */
export function insecureGet(
  url: string,
  opts: { token?: string; ca?: string | Buffer; method?: string } = {},
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const tls = opts.ca ? { ca: opts.ca } : { rejectUnauthorized: false };
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      { method: opts.method ?? 'GET', headers, agent: false, timeout: 10_000, ...tls },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}
