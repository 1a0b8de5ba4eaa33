/**
 * Shutdown with many journals owing an fsync (any `sync: never` server with many queues): write
 * every pending batch, then sync the spool's file system once (journal/syncSpool.ts) instead of an
 * fsync per journal: 100k queues took 20 s to stop with one each. The caller closes the queues in
 * the same turn, so nothing is written between the sync and the closes that rely on it.
 */
import { SYNCFS_MIN_JOURNALS } from '../journal/syncSpool.js'
import type { JournalFactory } from '../journal/types.js'
import type { EventLogger } from '../logger.js'
import type { PersistentQueue } from './persistentQueue.js'

/** True when the file system was synced after every queue's records were written. */
export function syncSpoolForClose(queues: PersistentQueue[], journals: JournalFactory, dir: string, log: EventLogger): boolean {
  const syncSpool = journals.syncSpool
  if (syncSpool === undefined) return false
  for (const q of queues) q.flushJournal()
  let owing = 0
  for (const q of queues) if (q.owesCloseSync) owing++
  if (owing < SYNCFS_MIN_JOURNALS) return false
  const started = performance.now()
  const ok = syncSpool(dir)
  const ms = Math.round(performance.now() - started)
  if (ok) log.info({ journals: owing, ms }, 'spool file system synced at shutdown (one syncfs for every journal)')
  else log.warn({ journals: owing, ms }, 'could not sync the spool file system at once; each journal syncs itself')
  return ok
}
