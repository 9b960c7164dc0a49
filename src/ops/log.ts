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

/**
 * Wall-clock time in milliseconds with sub-millisecond resolution, for debug traces that are
 * compared across processes of one host (pino's own `time` has 1 ms resolution).
 */
export function preciseNow(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000;
}
