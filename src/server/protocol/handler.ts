/**
 * The shared frame of a protocol handler: input buffering with one buffer and an offset, discard
 * mode for oversized payloads, and stopping when the Outbox is full. Each protocol (text, binary)
 * subclasses it and implements `parseOne`, turning bytes into a command, calling the Session and
 * encoding replies into the Outbox. The connection owns the socket; the handler never sees it.
 */
import type { Session } from '../dispatcher.js'
import { unlimitedInput, type InputBudget } from './inputBudget.js'
import type { Outbox } from './outbox.js'

import type { ProtocolLimits } from './limits.js'
export type { ProtocolLimits }

export interface ConnectionControl {
  /** Close the connection after the replies already queued are written. */
  end(): void
  /** Parsing may go on (a hold ended): feed the handler again, outside the current call stack. */
  resume(): void
}

/** What parseOne returns: bytes consumed (> 0), or that more input is needed. */
export const NEED_MORE = 0

export abstract class ProtocolHandler {
  private buf: Buffer = Buffer.alloc(0)
  private start = 0
  private end = 0
  /** Bytes still to throw away (the data block of a refused item) before parsing resumes. */
  private discard = 0
  /** Size the buffer should reach before parseOne can make progress (a declared payload). */
  private wanted = 0
  /** Bytes of the input budget held for the frame being received. */
  private reserved = 0
  protected closed = false
  /** Commands in progress that later commands must not overtake (see `hold`). */
  private holds = 0

  constructor(
    protected readonly session: Session,
    protected readonly out: Outbox,
    protected readonly limits: ProtocolLimits,
    connection: ConnectionControl,
    private readonly budget: InputBudget = unlimitedInput(),
  ) {
    // Ending the connection first hands the replies already made to the socket.
    this.connection = {
      end: () => {
        out.flush()
        connection.end()
      },
      resume: () => connection.resume(),
    }
  }

  protected readonly connection: ConnectionControl

  /**
   * Parse one command from buf[start, end) and act on it. Return the bytes consumed, or NEED_MORE.
   * Call `expect(total)` before returning NEED_MORE when the frame's full size is known (or
   * `reserveFrame(total)`, which first takes it from the input budget), and `discardNext(n)` to skip
   * n bytes after the consumed ones without buffering them.
   */
  protected abstract parseOne(buf: Buffer, start: number, end: number): number

  /** Bytes buffered but not yet parsed. */
  get buffered(): number {
    return this.end - this.start
  }

  /** True while the handler can take more input (the connection pauses the socket otherwise). */
  get accepting(): boolean {
    return !this.closed && !this.out.full && this.holds === 0
  }

  /**
   * Parse no later command until the returned function is called. For the commands whose outcome
   * decides what later ones see: a blocking get (`/t=`, as memcached clients expect), a login, a
   * `stats` waiting for the commands before it. Everything else runs as it arrives, replies in order.
   */
  protected hold(): () => void {
    this.holds++
    let held = true
    return () => {
      if (!held) return
      held = false
      if (--this.holds === 0 && !this.closed) this.connection.resume()
    }
  }

  /** Parse what `chunk` holds. It is read only during the call: the caller may reuse its memory. */
  feed(chunk: Buffer): void {
    if (this.closed) return
    let offset = 0
    if (this.discard > 0) {
      const skip = Math.min(this.discard, chunk.length)
      this.discard -= skip
      this.countRead(skip)
      offset = skip
      if (offset === chunk.length) return
    }
    this.append(offset === 0 ? chunk : chunk.subarray(offset))
    this.pump()
    // The chunk may be the connection's reused read buffer (onread): what is left of it (a partial
    // frame, commands held back) must be copied out before the next read overwrites it.
    if (this.end > this.start && !this.bufOwned) this.keepRest()
  }

  /** Copy the unparsed bytes into a buffer of our own, sized for the frame being awaited. */
  private keepRest(): void {
    const pending = this.end - this.start
    const next = Buffer.allocUnsafe(Math.max(pending * 2, this.wanted, 4096))
    this.buf.copy(next, 0, this.start, this.end)
    this.buf = next
    this.bufOwned = true
    this.start = 0
    this.end = pending
  }

  /**
   * Continue after the outbox drained. Not re-entrant: a reply written while parsing can call back
   * into pump (the Outbox's onWritten → the connection resumes reading); the outer loop is already
   * running and will go on, so the nested call returns at once instead of moving start/end under it.
   */
  pump(): void {
    if (this.pumping) return
    this.pumping = true
    try {
      this.pumpLoop()
    } finally {
      this.pumping = false
    }
  }

  private pumping = false

  private pumpLoop(): void {
    while (!this.closed && this.end > this.start && !this.out.full && this.holds === 0) {
      const consumed = this.parseOne(this.buf, this.start, this.end)
      // parseOne may have closed the handler (quit, protocol error): the buffer is gone.
      if (this.closed) return
      if (consumed === NEED_MORE) break
      this.wanted = 0
      this.releaseFrame()
      this.start += consumed
      if (this.discard > 0) {
        const skip = Math.min(this.discard, this.end - this.start)
        this.discard -= skip
        this.start += skip
        this.countRead(skip)
      }
    }
    if (this.start === this.end) {
      this.start = this.end = 0
      // Do not keep a large buffer alive after a big item went through.
      if (this.buf.length > 65536) this.buf = Buffer.alloc(0)
    }
  }

  /** Stop parsing for good (protocol error, quit). */
  close(): void {
    this.closed = true
    this.start = this.end = 0
    this.buf = Buffer.alloc(0)
    this.releaseFrame()
  }

  /**
   * Count input for `bytes_read` when a command is parsed, before it runs, not when it arrives: a
   * `stats` then reports the bytes of the commands up to itself, pipelined or not.
   */
  protected countRead(bytes: number): void {
    if (bytes > 0) this.session.countBytes(bytes, 0)
  }

  protected expect(totalBytes: number): void {
    this.wanted = totalBytes
  }

  /**
   * Wait for a frame of `totalBytes` whose body must be buffered: take its size from the input
   * budget (once per frame). False when the budget refuses: the subclass answers "out of memory",
   * consumes the header and discards the body.
   */
  protected reserveFrame(totalBytes: number): boolean {
    if (totalBytes > this.reserved) {
      if (!this.budget.tryTake(totalBytes - this.reserved, totalBytes)) return false
      this.reserved = totalBytes
    }
    this.expect(totalBytes)
    return true
  }

  private releaseFrame(): void {
    if (this.reserved === 0) return
    this.budget.give(this.reserved)
    this.reserved = 0
  }

  protected discardNext(bytes: number): void {
    this.discard = bytes
  }

  private append(chunk: Buffer): void {
    if (this.start === this.end && this.wanted === 0) {
      // Common case: nothing pending, parse the chunk in place without copying.
      this.buf = chunk
      this.bufOwned = false
      this.start = 0
      this.end = chunk.length
      return
    }
    const pending = this.end - this.start
    const needed = Math.max(pending + chunk.length, this.wanted)
    if (this.buf.length - this.end >= chunk.length && this.bufOwned) {
      chunk.copy(this.buf, this.end)
      this.end += chunk.length
      return
    }
    const next = Buffer.allocUnsafe(Math.max(needed, Math.min(pending * 2, needed + 65536), 4096))
    this.buf.copy(next, 0, this.start, this.end)
    chunk.copy(next, pending)
    this.buf = next
    this.bufOwned = true
    this.start = 0
    this.end = pending + chunk.length
  }

  /** Whether buf was allocated here (safe to write into) rather than a socket chunk. */
  private bufOwned = false
}
