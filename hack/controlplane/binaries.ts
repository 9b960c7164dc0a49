import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** Paths of the two binaries a control plane runs. */
export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
}

/**
 * Finds hack/build-k8s.sh by walking up from `from` (default: the working directory), so the
 * library works the same under tsx, jest (which may compile it to CommonJS) and scripts.
 */
export function findBuildScript(from: string = process.cwd()): string {
  let dir = path.resolve(from);
  for (;;) {
    const candidate = path.join(dir, 'hack', 'build-k8s.sh');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(
        `hack/build-k8s.sh not found above ${from}: run from the Heartline checkout or pass binaries/buildScript explicitly`,
      );
    }
    dir = parent;
  }
}

/**
 * Returns the cached kube-apiserver and etcd, building them first when they are missing
 * (a cold build takes minutes; a cached one returns in milliseconds). Build progress is
 * streamed to `onProgress` line by line. HEARTLINE_KUBE_APISERVER / HEARTLINE_ETCD override
 * the build entirely.
 */
export async function ensureBinaries(
  opts: { buildScript?: string; onProgress?: (line: string) => void } = {},
): Promise<ControlPlaneBinaries> {
  const envApi = process.env.HEARTLINE_KUBE_APISERVER;
  const envEtcd = process.env.HEARTLINE_ETCD;
  if (envApi && envEtcd) return { kubeApiserver: envApi, etcd: envEtcd };
  const script = opts.buildScript ?? findBuildScript();
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let pending = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        pending += d;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) if (line.startsWith('[build-k8s]')) opts.onProgress?.(line);
      });
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c ?? 1, stdout: out, stderr: err }));
    },
  );
  if (code !== 0) {
    throw new Error(
      `${script} failed with exit code ${code}; last output:\n${stderr.split('\n').slice(-30).join('\n')}`,
    );
  }
  const found = Object.fromEntries(
    stdout
      .split('\n')
      .map((l) => l.split('='))
      .filter((kv) => kv.length === 2),
  ) as Record<string, string>;
  const kubeApiserver = found['kube-apiserver'];
  const etcd = found['etcd'];
  if (!kubeApiserver || !etcd)
    throw new Error(`${script} did not print kube-apiserver=... and etcd=... lines:\n${stdout}`);
  return { kubeApiserver, etcd };
}
