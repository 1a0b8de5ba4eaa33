/**
 * One client connection: picks the protocol from the first byte (0x80 = binary, as memcached
 * does), feeds bytes to that protocol's handler, and applies backpressure — when the Outbox is full
 * (a slow reader, or many blocked gets pipelined) the socket is paused, so no buffer grows with a
 * slow client beyond the configured limits.
 */
import type { Socket } from 'node:net'
import type { Dispatcher, Session } from './dispatcher.js'
import type { ProtocolHandler, ProtocolLimits } from './protocol/handler.js'
import type { InputBudget } from './protocol/inputBudget.js'
import { Outbox, type OutboxLimits } from './protocol/outbox.js'
import { BinaryHandler } from './protocol/binary/handler.js'
import { TextHandler } from './protocol/text/handler.js'

const BINARY_MAGIC_REQUEST = 0x80
/** Input buffered while parsing is held before reading stops (close to a stream's buffering). */
const PAUSED_READ_BYTES = 64 * 1024

export interface ConnectionOptions {
  limits: ProtocolLimits
  outbox: OutboxLimits
  /** Close after this long without input (while nothing is in flight); 0 = never. */
  idleTimeoutMs: number
  /** Shared by every connection: bytes of partially received frames (max_input_bytes). */
  inputBudget?: InputBudget
  /**
   * The socket delivers its reads to `receive` itself (onread into a reused buffer, see
   * reusedReads.ts) rather than as 'data' events (TLS).
   */
  externalReads?: boolean
}

export class Connection {
  private readonly session: Session
  private readonly outbox: Outbox
  private handler: ProtocolHandler | null = null
  private paused = false
  private resumeScheduled = false
  private ending = false
  private closed = false
  /** The idle timer fired while a reply was in flight (a blocking get): re-armed when it is sent. */
  private idleDeferred = false

  constructor(
    private readonly socket: Socket,
    dispatcher: Dispatcher,
    private readonly options: ConnectionOptions,
    private readonly onClose: (conn: Connection) => void,
  ) {
    this.session = dispatcher.createSession(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`)
    this.outbox = new Outbox(socket, options.outbox, (bytes) => {
      this.session.countBytes(0, bytes)
      if (this.idleDeferred && this.outbox.pendingSlots === 0) this.armIdleTimer()
      if (this.paused) this.scheduleResume()
    })
    socket.setNoDelay(true)
    if (!options.externalReads) socket.on('data', (chunk: Buffer) => this.receive(chunk))
    socket.on('drain', () => {
      this.outbox.drained()
      this.maybeResume()
    })
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.cleanup())
    if (options.idleTimeoutMs > 0) {
      socket.on('timeout', () => this.onIdle())
      this.armIdleTimer()
    }
  }

  /** The protocol this connection speaks, once its first byte has arrived (metrics, at scrape time). */
  get protocol(): 'text' | 'binary' | 'pending' {
    return this.handler === null ? 'pending' : this.handler instanceof BinaryHandler ? 'binary' : 'text'
  }

  /** Idle means nothing in flight: a client waiting on a blocking get is not idle. */
  private onIdle(): void {
    if (this.outbox.pendingSlots === 0) this.socket.destroy()
    else this.idleDeferred = true
  }

  /** (Re)start the idle period from now; Node does not restart a timer that already fired. */
  private armIdleTimer(): void {
    this.idleDeferred = false
    this.socket.setTimeout(this.options.idleTimeoutMs)
  }

  /** Input from the socket; `chunk` may be a reused buffer, read only during the call. */
  receive(chunk: Buffer): void {
    if (!this.handler) this.handler = this.createHandler(chunk[0] === BINARY_MAGIC_REQUEST)
    this.outbox.beginTurn()
    try {
      this.handler.feed(chunk)
    } finally {
      this.outbox.endTurn()
    }
    if (!this.handler.accepting && !this.closed) {
      this.paused = true
      // With onread, pause() stops reading at once, and a client that hangs up while a blocking
      // get holds its input would go unnoticed (its waiter would swallow the next item). So keep
      // reading into the handler's buffer, as Node's stream reads did, up to a bound.
      if (!this.options.externalReads || this.handler.buffered >= PAUSED_READ_BYTES) this.socket.pause()
    }
  }

  /** Never parse more input from inside a write or a callback: that would re-enter the handler. */
  private scheduleResume(): void {
    if (this.resumeScheduled) return
    this.resumeScheduled = true
    setImmediate(() => {
      this.resumeScheduled = false
      this.maybeResume()
    })
  }

  private createHandler(binary: boolean): ProtocolHandler {
    const control = { end: () => this.end(), resume: () => this.scheduleResume() }
    return binary
      ? new BinaryHandler(this.session, this.outbox, this.options.limits, control, this.options.inputBudget)
      : new TextHandler(this.session, this.outbox, this.options.limits, control, this.options.inputBudget)
  }

  private maybeResume(): void {
    if (!this.paused || this.closed || !this.handler) return
    if (this.outbox.full) return
    this.handler.pump()
    if (this.handler.accepting) {
      this.paused = false
      this.socket.resume()
    }
  }

  /** Close after the queued replies are written (quit, protocol error). */
  end(): void {
    if (this.ending) return
    this.ending = true
    this.handler?.close()
    // Replies still in flight (a pending journal write) are given a moment to complete.
    const finish = (): void => {
      if (this.outbox.pendingSlots === 0 || this.closed) {
        this.outbox.flush()
        this.socket.end()
      }
      else setTimeout(finish, 5)
    }
    finish()
  }

  /** Server shutdown: stop reading, let in-flight replies finish, then close. */
  shutdown(): void {
    this.socket.pause()
    this.end()
  }

  destroy(): void {
    this.socket.destroy()
  }

  private cleanup(): void {
    if (this.closed) return
    this.closed = true
    this.outbox.close()
    this.handler?.close()
    this.session.close()
    this.onClose(this)
  }
}
