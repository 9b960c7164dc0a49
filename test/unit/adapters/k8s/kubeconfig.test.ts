/**
 * Kubeconfig and in-cluster loading without client-node: the variants kubectl accepts and the
 * errors for what the agent refuses. Files live in a temp dir per test.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TokenFile, loadRestConfig } from '../../../../src/adapters/k8s/kubeconfig.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hl-kubeconfig-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const PEM_CA = '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n';
const PEM_CERT = '-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n';
const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** No $KUBECONFIG, no ~/.kube/config, not in a pod. */
const bare = () => ({ env: {}, home: join(dir, 'home') });

function kubeconfig(
  file: string,
  cluster: Record<string, unknown>,
  user: Record<string, unknown> | undefined,
  extra: Record<string, unknown> = {},
): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster }],
      users: user ? [{ name: 'u', user }] : [],
      contexts: [{ name: 'x', context: { cluster: 'c', ...(user ? { user: 'u' } : {}), namespace: 'team' } }],
      'current-context': 'x',
      ...extra,
    }),
  );
  return path;
}

describe('loadRestConfig from a kubeconfig file', () => {
  it('reads inline client certificates and CA (what hack/controlplane writes)', async () => {
    const path = kubeconfig(
      'kc',
      { server: 'https://127.0.0.1:6443', 'certificate-authority-data': b64(PEM_CA) },
      { 'client-certificate-data': b64(PEM_CERT), 'client-key-data': b64(PEM_KEY) },
    );
    const c = await loadRestConfig({ path, ...bare() });
    expect(c.server.href).toBe('https://127.0.0.1:6443/');
    expect(c.tls.ca?.toString()).toBe(PEM_CA);
    expect(c.tls.cert?.toString()).toBe(PEM_CERT);
    expect(c.tls.key?.toString()).toBe(PEM_KEY);
    expect(c.tls.rejectUnauthorized).toBe(true);
    expect(c.authorization()).toBeUndefined();
    expect(c.namespace).toBe('team');
    expect(c.source).toContain('context x');
  });

  it('reads certificate files relative to the kubeconfig, skip-verify and tls-server-name', async () => {
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki', 'ca.crt'), PEM_CA);
    writeFileSync(join(dir, 'pki', 'admin.crt'), PEM_CERT);
    writeFileSync(join(dir, 'pki', 'admin.key'), PEM_KEY);
    const path = kubeconfig(
      'kc',
      {
        server: 'https://[fd00::1]:6443/prefix',
        'certificate-authority': 'pki/ca.crt',
        'insecure-skip-tls-verify': true,
        'tls-server-name': 'kubernetes.default',
      },
      { 'client-certificate': 'pki/admin.crt', 'client-key': join(dir, 'pki', 'admin.key') },
    );
    const c = await loadRestConfig({ path, ...bare() });
    expect(c.server.hostname).toBe('[fd00::1]');
    expect(c.server.pathname).toBe('/prefix');
    expect(c.tls).toEqual({
      ca: Buffer.from(PEM_CA),
      cert: Buffer.from(PEM_CERT),
      key: Buffer.from(PEM_KEY),
      rejectUnauthorized: false,
      servername: 'kubernetes.default',
    });
  });

  it('uses a token, a tokenFile (re-read after invalidate) or basic auth', async () => {
    const withToken = kubeconfig('a', { server: 'https://h:1' }, { token: 'abc', tokenFile: 'ignored' });
    expect((await loadRestConfig({ path: withToken, ...bare() })).authorization()).toBe('Bearer abc');

    writeFileSync(join(dir, 'tok'), 'one\n');
    const withFile = kubeconfig('b', { server: 'https://h:1' }, { tokenFile: 'tok' });
    const c = await loadRestConfig({ path: withFile, ...bare() });
    expect(c.authorization()).toBe('Bearer one');
    writeFileSync(join(dir, 'tok'), 'two\n');
    expect(c.authorization()).toBe('Bearer one'); // cached for a minute
    expect(c.invalidate()).toBe(true);
    expect(c.authorization()).toBe('Bearer two');

    const basic = kubeconfig('c', { server: 'http://h:1' }, { username: 'admin', password: 'pw' });
    expect((await loadRestConfig({ path: basic, ...bare() })).authorization()).toBe(
      `Basic ${b64('admin:pw')}`,
    );
  });

  it('merges the files of $KUBECONFIG: the first one naming an entry or current-context wins', async () => {
    const first = join(dir, 'first');
    writeFileSync(
      first,
      stringify({ 'current-context': 'x', contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }] }),
    );
    const second = kubeconfig(
      'second',
      { server: 'https://second:1' },
      { token: 't2' },
      {
        'current-context': 'other',
      },
    );
    const c = await loadRestConfig({ env: { KUBECONFIG: `${first}:${second}` }, home: join(dir, 'home') });
    expect(c.server.host).toBe('second:1');
    expect(c.authorization()).toBe('Bearer t2');
  });

  it('prefers $KUBECONFIG, then ~/.kube/config', async () => {
    mkdirSync(join(dir, 'home', '.kube'), { recursive: true });
    const home = kubeconfig(join('home', '.kube', 'config'), { server: 'https://home:1' }, undefined);
    expect(home).toContain('.kube');
    expect((await loadRestConfig(bare())).server.host).toBe('home:1');
    const env = kubeconfig('env', { server: 'https://env:1' }, undefined);
    expect((await loadRestConfig({ env: { KUBECONFIG: env }, home: join(dir, 'home') })).server.host).toBe(
      'env:1',
    );
    await expect(
      loadRestConfig({ env: { KUBECONFIG: join(dir, 'missing') }, home: join(dir, 'home') }),
    ).rejects.toThrow(/KUBECONFIG=.*missing: no such file/);
  });

  it.each([
    [
      'exec credential plugins',
      { exec: { command: 'aws', args: ['eks', 'get-token'] } },
      /users\[u\]\.user\.exec is set: heartline agent does not run credential plugins; give the user a client certificate/,
    ],
    ['auth providers', { 'auth-provider': { name: 'oidc' } }, /users\[u\]\.user\.auth-provider is set/],
    [
      'impersonation',
      { token: 't', as: 'someone' },
      /users\[u\]\.user\.as is set: impersonation is not supported/,
    ],
    ['a certificate without its key', { 'client-certificate-data': b64(PEM_CERT) }, /client-key is missing/],
  ])('refuses %s, naming the field and the fix', async (_what, user, message) => {
    const path = kubeconfig('kc', { server: 'https://h:1' }, user);
    await expect(loadRestConfig({ path, ...bare() })).rejects.toThrow(message);
  });

  it('refuses proxies, missing servers and dangling names', async () => {
    const proxy = kubeconfig('p', { server: 'https://h:1', 'proxy-url': 'http://proxy:3128' }, undefined);
    await expect(loadRestConfig({ path: proxy, ...bare() })).rejects.toThrow(
      /clusters\[c\]\.cluster\.proxy-url is set: .*remove proxy-url/,
    );
    const noServer = kubeconfig('s', {}, undefined);
    await expect(loadRestConfig({ path: noServer, ...bare() })).rejects.toThrow(
      /clusters\[c\]\.cluster\.server is missing/,
    );
    const noCtx = kubeconfig('n', { server: 'https://h:1' }, undefined, { 'current-context': 'nope' });
    await expect(loadRestConfig({ path: noCtx, ...bare() })).rejects.toThrow(
      /current-context "nope" names no entry in contexts/,
    );
    const none = join(dir, 'empty');
    writeFileSync(none, 'apiVersion: v1\nkind: Config\n');
    await expect(loadRestConfig({ path: none, ...bare() })).rejects.toThrow(/current-context is not set/);
    await expect(loadRestConfig({ path: join(dir, 'absent'), ...bare() })).rejects.toThrow(
      /kubeconfig .*absent: cannot read/,
    );
    const missingCa = kubeconfig(
      'ca',
      { server: 'https://h:1', 'certificate-authority': 'nope.crt' },
      undefined,
    );
    await expect(loadRestConfig({ path: missingCa, ...bare() })).rejects.toThrow(
      /certificate-authority: cannot read .*nope\.crt/,
    );
  });
});

