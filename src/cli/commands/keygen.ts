import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';

export interface KeygenOptions {
  name?: string;
  namespace?: string;
  keyId?: number;
  addTo?: string;
  output: 'yaml' | 'json';
}

function keyIdArg(value: string): number {
  if (!/^([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$/.test(value)) {
    throw new InvalidArgumentError('must be a key id, 1..255 without leading zeros, e.g. 2');
  }
  return Number(value);
}

function outputArg(value: string): 'yaml' | 'json' {
  if (value !== 'yaml' && value !== 'json') throw new InvalidArgumentError('must be yaml or json');
  return value;
}

/**
 * `heartline keygen`: prints a new auth Secret with a random key, or (`--add-to FILE`) the
 * given Secret with a new key added for rotation. The manifest goes to stdout, what to do
 * next to stderr. Nothing is written anywhere else.
 */
export function keygenCommand(program: Command): void {
  program
    .command('keygen')
    .description(
      'Print the cluster key Secret (the keys that authenticate heartbeats) with a new random key, or add a key to an existing one for rotation.',
    )
    .option('--name <name>', "Secret name (the HACluster's spec.authSecretRef.name; default heartline-auth)")
    .option('--namespace <ns>', 'namespace of the Secret (that of the HACluster)')
    .option(
      '--key-id <id>',
      'id of the new key, 1..255 (default: 1 for a new Secret, one above the highest with --add-to)',
      keyIdArg,
    )
    .option(
      '--add-to <file>',
      'add the key to this Secret manifest (YAML or JSON; "-" for stdin, e.g. from kubectl get secret NAME -o yaml) and print the result',
    )
    .option('-o, --output <format>', 'yaml or json', outputArg, 'yaml')
    .addHelpText(
      'after',
      `
Examples:
  heartline keygen --namespace heartline-system | kubectl apply -f -
  kubectl -n heartline-system get secret heartline-auth -o yaml | heartline keygen --add-to - | kubectl apply -f -`,
    )
    .action(async (opts: KeygenOptions) => {
      const k = await import('../keygen.js');
      const random = (n: number) => new Uint8Array(randomBytes(n));
      try {
        let result;
        if (opts.addTo !== undefined) {
          if (opts.name !== undefined || opts.namespace !== undefined) {
            throw new k.KeygenError(
              '--name and --namespace come from the Secret given with --add-to: leave them out',
            );
          }
          const source = opts.addTo === '-' ? 'stdin' : opts.addTo;
          let text: string;
          try {
            text = opts.addTo === '-' ? await readStdin() : await readFile(opts.addTo, 'utf8');
          } catch (err) {
            throw new k.KeygenError(`--add-to ${opts.addTo}: cannot read: ${(err as Error).message}`);
          }
          result = k.addKeyToSecret(
            text,
            source,
            opts.keyId !== undefined ? { keyId: opts.keyId } : {},
            random,
          );
        } else {
          result = k.newAuthSecret(
            {
              ...(opts.name !== undefined ? { name: opts.name } : {}),
              ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
              ...(opts.keyId !== undefined ? { keyId: opts.keyId } : {}),
            },
            random,
          );
        }
        process.stdout.write(k.renderSecret(result.secret, opts.output));
        process.stderr.write(`${k.nextSteps(result, opts.addTo !== undefined)}\n`);
      } catch (err) {
        if (!(err instanceof k.KeygenError)) throw err;
        process.stderr.write(`heartline keygen: ${err.message}\n`);
        process.exitCode = 1;
      }
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
