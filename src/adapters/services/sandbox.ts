/**
 * What a Resource's processes may do on the node (docs/security.md, docs/adr/0019): run a
 * program from an allowlisted directory, resolved on disk; as a separate unprivileged user
 * with no capabilities and no way to gain any; with a minimal environment.
 */
import { realpath, stat } from 'node:fs/promises';
import { posix } from 'node:path';

/** The user and group Resources run as. */
export interface ResourceIdentity {
  uid: number;
  gid: number;
}

/** nobody:nogroup on Debian and most distributions: owns nothing, reads only world-readable files. */
export const DEFAULT_RESOURCE_IDENTITY: ResourceIdentity = { uid: 65534, gid: 65534 };

/** util-linux setpriv; in the image (Debian's util-linux is essential). */
export const DEFAULT_SETPRIV = '/usr/bin/setpriv';

/** PATH of Resource processes: the usual system directories, nothing from the agent. */
export const RESOURCE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The whole environment of a Resource process: PATH and LANG, plus `extra` (set by the
 * agent's own code, never by a Resource object). Nothing of the agent's environment
 * (KUBERNETES_*, NODE_OPTIONS, HEARTLINE_*) reaches it.
 */
export function resourceEnv(extra?: Readonly<Record<string, string>>): Record<string, string> {
  return { PATH: RESOURCE_PATH, LANG: 'C.UTF-8', ...extra };
}

/**
 * `argv` run through setpriv as `identity`: real, effective and saved uid and gid set, no
 * supplementary groups, inheritable, ambient and bounding capability sets emptied, and
 * no_new_privs set, so that neither setuid binaries nor file capabilities give anything back.
 * The caller needs CAP_SETUID and CAP_SETGID (CAP_SETPCAP to empty the bounding set: setpriv
 * skips that silently without it, which checkIdentity reports).
 */
export function withIdentity(
  argv: readonly string[],
  identity: ResourceIdentity,
  setpriv = DEFAULT_SETPRIV,
): string[] {
  return [
    setpriv,
    `--reuid=${identity.uid}`,
    `--regid=${identity.gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--ambient-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
    ...argv,
  ];
}

/**
 * heartline-netd's Resource launcher (docs/adr/0020, addendum): under `heartline-netd
 * --resource-uid`, netd starts every Resource as `identity` on the agent's request. The agent
 * runs `binary --run --launcher-fd=<fd> -- ARGV` as an ordinary child with the launcher socket
 * on `fd`; the child's stdio, working directory, environment, exit status and signals are the
 * Resource's, and killing the child kills the Resource's process group.
 */
export interface Launcher {
  /** heartline-netd (HEARTLINE_LAUNCHER). */
  binary: string;
  /** The launcher socket, inherited from netd (HEARTLINE_LAUNCHER_FD). */
  fd: number;
  /** Who netd runs Resources as (HEARTLINE_RESOURCE_UID / _GID, netd's --resource-uid/-gid). */
  identity: ResourceIdentity;
}

/**
 * The launcher netd handed this process, from its environment: undefined without
 * HEARTLINE_LAUNCHER_FD; throws naming the variable when one of them is malformed.
 */
export function launcherFromEnvironment(env: NodeJS.ProcessEnv): Launcher | undefined {
  const fdText = env['HEARTLINE_LAUNCHER_FD'];
  if (fdText === undefined || fdText === '') return undefined;
  const int = (name: string, min: number): number => {
    const text = env[name] ?? '';
    const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > 0xfffffffe)
      throw new Error(
        `${name}=${text}: want a number (heartline-netd --resource-uid sets the HEARTLINE_LAUNCHER* and HEARTLINE_RESOURCE_* variables; do not set them by hand)`,
      );
    return n;
  };
  const binary = env['HEARTLINE_LAUNCHER'] ?? '';
  if (!binary.startsWith('/'))
    throw new Error(
      `HEARTLINE_LAUNCHER=${binary}: want the absolute path of heartline-netd (set by heartline-netd --resource-uid)`,
    );
  return {
    binary,
    fd: int('HEARTLINE_LAUNCHER_FD', 3),
    identity: { uid: int('HEARTLINE_RESOURCE_UID', 1), gid: int('HEARTLINE_RESOURCE_GID', 1) },
  };
}

/** `argv` run through the launcher: netd starts it as the launcher's identity. */
export function withLauncher(argv: readonly string[], launcher: Launcher): string[] {
  return [launcher.binary, '--run', `--launcher-fd=${launcher.fd}`, '--', ...argv];
}

/** The fields of /proc/<pid>/status that say who a process is and what it may do. */
export interface ProcessCredentials {
  uids: number[];
  gids: number[];
  groups: number[];
  capInh: bigint;
  capPrm: bigint;
  capEff: bigint;
  capBnd: bigint;
  capAmb: bigint;
  noNewPrivs: boolean;
}

/** Parses /proc/<pid>/status. Throws when a field is missing. */
export function parseProcStatus(text: string): ProcessCredentials {
  const field = (name: string): string => {
    const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/self/status`);
    return m[1]!.trim();
  };
  const ids = (name: string): number[] =>
    field(name)
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  const cap = (name: string): bigint => BigInt(`0x${field(name)}`);
  return {
    uids: ids('Uid'),
    gids: ids('Gid'),
    groups: ids('Groups'),
    capInh: cap('CapInh'),
    capPrm: cap('CapPrm'),
    capEff: cap('CapEff'),
    capBnd: cap('CapBnd'),
    capAmb: cap('CapAmb'),
    noNewPrivs: field('NoNewPrivs') === '1',
  };
}

