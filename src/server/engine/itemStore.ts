/**
 * A queue's items in memory, packed: a FIFO of records (a 32-byte header, then the payload) laid
 * end to end in a list of chunks, with no JS object and no Buffer per item. An object per item
 * (~450-700 bytes beyond the payload, and GC work) is what made 1M queued items cost 233 MB RSS.
 *
 * Records are appended at the tail and removed at the head only (a queue), so no per-item index is
 * needed: the head record's header says where the next one starts. A header never straddles two
 * chunks (a chunk's last few bytes are skipped when a header does not fit); a payload may, and is
 * copied out on read. A chunk is released as soon as the head has passed it; chunks start small
 * (an idle or shallow queue holds little: there may be 250 000 queues) and double up to 256 KiB.
 * Nothing outside holds a view of a chunk (items are copied out), so chunks may be reused at once.
 */
import { NewItem, type QueueItem } from './item.js'

/** Header: seq f64 @0, expiresAt f64 @8, addedAt f64 @16, flags u32 @24, payload length u32 @28. */
export const ITEM_HEADER_BYTES = 32

/**
 * What one item costs in memory beyond its payload, charged against max_memory_size and
 * max_memory_total: the 32-byte header plus the skipped chunk tails (< 32 bytes per chunk, a few
 * per MiB). Measured with bench/bin/memory.ts: RSS minus payload over 1M x 16 B items held in
 * memory, less the idle server's RSS, is 33-36 bytes per item (README, Performance).
 */
export const ITEM_OVERHEAD_BYTES = 40

const MIN_CHUNK = 256
const MAX_CHUNK = 256 * 1024
/** A chunk at most this big is kept for reuse when the store empties (a shallow, busy queue). */
const KEEP_CHUNK = 4096
/**
 * Full-size chunks released, kept for the next one needed, by any queue (at most 8 MiB): a
 * draining queue frees chunks as fast as read-behind or new sets need them, and malloc'd blocks of
 * this size freed in FIFO order leave holes the allocator does not give back to the OS.
 */
const spareChunks: Buffer[] = []
const SPARE_CHUNKS_MAX = 32

function newChunk(size: number): Buffer {
  if (size === MAX_CHUNK) return spareChunks.pop() ?? Buffer.allocUnsafeSlow(MAX_CHUNK)
  // small chunks come from Node's shared pool (no ArrayBuffer of their own)
  return size < KEEP_CHUNK ? Buffer.allocUnsafe(size) : Buffer.allocUnsafeSlow(size)
}

function releaseChunk(c: Buffer): void {
  if (c.length === MAX_CHUNK && spareChunks.length < SPARE_CHUNKS_MAX) spareChunks.push(c)
}

export class ItemStore {
  /** chunks[0] holds the head record; the last chunk is written at `tail`. */
  private chunks: Buffer[] = []
  private head = 0
  private tail = 0
  private n = 0
  private payload = 0

  get count(): number {
    return this.n
  }

  /** Payload bytes held. */
  get bytes(): number {
    return this.payload
  }

  /** Append an item whose payload is src[start, end) (copied: src may be reused afterwards). */
  push(seq: number, flags: number, expiresAt: number, addedAt: number, src: Buffer, start: number, end: number): void {
    const len = end - start
    let c = this.chunks[this.chunks.length - 1]
    if (c === undefined || c.length - this.tail < ITEM_HEADER_BYTES) c = this.addChunk(ITEM_HEADER_BYTES + len)
    let at = this.tail
    c.writeDoubleLE(seq, at)
    c.writeDoubleLE(expiresAt, at + 8)
    c.writeDoubleLE(addedAt, at + 16)
    c.writeUInt32LE(flags >>> 0, at + 24)
    c.writeUInt32LE(len, at + 28)
    at += ITEM_HEADER_BYTES
    let from = start
    while (from < end) {
      if (at === c.length) {
        c = this.addChunk(end - from)
        at = 0
      }
      const k = Math.min(end - from, c.length - at)
      src.copy(c, at, from, from + k)
      at += k
      from += k
    }
    this.tail = at
    this.n++
    this.payload += len
  }

  /** A new last chunk with room for `need` bytes if a chunk may be that big. */
  private addChunk(need: number): Buffer {
    const last = this.chunks[this.chunks.length - 1]
    const size = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, last === undefined ? 0 : last.length * 2, need))
    const c = newChunk(size)
    this.chunks.push(c)
    this.tail = 0
    return c
  }

  // The head item's fields (only when count > 0).
  get headSeq(): number {
    return this.chunks[0]!.readDoubleLE(this.head)
  }

  get headExpiresAt(): number {
    return this.chunks[0]!.readDoubleLE(this.head + 8)
  }

  get headAddedAt(): number {
    return this.chunks[0]!.readDoubleLE(this.head + 16)
  }

  get headLength(): number {
    return this.chunks[0]!.readUInt32LE(this.head + 28)
  }

  /** The head item as an object, its payload copied out; `remove` also takes it off the store. */
  peek(): QueueItem {
    return this.read(false)
  }

  shift(): QueueItem {
    return this.read(true)
  }

  private read(remove: boolean): QueueItem {
    let c = this.chunks[0]!
    let at = this.head
    const seq = c.readDoubleLE(at)
    const expiresAt = c.readDoubleLE(at + 8)
    const addedAt = c.readDoubleLE(at + 16)
    const flags = c.readUInt32LE(at + 24)
    const len = c.readUInt32LE(at + 28)
    at += ITEM_HEADER_BYTES
    const data = Buffer.allocUnsafe(len)
    let ci = 0
    let got = 0
    while (got < len) {
      if (at === c.length) {
        c = this.chunks[++ci]!
        at = 0
      }
      const k = Math.min(len - got, c.length - at)
      c.copy(data, got, at, at + k)
      got += k
      at += k
    }
    if (remove) this.advance(ci, at, len)
    return new NewItem(seq, flags, expiresAt, addedAt, data)
  }

  /** The head record ended at chunks[ci][at]: release the chunks passed, skip a chunk's tail. */
  private advance(ci: number, at: number, len: number): void {
    this.n--
    this.payload -= len
    if (this.n === 0) {
      const last = this.chunks.pop()!
      for (const c of this.chunks) releaseChunk(c)
      if (last.length <= KEEP_CHUNK) {
        this.chunks = [last]
      } else {
        releaseChunk(last)
        this.chunks = []
      }
      this.head = 0
      this.tail = 0
      return
    }
    if (this.chunks[ci]!.length - at < ITEM_HEADER_BYTES) {
      ci++
      at = 0
    }
    for (let i = 0; i < ci; i++) releaseChunk(this.chunks[i]!)
    if (ci > 0) this.chunks.splice(0, ci)
    this.head = at
  }

  /** Drop everything. */
  clear(): void {
    for (const c of this.chunks) releaseChunk(c)
    this.chunks = []
    this.head = 0
    this.tail = 0
    this.n = 0
    this.payload = 0
  }

  /** Bytes of chunks held (tests, diagnostics). */
  get chunkBytes(): number {
    let b = 0
    for (const c of this.chunks) b += c.length
    return b
  }
}
