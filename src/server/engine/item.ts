/**
 * The queue item and memcached's expiry rules. An item is exactly what the journal stores.
 */
import type { JournalItem } from '../journal/types.js'

export interface QueueItem extends JournalItem {
  /** The reply buffer `data` is a view of, when read with a ReplyFrame (requests.ts). */
  framed?: Buffer | null
  /** The id `gets` and binary CAS show: the seq (never 0). */
  readonly cas: number
}

/** memcached: exptime up to 30 days is relative seconds; larger is a Unix time. */
export const RELATIVE_EXPTIME_MAX = 60 * 60 * 24 * 30

/** Absolute expiry in ms (0 = never) from memcached's exptime; negative = already expired. */
export function expiresAtFromExptime(exptime: number, nowMs: number): number {
  if (exptime === 0) return 0
  if (exptime < 0) return 1 // the epoch's first millisecond: always in the past
  if (exptime <= RELATIVE_EXPTIME_MAX) return nowMs + exptime * 1000
  return exptime * 1000
}

/** Whether the item has expired, by its own exptime or by the queue's max age. */
export function isExpired(item: QueueItem, nowMs: number, maxAgeMs: number): boolean {
  if (item.expiresAt !== 0 && item.expiresAt <= nowMs) return true
  return maxAgeMs > 0 && item.addedAt + maxAgeMs <= nowMs
}

/**
 * A new item. A class, not an object literal: V8 pretenures a literal's allocation site once nearly
 * all its objects survive (a queue filling its memory budget) and never reverts, so later items,
 * even ones going straight to disk, would die in old space, their `data` kept until a full GC
 * (~50 MiB of RSS for a 64 MiB budget). Objects made by `new` of a class start young.
 */
export class NewItem implements QueueItem {
  constructor(
    public seq: number,
    public flags: number,
    public expiresAt: number,
    public addedAt: number,
    public data: Buffer,
    public framed: Buffer | null = null,
  ) {}

  get cas(): number {
    return this.seq
  }
}

/**
 * A set's item until its ADD record is written (persistentQueue.ts): the queue links them in seq
 * order, and a get may take the oldest before the write (its REMOVE then follows the ADD in the
 * same write). Its own class: items read out of the store (NewItem) carry none of this.
 */
export class PendingItem extends NewItem {
  next: PendingItem | null = null
  /** 0: waits for its write; 1: a get took it; 2: a get took it and the write failed. */
  taken = 0
}
