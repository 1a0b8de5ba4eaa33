/**
 * Batch buffers, lent to journals for one event-loop turn: a journal builds its batch in one,
 * writes it, and gives it back, so an idle queue holds no buffer and a busy one reuses the same.
 * A batch starts in a small buffer and moves to a big one when it outgrows it: a turn that touches
 * thousands of queues with a record or two each (a pipeline of sets to new queues) must not lend a
 * 64 KiB buffer to each (64 MiB for 1000 queues, left to the allocator afterwards).
 */
const SMALL_BYTES = 1024
const BATCH_BYTES = 64 * 1024
/** Spare buffers kept (beyond that, the GC takes them back). */
const POOL_MAX = 64
const SMALL_POOL_MAX = 1024

export const NO_BUFFER: Buffer = Buffer.alloc(0)
const pool: Buffer[] = []
const smallPool: Buffer[] = []

/** A buffer of at least `min` bytes. */
export function takeBatchBuffer(min: number): Buffer {
  if (min <= SMALL_BYTES) return smallPool.pop() ?? Buffer.allocUnsafeSlow(SMALL_BYTES)
  if (min <= BATCH_BYTES) return pool.pop() ?? Buffer.allocUnsafe(BATCH_BYTES)
  let cap = BATCH_BYTES * 2
  while (cap < min) cap *= 2
  return Buffer.allocUnsafe(cap)
}

/** Give a buffer back (oversized ones are left to the GC). */
export function giveBatchBuffer(buf: Buffer): void {
  if (buf.length === BATCH_BYTES && pool.length < POOL_MAX) pool.push(buf)
  else if (buf.length === SMALL_BYTES && smallPool.length < SMALL_POOL_MAX) smallPool.push(buf)
}
