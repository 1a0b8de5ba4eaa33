/**
 * Who sent what and who got what: per-producer bitmaps of acknowledged and received sequence
 * numbers. Workers keep their own; the orchestrator merges them and derives the correctness counts.
 */
export class Bitmap {
  bits: Uint8Array

  constructor(initialBits = 1024) {
    this.bits = new Uint8Array(Math.ceil(initialBits / 8))
  }

  static from(bytes: Uint8Array): Bitmap {
    const b = new Bitmap(0)
    b.bits = bytes
    return b
  }

  /** Sets bit `i`; returns whether it was already set. */
  set(i: number): boolean {
    const byte = i >>> 3
    if (byte >= this.bits.length) {
      let size = Math.max(this.bits.length * 2, 128)
      while (size <= byte) size *= 2
      const grown = new Uint8Array(size)
      grown.set(this.bits)
      this.bits = grown
    }
    const mask = 1 << (i & 7)
    const was = (this.bits[byte]! & mask) !== 0
    this.bits[byte]! |= mask
    return was
  }

  has(i: number): boolean {
    const byte = i >>> 3
    return byte < this.bits.length && (this.bits[byte]! & (1 << (i & 7))) !== 0
  }
}

function popcount8(x: number): number {
  x = x - ((x >> 1) & 0x55)
  x = (x & 0x33) + ((x >> 2) & 0x33)
  return (x + (x >> 4)) & 0x0f
}

/** Per-producer bitmaps, as sent between threads. */
export type BitmapSet = Array<[producerId: number, bits: Uint8Array]>

export interface Correctness {
  /** Acknowledged by the server, never delivered. */
  lost: number
  /** Delivered more than once. */
  duplicated: number
  /** Checksum mismatch or unparseable value. */
  corrupt: number
  /** A consumer saw a producer's sequence numbers go backwards. */
  outOfOrder: number
  /** Delivered although its set was never acknowledged (not an error: e.g. reply lost on a timeout). */
  unackedDelivered: number
}

export class Ledger {
  private readonly acked = new Map<number, Bitmap>()
  private readonly received = new Map<number, Bitmap>()
  duplicated = 0
  corrupt = 0
  outOfOrder = 0

  addAcked(set: BitmapSet): void {
    for (const [pid, bits] of set) this.union(this.acked, pid, bits, false)
  }

  addReceived(set: BitmapSet): void {
    for (const [pid, bits] of set) this.duplicated += this.union(this.received, pid, bits, true)
  }

  /** ORs `bits` into the producer's bitmap; returns how many bits were already set (if counting). */
  private union(into: Map<number, Bitmap>, pid: number, bits: Uint8Array, countOverlap: boolean): number {
    let target = into.get(pid)
    if (!target) {
      target = Bitmap.from(new Uint8Array(bits.length))
      into.set(pid, target)
    }
    if (target.bits.length < bits.length) {
      const grown = new Uint8Array(bits.length)
      grown.set(target.bits)
      target.bits = grown
    }
    let overlap = 0
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i]!
      if (b === 0) continue
      if (countOverlap) overlap += popcount8(target.bits[i]! & b)
      target.bits[i]! |= b
    }
    return overlap
  }

  ackedCount(): number {
    let n = 0
    for (const b of this.acked.values()) for (const x of b.bits) n += popcount8(x)
    return n
  }

  correctness(): Correctness {
    let lost = 0
    let unackedDelivered = 0
    for (const [pid, a] of this.acked) {
      const r = this.received.get(pid)
      for (let i = 0; i < a.bits.length; i++) lost += popcount8(a.bits[i]! & ~(r?.bits[i] ?? 0) & 0xff)
    }
    for (const [pid, r] of this.received) {
      const a = this.acked.get(pid)
      for (let i = 0; i < r.bits.length; i++) unackedDelivered += popcount8(r.bits[i]! & ~(a?.bits[i] ?? 0) & 0xff)
    }
    return { lost, duplicated: this.duplicated, corrupt: this.corrupt, outOfOrder: this.outOfOrder, unackedDelivered }
  }
}

export function toBitmapSet(map: Map<number, Bitmap>): BitmapSet {
  return [...map].map(([pid, b]) => [pid, b.bits])
}
