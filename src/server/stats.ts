/**
 * The `stats` reply, as ordered [name, value] pairs: Starling's server fields in Starling's order,
 * then each queue's five Starling fields followed by this project's extra fields for that queue,
 * then this server's extra fields. Protocol codecs only format these pairs.
 */
import type { QueueCollection } from './engine/queueCollection.js'
import type { PersistentQueue } from './engine/persistentQueue.js'
import type { JournalStats } from './journal/types.js'
import { fanoutParent } from './engine/fanout.js'

export interface ServerCounters {
  startedAt: number
  currConnections: number
  totalConnections: number
  bytesRead: number
  bytesWritten: number
}

export interface StatsSources {
  version: string
  server: ServerCounters
  collection: QueueCollection
  journal: () => JournalStats
}

type Pairs = Array<[string, string]>

/** memcached prints rusage as seconds.microseconds. */
function seconds(micros: number): string {
  const s = Math.floor(micros / 1e6)
  return `${s}.${String(micros % 1e6).padStart(6, '0')}`
}

export function queueStatPairs(q: PersistentQueue): Pairs {
  const p = `queue_${q.name}_`
  // No per-queue field may end in `_items` but Starling's three: Starling's Ruby client takes every
  // `queue_<x>_items` stat for a queue named <x> (so `mem_items` made phantom queues).
  const pairs: Pairs = [
    [`${p}items`, String(q.length)],
    [`${p}total_items`, String(q.totalItems)],
    [`${p}logsize`, String(q.journalSize)],
    [`${p}expired_items`, String(q.expiredItems)],
    [`${p}age`, String(q.lastAgeMs)],
    [`${p}bytes`, String(q.bytes)],
    [`${p}open_transactions`, String(q.openCount)],
    [`${p}waiters`, String(q.waiterCount)],
    [`${p}mem_count`, String(q.memoryItems)],
    [`${p}mem_bytes`, String(q.memoryBytes)],
    [`${p}discarded`, String(q.discardedItems)],
    [`${p}journal_rotations`, String(q.journalRotations)],
  ]
  // Only fanout children have it: the queue whose items they copy.
  const parent = fanoutParent(q.name)
  if (parent !== null) pairs.push([`${p}fanout_parent`, parent])
  return pairs
}

/**
 * `stats reset`, as memcached: the cumulative server counters restart from zero. Current values
 * (curr_items, curr_connections, bytes) and the per-queue fields (Starling's, kept in the journal
 * state) are not counters of this kind and stay.
 */
export function resetCounters(src: StatsSources): void {
  const c = src.collection.counters
  c.cmdGet = c.cmdSet = c.getHits = c.getMisses = 0
  src.server.totalConnections = src.server.currConnections
  src.server.bytesRead = src.server.bytesWritten = 0
}

export function statPairs(src: StatsSources): Pairs {
  const { server, collection } = src
  const usage = process.resourceUsage()
  const queues = collection.queueNames.map((n) => collection.peekQueue(n)!).filter(Boolean)
  let currItems = 0
  let totalItems = 0
  let bytes = 0
  for (const q of queues) {
    currItems += q.length
    totalItems += q.totalItems
    bytes += q.bytes
  }
  const c = collection.counters
  const now = Date.now()
  const pairs: Pairs = [
    ['pid', String(process.pid)],
    ['uptime', String(Math.floor((now - server.startedAt) / 1000))],
    ['time', String(Math.floor(now / 1000))],
    ['version', src.version],
    ['rusage_user', seconds(usage.userCPUTime)],
    ['rusage_system', seconds(usage.systemCPUTime)],
    ['curr_items', String(currItems)],
    ['total_items', String(totalItems)],
    ['bytes', String(bytes)],
    ['curr_connections', String(server.currConnections)],
    ['total_connections', String(server.totalConnections)],
    ['cmd_get', String(c.cmdGet)],
    ['cmd_set', String(c.cmdSet)],
    ['get_hits', String(c.getHits)],
    ['get_misses', String(c.getMisses)],
    ['bytes_read', String(server.bytesRead)],
    ['bytes_written', String(server.bytesWritten)],
    ['limit_maxbytes', String(collection.memory.limit)],
  ]
  for (const q of queues) pairs.push(...queueStatPairs(q))
  const j = src.journal()
  pairs.push(
    ['journal_fsyncs', String(j.fsyncs)],
    ['journal_fsync_batch_avg', j.fsyncBatchAvg.toFixed(2)],
    ['mem_bytes', String(collection.memory.used)],
  )
  return pairs
}
