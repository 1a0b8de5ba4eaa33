/**
 * The write batch: the records one queue's journal collects during an event-loop turn, encoded
 * back to back in one buffer so the whole batch is one positional write (README.md, invariant 6).
 * Each record keeps what its outcome needs: op, seq and size to undo it if the write fails, and
 * the engine's callbacks to run once it is written, or durable. The buffer is lent from a shared
 * pool (batchBuffers.ts) for one turn, so an idle queue holds none.
 */
import { giveBatchBuffer, NO_BUFFER, takeBatchBuffer } from './batchBuffers.js'
import { addRecordSize, encodeAdd, encodeRemove, OP_ADD, OP_REMOVE, REMOVE_RECORD_SIZE } from './format.js'
import type { JournalItem, WriteCallback } from './types.js'

export interface BatchRecord {
  op: typeof OP_ADD | typeof OP_REMOVE
  seq: number
  /** Record bytes in the batch. */
  size: number
  onWritten: WriteCallback | undefined
  /** Only ADDs wait for durability (a set is acknowledged from it). */
  onDurable: WriteCallback | undefined
}

/** A batch taken for writing: `buf[0, length)` holds the records' bytes. */
export interface TakenBatch {
  buf: Buffer
  length: number
  records: BatchRecord[]
}

/** An empty batch's records: shared and frozen (an idle queue holds no array of its own). */
const NO_RECORDS: BatchRecord[] = Object.freeze([]) as unknown as BatchRecord[]

export class WriteBatch {
  private buf: Buffer = NO_BUFFER
  private len = 0
  private records = NO_RECORDS

  /** Bytes encoded so far (where the next record goes, relative to the segment's written end). */
  get length(): number {
    return this.len
  }

  /** The encoded bytes, [0, length): read-behind reads records not yet written from here. */
  get bytes(): Buffer {
    return this.buf
  }

  get isEmpty(): boolean {
    return this.len === 0
  }

  /** Append an ADD record; its size in bytes. */
  appendAdd(item: JournalItem, onWritten: WriteCallback, onDurable: WriteCallback): number {
    const size = addRecordSize(item.data.length)
    this.reserve(size)
    this.len = encodeAdd(this.buf, this.len, item)
    this.record({ op: OP_ADD, seq: item.seq, size, onWritten, onDurable })
    return size
  }

  appendRemove(seq: number, onWritten: WriteCallback | undefined): void {
    this.reserve(REMOVE_RECORD_SIZE)
    this.len = encodeRemove(this.buf, this.len, seq)
    this.record({ op: OP_REMOVE, seq, size: REMOVE_RECORD_SIZE, onWritten, onDurable: undefined })
  }

  private record(r: BatchRecord): void {
    if (this.records === NO_RECORDS) this.records = [r]
    else this.records.push(r)
  }

  /**
   * Hand the batch over to be written, with its buffer; the batch starts again empty. Give the
   * buffer back with `giveBack` once written.
   */
  take(): TakenBatch {
    const taken = { buf: this.buf, length: this.len, records: this.records }
    this.buf = NO_BUFFER
    this.len = 0
    this.records = NO_RECORDS
    return taken
  }

  /** The taken batch was written (or failed): its buffer goes back to the pool. */
  giveBack(taken: TakenBatch): void {
    giveBatchBuffer(taken.buf)
  }

  private reserve(size: number): void {
    if (this.len + size <= this.buf.length) return
    const bigger = takeBatchBuffer(Math.max(this.buf.length * 2, this.len + size))
    this.buf.copy(bigger, 0, 0, this.len)
    giveBatchBuffer(this.buf)
    this.buf = bigger
  }
}
