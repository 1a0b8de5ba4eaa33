/**
 * Where every live item of a queue sits on disk: (seq, segment, record offset, record size), in seq
 * order. 24 bytes an item in typed arrays (no object per item), so a queue far larger than RAM
 * still has a small index. Removal is mostly at the head (FIFO); a removal elsewhere only marks
 * the entry, and marked entries are dropped once they reach the head.
 */
export class LiveIndex {
  private seqs: Float64Array
  private segs: Uint32Array
  private offs: Float64Array
  private sizes: Uint32Array
  private dead: Uint8Array
  private head = 0
  private tail = 0
  /** Live (unmarked) entries. */
  count = 0

  constructor(capacity = 1024) {
    this.seqs = new Float64Array(capacity)
    this.segs = new Uint32Array(capacity)
    this.offs = new Float64Array(capacity)
    this.sizes = new Uint32Array(capacity)
    this.dead = new Uint8Array(capacity)
  }

  /** Append an entry; seq must be above every seq in the index. */
  push(seq: number, seg: number, off: number, size: number): void {
    if (this.tail === this.seqs.length) this.makeRoom()
    const i = this.tail++
    this.seqs[i] = seq
    this.segs[i] = seg
    this.offs[i] = off
    this.sizes[i] = size
    this.dead[i] = 0
    this.count++
  }

  get lastSeq(): number {
    return this.tail > this.head ? this.seqs[this.tail - 1]! : -1
  }

  private makeRoom(): void {
    const used = this.tail - this.head
    const capacity = used * 2 > this.seqs.length ? this.seqs.length * 2 : this.seqs.length
    const move = <T extends Float64Array | Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = capacity === a.length ? a : make(capacity)
      b.set(a.subarray(this.head, this.tail), 0)
      return b
    }
    this.seqs = move(this.seqs, (n) => new Float64Array(n))
    this.segs = move(this.segs, (n) => new Uint32Array(n))
    this.offs = move(this.offs, (n) => new Float64Array(n))
    this.sizes = move(this.sizes, (n) => new Uint32Array(n))
    this.dead = move(this.dead, (n) => new Uint8Array(n))
    this.tail = used
    this.head = 0
  }

  /** Position of the first entry with seq >= `seq` (may be a marked entry). */
  lowerBound(seq: number): number {
    let lo = this.head
    let hi = this.tail
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.seqs[mid]! < seq) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Position of the live entry for seq, or -1. */
  find(seq: number): number {
    // FIFO fast path: the head
    if (this.tail > this.head && this.seqs[this.head] === seq) return this.dead[this.head] ? -1 : this.head
    const i = this.lowerBound(seq)
    return i < this.tail && this.seqs[i] === seq && this.dead[i] === 0 ? i : -1
  }

  /** Mark the entry at position i removed. */
  kill(i: number): void {
    this.dead[i] = 1
    this.count--
    while (this.head < this.tail && this.dead[this.head] === 1) this.head++
    if (this.head === this.tail) this.head = this.tail = 0
  }

  clear(): void {
    this.head = this.tail = 0
    this.count = 0
  }

  get start(): number {
    return this.head
  }
  get end(): number {
    return this.tail
  }
  isLive(i: number): boolean {
    return this.dead[i] === 0
  }
  seqAt(i: number): number {
    return this.seqs[i]!
  }
  segAt(i: number): number {
    return this.segs[i]!
  }
  offAt(i: number): number {
    return this.offs[i]!
  }
  sizeAt(i: number): number {
    return this.sizes[i]!
  }
  /** Point the entry at a new copy of its record (carry-forward). */
  move(i: number, seg: number, off: number): void {
    this.segs[i] = seg
    this.offs[i] = off
  }
}
