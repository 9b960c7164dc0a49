/**
 * A lab node's cgroups (hack/cluster): every process of node `nK` of lab `id` lives under
 * `/hl-<id>-nK` in each cgroup hierarchy. The node's own daemons (containerd, kubelet,
 * kube-proxy, the lab's HTTP service) are put in `/hl-<id>-nK/system` of the freezer
 * hierarchy (cgroup v1) or of the unified hierarchy (cgroup v2); the kubelet creates
 * `/hl-<id>-nK/kubepods/...` (its --cgroup-root) for the pods. Power-off freezes the whole
 * subtree first, so nothing on the node can react, then kills every task in it; teardown
 * removes the directories in every hierarchy.
 */
import { mkdir, readFile, readdir, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signal, sleep } from '../lab/sh.js';

interface Hierarchy {
  mount: string;
  v2: boolean;
  controllers: string[];
}

/** cgroup mounts of this process's mount namespace (from /proc/self/mountinfo). */
export async function hierarchies(): Promise<Hierarchy[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: Hierarchy[] = [];
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mount = left.split(' ')[4] ?? '';
    const [fstype, , opts = ''] = right.split(' ');
    if (fstype === 'cgroup2') out.push({ mount, v2: true, controllers: [] });
    else if (fstype === 'cgroup') out.push({ mount, v2: false, controllers: opts.split(',') });
  }
  return out;
}

/** The hierarchy whose freeze covers a whole subtree: v1 freezer, else the unified one (v2 only). */
async function freezeHierarchy(): Promise<Hierarchy> {
  const hs = await hierarchies();
  const v1 = hs.find((h) => !h.v2 && h.controllers.includes('freezer'));
  if (v1) return v1;
  const v2 = hs.find((h) => h.v2 && h.mount === '/sys/fs/cgroup');
  if (v2) return v2;
  throw new Error(
    'no cgroup freezer: mount the v1 freezer controller or use the unified cgroup v2 hierarchy at /sys/fs/cgroup',
  );
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Every descendant directory of `dir` (deepest first), then `dir`. */
async function subtree(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[] = [];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) if (e.isDirectory()) out.push(...(await subtree(join(dir, e.name))));
  out.push(dir);
  return out;
}

async function tasks(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const d of await subtree(dir)) {
    const txt = await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const p of txt.split('\n')) if (p.trim()) pids.push(Number(p));
  }
  return pids;
}

/** The cgroups of one lab node. */
export class NodeCgroup {
  private constructor(
    /** `/hl-<id>-nK`: the kubelet's --cgroup-root. */
    readonly root: string,
    private readonly freezer: Hierarchy,
  ) {}

  static async create(root: string): Promise<NodeCgroup> {
    if (!/^\/hl-[a-z0-9]+-n\d+$/.test(root)) throw new Error(`node cgroup "${root}" is not /hl-<id>-n<k>`);
    const f = await freezeHierarchy();
    const cg = new NodeCgroup(root, f);
    // The kubelet refuses a --cgroup-root missing in any hierarchy. A new v1 cpuset group
    // starts with no CPUs and no memory nodes: give it its parent's.
    for (const h of await hierarchies()) {
      const dir = join(h.mount, root);
      await mkdir(dir, { recursive: true });
      if (!h.v2 && h.controllers.includes('cpuset')) {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) {
          const cur = (await readFile(join(dir, f), 'utf8')).trim();
          if (!cur) await writeFile(join(dir, f), await readFile(join(h.mount, f), 'utf8'));
        }
      }
    }
    await mkdir(cg.systemDir, { recursive: true });
    return cg;
  }

  /** Where the node's daemons go: `cgroup.procs` of this directory (see `enterCommand`). */
  get systemDir(): string {
    return join(this.freezer.mount, this.root, 'system');
  }

  private get freezeDir(): string {
    return join(this.freezer.mount, this.root);
  }

  /**
   * A shell prefix that moves the shell into the node's system cgroup before it execs the
   * daemon (so the daemon and everything it forks are in the subtree from their first
   * instruction).
   */
  enterCommand(): string {
    return `echo $$ > ${this.systemDir}/cgroup.procs`;
  }

  /** Pids of every task under the node's subtree. */
  pids(): Promise<number[]> {
    return tasks(this.freezeDir);
  }

  private async setFrozen(frozen: boolean): Promise<void> {
    if (this.freezer.v2) {
      await writeFile(join(this.freezeDir, 'cgroup.freeze'), frozen ? '1' : '0');
    } else {
      await writeFile(join(this.freezeDir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED');
    }
  }

  /** Freezes every task of the node at once (cgroup freezer). */
  async freeze(): Promise<void> {
    await this.setFrozen(true);
  }

  /**
   * SIGKILLs every task of the node (frozen ones die when thawed, which this does) and waits
   * until the subtree is empty. Returns the pids killed.
   */
  async kill(timeoutMs = 5000): Promise<number[]> {
    const killed = new Set<number>();
    const end = performance.now() + timeoutMs;
    for (;;) {
      const pids = await this.pids();
      if (pids.length === 0) break;
      if (performance.now() > end) {
        throw new Error(
          `cgroup ${this.freezeDir}: tasks ${pids.join(',')} survived SIGKILL for ${timeoutMs} ms`,
        );
      }
      for (const p of pids) {
        signal(p, 'SIGKILL');
        killed.add(p);
      }
      await this.setFrozen(false).catch(() => undefined);
      await sleep(20);
    }
    await this.setFrozen(false).catch(() => undefined);
    return [...killed];
  }

  /** Removes the node's directories in every hierarchy (after `kill`). Idempotent. */
  async remove(timeoutMs = 5000): Promise<void> {
    for (const h of await hierarchies()) {
      const top = join(h.mount, this.root);
      if (!(await exists(top))) continue;
      const end = performance.now() + timeoutMs;
      for (const d of await subtree(top)) {
        for (;;) {
          try {
            await rmdir(d);
            break;
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'ENOENT') break;
            if (code !== 'EBUSY' || performance.now() > end) {
              throw new Error(
                `cannot remove cgroup ${d}: ${String(err)} (tasks left: ${(await tasks(d)).join(',')})`,
              );
            }
            await sleep(50);
          }
        }
      }
    }
  }
}

/** Root cgroups of lab `id`'s nodes (or of every lab) left in any hierarchy. */
export async function leftoverRoots(id?: string): Promise<string[]> {
  const re = new RegExp(`^hl-${id ?? '[a-z0-9]+'}-n\\d+$`);
  const roots = new Set<string>();
  for (const h of await hierarchies()) {
    for (const name of await readdir(h.mount).catch(() => [] as string[])) {
      if (re.test(name)) roots.add(`/${name}`);
    }
  }
  return [...roots].sort();
}
