/**
 * A queue's items in memory, packed: a FIFO of records (a 32-byte header, then the payload) laid
 * end to end in a list of chunks, with no JS object and no Buffer per item. An object per item
 * (~450-700 bytes beyond the payload, and GC work) is what made 1M queued items cost 233 MB RSS.
 *
 * Records are appended at the tail and removed at the head only (a queue), so no per-item index is
 * needed: the head record's header says where the next one starts. A header never straddles two
 * chunks (a chunk's last few bytes are skipped when a header does not fit); a payload may, and is
 * copied out on read. A chunk is released as soon as the head has passed it; chunks start small
 * and double up to 256 KiB. There may be 250 000 queues, most holding an item or none (issue 17:
 * an idle queue costs at most 2 KB): the first chunk is sized for the first item, and an emptied
 * store keeps only a small last chunk (a busy shallow queue reuses it: making a new one each time
 * doubled the cost of a set + get). Nothing outside holds a view of a chunk (items are copied
 * out), so chunks may be reused at once.
 */
import { NewItem, type QueueItem } from './item.js'
import type { ReplyFrame } from './requests.js'
import { replyBuffer } from './replySlab.js'

/**
 * Two header forms. Compact (16 B), for the usual item (no exptime, seq within 2^32 of the one
 * before, added within ±24 days of the store's base time): u32 length | COMPACT, u32 seq delta,
 * u32 flags, i32 addedAt - base. Full (32 B): u32 length, u32 flags, f64 seq, f64 expiresAt,
 * f64 addedAt. The seq delta is from the record before (0 before the first one).
 */
export const COMPACT_HEADER_BYTES = 16
export const FULL_HEADER_BYTES = 32
const COMPACT = 0x80000000
/** A header never straddles two chunks: a chunk's tail shorter than this is skipped. */
const ITEM_HEADER_BYTES = FULL_HEADER_BYTES
/** Charged per item beyond its header: the skipped chunk tails and spare chunks, on average. */
export const ITEM_SLACK_BYTES = 8
/**
 * The most one item costs in memory beyond its payload (full header + slack): what the budgets
 * (max_memory_size, max_memory_total) charge for an item before it is stored; once stored it is
 * charged its real header (overheadBytes). Measured with bench/bin/memory.ts (README, Performance):
 * 1M x 16 B items in memory take 16 MB of payload + 16 MB of headers + ~0.2 MB of chunk tails.
 */
export const ITEM_OVERHEAD_BYTES = FULL_HEADER_BYTES + ITEM_SLACK_BYTES
const I32_MAX = 0x7fffffff

/** The second and later chunks are at least this big (the first one fits its first item). */
const MIN_CHUNK = 256
const MAX_CHUNK = 256 * 1024
/** Chunks smaller than this are slices of Node's shared pool (no ArrayBuffer of their own). */
const POOLED_CHUNK = 4096
/** A chunk at most this big is kept for reuse when the store empties (a shallow, busy queue). */
const KEEP_CHUNK = 4096
/** An empty store's chunk list: shared, never written (an idle queue holds no array). */
const NO_CHUNKS: readonly Buffer[] = []
/**
 * Full-size chunks released, kept for the next one needed, by any queue (at most 8 MiB): a
 * draining queue frees chunks as fast as read-behind or new sets need them, and malloc'd blocks of
 * this size freed in FIFO order leave holes the allocator does not give back to the OS.
 */
const spareChunks: Buffer[] = []
const SPARE_CHUNKS_MAX = 32

function newChunk(size: number): Buffer {
  if (size === MAX_CHUNK) return spareChunks.pop() ?? Buffer.allocUnsafeSlow(MAX_CHUNK)
  return size < POOLED_CHUNK ? Buffer.allocUnsafe(size) : Buffer.allocUnsafeSlow(size)
}

function releaseChunk(c: Buffer): void {
  if (c.length === MAX_CHUNK && spareChunks.length < SPARE_CHUNKS_MAX) spareChunks.push(c)
}

export class ItemStore {
  /** chunks[0] holds the head record; the last chunk is written at `tail`. */
  private chunks = NO_CHUNKS as Buffer[]
  private head = 0
  private tail = 0
  private n = 0
  private payload = 0
  private overhead = 0
  /** seq of the last record written / read (seq deltas), and the base of compact addedAt. */
  private lastPushedSeq = 0
  private lastReadSeq = 0
  private baseTime = 0

  get count(): number {
    return this.n
  }

  /** Payload bytes held. */
  get bytes(): number {
    return this.payload
  }

  /** Per-item overhead of the items held: their headers plus ITEM_SLACK_BYTES each. */
  get overheadBytes(): number {
    return this.overhead
  }

