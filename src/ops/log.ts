import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process's root logger: JSON lines on stdout, level from HEARTLINE_LOG_LEVEL (info by
 * default). Components take a child: `log.child({ component: 'agent' })`. Messages are
 * constant; variables go in fields; errors go in `err`.
 */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level: process.env.HEARTLINE_LOG_LEVEL ?? 'info',
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that drops everything, for tests and tools that must stay quiet. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
