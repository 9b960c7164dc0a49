/** Jest globalTeardown for the `integration` project: stops the control plane globalSetup started. */
import type { ControlPlane } from '../../hack/controlplane/index.js';
import { CONTROL_PLANE_KEY } from './global-setup.js';

export default async function globalTeardown(): Promise<void> {
  const g = globalThis as Record<string, unknown>;
  const cp = g[CONTROL_PLANE_KEY] as ControlPlane | undefined;
  delete g[CONTROL_PLANE_KEY];
  await cp?.stop();
}
