/**
 * Replies in command order. A command reserves a slot when it is parsed; the slot is filled when the
 * command completes (at once, after a journal write, after an fsync, or when a blocking get is
 * served). Completed slots at the head are written to the socket; writes within one tick are corked
 * into one writev. `full` tells the handler to stop reading so a slow reader cannot make us buffer
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

export class Slot {
  /** Reply chunks, or null while the command is in progress. */
  chunks: Buffer[] | null = null
  /** For pushWhenReady: builds the chunks when the slot reaches the head. */
  compute: (() => Buffer[]) | null = null
}

export class Outbox {
  private readonly slots: Slot[] = []
  private head = 0
  private corked = false
  private closed = false
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
      this.sink.writableLength >= this.limits.maxPendingBytes ||
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

  /** Write the chunks (corked until the end of the tick); returns the bytes written. */
  private write(chunks: Buffer[]): number {
    if (this.closed || chunks.length === 0) return 0
    if (!this.corked) {
      this.corked = true
      this.sink.cork()
      process.nextTick(() => {
        this.corked = false
        this.sink.uncork()
      })
    }
    let n = 0
    for (const chunk of chunks) {
      n += chunk.length
      this.sink.write(chunk)
    }
    this.bytesWritten += n
    return n
  }
}
