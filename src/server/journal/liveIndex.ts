/**
 * What the journal remembers about live items: almost nothing per item, so a queue far larger than
 * RAM (10 M items and more) keeps a tiny index. The records themselves are the index: read-behind
 * and carry-forward find items by scanning segments sequentially in big chunks (segment.ts).
 *
 * Per segment (`SegmentLive`, one per segment file):
 * - the seq range [first, last] of its ORIGINAL ADDs (appended there by `add`; seqs strictly
 *   increase across segments, so ranges of different segments never overlap) and a bitmap with
 *   one bit per seq of that range: set = the ADD is live (never REMOVEd). A seq never added (a
 *   failed write) is simply a 0 bit. 1 bit an item.
 * - counts: original ADDs, their record bytes, live originals, and the leading run: the seqs up
 *   to which every record has the first one's size (all of them when the sizes are all the same:
 *   replay then knows live bytes without re-reading).
 * - a checkpoint (seq, offset) every CHECKPOINT_EVERY original ADDs, so read-behind can start
 *   reading near any seq (16 bytes / 256 items).
 * Whole journal:
 * - `CarriedItems`: ADDs re-appended by carry-forward (their seq is older than the segment's
 *   base seq): seq -> (segment, offset, size). They are few (carry-forward only moves segments
 *   that are at most 1/8 live), so an entry each is fine.
 * - `KnownSizes`: (seq, record size) of live items in the MEMORY region (items the engine holds:
 *   added while not reading behind, or handed out by replay/read-behind), so a REMOVE knows how
 *   many bytes it frees; only for originals outside their segment's leading run (the run knows
 *   their size: 1M items of one size in memory cost no entry, not 12 MB). The engine bounds that
 *   region by its memory budget; items on disk have no entry (a removal of one not yet read uses
 *   the run's or the segment's average record size).
 *
 * Cost for items on disk: 1 bit + 16/256 bytes ≈ 0.19 bytes/item (bitmaps of the segment being
 * appended to may have up to 2x spare capacity until it is rotated).
 *
 * How the journal uses it (queueJournal.ts):
 * The live index costs ~0.2 bytes per item on disk: a bit per original ADD in its
 * segment's bitmap, a (seq, offset) checkpoint every 256 ADDs, an entry per carried copy. No
 * per-item offsets, so:
 * - Read-behind is a forward cursor (segment, byte offset) reading records in big chunks: it steps
 *   over REMOVEs, removed ADDs (bit clear), carried copies and seqs below the last one returned,
 *   and stops at an ADD above maxSeq; past the written end of the last segment it reads the batch
 *   not yet written. Carried items (few) are merged in by seq from their known offsets.
 *   startReadBehind seeks with the checkpoints.
 * - Carry-forward finds the live items of the oldest segment (at most 1/8 of it is live) by reading
 *   it once from the checkpoint before its first live ADD; the copies become carried entries. It
 *   waits while read-behind has not yet read past the segment (its live items are about to go).
 * - A REMOVE frees the record size the memory region remembers for it (KnownSizes), so live byte
 *   counts stay exact for what the engine removes.
 */

export const CHECKPOINT_EVERY = 256

// Shared empty arrays: never written (every write grows the array first).
const NO_BITS = new Uint8Array(0)
const NO_SEQS = new Float64Array(0)
const NO_SIZES = new Uint32Array(0)
// never written: CarriedItems replaces them before its first entry
const NO_CARRIED = new Map<number, CarriedRef>()
const NO_ORDER: number[] = []

/** Bits a SegmentLive keeps in a plain integer before it needs an array. */
const INLINE_BITS = 32

