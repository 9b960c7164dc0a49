/**
 * The agent's life counter on the node's disk (docs/adr/0015). Each life of the member takes
 * the next incarnation: the file's value plus one, written and fsynced (file, then directory)
 * before the life uses it, so a crash right after can never let a later life reuse it. The
 * wall clock is only the seed when the file is missing or unreadable (first start, wiped or
 * new disk), because then nothing else is known.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { incarnationFromWallClock, nextIncarnation } from '../../core/incarnation.js';
import type { Incarnation } from '../../core/messages.js';

/** Where an incarnation came from, for the start-up log line. */
export interface Reserved {
  incarnation: Incarnation;
  /** `counter`: the file's previous value plus one; `wall-clock`: the file was missing or unreadable. */
  source: 'counter' | 'wall-clock';
  /** Why the wall clock seeded it (missing file, or what was wrong with it). */
  note?: string;
}

/** The state file could not be written: the incarnation would not survive a restart. */
export class IncarnationFileError extends Error {
  override readonly name = 'IncarnationFileError';
}

export class IncarnationFile {
  /** `path`: the file (its directory is created). `wallClock`: ms since the epoch (tests). */
  constructor(
    readonly path: string,
    private readonly wallClock: () => number = Date.now,
  ) {}

  /**
   * Reserves the next incarnation and makes it durable before returning it. Throws
   * IncarnationFileError when it cannot be written (a read-only or missing volume): a life
   * whose number is not on disk could be reused by the next one.
   */
  next(): Reserved {
    const prev = this.read();
    const r: Reserved =
      prev.value !== undefined
        ? { incarnation: nextIncarnation(prev.value), source: 'counter' }
        : {
            incarnation: incarnationFromWallClock(this.wallClock()),
            source: 'wall-clock',
            note: prev.note,
          };
    this.write(r.incarnation);
    return r;
  }

  private read(): { value?: Incarnation; note: string } {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { note: code === 'ENOENT' ? 'no state file yet' : `state file unreadable (${code})` };
    }
    const m = /^\s*(\d{1,10})\s*$/.exec(text);
    const n = m ? Number(m[1]) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff)
      return { note: `state file holds no incarnation (${JSON.stringify(text.slice(0, 40))})` };
    return { value: n, note: '' };
  }

  private write(incarnation: Incarnation): void {
    const tmp = `${this.path}.tmp`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, `${incarnation}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
      const dir = openSync(dirname(this.path), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (err) {
      throw new IncarnationFileError(
        `cannot write the incarnation state file ${this.path} (${(err as Error).message}): ` +
          'give the agent a writable, persistent directory (--state-dir; the DaemonSet mounts the hostPath /var/lib/heartline)',
      );
    }
  }
}
