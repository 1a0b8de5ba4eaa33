/**
 * A queue's items in memory, in seq order: the packed store (itemStore.ts) for the FIFO, and in
 * front of it the few aborted open reads put back at their place, kept as objects. An aborted
 * item is always older than every item in the store (it was taken from the head, or handed
 * straight to a waiter when the queue was empty, and everything added since is newer), so "in
 * front of the store, by seq among themselves" is its place.
 *
 * It extends the store rather than holding one, and makes its list of returned items on the
 * first abort: one object a queue, not three (issue 17, the per-queue heap).
 */
import type { ItemSink, JournalItem } from '../journal/types.js'
import { type QueueItem } from './item.js'
import { ITEM_OVERHEAD_BYTES, ItemStore } from './itemStore.js'
import type { ReplyFrame } from './requests.js'

/** No returned item: shared, never written. */
const NONE_RETURNED: readonly QueueItem[] = []

export class ItemDeque extends ItemStore implements ItemSink {
  /** Aborted open reads put back, by seq, all older than the store's items. */
  private returned = NONE_RETURNED as QueueItem[]
  private returnedBytes = 0

  get length(): number {
    return this.count + this.returned.length
  }

  /** Payload bytes. */
  override get bytes(): number {
    return super.bytes + this.returnedBytes
  }

  /** What the items cost in memory: payload plus each one's header and slack (the memory budgets). */
  get cost(): number {
    return this.bytes + this.overheadBytes + this.returned.length * ITEM_OVERHEAD_BYTES
  }

  /** A new item, newer than every item held (its data is copied). */
  pushItem(item: JournalItem): void {
    this.push(item.seq, item.flags, item.expiresAt, item.addedAt, item.data, 0, item.data.length)
  }

  /** An aborted open read goes back ahead of every newer item. */
  insert(item: QueueItem): void {
    if (this.returned === NONE_RETURNED) this.returned = []
    let i = this.returned.length
    while (i > 0 && this.returned[i - 1]!.seq > item.seq) i--
    this.returned.splice(i, 0, item)
    this.returnedBytes += item.data.length
  }

  /** Whether the head item has expired (length > 0), without reading it out. */
  headExpired(nowMs: number, maxAgeMs: number): boolean {
    const r = this.returned[0]
    const expiresAt = r ? r.expiresAt : this.headExpiresAt
    if (expiresAt !== 0 && expiresAt <= nowMs) return true
    return maxAgeMs > 0 && (r ? r.addedAt : this.headAddedAt) + maxAgeMs <= nowMs
  }

  /** The head item (length > 0), a copy; it stays. */
  override peek(): QueueItem {
    return this.returned[0] ?? super.peek()
  }

  /** Remove and return the head item (length > 0); a frame lays its reply out (ReplyFrame). */
  override shift(frame?: ReplyFrame): QueueItem {
    if (this.returned.length === 0) return super.shift(frame)
    const r = this.returned.shift()!
    this.returnedBytes -= r.data.length
    if (this.returned.length === 0) this.returned = NONE_RETURNED as QueueItem[]
    return r
  }

  override clear(): void {
    super.clear()
    this.returned = NONE_RETURNED as QueueItem[]
    this.returnedBytes = 0
  }
}