export class SegmentLive {
  /** seq of bit 0 (the first original ADD), -1 while there is none. */
  first = -1
  /** Highest original seq appended. */
  last = -1
  // The bitmap: bits 0..31 in `low` while the segment spans fewer than INLINE_BITS seqs (most
  // segments of most queues: a typed array costs ~200 bytes of heap), then all of them in `bits`.
  private low = 0
  private bits = NO_BITS
  /** Bytes of `bits` before this one are all zero (kills only clear bits). */
  private zeroBefore = 0
  /** Original ADDs (not counting failed writes), their record bytes, and live ones. */
  count = 0
  bytes = 0
  liveOriginals = 0
  // The leading run: every original ADD with a seq up to runLast has record size runSize (-1: none
  // yet). Such an item's size needs no KnownSizes entry (12 bytes an item in memory).
  private runSize = 0
  private runLast = -1
  // Checkpoints: the first inline, the rest (seq, offset) pairs in `cps` (a segment of fewer than
  // CHECKPOINT_EVERY items has one, and no array).
  private cp0Seq = 0
  private cp0Off = 0
  private cps = NO_SEQS
  private cpN = 0
  private sinceCp = 0

  /** Record a new original ADD at `off`; `seq` must be above `last`. */
  append(seq: number, off: number, size: number): void {
    if (this.first < 0) this.first = seq
    const k = seq - this.first
    if (this.bits.length === 0 && k < INLINE_BITS) {
      this.low |= 1 << k
    } else {
      const byte = k >>> 3
      if (byte >= this.bits.length) {
        const b = new Uint8Array(Math.max(8, this.bits.length * 2, byte + 1))
        if (this.bits.length === 0) for (let i = 0; i < 4; i++) b[i] = (this.low >>> (8 * i)) & 0xff
        else b.set(this.bits)
        this.bits = b
      }
      this.bits[byte]! |= 1 << (k & 7)
    }
    if (this.sinceCp === 0) this.addCheckpoint(seq, off)
    this.sinceCp = (this.sinceCp + 1) % CHECKPOINT_EVERY
    if (this.last < 0) {
      this.runSize = size
      this.runLast = seq
    } else if (this.runLast === this.last && size === this.runSize) {
      this.runLast = seq
    }
    this.last = seq
    this.count++
    this.bytes += size
    this.liveOriginals++
  }

  /** Record size of every original ADD if they are all equal; 0 = none yet, -1 = mixed. */
  get uniform(): number {
    if (this.last < 0) return 0
    return this.runLast === this.last ? this.runSize : -1
  }

  /** The record size of original `seq` if it is in the leading run (all one size), else 0. */
  runSizeOf(seq: number): number {
    return seq >= this.first && seq <= this.runLast ? this.runSize : 0
  }

  private addCheckpoint(seq: number, off: number): void {
    if (this.cpN === 0) {
      this.cp0Seq = seq
      this.cp0Off = off
    } else {
      const at = 2 * (this.cpN - 1)
      if (at === this.cps.length) {
        const c = new Float64Array(Math.max(4, this.cps.length * 2))
        c.set(this.cps)
        this.cps = c
      }
      this.cps[at] = seq
      this.cps[at + 1] = off
    }
    this.cpN++
  }

  private cpSeq(i: number): number {
    return i === 0 ? this.cp0Seq : this.cps[2 * (i - 1)]!
  }

  private cpOff(i: number): number {
    return i === 0 ? this.cp0Off : this.cps[2 * (i - 1) + 1]!
  }

  has(seq: number): boolean {
    if (seq < this.first || seq > this.last || this.first < 0) return false
    const k = seq - this.first
    if (this.bits.length === 0) return k < INLINE_BITS && (this.low & (1 << k)) !== 0
    return (this.bits[k >>> 3]! & (1 << (k & 7))) !== 0
  }

  /** Clear seq's bit; true if it was live. */
  kill(seq: number): boolean {
    if (!this.has(seq)) return false
    const k = seq - this.first
    if (this.bits.length === 0) this.low &= ~(1 << k)
    else this.bits[k >>> 3]! &= ~(1 << (k & 7))
    this.liveOriginals--
    return true
  }

  /** An appended ADD was never written (failed batch): forget its bytes. */
  unappend(size: number): void {
    this.count--
    this.bytes -= size
  }

