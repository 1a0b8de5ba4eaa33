/**
 * A `stats` reply as an Outbox stream: one encoded chunk per batch of pairs, then the end marker
 * (END for text, the empty response for binary). The snapshot was taken before; this only formats.
 */
import type { StatBatches } from '../stats.js'
import type { ReplyStream } from './outbox.js'

export function statsStream(
  batches: StatBatches,
  encode: (pairs: ReadonlyArray<readonly [string, string]>) => Buffer,
  end: Buffer,
): ReplyStream {
  const it = batches[Symbol.iterator]()
  let ended = false
  return {
    next(): Buffer | null {
      if (ended) return null
      for (;;) {
        const r = it.next()
        if (r.done) {
          ended = true
          return end
        }
        if (r.value.length > 0) return encode(r.value)
      }
    },
  }
}
