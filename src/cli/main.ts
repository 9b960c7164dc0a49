#!/usr/bin/env node
import { basename } from 'node:path';
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';

// Entry point of the `heartline` binary. Subcommands set process.exitCode.
// Installed as kubectl-heartline too (a kubectl plugin): help then says `kubectl heartline`.
const program = buildProgram();
if (basename(process.argv[1] ?? '').startsWith('kubectl-')) program.name('kubectl heartline');
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`heartline: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