  /** The first live original seq, or -1. */
  firstLive(): number {
    if (this.liveOriginals === 0) return -1
    if (this.bits.length === 0) return this.low === 0 ? -1 : this.first + 31 - Math.clz32(this.low & -this.low)
    const n = this.bits.length
    let i = this.zeroBefore
    while (i < n && this.bits[i] === 0) i++
    this.zeroBefore = i
    if (i === n) return -1
    const b = this.bits[i]!
    let bit = 0
    while ((b & (1 << bit)) === 0) bit++
    return this.first + i * 8 + bit
  }

  /** Offset of the last checkpoint at or below `seq`, or -1 (start at the segment's first record). */
  seek(seq: number): number {
    let lo = 0
    let hi = this.cpN
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.cpSeq(mid) <= seq) lo = mid + 1
      else hi = mid
    }
    return lo === 0 ? -1 : this.cpOff(lo - 1)
  }

  /** Offset of the first checkpoint beyond `off`, or -1. */
  checkpointAfter(off: number): number {
    for (let i = 0; i < this.cpN; i++) if (this.cpOff(i) > off) return this.cpOff(i)
    return -1
  }

  /** Forget checkpoints at or beyond `off` (a failed batch was cut off there). */
  cutCheckpoints(off: number): void {
    while (this.cpN > 0 && this.cpOff(this.cpN - 1) >= off) this.cpN--
    this.sinceCp = 0
  }

  /** The segment gets no more appends: give back spare capacity. */
  trim(): void {
    if (this.bits.length > 0) {
      const need = this.first < 0 ? 0 : ((this.last - this.first) >>> 3) + 1
      if (this.bits.length > need) this.bits = this.bits.slice(0, need)
    }
    const pairs = 2 * Math.max(0, this.cpN - 1)
    if (this.cps.length > pairs) this.cps = pairs === 0 ? NO_SEQS : this.cps.slice(0, pairs)
  }

  /** Bytes of memory this structure holds (tests, diagnostics). */
  get memoryBytes(): number {
    return this.bits.byteLength + this.cps.byteLength + 120
  }
}

/** Where a carried-forward ADD record sits. */
export interface CarriedRef {
  segno: number
  off: number
  size: number
}

/** ADDs re-appended by carry-forward, by seq; few by construction. */
export class CarriedItems {
  // Shared empty until the first carried copy (most queues never carry one).
  private map: Map<number, CarriedRef> = NO_CARRIED
  private order: number[] = NO_ORDER
  private dirty = false

  get size(): number {
    return this.map.size
  }

  get(seq: number): CarriedRef | undefined {
    return this.map.get(seq)
  }

  set(seq: number, ref: CarriedRef): void {
    if (this.map === NO_CARRIED) this.map = new Map()
    if (!this.map.has(seq)) this.dirty = true
    this.map.set(seq, ref)
  }

  delete(seq: number): boolean {
    return this.map.delete(seq)
  }

  clear(): void {
    this.map = NO_CARRIED
    this.order = NO_ORDER
    this.dirty = false
  }

  private sorted(): number[] {
    if (this.dirty || this.order.length > 2 * this.map.size + 64) {
      this.order = [...this.map.keys()].sort((a, b) => a - b)
      this.dirty = false
    }
    return this.order
  }

  /** The smallest live carried seq >= seq, or -1. */
  nextFrom(seq: number): number {
    if (this.map.size === 0) return -1
    const order = this.sorted()
    let lo = 0
    let hi = order.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (order[mid]! < seq) lo = mid + 1
      else hi = mid
    }
    for (; lo < order.length; lo++) if (this.map.has(order[lo]!)) return order[lo]!
    return -1
  }

  /** The carried items stored in segment `segno`, seq order. */
  inSegment(segno: number): Array<{ seq: number } & CarriedRef> {
    const out: Array<{ seq: number } & CarriedRef> = []
    for (const seq of this.sorted()) {
      const ref = this.map.get(seq)
      if (ref && ref.segno === segno) out.push({ seq, ...ref })
    }
    return out
  }

  get memoryBytes(): number {
    return this.map.size * 120 + this.order.length * 8
  }
}

/**
 * (seq, record size) of the live items in the memory region, seq order. Removal is mostly at the
 * head (FIFO); a removal elsewhere marks the entry, and marked entries are dropped at the head or
 * compacted away once they outnumber the live ones.
 */
