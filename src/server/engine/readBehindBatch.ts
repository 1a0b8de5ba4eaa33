/**
 * How a queue reading behind (items beyond its memory budget left on disk) brings them back: in
 * batches, each a synchronous read, crc check and copy into the item store.
 */

/** Read back from disk in batches of about this many bytes (at least). */
const READ_BEHIND_BATCH_MIN = 1 << 20
/**
 * ...and at most: a batch is a synchronous read, crc check and copy that holds every connection
 * (16 MiB took tens of ms), and one within itemStore's spare chunks (8 MiB) reuses the chunks the
 * drain released instead of mapping fresh memory.
 */
const READ_BEHIND_BATCH_MAX = 2 << 20

/** Bytes (payload and per-item overhead) one refill reads for a queue with this memory budget. */
export function readBehindBatchBytes(maxMemorySize: number): number {
  return Math.max(READ_BEHIND_BATCH_MIN, Math.min(READ_BEHIND_BATCH_MAX, Math.floor(maxMemorySize / 4)))
}

/**
 * Refill once the items in memory cost less than this: one batch ahead, not half the budget.
 * Items read back are then served within a few MiB of being read, from the CPU's cache; with
 * half of a 64 MiB budget ahead, every get copied its item from main memory (issue 13: copies
 * out of the store were the drain's largest cost of our own). Never above half the budget.
 */
export function readBehindRefillBelow(maxMemorySize: number): number {
  return Math.min(readBehindBatchBytes(maxMemorySize), maxMemorySize / 2)
}
