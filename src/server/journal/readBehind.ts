/**
 * Read-behind: beyond the engine's memory budget, items stay on disk and are read back in order as
 * the queue's head advances. A forward cursor (segment, offset) reads records in big chunks and
 * merges in the carried copies by seq; there are no per-item offsets to keep (README.md, "Read-behind
 * and the live index").
 */
import * as fs from 'node:fs'
import type { EventLogger } from '../logger.js'
import {
  addRecordSize,
  ADD_FIXED_LENGTH,
  MAX_RECORD_LENGTH,
  OP_ADD,
  readU64,
  RECORD_PREFIX_BYTES,
  recordCrc,
} from './format.js'
import type { Segment } from './segment.js'
import type { SegmentList } from './segmentList.js'
import type { ItemSink, JournalItem } from './types.js'
import type { WriteBatch } from './writeBatch.js'

/** recBuf before the first read (shared: a Buffer each costs ~180 bytes a queue). */
const NO_RECORD = Buffer.alloc(0)

/** The next live item for the reader, found but not yet read. */
interface NextItem {
  seq: number
  size: number
  carried: boolean
}

export class ReadBehind {
  private active = false
  /** Never return an item with a seq below this (the engine has those). */
  private readFrom = 0
  private cursorSeg: Segment | undefined
  private cursorOff = 0
  // The record recordAt() found: recBuf[recAt, recAt + recSize).
  private recBuf: Buffer = NO_RECORD
  private recAt = 0
  private recSize = 0
  private warnedUnreadable = false

  constructor(
    private readonly list: SegmentList,
    /** Records past the written end of the last segment are read from the batch being built. */
    private readonly batch: WriteBatch,
    private readonly queue: string,
    private readonly logger: EventLogger,
  ) {}

  /** Reading from disk: new items are not in the engine's memory region. */
  get isActive(): boolean {
    return this.active
  }

  /**
   * Right after replay: read the first live items, in order, up to `memoryBudgetBytes` of payload;
   * the rest stays on disk, where `read` continues.
   */
  loadInitial(memoryBudgetBytes: number): { items: JournalItem[]; diskItems: number; diskBytes: number } {
    this.active = true
    this.readFrom = 0
    this.cursorSeg = this.list.segments[0]
    this.cursorOff = this.cursorSeg?.headerLength ?? 0
    const sink = new ItemList()
    const items = sink.items
    let memBytes = 0
    // budget 0 (the engine reads its items in itself, packed): no read here, whose chunk (up to
    // 4 MiB, read from disk) the engine's first refill would allocate and read again
    while (memoryBudgetBytes > 0) {
      const next = this.peekNext(Number.MAX_SAFE_INTEGER)
      if (next === undefined) break
      const dataLen = next.size - RECORD_PREFIX_BYTES - ADD_FIXED_LENGTH
      if (memBytes + dataLen > memoryBudgetBytes) break
      if (this.takeNext(next, sink) < 0) continue
      memBytes += dataLen
    }
    const count = this.list.liveItems
    const bytes = this.list.liveBytes
    const diskItems = Math.max(0, count - items.length)
    const diskBytes = diskItems === 0 ? 0 : Math.max(0, bytes - count * (RECORD_PREFIX_BYTES + ADD_FIXED_LENGTH) - memBytes)
    if (diskItems === 0) this.caughtUp()
    // the chunk may be replay's shared buffer (ReplayState.wholeFile): never kept past this call
    else this.releaseChunk()
    return { items, diskItems, diskBytes }
  }

  /** Items from `fromSeq` on are to be read back from disk (QueueJournal.startReadBehind). */
  start(fromSeq: number): void {
    this.active = true
    this.readFrom = fromSeq
    // items from fromSeq on are back in the disk region
    this.list.knownSizes.dropFrom(fromSeq)
    // the first segment with an original ADD at or above fromSeq, from its nearest checkpoint
    for (const seg of this.list.originalSegments) {
      if (seg.live.last < fromSeq) continue
      const off = seg.live.seek(fromSeq)
      this.cursorSeg = seg
      this.cursorOff = off < 0 ? seg.headerLength : off
      return
    }
    // nothing that new yet: it will be appended at the end
    const cur = this.list.current
    this.cursorSeg = cur
    this.cursorOff = cur.size + this.batch.length
  }

