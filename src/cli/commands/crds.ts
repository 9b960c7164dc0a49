import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';

/** `heartline crds [--out DIR...]`: print the CRDs, or write one file per CRD into each DIR. */
export function crdsCommand(program: Command): void {
  program
    .command('crds')
    .description('Print the CustomResourceDefinitions generated from the API schemas (multi-document YAML).')
    .option('-o, --out <dir...>', 'write one file per CRD into each of these directories instead')
    .action(async (opts: { out?: string[] }) => {
      // Loaded when the command runs, so that other commands (the agent) do not pay for it.
      const { crdsYaml, generateCrds } = await import('../../api/crd.js');
      if (!opts.out?.length) {
        process.stdout.write(crdsYaml());
        return;
      }
      for (const dir of opts.out) {
        await mkdir(dir, { recursive: true });
        for (const crd of generateCrds()) {
          const path = join(dir, crd.file);
          await writeFile(path, crd.yaml);
          process.stderr.write(`wrote ${path}\n`);
        }
      }
    });
}
