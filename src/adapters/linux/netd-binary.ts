import { execFile } from 'node:child_process';
import { access, constants, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Why heartline-netd could not be found or built; the message says how to fix it. */
export class NetdBinaryError extends Error {
  override readonly name = 'NetdBinaryError';
}

/** The source tree's `native/` folder (holding the Makefile), searched upwards from this module. */
export async function findNativeDir(
  from = dirname(fileURLToPath(import.meta.url)),
): Promise<string | undefined> {
  for (let dir = from; ; dir = dirname(dir)) {
    if (await exists(join(dir, 'native', 'Makefile'))) return join(dir, 'native');
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Path of the heartline-netd executable: `explicit`, else $HEARTLINE_NETD, else
 * `native/build/heartline-netd`, which is built with `make -C native` when it is missing or
 * older than its source (gcc and make are install-time requirements).
 */
export async function resolveNetdBinary(explicit?: string): Promise<string> {
  const given = explicit ?? process.env.HEARTLINE_NETD;
  if (given) {
    if (!(await exists(given, constants.X_OK)))
      throw new NetdBinaryError(
        `heartline-netd: ${given} (${explicit ? 'NetdNetworkDriver binary' : 'HEARTLINE_NETD'}) is not an executable file; ` +
          'point it at a built heartline-netd or unset it to use native/build/heartline-netd',
      );
    return given;
  }
  const native = await findNativeDir();
  if (!native)
    throw new NetdBinaryError(
      'heartline-netd: no native/Makefile found above the Heartline install and HEARTLINE_NETD is unset; ' +
        'set HEARTLINE_NETD to the heartline-netd executable',
    );
  const binary = join(native, 'build', 'heartline-netd');
  const [bin, src] = await Promise.all([mtime(binary), mtime(join(native, 'heartline-netd.c'))]);
  if (bin === undefined || (src !== undefined && src > bin)) {
    try {
      await run('make', ['-s', '-C', native], { timeout: 120_000 });
    } catch (err) {
      const detail = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
      throw new NetdBinaryError(
        `heartline-netd: building it with 'make -C ${native}' failed (needs gcc, make and libc headers): ${detail}`,
      );
    }
  }
  return binary;
}

async function exists(path: string, mode = constants.F_OK): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}
