/**
 * Command-line flags of the benchmarks (`--flag value`), with errors that name the flag: one
 * parser for bench/failover, bench/provision and bench/soak. Pure but for the default argv.
 */
export interface BenchArgs {
  /** The value after `flag`, or `dflt` when the flag is absent; throws when the value is missing. */
  opt(flag: string, dflt: string): string;
  /** A number >= `min` (default 0); throws naming the flag otherwise. */
  num(flag: string, dflt: number, min?: number): number;
  /** A number > 0; throws naming the flag otherwise. */
  positive(flag: string, dflt: number): number;
  /** Whether `flag` is present (a switch without a value). */
  has(flag: string): boolean;
}

export function benchArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  const opt = (flag: string, dflt: string): string => {
    const i = argv.indexOf(flag);
    if (i < 0) return dflt;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  const read = (flag: string, dflt: number): number => Number(opt(flag, String(dflt)));
  return {
    opt,
    num(flag, dflt, min = 0) {
      const v = read(flag, dflt);
      if (!Number.isFinite(v) || v < min)
        throw new Error(`${flag} must be a number >= ${min}, got ${opt(flag, '')}`);
      return v;
    },
    positive(flag, dflt) {
      const v = read(flag, dflt);
      if (!Number.isFinite(v) || v <= 0)
        throw new Error(`${flag} must be a positive number, got ${opt(flag, '')}`);
      return v;
    },
    has: (flag) => argv.includes(flag),
  };
}
