/**
 * pino, set up once: JSON lines to stderr or to the -L file. One line per notable event (start,
 * replay, rotation, errors); never one per command at the default level.
 */
import { pino, type Logger } from 'pino'

export type { Logger }

/**
 * What the engine and the journal need of a logger: pino's Logger is one. They import it as a type
 * only, so they load without pino (crash tests run the journal alone in a child process).
 */
export interface EventLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** `-v` steps: info (default) → debug → trace. */
export function levelForVerbosity(base: string, verbose: number): string {
  const order = ['fatal', 'error', 'warn', 'info', 'debug', 'trace']
  const i = order.indexOf(base)
  if (i < 0 || verbose <= 0) return base
  return order[Math.min(order.length - 1, i + verbose)]!
}

export function createLogger(level: string, file: string | null): Logger {
  const destination = pino.destination({ dest: file ?? 2, sync: true, mkdir: file !== null, mode: 0o600 })
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination)
}