describe('loadRestConfig in a pod', () => {
  function serviceAccount(token = 'sa-token'): string {
    const sa = join(dir, 'sa');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'ca.crt'), PEM_CA);
    writeFileSync(join(sa, 'token'), token);
    writeFileSync(join(sa, 'namespace'), 'heartline-system');
    return sa;
  }

  it('uses KUBERNETES_SERVICE_HOST/PORT and the service account files', async () => {
    const c = await loadRestConfig({
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
      home: join(dir, 'home'),
      serviceAccountDir: serviceAccount(),
    });
    expect(c.server.href).toBe('https://10.96.0.1/');
    expect(c.tls).toEqual({ ca: Buffer.from(PEM_CA), rejectUnauthorized: true });
    expect(c.authorization()).toBe('Bearer sa-token');
    expect(c.namespace).toBe('heartline-system');
    expect(c.source).toBe('in-cluster service account');
  });

  it('brackets an IPv6 service host and re-reads the rotated token', async () => {
    const sa = serviceAccount('first');
    const c = await loadRestConfig({
      env: { KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '6443' },
      home: join(dir, 'home'),
      serviceAccountDir: sa,
      tokenReloadMs: 0,
    });
    expect(c.server.host).toBe('[fd00:10:96::1]:6443');
    writeFileSync(join(sa, 'token'), 'second');
    expect(c.authorization()).toBe('Bearer second');
  });

  it('names the token file when it is missing, and what to do when nothing is configured', async () => {
    await expect(
      loadRestConfig({
        env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
        home: join(dir, 'home'),
        serviceAccountDir: join(dir, 'nowhere'),
      }),
    ).rejects.toThrow(/token file .*nowhere\/token: cannot read a token .*mount the service account token/);
    await expect(loadRestConfig(bare())).rejects.toThrow(
      /no kubeconfig: pass --kubeconfig, set KUBECONFIG, create ~\/.kube\/config, or run in a pod/,
    );
  });
});

describe('TokenFile', () => {
  it('re-reads the file once the token is older than the reload period, keeping the last on failure', () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'a\n');
    let now = 0;
    const t = new TokenFile(path, 60_000, () => now);
    expect(t.get()).toBe('a');
    writeFileSync(path, 'b');
    now = 59_999;
    expect(t.get()).toBe('a');
    now = 60_000;
    expect(t.get()).toBe('b');
    rmSync(path);
    now = 200_000;
    expect(t.get()).toBe('b'); // a rotation in progress: keep the last good token
    writeFileSync(path, 'c');
    now = 200_001;
    expect(t.get()).toBe('c'); // the failed read did not count as a read
  });

  it('rejects an empty file, naming it', () => {
    const path = join(dir, 'token');
    writeFileSync(path, '  \n');
    expect(() => new TokenFile(path).get()).toThrow(
      /token file .*token: cannot read a token \(the file is empty\)/,
    );
  });
});
