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
import { carve, currentSlab, SLAB_MAX_CHUNK } from './chunkSlab.js'
import { NewItem, type QueueItem } from './item.js'
import type { ReplyFrame } from './requests.js'
import { replyBuffer } from './replySlab.js'

/**
 * Two header forms. Compact (16 B), for the usual item (no exptime, seq within 2^32 of the one
 * before, added within ±24 days of the store's base time, see ERA_MS): u32 length | COMPACT, u32 seq delta,
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
/**
 * A store's base time is kept as an era: a small integer, where a time in ms is a number V8 boxes
 * (16 B a queue). The base is within ERA_MS / 2 (6 days) of the first item's addedAt, so compact
 * headers take items added within ±18 days of it.
 */
const TIME_ORIGIN = Date.now()
const ERA_MS = 2 ** 30

/** The second and later chunks are at least this big (the first one fits its first item). */
const MIN_CHUNK = 256
const MAX_CHUNK = 256 * 1024
/** Chunks smaller than this are slices of Node's shared pool (no ArrayBuffer of their own). */
const POOLED_CHUNK = 4096
/** A chunk at most this big is kept for reuse when the store empties (a shallow, busy queue). */
const KEEP_CHUNK = 4096
/** An empty store's first chunk: shared, never written (length 0: every push adds a chunk first). */
const NO_CHUNK: Buffer = Buffer.alloc(0)
/** The later chunks of a store of one chunk: shared and frozen (most queues hold no array). */
const NO_MORE: Buffer[] = Object.freeze([]) as unknown as Buffer[]
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
  /**
   * The chunks: `first` holds the head record, `more` the later ones (chunk i >= 1 is more[i - 1]);
   * the last chunk is written at `tail`. A store of one chunk (most queues) holds no array.
   */
  private first: Buffer = NO_CHUNK
  private more = NO_MORE
  /**
   * `first` is [firstStart, firstEnd) of its buffer: a small first chunk is a region of a shared
   * slab (chunkSlab.ts: no Buffer object of its own), any other chunk a whole buffer (0, length).
   * `head` and `tail` are offsets in their buffers, so a slab region needs no other field.
   */
  private firstStart = 0
  private firstEnd = 0
  private head = 0
  private tail = 0
  private n = 0
  private payload = 0
  private overhead = 0
  /** seq of the last record written / read (seq deltas). */
  private lastPushedSeq = 0
  private lastReadSeq = 0
  /** The base of compact addedAt is TIME_ORIGIN + era * ERA_MS (see ERA_MS). */
  private era = 0

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

  /** Append an item whose payload is src[start, srcEnd) (copied: src may be reused afterwards). */
  push(seq: number, flags: number, expiresAt: number, addedAt: number, src: Buffer, start: number, srcEnd: number): void {
    const len = srcEnd - start
    const more = this.more
    let c = more.length === 0 ? this.first : more[more.length - 1]!
    let end = more.length === 0 ? this.firstEnd : c.length
    // (an empty store: first is NO_CHUNK, firstEnd and tail 0)
    if (end - this.tail < ITEM_HEADER_BYTES) {
      c = this.addChunk(ITEM_HEADER_BYTES + len)
      end = this.more.length === 0 ? this.firstEnd : c.length
    }
    let at = this.tail
    if (this.n === 0) this.era = Math.round((addedAt - TIME_ORIGIN) / ERA_MS)
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
    while (from < srcEnd) {
      if (at === end) {
        c = this.addChunk(srcEnd - from)
        at = 0
        end = c.length // a later chunk: a whole buffer
      }
      const k = Math.min(srcEnd - from, end - at)
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
    if (this.first === NO_CHUNK) {
      // the first chunk fits the first item (a queue of one 64 B item: 96 B, not 256), from a slab if small
      const size = Math.min(MAX_CHUNK, need)
      let c: Buffer
      if (size <= SLAB_MAX_CHUNK) {
        this.firstStart = carve(size)
        c = currentSlab()
      } else {
        this.firstStart = 0
        c = newChunk(size)
      }
      this.firstEnd = this.firstStart + size
      this.first = c
      this.head = this.tail = this.firstStart // the store is empty
      return c
    }
    const more = this.more
    const lastSize = more.length === 0 ? this.firstEnd - this.firstStart : more[more.length - 1]!.length
    const c = newChunk(Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, lastSize * 2, need)))
    if (more === NO_MORE) this.more = [c]
    else more.push(c)
    this.tail = 0
    return c
  }

  private get baseTime(): number {
    return TIME_ORIGIN + this.era * ERA_MS
  }

  // The head item's fields (only when count > 0).
  private get headCompact(): boolean {
    return (this.first.readUInt32LE(this.head) & COMPACT) !== 0
  }

  get headSeq(): number {
    const c = this.first
    return this.headCompact ? this.lastReadSeq + c.readUInt32LE(this.head + 4) : c.readDoubleLE(this.head + 8)
  }

  get headExpiresAt(): number {
    return this.headCompact ? 0 : this.first.readDoubleLE(this.head + 16)
  }

  get headAddedAt(): number {
    const c = this.first
    return this.headCompact ? this.baseTime + c.readInt32LE(this.head + 12) : c.readDoubleLE(this.head + 24)
  }

  get headLength(): number {
    return (this.first.readUInt32LE(this.head) & ~COMPACT) >>> 0
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
    let c = this.first
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
    let end = this.firstEnd
    while (got < len) {
      if (at === end) {
        c = this.more[ci++]! // chunk ci + 1
        at = 0
        end = c.length
      }
      const k = Math.min(len - got, end - at)
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

  /** The head record ended at chunk ci (0: first), offset `at`: release the chunks passed, skip a chunk's tail. */
  private advance(ci: number, at: number, len: number): void {
    this.n--
    this.payload -= len
    if (this.n === 0) {
      // empty: keep a small last chunk for the next push (a set + get each making a new pooled
      // slice and array cost ~1.2 µs more), give the rest back
      this.lastPushedSeq = 0
      this.lastReadSeq = 0
      const more = this.more
      const last = more.length === 0 ? this.first : more[more.length - 1]!
      const keep = (more.length === 0 ? this.firstEnd - this.firstStart : last.length) <= KEEP_CHUNK
      if (more.length > 0 || !keep) {
        if (this.first !== last || !keep) releaseChunk(this.first)
        for (const c of more) if (c !== last || !keep) releaseChunk(c)
        if (keep) this.keepOnly(last)
        else this.dropChunks()
      }
      this.head = this.tail = this.firstStart
      return
    }
    if ((ci === 0 ? this.firstEnd : this.more[ci - 1]!.length) - at < ITEM_HEADER_BYTES) {
      ci++
      at = 0
    }
    if (ci > 0) {
      // chunk ci (a later chunk: a whole buffer) becomes the first
      releaseChunk(this.first)
      const more = this.more
      for (let i = 0; i < ci - 1; i++) releaseChunk(more[i]!)
      this.first = more[ci - 1]!
      if (ci === more.length) this.more = NO_MORE
      else more.splice(0, ci)
      this.firstStart = 0
      this.firstEnd = this.first.length
    }
    this.head = at
  }

  private dropChunks(): void {
    this.first = NO_CHUNK
    this.more = NO_MORE
    this.firstStart = this.firstEnd = 0
  }

  /** The store keeps `c` (a later chunk, a whole buffer) as its only chunk. */
  private keepOnly(c: Buffer): void {
    this.first = c
    this.more = NO_MORE
    this.firstStart = 0
    this.firstEnd = c.length
  }

  /** Drop everything. */
  clear(): void {
    releaseChunk(this.first)
    for (const c of this.more) releaseChunk(c)
    this.dropChunks()
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
    let b = this.firstEnd - this.firstStart
    for (const c of this.more) b += c.length
    return b
  }
}
