/**
 * One queue's segments and what is live in them: the state the writer (queueJournal.ts),
 * read-behind (readBehind.ts) and compaction (compaction.ts) share. It keeps the live index
 * (liveIndex.ts) in step with the segment list; what it may hold, and why it is so small, is in
 * README.md ("Invariants", "Read-behind and the live index").
 */
import { CarriedItems, type CarriedRef, KnownSizes } from './liveIndex.js'
import type { ReadBehind } from './readBehind.js'
import { findOriginal, type ReplayState } from './replay.js'
import { ChunkReader, type Segment } from './segment.js'

/** The carried copies of every queue that has none (never written to: carry() makes its own). */
const NO_CARRIED = new CarriedItems()

/**
 * The list extends the known sizes of its memory region rather than holding them (issue 17: an
 * object less a queue, ~32 B, as ItemDeque extends ItemStore); `knownSizes` names that part.
 */
export class SegmentList extends KnownSizes {
  /** Oldest first; only the last one is appended to. */
  segments: Segment[]
  /**
   * The segments holding original ADDs, in order (their seq ranges ascend). The same array as
   * `segments` while every segment holds some (issue 17: 56 B a queue); push and shiftOldest
   * keep them apart when they differ. Only this class changes either array.
   */
  originalSegments: Segment[]
  /** Shared NO_CARRIED until the first carry-forward (issue 17: ~50 B a queue). */
  carried: CarriedItems
  /** Above every seq seen: the base seq of the next segment. */
  nextSeq: number
  /** Reads records back in big chunks (see `reader`); made on first read, dropped when idle. */
  private chunkReader: ChunkReader | undefined
  /** Reading items back from disk; made by the journal on first use (issue 17: ~120 B a queue). */
  behind: ReadBehind | undefined

  constructor(state: ReplayState) {
    super()
    // exact-size copies: an array grown by push holds 17 slots (~150 bytes a queue for one segment)
    this.segments = state.segments.slice()
    const originals = this.segments.filter((s) => s.live.first >= 0)
    this.originalSegments = originals.length === this.segments.length ? this.segments : originals.slice()
    this.carried = state.carried.size > 0 ? state.carried : NO_CARRIED
    this.nextSeq = state.nextSeq
    // a small journal replay read whole: the first read-back needs no read
    if (state.wholeFile) this.reader.seed(this.segments[0]!, 0, state.wholeFile)
  }

  /** Record sizes of the live items in the memory region (see liveIndex.ts): the list itself. */
  get knownSizes(): KnownSizes {
    return this
  }

  /** Reads records back in big chunks; read-behind and carry-forward share it. */
  get reader(): ChunkReader {
    return (this.chunkReader ??= new ChunkReader())
  }

  /** Forget the cached chunk (the file changed or was closed). */
  invalidateReader(): void {
    this.chunkReader?.invalidate()
  }

  /** Give the chunk reader and its buffer back (an idle queue holds none). */
  releaseReader(): void {
    this.chunkReader?.release()
    this.chunkReader = undefined
  }

  /** Remember a carried-forward copy of `seq` (compaction). */
  carry(seq: number, ref: CarriedRef): void {
    if (this.carried === NO_CARRIED) this.carried = new CarriedItems()
    this.carried.set(seq, ref)
  }

  /**
   * The segment numbered `segno`, if listed: a binary search (segnos ascend), not a Map per queue
   * (an empty Map costs ~180 bytes, times 100k queues).
   */
  segment(segno: number): Segment | undefined {
    const segs = this.segments
    let lo = 0
    let hi = segs.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (segs[mid]!.segno < segno) lo = mid + 1
      else hi = mid
    }
    return lo < segs.length && segs[lo]!.segno === segno ? segs[lo] : undefined
  }

  /** The segment being appended to. */
  get current(): Segment {
    return this.segments[this.segments.length - 1]!
  }

  /** An original ADD of `seq` at `off` of the current segment (in the batch being built). */
  addOriginal(seq: number, off: number, size: number): void {
    const seg = this.current
    // seg is the last segment: with it, the originals may become every segment (then shared)
    if (seg.live.first < 0 && this.originalSegments !== this.segments) {
      const origs = this.originalSegments
      if (origs.length === this.segments.length - 1) this.originalSegments = this.segments
      else if (origs.length === 0) this.originalSegments = [seg]
      else origs.push(seg)
    }
    seg.live.append(seq, off, size)
    seg.liveCount++
    seg.liveBytes += size
    this.nextSeq = seq + 1
  }

  /**
   * Take seq out of the live index and its segment's counts. The record size comes from the caller
   * (a failed batch), the memory region's sizes, the carried entry, or, for an item removed while
   * still on disk (rare: the engine removes items it holds), the segment's common/average size.
   */
  forget(seq: number, exactSize = 0): void {
    const knownSize = this.knownSizes.take(seq)
    const c = this.carried.get(seq)
    if (c !== undefined) {
      this.carried.delete(seq)
      const seg = this.segment(c.segno)
      if (seg) {
        seg.liveCount--
        seg.liveBytes = seg.liveCount === 0 ? 0 : Math.max(0, seg.liveBytes - c.size)
      }
      return
    }
    const seg = findOriginal(this.originalSegments, seq)
    if (seg === undefined || !seg.live.kill(seq)) return
    const live = seg.live
    const size =
      exactSize > 0 ? exactSize : knownSize > 0 ? knownSize : live.runSizeOf(seq) || (live.count > 0 ? Math.round(live.bytes / live.count) : 0)
    seg.liveCount--
    seg.liveBytes = seg.liveCount === 0 ? 0 : Math.max(0, seg.liveBytes - size)
  }

  /** A new segment to append to (rotation). */
  pushSegment(seg: Segment): void {
    // the new segment holds no original ADD yet
    if (this.originalSegments === this.segments) this.originalSegments = this.segments.slice()
    this.segments.push(seg)
  }

  /** Take the oldest segment out of the list (it is being deleted). */
  shiftOldest(): Segment {
    const shared = this.originalSegments === this.segments
    const seg = this.segments.shift()!
    if (!shared && this.originalSegments[0] === seg) this.originalSegments.shift()
    this.invalidateReader()
    return seg
  }

  /** Replace every segment (reset, destroy): no item is live any more. Returns the old ones. */
  replaceAll(segs: Segment[]): Segment[] {
    const old = this.segments
    this.segments = segs
    this.originalSegments = []
    this.carried = NO_CARRIED
    this.knownSizes.clear()
    this.invalidateReader()
    return old
  }

  get sizeOnDisk(): number {
    let n = 0
    for (const s of this.segments) if (s.exists) n += s.size
    return n
  }

  get liveItems(): number {
    let n = 0
    for (const s of this.segments) n += s.liveCount
    return n
  }

  get liveBytes(): number {
    let n = 0
    for (const s of this.segments) n += s.liveBytes
    return n
  }

  /** Bytes of memory the live index holds: bitmaps, checkpoints, carried entries, known sizes. */
  get indexMemoryBytes(): number {
    let n = this.carried.memoryBytes + this.knownSizes.memoryBytes
    for (const s of this.segments) n += s.live.memoryBytes
    return n
  }
}
