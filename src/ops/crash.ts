import type { Logger } from 'pino';

/** Exit code for a bug (sysexits EX_SOFTWARE), as the fence-loss path of the agent uses. */
export const EXIT_BUG = 70;

/**
 * Last line of defence: an exception or rejection that nothing caught is logged (fatal, with
 * the error) and ends the process with EXIT_BUG.
 *
 * Nothing a user applies gets here: configuration is checked where it is read, and every
 * rebuild and reconfigure is caught, reported in status and Events, and leaves the running
 * configuration in place. What reaches this handler is a bug, after which the process's
 * state is unknown (a half-applied change, a timer that no longer runs), and exiting is
 * the safe choice: for the agent, heartline-netd sees its pipe close and removes every
 * Heartline address of the node at once, the peers take over as after a crash (the case
 * the protocol is built for), and the kubelet restarts the agent with a fresh fence; for
 * the controller, the leader Lease lapses to the standby replica and the kubelet restarts
 * this one. Staying up could keep renewing an address the member no longer tracks.
 */
export function exitOnBug(log: Logger, exit: (code: number) => void = (code) => process.exit(code)): void {
  const die = (kind: string) => (err: unknown) => {
    // pino writes synchronously to stdout by default, so the line is out before the exit.
    log.fatal({ err, kind }, 'uncaught error (a bug): exiting so that the fence and the kubelet recover');
    exit(EXIT_BUG);
  };
  process.on('uncaughtException', die('uncaughtException'));
  process.on('unhandledRejection', die('unhandledRejection'));
}
