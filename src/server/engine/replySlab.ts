/**
 * The buffers plain gets' replies are laid out in (ReplyFrame), cut from shared 64 KiB slabs.
 * Buffer.allocUnsafe cuts them from Node's 8 KiB pool instead: a new pool, an ArrayBuffer with
 * its GC bookkeeping, every ~7 replies of 1 KiB (issue 13: ~0.4 µs a get). Only replies come from
 * here: they live until the socket has written them (a bounded backlog per connection), so a slab
 * is freed soon after it is used up. An item kept in memory (an open read) never is: one small
 * view would keep its whole slab alive.
 */

const SLAB_BYTES = 64 * 1024
/** Larger replies get a buffer of their own (a slab holds at least 8 of the largest). */
const MAX_SLICE_BYTES = 8 * 1024

let slab: Buffer = Buffer.alloc(0)
let used = 0

/** An uninitialised buffer of `size` bytes for a reply. */
export function replyBuffer(size: number): Buffer {
  if (size > MAX_SLICE_BYTES) return Buffer.allocUnsafe(size)
  if (used + size > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
    used = 0
  }
  const buf = slab.subarray(used, used + size)
  // 8-byte aligned, as Node's pool does
  used = (used + size + 7) & ~7
  return buf
}