  /** Append an item whose payload is src[start, end) (copied: src may be reused afterwards). */
  push(seq: number, flags: number, expiresAt: number, addedAt: number, src: Buffer, start: number, end: number): void {
    const len = end - start
    let c = this.chunks[this.chunks.length - 1]
    if (c === undefined || c.length - this.tail < ITEM_HEADER_BYTES) c = this.addChunk(ITEM_HEADER_BYTES + len)
    let at = this.tail
    if (this.n === 0) this.baseTime = addedAt
    const seqDelta = seq - this.lastPushedSeq
    const timeDelta = addedAt - this.baseTime
    if (expiresAt === 0 && seqDelta > 0 && seqDelta <= 0xffffffff && Number.isInteger(timeDelta) && timeDelta >= -I32_MAX && timeDelta <= I32_MAX && len < COMPACT) {
      c.writeUInt32LE((len | COMPACT) >>> 0, at)
      c.writeUInt32LE(seqDelta, at + 4)
      c.writeUInt32LE(flags >>> 0, at + 8)
      c.writeInt32LE(timeDelta, at + 12)
      at += COMPACT_HEADER_BYTES
      this.overhead += COMPACT_HEADER_BYTES + ITEM_SLACK_BYTES
    } else {
      c.writeUInt32LE(len, at)
      c.writeUInt32LE(flags >>> 0, at + 4)
      c.writeDoubleLE(seq, at + 8)
      c.writeDoubleLE(expiresAt, at + 16)
      c.writeDoubleLE(addedAt, at + 24)
      at += FULL_HEADER_BYTES
      this.overhead += FULL_HEADER_BYTES + ITEM_SLACK_BYTES
    }
    this.lastPushedSeq = seq
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
    // the first chunk fits the first item (a queue of one 64 B item: 96 B, not 256)
    const size = Math.min(MAX_CHUNK, last === undefined ? need : Math.max(MIN_CHUNK, last.length * 2, need))
    const c = newChunk(size)
    if (this.chunks === NO_CHUNKS) this.chunks = [c]
    else this.chunks.push(c)
    this.tail = 0
    return c
  }

  // The head item's fields (only when count > 0).
  private get headCompact(): boolean {
    return (this.chunks[0]!.readUInt32LE(this.head) & COMPACT) !== 0
  }

  get headSeq(): number {
    const c = this.chunks[0]!
    return this.headCompact ? this.lastReadSeq + c.readUInt32LE(this.head + 4) : c.readDoubleLE(this.head + 8)
  }

  get headExpiresAt(): number {
    return this.headCompact ? 0 : this.chunks[0]!.readDoubleLE(this.head + 16)
  }

  get headAddedAt(): number {
    const c = this.chunks[0]!
    return this.headCompact ? this.baseTime + c.readInt32LE(this.head + 12) : c.readDoubleLE(this.head + 24)
  }

  get headLength(): number {
    return (this.chunks[0]!.readUInt32LE(this.head) & ~COMPACT) >>> 0
  }

  /** The head item as an object, its payload copied out; `remove` also takes it off the store. */
  peek(): QueueItem {
    return this.read(false)
  }

  /** With a frame, the payload is copied straight into the reply's buffer (ReplyFrame). */
  shift(frame?: ReplyFrame): QueueItem {
    return this.read(true, frame)
  }

  private read(remove: boolean, frame?: ReplyFrame): QueueItem {
    let c = this.chunks[0]!
    let at = this.head
    const word = c.readUInt32LE(at)
    const len = (word & ~COMPACT) >>> 0
    let seq: number, flags: number, expiresAt: number, addedAt: number, header: number
    if ((word & COMPACT) !== 0) {
      seq = this.lastReadSeq + c.readUInt32LE(at + 4)
      flags = c.readUInt32LE(at + 8)
      expiresAt = 0
      addedAt = this.baseTime + c.readInt32LE(at + 12)
      header = COMPACT_HEADER_BYTES
    } else {
      flags = c.readUInt32LE(at + 4)
      seq = c.readDoubleLE(at + 8)
      expiresAt = c.readDoubleLE(at + 16)
      addedAt = c.readDoubleLE(at + 24)
      header = FULL_HEADER_BYTES
    }
    at += header
    let framed: Buffer | null = null
    let data: Buffer
    if (frame === undefined) {
      data = Buffer.allocUnsafe(len)
    } else {
      const head = frame.headBytes(flags, len)
      framed = replyBuffer(head + len + frame.tailBytes)
      data = framed.subarray(head, head + len)
    }
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
    if (remove) {
      this.lastReadSeq = seq
      this.overhead -= header + ITEM_SLACK_BYTES
      this.advance(ci, at, len)
    }
    return new NewItem(seq, flags, expiresAt, addedAt, data, framed)
  }

  /** The head record ended at chunks[ci][at]: release the chunks passed, skip a chunk's tail. */
  private advance(ci: number, at: number, len: number): void {
    this.n--
    this.payload -= len
    if (this.n === 0) {
      // empty: keep a small last chunk for the next push (a set + get each making a new pooled
      // slice and array cost ~1.2 µs more), give the rest back
      this.lastPushedSeq = 0
      this.lastReadSeq = 0
      const last = this.chunks[this.chunks.length - 1]!
      const keep = last.length <= KEEP_CHUNK
      if (this.chunks.length > 1 || !keep) {
        for (const c of this.chunks) if (c !== last || !keep) releaseChunk(c)
        this.chunks = keep ? [last] : (NO_CHUNKS as Buffer[])
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
    this.chunks = NO_CHUNKS as Buffer[]
    this.head = 0
    this.tail = 0
    this.n = 0
    this.payload = 0
    this.overhead = 0
    this.lastPushedSeq = 0
    this.lastReadSeq = 0
  }

  /** Bytes of chunks held (tests, diagnostics). */
  get chunkBytes(): number {
    let b = 0
    for (const c of this.chunks) b += c.length
    return b
  }
}