export class KnownSizes {
  // One entry is kept inline (a queue holding one item in memory allocates nothing); from the
  // second on they go in arrays, empty until used, grown by doubling from 4, and given back when
  // emptied.
  private oneSeq = -1
  private oneSize = 0
  private seqs = NO_SEQS
  private sizes = NO_SIZES
  private head = 0
  private tail = 0
  private liveN = 0

  get count(): number {
    return this.liveN
  }

  get lastSeq(): number {
    if (this.seqs.length === 0) return this.oneSeq
    return this.tail > this.head ? this.seqs[this.tail - 1]! : -1
  }

  /** Remember seq's size; ignored unless seq is above every seq held. */
  push(seq: number, size: number): void {
    if (seq <= this.lastSeq) return
    if (this.seqs.length === 0) {
      if (this.oneSeq < 0) {
        this.oneSeq = seq
        this.oneSize = size
        this.liveN++
        return
      }
      // the second entry: the inline one moves to the arrays first
      this.makeRoom()
      this.seqs[0] = this.oneSeq
      this.sizes[0] = this.oneSize
      this.tail = 1
      this.oneSeq = -1
    }
    if (this.tail === this.seqs.length) this.makeRoom()
    this.seqs[this.tail] = seq
    this.sizes[this.tail] = size
    this.tail++
    this.liveN++
  }

  private makeRoom(): void {
    // compact (drop marked entries), then grow if still more than half full
    let w = 0
    for (let r = this.head; r < this.tail; r++) {
      if (this.sizes[r] === 0) continue
      this.seqs[w] = this.seqs[r]!
      this.sizes[w] = this.sizes[r]!
      w++
    }
    this.head = 0
    this.tail = w
    if (w * 2 > this.seqs.length || this.seqs.length === 0) {
      const s = new Float64Array(Math.max(4, this.seqs.length * 2))
      const z = new Uint32Array(Math.max(4, this.seqs.length * 2))
      s.set(this.seqs.subarray(0, w))
      z.set(this.sizes.subarray(0, w))
      this.seqs = s
      this.sizes = z
    }
  }

  private find(seq: number): number {
    if (this.tail > this.head && this.seqs[this.head] === seq) return this.head
    let lo = this.head
    let hi = this.tail
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.seqs[mid]! < seq) lo = mid + 1
      else hi = mid
    }
    return lo < this.tail && this.seqs[lo] === seq ? lo : -1
  }

  /** Forget seq; its size, or -1 if it was not held. (A size of 0 marks a removed entry.) */
  take(seq: number): number {
    if (this.seqs.length === 0) {
      if (this.oneSeq < 0 || this.oneSeq !== seq) return -1
      this.oneSeq = -1
      this.liveN = 0
      return this.oneSize
    }
    const i = this.find(seq)
    if (i < 0 || this.sizes[i] === 0) return -1
    const size = this.sizes[i]!
    this.sizes[i] = 0
    this.liveN--
    while (this.head < this.tail && this.sizes[this.head] === 0) this.head++
    if (this.head === this.tail) this.clear()
    else if (this.tail - this.head > 4096 && this.liveN * 2 < this.tail - this.head) this.makeRoom()
    return size
  }

  /** Forget every entry with seq >= `seq` (they went back to the disk region). */
  dropFrom(seq: number): void {
    if (this.seqs.length === 0) {
      if (this.oneSeq >= 0 && this.oneSeq >= seq) this.clear()
      return
    }
    while (this.tail > this.head && this.seqs[this.tail - 1]! >= seq) {
      this.tail--
      if (this.sizes[this.tail] !== 0) this.liveN--
    }
    if (this.head === this.tail) this.clear()
  }

  clear(): void {
    this.head = this.tail = 0
    this.liveN = 0
    this.oneSeq = -1
    this.seqs = NO_SEQS
    this.sizes = NO_SIZES
  }

  get memoryBytes(): number {
    return this.seqs.byteLength + this.sizes.byteLength
  }
}
