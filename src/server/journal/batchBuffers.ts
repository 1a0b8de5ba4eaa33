/**
 * Batch buffers, lent to journals for one event-loop turn: a journal builds its batch in one,
 * writes it, and gives it back, so an idle queue holds no buffer and a busy one reuses the same.
 */
const BATCH_BYTES = 64 * 1024
/** Spare buffers kept (beyond that, the GC takes them back). */
const POOL_MAX = 64

export const NO_BUFFER: Buffer = Buffer.alloc(0)
const pool: Buffer[] = []

/** A buffer of at least `min` bytes. */
export function takeBatchBuffer(min: number): Buffer {
  if (min <= BATCH_BYTES) return pool.pop() ?? Buffer.allocUnsafe(BATCH_BYTES)
  let cap = BATCH_BYTES * 2
  while (cap < min) cap *= 2
  return Buffer.allocUnsafe(cap)
}

/** Give a buffer back (oversized ones are left to the GC). */
export function giveBatchBuffer(buf: Buffer): void {
  if (buf.length === BATCH_BYTES && pool.length < POOL_MAX) pool.push(buf)
}
