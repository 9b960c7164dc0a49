import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs kubectl against `kubeconfig` (inside `netns` when given) and collects its output. Never
 * throws for a non-zero exit: the caller decides. `timeoutMs` (default 60 s) kills a hung call.
 */
export function runKubectl(
  kubeconfig: string,
  args: string[],
  opts: { input?: string; netns?: string; timeoutMs?: number } = {},
): Promise<KubectlResult> {
  const argv = ['kubectl', `--kubeconfig=${kubeconfig}`, ...args];
  const [cmd, ...rest] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, rest, { stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? 1,
        stdout,
        stderr: signal ? `${stderr}\nkubectl killed by ${signal}` : stderr,
      }),
    );
    child.stdin.end(opts.input ?? '');
  });
}

/** YAML/JSON manifests directly inside `dir`, sorted by name; [] for a missing or empty dir. */
export function manifestFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /\.(ya?ml|json)$/.test(n))
    .map((n) => path.join(dir, n))
    .filter((f) => statSync(f).isFile())
    .sort();
}

function crdNames(text: string): string[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null)
    .filter((o) => o?.kind === 'CustomResourceDefinition' && typeof o.metadata?.name === 'string')
    .map((o) => o!.metadata!.name!);
}

async function must(kubeconfig: string, args: string[], what: string, netns?: string): Promise<string> {
  const r = await runKubectl(kubeconfig, args, { netns });
  if (r.code !== 0) throw new Error(`${what} failed (kubectl ${args.join(' ')}):\n${r.stderr || r.stdout}`);
  return r.stdout;
}

/**
 * Server-side applies every manifest in `dir` and waits until each CustomResourceDefinition
 * among them is Established. Returns the files applied ([] when the dir has none).
 */
export async function applyCrds(kubeconfig: string, dir: string, netns?: string): Promise<string[]> {
  const files = manifestFiles(dir);
  if (files.length === 0) return files;
  const fileArgs = files.flatMap((f) => ['-f', f]);
  await must(
    kubeconfig,
    ['apply', '--server-side', '--force-conflicts', ...fileArgs],
    `applying CRDs from ${dir}`,
    netns,
  );
  const names = files.flatMap((f) => crdNames(readFileSync(f, 'utf8'))).map((n) => `crd/${n}`);
  if (names.length > 0) {
    await must(
      kubeconfig,
      ['wait', '--for', 'condition=established', '--timeout=60s', ...names],
      `waiting for CRDs from ${dir} to be Established`,
      netns,
    );
  }
  return files;
}

/** Server-side applies every manifest in `dir` (in name order). Returns the files applied. */
export async function applyDir(kubeconfig: string, dir: string, netns?: string): Promise<string[]> {
  const files = manifestFiles(dir);
  if (files.length === 0) return files;
  await must(
    kubeconfig,
    ['apply', '--server-side', ...files.flatMap((f) => ['-f', f])],
    `applying manifests from ${dir}`,
    netns,
  );
  return files;
}
