/**
 * Replies in command order. A command reserves a slot when it is parsed; the slot is filled when the
 * command completes (at once, after a journal write, after an fsync, or when a blocking get is
 * served). Completed slots at the head are written to the socket; the replies of one tick leave in
 * one socket write. `full` tells the handler to stop reading so a slow reader cannot make us buffer
 * without bound.
 */

/**
 * A reply too large to build at once (`stats` with many queues): its chunks are pulled a few at a
 * time, between turns of the event loop and only while the client keeps reading.
 */
export interface ReplyStream {
  /** The next chunk, or null when the reply is complete. */
  next(): Buffer | null
}

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
/** A streamed reply writes about this much per event-loop turn, then lets other work run. */
const STREAM_TURN_BYTES = 128 * 1024
/** ...and waits for 'drain' while more than this is unread by the client (above the socket's hwm). */
const STREAM_MAX_UNREAD = 256 * 1024

/**
 * Outboxes with replies to send at the end of this tick, flushed by one nextTick for all of them:
 * a group commit completes the sets of many connections at once, and a nextTick each cost more
 * than the writes' own JS (async-context bookkeeping per tick callback).
 */
let dueFlushes: Array<() => void> = []

function scheduleFlush(flush: () => void): void {
  if (dueFlushes.length === 0) process.nextTick(flushDue)
  dueFlushes.push(flush)
}

function flushDue(): void {
  // A flush may schedule again (a reply made by a write's side effect): that goes to a new list.
  const due = dueFlushes
  dueFlushes = []
  for (let i = 0; i < due.length; i++) {
    try {
      due[i]!()
    } catch (err) {
      // Never leave another connection's replies unsent because one flush threw.
      for (let j = i + 1; j < due.length; j++) scheduleFlush(due[j]!)
      throw err
    }
  }
}

export class Slot {
  /** Reply chunks, or null while the command is in progress. */
  chunks: Buffer[] | null = null
  /** A one-buffer reply (fillOne), written instead of `chunks` (then EMPTY): no array per reply. */
  single: Buffer | null = null
  /** For pushWhenReady: builds the chunks (or a stream) when the slot reaches the head. */
  compute: (() => Buffer[] | ReplyStream) | null = null
  /** A reply being streamed; the slot completes when the stream ends. */
  stream: ReplyStream | null = null
}

/** Fills a reserved slot; only the first call counts. */
export type Fill = (...chunks: Buffer[]) => void

export class Outbox {
  private readonly slots: Slot[] = []
  private head = 0
  private closed = false
  /** Chunks written this tick, sent together at its end. */
  private batch: Buffer[] = []
  private batchBytes = 0
  private flushScheduled = false
  private releasing = false
  /** A stream at the head waits for the socket's 'drain' (see `drained`). */
  private awaitingDrain = false
  private streamTurnScheduled = false
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
  pushWhenReady(compute: () => Buffer[] | ReplyStream): void {
    const slot = new Slot()
    slot.compute = compute
    this.slots.push(slot)
    if (this.pendingSlots === 1) this.release()
  }

  /**
   * Reserve a slot, run `start` with a fill that counts once (later calls are ignored), and turn a
   * throw from `start` into the reply `onThrow` makes — unless it already filled the slot.
   * `settled` runs once the slot is filled, synchronously or later.
   */
  later(start: (fill: Fill) => void, onThrow: (err: unknown) => Buffer[], settled?: () => void): void {
    const slot = this.reserve()
    let filled = false
    const fill: Fill = (...chunks) => {
      if (filled) return
      filled = true
      this.fill(slot, ...chunks)
      settled?.()
    }
    try {
      start(fill)
    } catch (err) {
      fill(...onThrow(err))
    }
  }

  /** Reserve a place for a reply that completes later. */
  reserve(): Slot {
    const slot = new Slot()
    this.slots.push(slot)
    return slot
  }

  /** Complete a reserved slot; an empty list means "no reply" (noreply, quiet binary ops). */
  fill(slot: Slot, ...chunks: Buffer[]): void {
    if (slot.chunks !== null) return
    slot.chunks = chunks.length === 0 ? EMPTY : chunks
    this.release()
  }

  /**
   * Complete a reserved slot with one buffer, or null for no reply. Only the first fill of a slot
   * counts, so a hot path can fill from its callback and again from a catch without a guard closure.
   */
  fillOne(slot: Slot, reply: Buffer | null): void {
    if (slot.chunks !== null) return
    slot.chunks = EMPTY
    slot.single = reply
    this.release()
  }

  /** The socket wrote its buffer out: a stream waiting for it goes on. */
  drained(): void {
    if (!this.awaitingDrain) return
    this.awaitingDrain = false
    this.release()
  }

  /** Hand this tick's replies to the socket now (before ending the connection). */
  flush(): void {
    this.flushBatch()
  }

  /**
   * A read is being parsed: its replies go out together at `endTurn`, in one socket write, without
   * a nextTick per read (the common case: every reply of a read completes during the read).
   */
  beginTurn(): void {
    this.inTurn = true
  }

  endTurn(): void {
    this.inTurn = false
    if (this.batch.length > 0) this.flushBatch()
  }

  private inTurn = false

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
          // What was written so far is counted first (bytes_written in a stats reply).
          if (bytes > 0) {
            this.onProgress(bytes)
            bytes = 0
          }
          const reply = slot.compute()
          slot.compute = null
          if (Array.isArray(reply)) slot.chunks = reply
          else slot.stream = reply
        }
        if (slot.stream) {
          const sent = this.pumpStream(slot.stream)
          bytes += sent.bytes
          if (!sent.done) break
          slot.stream = null
          slot.chunks = EMPTY
        }
        if (slot.chunks === null) break
        this.head++
        released++
        bytes += slot.single === null ? this.write(slot.chunks) : this.writeOne(slot.single)
      }
    } finally {
      this.releasing = false
    }
    // Even a silent reply (noreply) frees a slot: the connection may resume reading.
    if (released > 0 || bytes > 0) this.onProgress(bytes)
    if (this.head === this.slots.length) {
      this.slots.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head)
      this.head = 0
    }
  }

  /**
   * Write one turn's worth of the stream at the head. Not done: it goes on at the next turn of the
   * event loop, or at 'drain' when the client is not reading (no unbounded buffering).
   */
  private pumpStream(stream: ReplyStream): { done: boolean; bytes: number } {
    let bytes = 0
    if (this.closed) return { done: true, bytes }
    if (this.sink.writableLength > STREAM_MAX_UNREAD) {
      this.awaitingDrain = true
      return { done: false, bytes }
    }
    while (bytes < STREAM_TURN_BYTES) {
      const chunk = stream.next()
      if (chunk === null) return { done: true, bytes }
      bytes += this.write([chunk])
    }
    if (!this.streamTurnScheduled) {
      this.streamTurnScheduled = true
      setImmediate(() => {
        this.streamTurnScheduled = false
        if (!this.closed) this.release()
      })
    }
    return { done: false, bytes }
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
    if (!this.flushScheduled && !this.inTurn) {
      this.flushScheduled = true
      scheduleFlush(this.flushBatch)
    }
    this.bytesWritten += n
    return n
  }

  private writeOne(chunk: Buffer): number {
    if (this.closed) return 0
    const n = chunk.length
    this.batch.push(chunk)
    this.batchBytes += n
    if (!this.flushScheduled && !this.inTurn) {
      this.flushScheduled = true
      scheduleFlush(this.flushBatch)
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
