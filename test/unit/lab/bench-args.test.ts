import { benchArgs } from '../../../bench/args.js';

describe('benchArgs', () => {
  it('reads values, defaults and switches', () => {
    const a = benchArgs(['--trials', '12', '--raw', '--configs', 'a,b']);
    expect(a.opt('--configs', 'x')).toBe('a,b');
    expect(a.opt('--out', 'default.json')).toBe('default.json');
    expect(a.num('--trials', 20, 1)).toBe(12);
    expect(a.num('--busy', 4)).toBe(4);
    expect(a.positive('--trials', 20)).toBe(12);
    expect(a.has('--raw')).toBe(true);
    expect(a.has('--help')).toBe(false);
  });

  it('names the flag and what it wants when a value is missing or out of range', () => {
    expect(() => benchArgs(['--out']).opt('--out', 'x')).toThrow('--out needs a value');
    expect(() => benchArgs(['--out', '--raw']).opt('--out', 'x')).toThrow('--out needs a value');
    expect(() => benchArgs(['--trials', '0']).num('--trials', 20, 1)).toThrow(
      '--trials must be a number >= 1, got 0',
    );
    expect(() => benchArgs(['--busy', 'many']).num('--busy', 4)).toThrow(
      '--busy must be a number >= 0, got many',
    );
    expect(() => benchArgs(['--hold-ms', '-5']).positive('--hold-ms', 4000)).toThrow(
      '--hold-ms must be a positive number, got -5',
    );
  });
});