  /** QueueJournal.readBehind: an empty result means read-behind caught up. */
  read(maxBytes: number, maxSeq: number): JournalItem[] {
    const sink = new ItemList()
    this.readInto(maxBytes, maxSeq, sink, 0)
    return sink.items
  }

  /**
   * QueueJournal.readBehindInto: items into `sink` until their payload plus `perItemBytes` each
   * reaches `maxBytes` (with perItemBytes > 0: without going past it); how many (0: caught up).
   */
  readInto(maxBytes: number, maxSeq: number, sink: ItemSink, perItemBytes: number): number {
    if (!this.active) return 0
    let n = 0
    let bytes = 0
    for (;;) {
      const next = this.peekNext(maxSeq)
      if (next === undefined) break
      // the sink's budget is a limit: stop before an item that would go past it (but read one)
      if (perItemBytes > 0 && n > 0 && bytes + next.size - RECORD_PREFIX_BYTES - ADD_FIXED_LENGTH + perItemBytes > maxBytes) break
      const size = this.takeNext(next, sink)
      if (size < 0) continue
      n++
      bytes += size + perItemBytes
      if (bytes >= maxBytes) break
    }
    if (n === 0) this.caughtUp()
    return n
  }

  stop(): void {
    this.active = false
    this.cursorSeg = undefined
  }

  /** Nothing left on disk to read: stop, and give the chunk buffer back (an idle queue holds none). */
  private caughtUp(): void {
    this.stop()
    this.releaseChunk()
  }

  /**
   * Give the reader's chunk back, and drop recBuf's view of it: that view alone kept each queue's
   * last chunk (~4 KB with an ArrayBuffer of its own) after a restart, 400 MB at 100k queues.
   */
  private releaseChunk(): void {
    this.list.releaseReader()
    this.recBuf = NO_RECORD
    this.recAt = 0
    this.recSize = 0
  }

  /** Has the cursor still to read some of `seg`'s original ADDs? */
  yetToRead(seg: Segment): boolean {
    return this.active && this.readFrom <= seg.live.last
  }

  /** `seg` was deleted: everything left in it was removed or carried forward (merged by seq). */
  segmentDropped(seg: Segment): void {
    if (this.cursorSeg !== seg) return
    this.cursorSeg = this.list.segments[0]
    this.cursorOff = this.cursorSeg?.headerLength ?? 0
  }

  /** A failed write cut `seg` back to its size: the cursor may not point past it. */
  segmentCut(seg: Segment): void {
    if (this.cursorSeg === seg && this.cursorOff > seg.size) this.cursorOff = seg.size
  }

  /**
   * The next live item for the reader, without reading its payload: the smaller of the next live
   * original ADD at the cursor and the next carried item (both at or above readFrom, at most
   * maxSeq).
   */
  private peekNext(maxSeq: number): NextItem | undefined {
    const orig = this.peekOriginal(maxSeq)
    const carried = this.list.carried
    const c = carried.nextFrom(this.readFrom)
    if (c >= 0 && c <= maxSeq && (orig < 0 || c < orig)) return { seq: c, size: carried.get(c)!.size, carried: true }
    return orig < 0 ? undefined : { seq: orig, size: this.recSize, carried: false }
  }

  /**
   * Read the item peekNext found (right after it: the record is still in recBuf) into `sink` and
   * move past it; its payload size, or -1 if it could not be read.
   */
  private takeNext(next: NextItem, sink: ItemSink): number {
    this.readFrom = next.seq + 1
    let buf: Buffer | undefined
    let at = 0
    // a size REMOVE will need (SegmentList.forget), unless the carried entry or the run knows it
    let sizeKnown = next.carried
    if (next.carried) {
      buf = this.readCarried(next.seq)
    } else {
      buf = this.recBuf
      at = this.recAt
      this.cursorOff += this.recSize
      sizeKnown = this.cursorSeg!.live.runSizeOf(next.seq) > 0
    }
    if (buf === undefined) return -1
    const dataLen = buf.readUInt32LE(at) - ADD_FIXED_LENGTH
    const dataStart = at + RECORD_PREFIX_BYTES + ADD_FIXED_LENGTH
    sink.push(readU64(buf, at + 9), buf.readUInt32LE(at + 17), buf.readDoubleLE(at + 21), buf.readDoubleLE(at + 29), buf, dataStart, dataStart + dataLen)
    if (!sizeKnown) this.list.knownSizes.push(next.seq, addRecordSize(dataLen))
    return dataLen
  }

