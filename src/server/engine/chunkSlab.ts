/**
 * Small first chunks of item stores, carved out of shared slabs (issue 17, target 2: 100k queues
 * of one 64 B item each). A store's first chunk is sized to its first item (96 B for a 64 B item);
 * as a Buffer of its own it cost a Buffer object (~100 B of heap) plus its share of Node's 8 KiB
 * pool, which the set's temporary copies shared and kept partly dead (~130 B for 96). Here a store
 * keeps the slab and an offset (two small integers, no object), and the slab holds first chunks
 * only, back to back.
 *
 * Carving only bumps an offset; a region is never handed out twice, and a slab is freed by the GC
 * once no store refers to it (as Node's pool is): a queue deleted or drained drops its reference.
 */

/** Slab size: Node's pool size; a long-lived queue keeps at most this much alive around its chunk. */
const SLAB_BYTES = 8 * 1024
/** First chunks up to this size come from a slab (a 480 B item and its header). */
export const SLAB_MAX_CHUNK = 512

let slab: Buffer = Buffer.alloc(0)
let top = 0

/** A region of `size` (<= SLAB_MAX_CHUNK) bytes: it is [offset, offset + size) of `currentSlab()`. */
export function carve(size: number): number {
  if (top + size > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
    top = 0
  }
  const at = top
  top += size
  return at
}

/** The slab the last `carve` cut from. */
export function currentSlab(): Buffer {
  return slab
}
