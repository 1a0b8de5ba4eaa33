/**
 * Replies in command order. A command reserves a slot when it is parsed; the slot is filled when the
 * command completes (at once, after a journal write, after an fsync, or when a blocking get is
 * served). Completed slots at the head are written to the socket; the replies of one tick leave in
 * one socket write. `full` tells the handler to stop reading so a slow reader cannot make us buffer
 * without bound.
 */

export interface ReplySink {
  write(chunk: Buffer): boolean
  cork(): void
  uncork(): void
  readonly writableLength: number
}

export interface OutboxLimits {
  /** Stop parsing input while this many reply bytes wait for the client to read them. */
  maxPendingBytes: number
  /** ...or while this many replies are still being worked on (e.g. pipelined blocking gets). */
  maxPendingSlots: number
}

const EMPTY: Buffer[] = []
/** Up to this size a tick's replies are copied into one buffer; larger ones go out corked. */
const COALESCE_MAX_BYTES = 64 * 1024

export class Slot {
  /** Reply chunks, or null while the command is in progress. */
  chunks: Buffer[] | null = null
  /** For pushWhenReady: builds the chunks when the slot reaches the head. */
  compute: (() => Buffer[]) | null = null
}

export class Outbox {
  private readonly slots: Slot[] = []
  private head = 0
  private closed = false
  /** Chunks written this tick, sent together at its end. */
  private batch: Buffer[] = []
  private batchBytes = 0
  private flushScheduled = false
  private releasing = false
  bytesWritten = 0

  constructor(
    private readonly sink: ReplySink,
    private readonly limits: OutboxLimits,
    /** After replies left (bytes may be 0 for silent ones): for byte counts and resuming input. */
    private readonly onProgress: (bytes: number) => void = () => {},
  ) {}

  get pendingSlots(): number {
    return this.slots.length - this.head
  }

  /** True when the handler should stop parsing until `drain`. */
  get full(): boolean {
    return (
      this.sink.writableLength + this.batchBytes >= this.limits.maxPendingBytes ||
      this.pendingSlots >= this.limits.maxPendingSlots
    )
  }

  /** Reply now, in order. With nothing in flight ahead of it, this writes straight through. */
  push(...chunks: Buffer[]): void {
    if (this.pendingSlots === 0) {
      const bytes = this.write(chunks)
      if (bytes > 0) this.onProgress(bytes)
      return
    }
    const slot = new Slot()
    slot.chunks = chunks
    this.slots.push(slot)
  }

  /**
   * A reply computed when its turn comes (stats): it then reflects every command before it, even
   * ones still waiting for a queue to load or a journal write.
   */
  pushWhenReady(compute: () => Buffer[]): void {
    if (this.pendingSlots === 0) {
      this.push(...compute())
      return
    }
    const slot = new Slot()
    slot.compute = compute
    this.slots.push(slot)
  }

  /** Reserve a place for a reply that completes later. */
  reserve(): Slot {
    const slot = new Slot()
    this.slots.push(slot)
    return slot
  }

  /** Complete a reserved slot; an empty list means "no reply" (noreply, quiet binary ops). */
  fill(slot: Slot, ...chunks: Buffer[]): void {
    slot.chunks = chunks.length === 0 ? EMPTY : chunks
    this.release()
  }

  /** Hand this tick's replies to the socket now (before ending the connection). */
  flush(): void {
    this.flushBatch()
  }

  /** Drop everything not yet written (connection gone). */
  close(): void {
    this.closed = true
    this.slots.length = 0
    this.head = 0
  }

  private release(): void {
    // A write can call back into us (a fill from a journal callback run by the same write path);
    // one loop at a time, and the head moves before each write, so no reply is sent twice.
    if (this.releasing) return
    this.releasing = true
    let released = 0
    let bytes = 0
    try {
      while (this.head < this.slots.length) {
        const slot = this.slots[this.head]!
        if (slot.compute) {
          slot.chunks = slot.compute()
          slot.compute = null
        }
        if (slot.chunks === null) break
        this.head++
        released++
        bytes += this.write(slot.chunks)
      }
    } finally {
      this.releasing = false
    }
    // Even a silent reply (noreply) frees a slot: the connection may resume reading.
    if (released > 0) this.onProgress(bytes)
    if (this.head === this.slots.length) {
      this.slots.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head)
      this.head = 0
    }
  }

  /**
   * Queue the chunks for the end of this tick; returns their size. One socket write per tick: the
   * profile showed a socket write per reply (and writev of its parts) as the server's main cost.
   */
  private write(chunks: Buffer[]): number {
    if (this.closed || chunks.length === 0) return 0
    let n = 0
    for (const chunk of chunks) {
      n += chunk.length
      this.batch.push(chunk)
    }
    this.batchBytes += n
    if (!this.flushScheduled) {
      this.flushScheduled = true
      process.nextTick(this.flushBatch)
    }
    this.bytesWritten += n
    return n
  }

  private readonly flushBatch = (): void => {
    this.flushScheduled = false
    const chunks = this.batch
    const bytes = this.batchBytes
    this.batch = []
    this.batchBytes = 0
    if (this.closed || chunks.length === 0) return
    if (chunks.length === 1) {
      this.sink.write(chunks[0]!)
    } else if (bytes <= COALESCE_MAX_BYTES) {
      this.sink.write(Buffer.concat(chunks, bytes))
    } else {
      this.sink.cork()
      for (const chunk of chunks) this.sink.write(chunk)
      this.sink.uncork()
    }
  }
}
