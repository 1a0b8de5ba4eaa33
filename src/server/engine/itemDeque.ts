/**
 * A queue's items in memory, in seq order: the packed store (itemStore.ts) for the FIFO, and in
 * front of it the few aborted open reads put back at their place, kept as objects. An aborted
 * item is always older than every item in the store (it was taken from the head, or handed
 * straight to a waiter when the queue was empty, and everything added since is newer), so "in
 * front of the store, by seq among themselves" is its place.
 */
import type { ItemSink, JournalItem } from '../journal/types.js'
import { type QueueItem } from './item.js'
import { ITEM_OVERHEAD_BYTES, ItemStore } from './itemStore.js'
import type { ReplyFrame } from './requests.js'

export class ItemDeque implements ItemSink {
  private readonly store = new ItemStore()
  /** Aborted open reads put back, by seq, all older than the store's items. */
  private returned: QueueItem[] = []
  private returnedBytes = 0

  get length(): number {
    return this.store.count + this.returned.length
  }

  /** Payload bytes. */
  get bytes(): number {
    return this.store.bytes + this.returnedBytes
  }

  /** What the items cost in memory: payload plus each one's header and slack (the memory budgets). */
  get cost(): number {
    return this.bytes + this.store.overheadBytes + this.returned.length * ITEM_OVERHEAD_BYTES
  }

  /** A new item, newer than every item held (its data is copied). */
  pushItem(item: JournalItem): void {
    this.store.push(item.seq, item.flags, item.expiresAt, item.addedAt, item.data, 0, item.data.length)
  }

  /** ItemSink: an item read back from the journal, payload src[start, end) (copied). */
  push(seq: number, flags: number, expiresAt: number, addedAt: number, src: Buffer, start: number, end: number): void {
    this.store.push(seq, flags, expiresAt, addedAt, src, start, end)
  }

  /** An aborted open read goes back ahead of every newer item. */
  insert(item: QueueItem): void {
    let i = this.returned.length
    while (i > 0 && this.returned[i - 1]!.seq > item.seq) i--
    this.returned.splice(i, 0, item)
    this.returnedBytes += item.data.length
  }

  /** Whether the head item has expired (length > 0), without reading it out. */
  headExpired(nowMs: number, maxAgeMs: number): boolean {
    const r = this.returned[0]
    const expiresAt = r ? r.expiresAt : this.store.headExpiresAt
    if (expiresAt !== 0 && expiresAt <= nowMs) return true
    return maxAgeMs > 0 && (r ? r.addedAt : this.store.headAddedAt) + maxAgeMs <= nowMs
  }

  /** The head item (length > 0), a copy; it stays. */
  peek(): QueueItem {
    return this.returned[0] ?? this.store.peek()
  }

  /** Remove and return the head item (length > 0); a frame lays its reply out (ReplyFrame). */
  shift(frame?: ReplyFrame): QueueItem {
    const r = this.returned.shift()
    if (r === undefined) return this.store.shift(frame)
    this.returnedBytes -= r.data.length
    return r
  }

  clear(): void {
    this.store.clear()
    this.returned = []
    this.returnedBytes = 0
  }
}
