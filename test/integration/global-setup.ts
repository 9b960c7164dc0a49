/**
 * Jest globalSetup for the `integration` project: one real control plane (etcd +
 * kube-apiserver) per run, built from Go modules on first use (see hack/build-k8s.sh), with
 * the CRDs in crds/ (or $HEARTLINE_CRD_DIR) applied. Workers find it through KUBECONFIG / HEARTLINE_KUBECONFIG.
 *
 * Jest loads this file outside its module registry, so Node itself resolves its imports and
 * cannot load .ts files: the control plane library is loaded through tsx's tsImport instead.
 */
import pino from 'pino';
import { tsImport } from 'tsx/esm/api';
import type * as ControlPlaneLib from '../../hack/controlplane/index.js';
import type * as KubectlLib from '../../hack/controlplane/kubectl.js';

/** Where globalTeardown finds the handle (globalSetup and globalTeardown share this process). */
const CONTROL_PLANE_KEY = '__heartlineControlPlane';

export default async function globalSetup(
  _globalConfig: unknown,
  projectConfig: { rootDir: string },
): Promise<void> {
  const log = pino({ name: 'integration-setup' }, pino.destination({ dest: 2, sync: true }));
  const lib = (await tsImport('../../hack/controlplane/index.ts', import.meta.url)) as typeof ControlPlaneLib;
  const kubectl = (await tsImport(
    '../../hack/controlplane/kubectl.ts',
    import.meta.url,
  )) as typeof KubectlLib;
  // Dual-stack Service CIDRs, so LoadBalancer Services can ask for both families (load-balancer.test.ts).
  const cp = await lib.startControlPlane({ log, serviceClusterIpRange: '10.96.0.0/24,fd00:10:96::/112' });
  (globalThis as Record<string, unknown>)[CONTROL_PLANE_KEY] = cp;
  try {
    // HEARTLINE_CRD_DIR overrides crds/; set it to an empty string to start without CRDs.
    const crdDir = process.env.HEARTLINE_CRD_DIR ?? `${projectConfig.rootDir}/crds`;
    const files = crdDir ? await kubectl.applyCrds(cp.kubeconfigPath, crdDir) : [];
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
