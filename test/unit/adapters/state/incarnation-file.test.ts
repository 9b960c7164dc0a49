import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IncarnationFile, IncarnationFileError } from '../../../../src/adapters/state/incarnation-file.js';
import { incarnationFromWallClock, laterLife } from '../../../../src/core/incarnation.js';

describe('IncarnationFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hl-incarnation-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('seeds from the wall clock once, then counts by one per life, durable before use', () => {
    const wall = Date.UTC(2026, 0, 1);
    const f = new IncarnationFile(join(dir, 'sub', 'incarnation-lab.web'), () => wall);
    const first = f.next();
    expect(first).toEqual({
      incarnation: incarnationFromWallClock(wall),
      source: 'wall-clock',
      note: 'no state file yet',
    });
    expect(readFileSync(f.path, 'utf8')).toBe(`${first.incarnation}\n`);
    expect(f.next()).toEqual({ incarnation: first.incarnation + 1, source: 'counter' });
    // A restart reads the file, whatever the clock says now (here: ten years back).
    const again = new IncarnationFile(f.path, () => Date.UTC(2016, 0, 1)).next();
    expect(again).toEqual({ incarnation: first.incarnation + 2, source: 'counter' });
  });

  it('wraps past 2^32 - 1 to 1 (a later life in serial arithmetic)', () => {
    const path = join(dir, 'incarnation');
    writeFileSync(path, '4294967295\n');
    const r = new IncarnationFile(path).next();
    expect(r).toEqual({ incarnation: 1, source: 'counter' });
    expect(laterLife(1, 0xffffffff)).toBe(true);
  });

  it('an unreadable value falls back to the wall clock and says why', () => {
    const path = join(dir, 'incarnation');
    writeFileSync(path, 'garbage');
    const r = new IncarnationFile(path, () => Date.UTC(2026, 0, 1)).next();
    expect(r.source).toBe('wall-clock');
    expect(r.note).toMatch(/holds no incarnation/);
    expect(readFileSync(path, 'utf8')).toBe(`${r.incarnation}\n`);
  });

  it('refuses, naming the fix, when the directory cannot be written', () => {
    if (process.getuid?.() === 0) {
      // root ignores permissions: make the path's parent a file instead
      writeFileSync(join(dir, 'file'), '');
      expect(() => new IncarnationFile(join(dir, 'file', 'incarnation')).next()).toThrow(
        IncarnationFileError,
      );
      return;
    }
    chmodSync(dir, 0o500);
    expect(() => new IncarnationFile(join(dir, 'incarnation')).next()).toThrow(/--state-dir/);
    chmodSync(dir, 0o700);
  });
});
