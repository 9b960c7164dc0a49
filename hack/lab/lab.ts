/**
 * Minimal command line for the lab's topology (the product's `heartline lab` builds on the
 * same module):
 *
 *   npx tsx hack/lab/lab.ts up <id> [--nodes 3] [--heartbeat-net] [--ipv6]
 *   npx tsx hack/lab/lab.ts down <id>
 *   npx tsx hack/lab/lab.ts down-all
 *   npx tsx hack/lab/lab.ts list
 *   npx tsx hack/lab/lab.ts inspect <id>
 */
import { down, downAll, inspect, listLabs, up } from './topology.js';

async function main(argv: string[]): Promise<void> {
  const [cmd, id] = argv;
  const flag = (f: string): boolean => argv.includes(f);
  const value = (f: string, d: string): string => {
    const i = argv.indexOf(f);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : d;
  };
  const needId = (): string => {
    if (!id || id.startsWith('-')) throw new Error(`lab ${cmd}: give the lab id, e.g. "lab ${cmd} demo"`);
    return id;
  };
  const print = (x: unknown): void => void process.stdout.write(`${JSON.stringify(x, null, 2)}\n`);
  switch (cmd) {
    case 'up':
      return print(
        await up({
          id: needId(),
          nodes: Number(value('--nodes', '3')),
          heartbeatNet: flag('--heartbeat-net'),
          ipv6: flag('--ipv6'),
        }),
      );
    case 'down':
      return print({ deleted: await down(needId()) });
    case 'down-all':
      return print({ labs: await downAll() });
    case 'list':
      return print(await listLabs());
    case 'inspect':
      return print((await inspect(needId())) ?? null);
    default:
      throw new Error(`lab: unknown command "${cmd ?? ''}": use up, down, down-all, list or inspect`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
