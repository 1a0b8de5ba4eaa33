/**
 * What a queue shares with the rest of the engine: the memory gate every queue charges, and the
 * events it reports upward to the collection (kept apart from persistentQueue.ts, which is big).
 */
import type { PersistentQueue } from './persistentQueue.js'
import type { QueueItem } from './item.js'

/** Shared across queues: what items in memory cost (payload + per-item overhead), against a global cap. */
export interface MemoryGate {
  used: number
  limit: number
}

/** What a queue reports upward (to the collection). */
export interface QueueEvents {
  /** An item expired; with `expire_to` it moves to that queue. */
  expired(queue: PersistentQueue, item: QueueItem): void
  /** A get found an item (hit) or not (miss). */
  got(hit: boolean): void
}
