/**
 * Engine test helpers: a PersistentQueue or a QueueCollection over a real journal in a temp spool
 * (no mocks), and promise forms of their callback APIs.
 */
import { defaultConfig, DEFAULT_QUEUE_SETTINGS, type QueueSettings, type ServerConfig } from '../../src/server/config.js'
import type { Consumer } from '../../src/server/engine/consumer.js'
import type { QueueItem } from '../../src/server/engine/item.js'
import { PersistentQueue, type MemoryGate } from '../../src/server/engine/persistentQueue.js'
import { QueueCollection } from '../../src/server/engine/queueCollection.js'
import { PLAIN_READ, type QueueReadOptions } from '../../src/server/engine/requests.js'
import type { StarlingError } from '../../src/server/errors.js'
import { journalFactory } from '../../src/server/journal/index.js'
import type { EventLogger } from '../../src/server/logger.js'

/** What a queue reported upward, for assertions. */
export interface RecordedEvents {
  hits: number
  misses: number
  expired: QueueItem[]
}

export interface OpenedQueue {
  queue: PersistentQueue
  events: RecordedEvents
  memory: MemoryGate
}

/** Open (replaying whatever the spool holds) queue `name` in `dir`; closed at `t`'s teardown. */
export async function openQueue(
  t: { teardown(fn: () => unknown): void },
  dir: string,
  settings: Partial<QueueSettings> = {},
  options: { name?: string; memory?: MemoryGate } = {},
): Promise<OpenedQueue> {
  const name = options.name ?? 'q'
  const full: QueueSettings = { ...DEFAULT_QUEUE_SETTINGS, ...settings }
  const memory = options.memory ?? { used: 0, limit: 512 * 1024 * 1024 }
  const { journal, replay } = await journalFactory.open({
    dir,
    queue: name,
    sync: full.sync,
    maxJournalSize: full.maxJournalSize,
    memoryBudgetBytes: 0, // as queueCollection: the queue reads its items in itself, packed
  })
  const events: RecordedEvents = { hits: 0, misses: 0, expired: [] }
  const queue = new PersistentQueue(name, full, journal, replay, memory, {
    got: (hit) => (hit ? events.hits++ : events.misses++),
    expired: (_queue, item) => events.expired.push(item),
  })
  t.teardown(() => queue.close()) // idempotent: a test may close it first
  return { queue, events, memory }
}

/** add() resolving when the item is durable (the STORED moment). */
export function add(queue: PersistentQueue, data: string | Buffer, o: { flags?: number; expiresAt?: number; addedAt?: number } = {}): Promise<void> {
  return new Promise((resolve, reject) =>
    queue.add(Buffer.isBuffer(data) ? data : Buffer.from(data), o.flags ?? 0, o.expiresAt ?? 0, o.addedAt ?? Date.now(), (err) => (err ? reject(err) : resolve())),
  )
}

/** add() resolving with its error (or null) instead of rejecting. */
export function addOutcome(queue: PersistentQueue, data: string | Buffer): Promise<StarlingError | null> {
  return new Promise((resolve) => queue.add(Buffer.isBuffer(data) ? data : Buffer.from(data), 0, 0, Date.now(), resolve))
}

/** get() with the given options over PLAIN_READ; resolves with the item's text, or null. */
export function get(queue: PersistentQueue, consumer: Consumer, options: Partial<QueueReadOptions> = {}): Promise<string | null> {
  return new Promise((resolve, reject) =>
    queue.get(consumer, { ...PLAIN_READ, ...options }, (err, item) => (err ? reject(err) : resolve(item ? item.data.toString() : null))),
  )
}

/** Every item left, taken with plain gets. */
export async function drain(queue: PersistentQueue, consumer: Consumer): Promise<string[]> {
  const out: string[] = []
  for (let v; (v = await get(queue, consumer)) !== null; ) out.push(v)
  return out
}

/** Logs kept in memory (the collection logs refused fanout copies and failed opens). */
export function memoryLogger(): EventLogger & { lines: Array<{ level: string; obj: object; msg?: string }> } {
  const lines: Array<{ level: string; obj: object; msg?: string }> = []
  return {
    lines,
    debug: (obj, msg) => lines.push({ level: 'debug', obj, msg }),
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  }
}

/** A QueueCollection over a real journal in `dir`, loaded; closed at `t`'s teardown. */
export async function openCollection(
  t: { teardown(fn: () => unknown): void },
  dir: string,
  configure: (config: ServerConfig) => void = () => {},
): Promise<{ collection: QueueCollection; config: ServerConfig; log: ReturnType<typeof memoryLogger> }> {
  const config = defaultConfig()
  config.queuePath = dir
  configure(config)
  const log = memoryLogger()
  const collection = new QueueCollection(config, journalFactory, log)
  await collection.load()
  t.teardown(() => collection.close()) // idempotent: a test may close it first
  return { collection, config, log }
}

/** collection.set as a promise. */
export function cset(collection: QueueCollection, name: string, data: string, expiresAt = 0): Promise<void> {
  return new Promise((resolve, reject) => collection.set(name, Buffer.from(data), 0, expiresAt, (err) => (err ? reject(err) : resolve())))
}

/** collection.get as a promise; resolves with the item's text, or null. */
export function cget(collection: QueueCollection, name: string, consumer: Consumer, options: Partial<QueueReadOptions> = {}): Promise<string | null> {
  return new Promise((resolve, reject) =>
    collection.get(name, consumer, { ...PLAIN_READ, ...options }, (err, item) => (err ? reject(err) : resolve(item ? item.data.toString() : null))),
  )
}
