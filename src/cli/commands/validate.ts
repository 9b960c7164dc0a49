import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';

const collect = (value: string, previous: string[]) => [...previous, value];

/** `heartline validate -f FILE...`: offline validation with the same rules as the API server. */
export function validateCommand(program: Command): void {
  program
    .command('validate')
    .description(
      'Validate manifests offline with the same rules as the API server and the agents (auth Secrets too). Exit code 1 if any is invalid.',
    )
    .requiredOption(
      '-f, --filename <file>',
      'multi-document YAML file ("-" for stdin); repeatable',
      collect,
      [],
    )
    .option('-q, --quiet', 'print only errors')
    .action(async (opts: { filename: string[]; quiet?: boolean }) => {
      // Loaded when the command runs, so that other commands (the agent) do not pay for it.
      const { validateManifestSet } = await import('../manifests.js');
      let failed = false;
      const files: Array<{ source: string; text: string }> = [];
      for (const file of opts.filename) {
        try {
          files.push({ source: file, text: file === '-' ? await readStdin() : await readFile(file, 'utf8') });
        } catch (err) {
          process.stderr.write(`${file}: cannot read: ${(err as Error).message}\n`);
          failed = true;
        }
      }
      // One set, so that an HACluster's activeKeyId is checked against its Secret in another file.
      const report = validateManifestSet(files);
      if (!opts.quiet) for (const note of report.notes) process.stderr.write(`note: ${note}\n`);
      for (const line of report.errors) process.stdout.write(`${line}\n`);
      if (report.errors.length > 0) failed = true;
      if (!opts.quiet && !failed) process.stderr.write(`${report.checked} object(s) valid\n`);
      if (failed) process.exitCode = 1;
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
