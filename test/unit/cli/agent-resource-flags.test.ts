import { RESOURCE_DIR } from '../../../src/api/resource-paths.js';
import { agentCommand } from '../../../src/cli/commands/agent.js';
import { buildProgram } from '../../../src/cli/program.js';

/** Parses `heartline agent …` without running it; returns the options or the error text. */
function parse(args: string[]): Record<string, unknown> | string {
  const program = buildProgram([agentCommand]);
  const agent = program.commands.find((c) => c.name() === 'agent')!;
  let err = '';
  agent.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => {} });
  agent.action(() => undefined);
  try {
    program.parse(['agent', '--cluster', 'web', ...args], { from: 'user' });
  } catch {
    return err.trim();
  }
  return agent.opts();
}

describe('heartline agent: Resource flags', () => {
  it('defaults: programs from /etc/heartline/resource.d, run as 65534:65534', () => {
    expect(parse([])).toMatchObject({
      resourceDir: RESOURCE_DIR,
      resourceUid: 65534,
      resourceGid: 65534,
    });
    expect(parse(['--resource-uid', '1000', '--resource-gid', '1001'])).toMatchObject({
      resourceUid: 1000,
      resourceGid: 1001,
    });
  });

  it.each([
    ['--resource-uid', '0'],
    ['--resource-gid', '0'],
    ['--resource-uid', 'nobody'],
    ['--resource-uid', '-1'],
    ['--resource-uid', '4294967295'],
  ])('refuses %s %s, naming the flag and the fix', (flag, value) => {
    expect(parse([flag, value])).toContain(
      `${flag} must be a number from 1 to 4294967294 (not 0: Resources never run as root), e.g. 65534`,
    );
  });
});
