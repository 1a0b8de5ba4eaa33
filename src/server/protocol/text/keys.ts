/**
 * The key of a text or meta command, parsed, or refused: a bad key is answered with its error in
 * the command's place (in order, like any reply) and the command goes no further.
 */
import { parseQueueKey, parseSetKey, type ParsedKey } from '../keyOptions.js'
import type { Outbox } from '../outbox.js'
import { replyFor } from './serializer.js'

/** The queue a storage command writes to, or null when refused (`noreply`: refused silently). */
export function setKeyOrRefuse(out: Outbox, key: string, maxKeyLength: number, noreply = false): string | null {
  try {
    return parseSetKey(key, maxKeyLength)
  } catch (err) {
    if (!noreply) out.push(replyFor(err))
    return null
  }
}

/** The queue and options a read names (`q/t=500/open`), or null when refused. */
export function readKeyOrRefuse(out: Outbox, key: string, maxKeyLength: number): ParsedKey | null {
  try {
    return parseQueueKey(key, maxKeyLength)
  } catch (err) {
    out.push(replyFor(err))
    return null
  }
}
