/**
 * `heartline keygen` against the real API server: its output is applied with kubectl as it
 * is, read back through the API, and accepted by what the agents and the controller run
 * (buildClusterConfig with the HACluster that names it); then a rotation through pipes
 * (`kubectl get secret -o yaml | heartline keygen --add-to - | kubectl apply -f -`) keeps the
 * old key, adds the next one, and the HACluster can switch to it.
 */
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { buildClusterConfig } from '../../src/runtime/cluster-config.js';
import { createTestNamespace, deleteNamespace, kubeconfig, mustKubectl } from './helpers.js';

jest.setTimeout(120_000);

const log = pino({ level: 'silent' });

function keygen(args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'keygen', ...args],
      { timeout: 60_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`keygen ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    );
    child.stdin!.end(input);
  });
}

const hacluster = (ns: string, active: string) => `apiVersion: heartline.dev/v1alpha1
kind: HACluster
metadata: {name: web, namespace: ${ns}}
spec:
  nodeSelector: {heartline.dev/cluster: web}
  authSecretRef: {name: auth, activeKeyId: '${active}'}
`;

describe('heartline keygen (real API server)', () => {
  let ns: string;
  const reader = new K8sApiSource(
    { kubeConfig: loadKubeConfig(kubeconfig()), clock: new SystemClock(), logger: log },
    { identity: 'test-keygen' },
  );
  beforeAll(async () => {
    ns = await createTestNamespace('keygen');
  });
  afterAll(async () => {
    if (ns) await deleteNamespace(ns);
  });

  const config = async () =>
    buildClusterConfig({
      cluster: (await reader.get('HACluster', { namespace: ns, name: 'web' }))!,
      vips: [],
      resources: [],
      nodes: [],
      secret: await reader.get('Secret', { namespace: ns, name: 'auth' }),
    });

  it('the Secret it prints is stored as it is and accepted by the agents and the controller; a rotation through pipes adds the next key', async () => {
    const out = await keygen(['--name', 'auth', '--namespace', ns]);
    await mustKubectl(['apply', '-f', '-'], out);
    await mustKubectl(['apply', '-f', '-'], hacluster(ns, '1'));
    const first = await config();
    expect(first.activeKeyId).toBe(1);
    expect(first.keys.map((k) => k.id)).toEqual([1]);
    expect(first.keys[0]!.secret).toHaveLength(32);

    const current = await mustKubectl(['get', 'secret', 'auth', '-n', ns, '-o', 'yaml']);
    const rotated = await keygen(['--add-to', '-'], current);
    await mustKubectl(['apply', '-f', '-'], rotated);
    await mustKubectl(['apply', '-f', '-'], hacluster(ns, '2'));
    const second = await config();
    expect(second.activeKeyId).toBe(2);
    expect(second.keys.map((k) => k.id)).toEqual([1, 2]);
    expect(Buffer.from(second.keys[0]!.secret)).toEqual(Buffer.from(first.keys[0]!.secret));
    expect(Buffer.from(second.keys[1]!.secret)).not.toEqual(Buffer.from(first.keys[0]!.secret));

    // resourceVersion is kept: applying a rotation made from a stale copy fails instead of
    // silently dropping the key added meanwhile.
    const stale = await keygen(['--add-to', '-'], current);
    const r = await mustKubectl(['apply', '-f', '-'], stale).then(
      () => 'applied',
      (e: Error) => e.message,
    );
    expect(r).toMatch(/modified|conflict/i);
  });
});
