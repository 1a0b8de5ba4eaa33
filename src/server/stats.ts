/**
 * The `stats` reply, as ordered [name, value] pairs: Starling's server fields in Starling's order,
 * then each queue's five Starling fields followed by this project's extra fields for that queue,
 * then this server's extra fields. Protocol codecs only format these pairs.
 *
 * A full `stats` is a snapshot: every number is read in one go when the command's turn comes (so it
 * shows exactly the commands before it, none after), kept as numbers — a few per queue, no strings —
 * and turned into text a batch of queues at a time while the reply is written. With 100k queues
 * the reply is megabytes: it is never built as one string, and other connections are served
 * between its batches.
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
  /** The input budget (protocol/inputBudget.ts): bytes held by half-received frames, refusals. */
  input?: { readonly used: number; readonly refusals: number }
  /** The memory reclaimer (memoryReclaim.ts): full GCs run after bursts of queue deletes. */
  reclaimer?: { readonly runs: number }
}

type Pairs = Array<[string, string]>

/** A stats reply in batches of pairs, formatted lazily from a snapshot. */
export type StatBatches = Iterable<ReadonlyArray<readonly [string, string]>>

/** Queues formatted per batch: about 60 KiB of text. */
const QUEUES_PER_BATCH = 100

/** Per-queue fields, in reply order (Starling's five first). Only numbers, read at the snapshot. */
const QUEUE_FIELDS = [
  'items',
  'total_items',
  'logsize',
  'expired_items',
  'age',
  'bytes',
  'open_transactions',
  'waiters',
  'mem_count',
  'mem_bytes',
  'discarded',
  'journal_rotations',
] as const

/**
 * A queue's fields into values[base..], in QUEUE_FIELDS order. One plain function, not a closure
 * per field: with 100k queues the snapshot (which holds the event loop) made 1.2 M megamorphic calls.
 */
function readQueueFields(q: PersistentQueue, values: Float64Array, base: number): void {
  values[base] = q.length
  values[base + 1] = q.totalItems
  values[base + 2] = q.journalSize
  values[base + 3] = q.expiredItems
  values[base + 4] = q.lastAgeMs
  values[base + 5] = q.bytes
  values[base + 6] = q.openCount
  values[base + 7] = q.waiterCount
  values[base + 8] = q.memoryItems
  values[base + 9] = q.memoryBytes
  values[base + 10] = q.discardedItems
  values[base + 11] = q.journalRotations
}
const FIELD_COUNT = QUEUE_FIELDS.length
// No per-queue field may end in `_items` but Starling's three: Starling's Ruby client takes every
// `queue_<x>_items` stat for a queue named <x> (so a `mem_items` field made phantom queues).
// Only fanout children have `fanout_parent` (the queue whose items they copy), after the numbers.

/** memcached prints rusage as seconds.microseconds. */
function seconds(micros: number): string {
  const s = Math.floor(micros / 1e6)
  return `${s}.${String(micros % 1e6).padStart(6, '0')}`
}

export function queueStatPairs(q: PersistentQueue): Pairs {
  const p = `queue_${q.name}_`
  const values = new Float64Array(FIELD_COUNT)
  readQueueFields(q, values, 0)
  const pairs: Pairs = QUEUE_FIELDS.map((suffix, f) => [p + suffix, String(values[f])])
  const parent = fanoutParent(q.name)
  if (parent !== null) pairs.push([`${p}fanout_parent`, parent])
  return pairs
}

/** Everything `stats` reports, frozen at one moment. */
export class StatsSnapshot implements StatBatches {
  constructor(
    private readonly head: Pairs,
    private readonly names: string[],
    private readonly values: Float64Array,
    private readonly tail: Pairs,
  ) {}

  *[Symbol.iterator](): Iterator<Pairs> {
    yield this.head
    const { names, values } = this
    for (let first = 0; first < names.length; first += QUEUES_PER_BATCH) {
      const batch: Pairs = []
      const last = Math.min(names.length, first + QUEUES_PER_BATCH)
      for (let i = first; i < last; i++) {
        const p = `queue_${names[i]!}_`
        for (let f = 0; f < FIELD_COUNT; f++) batch.push([p + QUEUE_FIELDS[f]!, String(values[i * FIELD_COUNT + f])])
        const parent = fanoutParent(names[i]!)
        if (parent !== null) batch.push([`${p}fanout_parent`, parent])
      }
      yield batch
    }
    yield this.tail
  }

  /** All pairs at once (small replies, tests). */
  pairs(): Pairs {
    const all: Pairs = []
    for (const batch of this) all.push(...batch)
    return all
  }
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

export function takeSnapshot(src: StatsSources): StatsSnapshot {
  const { server, collection } = src
  const usage = process.resourceUsage()
  const names: string[] = []
  const queues: PersistentQueue[] = []
  collection.forEachQueue((name, q) => {
    names.push(name)
    queues.push(q)
  })
  // Records earlier commands left in a journal's write batch (a confirmed open read's REMOVE) are
  // written first: logsize then shows them, pipelined or not. All before any number is read.
  for (const q of queues) q.flushJournal()
  const values = new Float64Array(queues.length * FIELD_COUNT)
  let currItems = 0
  let totalItems = 0
  let bytes = 0
  for (let i = 0; i < queues.length; i++) {
    const q = queues[i]!
    const base = i * FIELD_COUNT
    readQueueFields(q, values, base)
    currItems += values[base]!
    totalItems += values[base + 1]!
    bytes += values[base + 5]!
  }
  const c = collection.counters
  const now = Date.now()
  const head: Pairs = [
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
  const j = src.journal()
  const tail: Pairs = [
    ['journal_fsyncs', String(j.fsyncs)],
    ['journal_fsync_batch_avg', j.fsyncBatchAvg.toFixed(2)],
    ['mem_bytes', String(collection.memory.used)],
  ]
  if (src.input) tail.push(['input_bytes', String(src.input.used)], ['input_refused', String(src.input.refusals)])
  if (src.reclaimer) tail.push(['memory_reclaims', String(src.reclaimer.runs)])
  return new StatsSnapshot(head, names, values, tail)
}

/** The whole reply as pairs (small servers, tests; the protocols stream a snapshot instead). */
export function statPairs(src: StatsSources): Pairs {
  return takeSnapshot(src).pairs()
}
