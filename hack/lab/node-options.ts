/**
 * The Node.js flags the deploy manifests give the controller and the agent (their
 * `NODE_OPTIONS`), so that the lab, the e2e tests and the benchmarks run each process with the
 * heap settings it is shipped with (docs/adr/0009-heap-limits.md).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const MANIFESTS = {
  controller: { file: 'deploy/base/controller/deployment.yaml', container: 'controller' },
  agent: { file: 'deploy/base/agent/daemonset.yaml', container: 'agent' },
} as const;

export type Role = keyof typeof MANIFESTS;

interface Container {
  name?: string;
  env?: Array<{ name?: string; value?: string }>;
}

/** `NODE_OPTIONS` of `role`'s container in deploy/base, or an error naming the file to fix. */
export function deployedNodeOptions(role: Role, root = ROOT): string {
  const { file, container } = MANIFESTS[role];
  const docs = parseAllDocuments(readFileSync(join(root, file), 'utf8')).map((d) => d.toJS() as unknown);
  for (const doc of docs) {
    const containers = (doc as { spec?: { template?: { spec?: { containers?: Container[] } } } })?.spec
      ?.template?.spec?.containers;
    const c = containers?.find((x) => x.name === container);
    const v = c?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value;
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  throw new Error(`${file}: container "${container}" has no NODE_OPTIONS env value; add one (heap limits)`);
}

/** The same, split into arguments for `node` (flags only, no quoting in the manifests). */
export function deployedNodeFlags(role: Role, root = ROOT): string[] {
  return deployedNodeOptions(role, root).split(/\s+/).filter(Boolean);
}