  /**
   * Move the cursor to the next live original ADD with readFrom <= seq <= maxSeq and return its seq
   * (its record is left in recBuf), or -1 if there is none (yet). REMOVEs, removed ADDs, carried
   * copies (merged separately) and seqs below readFrom are stepped over.
   */
  private peekOriginal(maxSeq: number): number {
    const segments = this.list.segments
    for (;;) {
      const seg = this.cursorSeg
      if (seg === undefined) return -1
      const found = this.recordAt(seg, this.cursorOff)
      if (found === 0) {
        // end of this segment: on to the next one, if there is one
        const i = segments.indexOf(seg)
        if (i >= 0 && i + 1 >= segments.length) return -1
        this.cursorSeg = segments[i + 1]
        this.cursorOff = this.cursorSeg?.headerLength ?? 0
        continue
      }
      if (found === 2) {
        // damaged since replay (a bad disk): skip to the next checkpoint, or the segment's end
        if (!this.warnedUnreadable) {
          this.warnedUnreadable = true
          this.logger.warn({ queue: this.queue, file: seg.path, offset: this.cursorOff }, 'journal: record unreadable in read-behind; skipped')
        }
        const next = seg.live.checkpointAfter(this.cursorOff)
        this.cursorOff = next > 0 ? next : seg.size
        continue
      }
      const buf = this.recBuf
      const at = this.recAt
      if (buf[at + 8] === OP_ADD) {
        const seq = readU64(buf, at + 9)
        if (seq >= this.readFrom && seg.live.has(seq)) return seq <= maxSeq ? seq : -1
      }
      this.cursorOff += this.recSize
    }
  }

  /**
   * Find the record at `off` of `seg` (for the segment being appended to, past its written size:
   * in the batch not yet written). 1 = found (recBuf/recAt/recSize), 0 = end of the segment's
   * records, 2 = damaged.
   */
  private recordAt(seg: Segment, off: number): 0 | 1 | 2 {
    if (seg === this.list.current && off >= seg.size) {
      const p = off - seg.size
      if (p + RECORD_PREFIX_BYTES > this.batch.length) return 0
      this.recBuf = this.batch.bytes
      this.recAt = p
      this.recSize = RECORD_PREFIX_BYTES + this.recBuf.readUInt32LE(p)
      return 1
    }
    if (off + RECORD_PREFIX_BYTES > seg.size) return 0
    const reader = this.list.reader
    let v = reader.read(seg, off, RECORD_PREFIX_BYTES, seg.size)
    const length = v.buf.readUInt32LE(v.at)
    if (length < 1 || length > MAX_RECORD_LENGTH || off + RECORD_PREFIX_BYTES + length > seg.size) return 2
    v = reader.read(seg, off, RECORD_PREFIX_BYTES + length, seg.size)
    if (recordCrc(v.buf, v.at + 8, length) !== v.buf.readUInt32LE(v.at + 4)) return 2
    this.recBuf = v.buf
    this.recAt = v.at
    this.recSize = RECORD_PREFIX_BYTES + length
    return 1
  }

  /** A carried item's record, read on its own (one small read: they are few). */
  private readCarried(seq: number): Buffer | undefined {
    const ref = this.list.carried.get(seq)
    const seg = ref && this.list.segment(ref.segno)
    if (ref === undefined || seg === undefined) return undefined
    const buf = Buffer.allocUnsafe(ref.size)
    let got = 0
    while (got < ref.size) {
      const n = fs.readSync(seg.fd, buf, got, ref.size - got, ref.off + got)
      if (n === 0) break
      got += n
    }
    const length = got >= RECORD_PREFIX_BYTES ? buf.readUInt32LE(0) : 0
    if (got < ref.size || length + RECORD_PREFIX_BYTES !== ref.size || recordCrc(buf, 8, length) !== buf.readUInt32LE(4) || readU64(buf, 9) !== seq) {
      this.logger.warn({ queue: this.queue, seq, file: seg.path, offset: ref.off }, 'journal: record unreadable in read-behind; skipped')
      return undefined
    }
    return buf
  }
}

/** A sink that makes JournalItems (QueueJournal.readBehind, loadInitial: tests, starling import). */
class ItemList implements ItemSink {
  readonly items: JournalItem[] = []
  push(seq: number, flags: number, expiresAt: number, addedAt: number, src: Buffer, start: number, end: number): void {
    this.items.push({ seq, flags, expiresAt, addedAt, data: Buffer.from(src.subarray(start, end)) })
  }
}
