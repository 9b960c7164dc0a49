/** Jest globalTeardown for the `integration` project: stops the control plane globalSetup started. */
import type { ControlPlane } from '../../hack/controlplane/index.js';

export default async function globalTeardown(): Promise<void> {
  const g = globalThis as Record<string, unknown>;
  const cp = g.__heartlineControlPlane as ControlPlane | undefined; // set by global-setup.ts
  delete g.__heartlineControlPlane;
  await cp?.stop();
}
