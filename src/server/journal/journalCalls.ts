/**
 * What the journal hands back to the engine: errors, callbacks that must not break the journal's
 * bookkeeping, and the process-wide fsync counters (stats).
 */
import { StarlingError } from '../errors.js'
import type { JournalStats, WriteCallback } from './types.js'

// Process-wide fsync counters (stats).
export const counters = { fsyncs: 0, recordsSynced: 0 }

export function journalStats(): JournalStats {
  return {
    fsyncs: counters.fsyncs,
    fsyncBatchAvg: counters.fsyncs === 0 ? 0 : counters.recordsSynced / counters.fsyncs,
  }
}

/** Retry failed REMOVEs after this long if nothing else writes first. */
export const REMOVE_RETRY_MS = 100

/**
 * The error handed to callbacks: the OS error itself when it has an errno code (ENOSPC, EIO: the
 * engine puts the code in its SERVER_ERROR reply), else a StarlingError with code 'IO'.
 */
export function ioError(err: unknown, what: string): Error {
  const e = err as NodeJS.ErrnoException
  if (e instanceof Error && typeof e.code === 'string') return e
  return new StarlingError('IO', `${what}: ${e?.message ?? String(err)}`, { cause: err })
}

/** Run an engine callback; a throw must not break the journal's bookkeeping. */
export function call(cb: WriteCallback | undefined, err: Error | null): void {
  if (cb === undefined) return
  try {
    cb(err)
  } catch (thrown) {
    process.nextTick(() => {
      throw thrown
    })
  }
}
