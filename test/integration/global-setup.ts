/**
 * Jest globalSetup for the `integration` project: one real control plane (etcd +
 * kube-apiserver) per run, built from Go modules on first use (see hack/build-k8s.sh), with
 * the CRDs in crds/ applied. Workers find it through KUBECONFIG / HEARTLINE_KUBECONFIG.
 */
import path from 'node:path';
import pino from 'pino';
import { startControlPlane, type ControlPlane } from '../../hack/controlplane/index.js';
import { applyCrds } from '../../hack/controlplane/kubectl.js';

/** Where globalTeardown finds the handle (globalSetup and globalTeardown share this process). */
export const CONTROL_PLANE_KEY = '__heartlineControlPlane';

export default async function globalSetup(
  _globalConfig: unknown,
  projectConfig: { rootDir: string },
): Promise<void> {
  const log = pino({ name: 'integration-setup' }, pino.destination({ dest: 2, sync: true }));
  const cp: ControlPlane = await startControlPlane({ log });
  (globalThis as Record<string, unknown>)[CONTROL_PLANE_KEY] = cp;
  try {
    const crdDir = path.join(projectConfig.rootDir, 'crds');
    const files = await applyCrds(cp.kubeconfigPath, crdDir);
    log.info(
      { dir: crdDir, files: files.length },
      files.length ? 'CRDs established' : 'no CRD manifests to apply',
    );
  } catch (err) {
    await cp.stop();
    throw err;
  }
  process.env.KUBECONFIG = cp.kubeconfigPath;
  process.env.HEARTLINE_KUBECONFIG = cp.kubeconfigPath;
}
