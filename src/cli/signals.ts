import type { Logger } from 'pino';

/** Resolves at the first SIGTERM or SIGINT, after logging `msg` with the signal's name. */
export function untilStopSignal(log: Logger, msg: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, msg);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
