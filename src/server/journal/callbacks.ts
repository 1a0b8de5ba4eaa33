/**
 * The engine's write callbacks, as every part of the journal runs them: one at a time, a throw
 * kept away from the journal's bookkeeping, and I/O failures turned into the error they get.
 */
import { StarlingError } from '../errors.js'
import type { WriteCallback } from './types.js'

/** Run an engine callback; a throw must not break the journal's bookkeeping. */
export function runCallback(cb: WriteCallback | undefined, err: Error | null): void {
  if (cb === undefined) return
  try {
    cb(err)
  } catch (thrown) {
    process.nextTick(() => {
      throw thrown
    })
  }
}

/**
 * The error handed to callbacks: the OS error itself when it has an errno code (ENOSPC, EIO: the
 * engine puts the code in its SERVER_ERROR reply), else a StarlingError with code 'IO'.
 */
export function ioError(err: unknown, what: string): Error {
  const e = err as NodeJS.ErrnoException
  if (e instanceof Error && typeof e.code === 'string') return e
  return new StarlingError('IO', `${what}: ${e?.message ?? String(err)}`, { cause: err })
}
