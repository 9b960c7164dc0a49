import { Command } from 'commander';
import { controllerCommand } from './commands/controller.js';
import { agentCommand } from './commands/agent.js';
import { crdsCommand } from './commands/crds.js';
import { validateCommand } from './commands/validate.js';
import { keygenCommand } from './commands/keygen.js';
import { opsCommands } from './commands/ops.js';

/**
 * A subcommand module: given the root program, it adds its Command to it. Each
 * subcommand (crds, validate, and later controller, agent, lab) lives in
 * src/cli/commands/<name>.ts and is listed in COMMANDS below.
 */
export type CommandModule = (program: Command) => void;

export const COMMANDS: CommandModule[] = [
  crdsCommand,
  validateCommand,
  keygenCommand,
  controllerCommand,
  agentCommand,
  opsCommands,
];

/** Builds the `heartline` program with every registered subcommand. */
export function buildProgram(modules: CommandModule[] = COMMANDS): Command {
  const program = new Command('heartline')
    .description('Highly available virtual IPs for bare-metal Kubernetes clusters.')
    .showHelpAfterError()
    .exitOverride();
  for (const add of modules) add(program);
  return program;
}
