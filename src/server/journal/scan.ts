/**
 * Reading a segment's records for replay: framing (length), CRC and the opcode checks, in big
 * chunks (no syscall per record). Used on the main thread for small journals and by the replay
 * threads (scanWorker.ts) for big ones; what a record means is the replay builder's business.
 */
import * as fs from 'node:fs'
import {
  ADD_FIXED_LENGTH,
  MAX_RECORD_LENGTH,
  OP_ADD,
  OP_REMOVE,
  readU64,
  RECORD_PREFIX_BYTES,
  recordCrc,
  REMOVE_LENGTH,
} from './format.js'

/** Where the records of a scan go. `seq` is -1 for an opcode this version does not know. */
export interface RecordSink {
  record(op: number, seq: number, off: number, size: number): void
}

/**
 * Scan the records of the segment file `fd` from `start` up to `fileSize`. Returns the offset of
 * the first bad byte: a record that is torn (the file ends inside it), impossibly long, fails its
 * CRC, or is an ADD/REMOVE of the wrong length; `fileSize` when every record is good.
 * `chunk.buf` is the read buffer (replaced by a bigger one for a record that does not fit).
 */
export function scanRecords(fd: number, fileSize: number, start: number, chunk: { buf: Buffer }, sink: RecordSink): number {
  let buf = chunk.buf
  let pos = start // file offset of buf[0]
  let end = 0 // valid bytes in buf
  let p = 0 // parse position in buf
  for (;;) {
    while (end - p >= RECORD_PREFIX_BYTES) {
      const length = buf.readUInt32LE(p)
      if (length < 1 || length > MAX_RECORD_LENGTH) return pos + p
      if (p + RECORD_PREFIX_BYTES + length > end) break
      if (recordCrc(buf, p + 8, length) !== buf.readUInt32LE(p + 4)) return pos + p
      const op = buf[p + 8]!
      if (op === OP_ADD) {
        if (length < ADD_FIXED_LENGTH) return pos + p
        sink.record(op, readU64(buf, p + 9), pos + p, RECORD_PREFIX_BYTES + length)
      } else if (op === OP_REMOVE) {
        if (length !== REMOVE_LENGTH) return pos + p
        sink.record(op, readU64(buf, p + 9), pos + p, RECORD_PREFIX_BYTES + length)
      } else {
        sink.record(op, -1, pos + p, RECORD_PREFIX_BYTES + length)
      }
      p += RECORD_PREFIX_BYTES + length
    }
    if (pos + end >= fileSize) return pos + p // the file ends inside a record (or exactly here)
    // keep the partial record, read more behind it
    const keep = end - p
    if (keep > 0) {
      const need = keep >= RECORD_PREFIX_BYTES ? RECORD_PREFIX_BYTES + buf.readUInt32LE(p) : 0
      if (need > buf.length) {
        const bigger = Buffer.allocUnsafe(need)
        buf.copy(bigger, 0, p, end)
        buf = chunk.buf = bigger
      } else {
        buf.copy(buf, 0, p, end)
      }
    }
    pos += p
    p = 0
    end = keep
    const want = Math.min(buf.length - end, fileSize - (pos + end))
    const n = fs.readSync(fd, buf, end, want, pos + end)
    if (n <= 0) return pos // the file shrank under us: treat as its end
    end += n
  }
}

/** A segment's records as columns (what a replay thread sends back): op, seq, offset, size. */
export interface ScannedRecords {
  count: number
  ops: Uint8Array
  seqs: Float64Array
  offs: Float64Array
  sizes: Uint32Array
  /** The offset of the first bad byte (the file's size when all is good). */
  good: number
}

/** Collects records into growable columns (starting with the arrays of `reuse`, if given). */
export class ColumnSink implements RecordSink {
  count = 0
  ops: Uint8Array
  seqs: Float64Array
  offs: Float64Array
  sizes: Uint32Array

  constructor(reuse?: ScannedRecords) {
    this.ops = reuse?.ops ?? new Uint8Array(1024)
    this.seqs = reuse?.seqs ?? new Float64Array(1024)
    this.offs = reuse?.offs ?? new Float64Array(1024)
    this.sizes = reuse?.sizes ?? new Uint32Array(1024)
  }

  record(op: number, seq: number, off: number, size: number): void {
    if (this.count === this.ops.length) this.grow()
    const i = this.count++
    this.ops[i] = op
    this.seqs[i] = seq
    this.offs[i] = off
    this.sizes[i] = size
  }

  private grow(): void {
    const n = this.ops.length * 2
    const ops = new Uint8Array(n)
    ops.set(this.ops)
    const seqs = new Float64Array(n)
    seqs.set(this.seqs)
    const offs = new Float64Array(n)
    offs.set(this.offs)
    const sizes = new Uint32Array(n)
    sizes.set(this.sizes)
    this.ops = ops
    this.seqs = seqs
    this.offs = offs
    this.sizes = sizes
  }

  result(good: number): ScannedRecords {
    return { count: this.count, ops: this.ops, seqs: this.seqs, offs: this.offs, sizes: this.sizes, good }
  }
}

/** The buffers of a scan's columns (to transfer between threads). */
export function columnBuffers(r: ScannedRecords): ArrayBuffer[] {
  return [r.ops.buffer, r.seqs.buffer, r.offs.buffer, r.sizes.buffer] as ArrayBuffer[]
}
