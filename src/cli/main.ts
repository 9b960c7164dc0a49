#!/usr/bin/env node
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';

// Entry point of the `heartline` binary. Subcommands set process.exitCode.
try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`heartline: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