/**
 * What is wrong with a Resource process's credentials, or undefined when it runs as exactly
 * `identity` (all four uids and gids), without supplementary groups, with every capability set
 * empty and no_new_privs set.
 */
export function credentialProblems(c: ProcessCredentials, identity: ResourceIdentity): string[] {
  const problems: string[] = [];
  if (!c.uids.every((u) => u === identity.uid)) problems.push(`uids ${c.uids.join(',')}`);
  if (!c.gids.every((g) => g === identity.gid)) problems.push(`gids ${c.gids.join(',')}`);
  if (c.groups.length > 0) problems.push(`supplementary groups ${c.groups.join(',')}`);
  const sets: Array<[string, bigint]> = [
    ['CapInh', c.capInh],
    ['CapPrm', c.capPrm],
    ['CapEff', c.capEff],
    ['CapBnd', c.capBnd],
    ['CapAmb', c.capAmb],
  ];
  for (const [name, v] of sets) if (v !== 0n) problems.push(`${name} ${v.toString(16)}`);
  if (!c.noNewPrivs) problems.push('no_new_privs not set');
  return problems;
}

/** Where the API's allowlisted directory is on this filesystem. */
export interface AllowedDir {
  /** The directory as Resources name it (RESOURCE_DIR or INIT_DIR). */
  api: string;
  /** Where it is here (the agent's mount of the node's directory); default `api`. */
  local?: string;
}

export type Resolved = { ok: true; path: string } | { ok: false; detail: string };

/**
 * Resolves `path` (a program as a Resource names it, inside `dir.api`) to the file to run:
 * the same relative path under `dir.local`, with every symlink and ".." resolved on disk.
 * Refuses (naming `field` and the fix) a path outside the directory, one that resolves
 * outside it (a symlink leading out), and anything but an existing regular file. The caller
 * runs the returned path, not the one it was given.
 */
export async function resolveAllowed(path: string, dir: AllowedDir, field: string): Promise<Resolved> {
  const local = dir.local ?? dir.api;
  const refuse = (problem: string): Resolved => ({
    ok: false,
    detail: `${field} ${path}: ${problem}`,
  });
  const rest = path.startsWith(`${dir.api}/`) ? path.slice(dir.api.length + 1) : undefined;
  if (rest === undefined || rest.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return refuse(
      `not a program in ${dir.api} (an absolute path inside it without "." or ".." segments); install it in ${dir.api} on the node and name it there`,
    );
  }
  let realDir: string;
  try {
    realDir = await realpath(local);
  } catch (err) {
    return refuse(
      `the directory ${dir.api} is not available to the agent (${local}: ${(err as NodeJS.ErrnoException).code ?? String(err)}); create it on the node and mount it into the agent (deploy/base/agent/daemonset.yaml)`,
    );
  }
  let real: string;
  try {
    real = await realpath(posix.join(local, rest));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return refuse(
      code === 'ENOENT'
        ? `does not exist on this node; install it in ${dir.api}`
        : `cannot be resolved (${code}); check the file and its directories in ${dir.api}`,
    );
  }
  if (!real.startsWith(realDir === '/' ? '/' : `${realDir}/`)) {
    return refuse(
      `resolves to ${real}, outside ${dir.api} (a symbolic link leading out); install the program itself in ${dir.api}, not a link to it`,
    );
  }
  try {
    const st = await stat(real);
    if (!st.isFile()) return refuse(`is not a regular file; install the program itself in ${dir.api}`);
  } catch (err) {
    return refuse(`cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return { ok: true, path: real };
}
