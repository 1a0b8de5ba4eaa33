/**
 * One TCP connection speaking the text protocol, pipelined: commands are written back to back and
 * replies matched to them in order. Writes made in the same tick go out in one syscall (cork).
 *
 * Timeouts cost one timer per connection, not per request: the timer is armed for the deadline of
 * the request at the head of the line (replies come in order, so only the head can be late). A
 * request that times out closes the connection — a late reply would put every later one out of
 * step — and every other request on it fails with a ConnectionError.
 */
import { connect, type Socket } from 'node:net'
import { ConnectionError, ServerError, StarlingClientError, TimeoutError } from './errors.js'
import { isErrorLine, ReplyParser, type ReplyEvent } from './protocol.js'

/** What a command's reply looks like: one line, `VALUE`s up to `END`, or `STAT`s up to `END`. */
export type ReplyKind = 'line' | 'values' | 'stats'

export interface ValueReply {
  key: string
  flags: number
  data: Buffer
}

interface Pending {
  kind: ReplyKind
  deadline: number
  timeoutMs: number
  resolve: (reply: never) => void
  reject: (err: Error) => void
  values: ValueReply[] | undefined
  stats: Array<[string, string]> | undefined
}

export interface ConnectionOptions {
  host: string
  port: number
  connectTimeoutMs: number
}

/** A FIFO of pending requests: an array and a head index, compacted now and then. */
class PendingQueue {
  private items: Pending[] = []
  private head = 0
  get length(): number {
    return this.items.length - this.head
  }
  push(p: Pending): void {
    this.items.push(p)
  }
  peek(): Pending | undefined {
    return this.items[this.head]
  }
  shift(): Pending | undefined {
    const p = this.items[this.head]
    if (p === undefined) return undefined
    this.items[this.head++] = undefined as unknown as Pending
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return p
  }
  drain(): Pending[] {
    const rest = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return rest
  }
}

export class Connection {
  readonly server: string
  /** Resolves once connected; rejects with a ConnectionError (sent: false) if that fails. */
  readonly ready: Promise<void>
  /** Called once when the connection ends, for whatever reason. */
  onClose: ((err: Error | undefined) => void) | undefined

  private readonly socket: Socket
  private readonly parser = new ReplyParser()
  private readonly pending = new PendingQueue()
  private connected = false
  private closedWith: Error | undefined
  private closed = false
  private corked = false
  private timer: NodeJS.Timeout | undefined
  private timerAt = 0

  constructor(options: ConnectionOptions) {
    this.server = `${options.host}:${options.port}`
    const socket = connect({ host: options.host, port: options.port })
    this.socket = socket
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30_000)
    this.ready = new Promise<void>((resolve, reject) => {
      const connectTimer = setTimeout(() => {
        this.destroy(new ConnectionError(`${this.server}: connect timed out after ${options.connectTimeoutMs} ms`, { server: this.server, sent: false }))
      }, options.connectTimeoutMs)
      connectTimer.unref()
      socket.once('connect', () => {
        clearTimeout(connectTimer)
        this.connected = true
        resolve()
      })
      socket.once('close', () => {
        clearTimeout(connectTimer)
        if (!this.connected) reject(this.closedWith ?? new ConnectionError(`${this.server}: connection closed`, { server: this.server, sent: false }))
      })
    })
    this.ready.catch(() => {}) // callers that care await it; the rest learn through their requests
    socket.on('data', (chunk: Buffer) => {
      try {
        this.parser.feed(chunk, this.onReply)
      } catch (err) {
        this.destroy(err instanceof Error ? err : new Error(String(err)))
      }
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const what = this.connected ? 'connection error' : 'cannot connect'
      this.destroy(new ConnectionError(`${this.server}: ${what}: ${err.code ?? err.message}`, { server: this.server, sent: this.connected, cause: err }))
    })
    socket.on('close', () => {
      this.destroy(new ConnectionError(`${this.server}: connection closed by server`, { server: this.server, sent: this.connected }))
    })
  }

  /** Still usable: not closed, not failed. */
  get alive(): boolean {
    return !this.closed
  }

  /** Requests written and not yet answered. */
  get inFlight(): number {
    return this.pending.length
  }

  /** Send one command (already encoded) and resolve with its reply. */
  request(command: Buffer, kind: 'line', timeoutMs: number): Promise<string>
  request(command: Buffer, kind: 'values', timeoutMs: number): Promise<ValueReply[]>
  request(command: Buffer, kind: 'stats', timeoutMs: number): Promise<Array<[string, string]>>
  request(command: Buffer, kind: ReplyKind, timeoutMs: number): Promise<unknown> {
    if (this.closed) {
      const err = this.closedWith
      return Promise.reject(
        err instanceof ConnectionError && !err.sent
          ? err
          : new ConnectionError(`${this.server}: connection is closed`, { server: this.server, sent: false, cause: err }),
      )
    }
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + timeoutMs
      this.pending.push({
        kind,
        deadline,
        timeoutMs,
        resolve: resolve as (reply: never) => void,
        reject,
        values: kind === 'values' ? [] : undefined,
        stats: kind === 'stats' ? [] : undefined,
      })
      if (this.timer === undefined || deadline < this.timerAt) this.armTimer(deadline)
      if (!this.corked) {
        this.corked = true
        this.socket.cork()
        process.nextTick(this.uncork)
      }
      this.socket.write(command)
    })
  }

  /** Close now; requests still in flight fail with a CLOSED error. */
  close(): void {
    this.destroy(new StarlingClientError('CLOSED', `${this.server}: connection closed by client`))
  }

  destroy(err: Error): void {
    if (this.closed) return
    this.closed = true
    this.closedWith = err
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.socket.destroy()
    const rest = this.pending.drain()
    for (const p of rest) p.reject(err)
    this.onClose?.(err)
  }

  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }

  private armTimer(deadline: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timerAt = deadline
    this.timer = setTimeout(this.onTimer, Math.max(0, deadline - Date.now()))
    this.timer.unref()
  }

  private readonly onTimer = (): void => {
    this.timer = undefined
    const head = this.pending.peek()
    if (head === undefined) return
    if (head.deadline <= Date.now()) {
      const err = new TimeoutError(`${this.server}: no reply within ${head.timeoutMs} ms`, { server: this.server, timeoutMs: head.timeoutMs })
      this.pending.shift()
      head.reject(err)
      this.destroy(new ConnectionError(`${this.server}: connection closed after a timeout`, { server: this.server, sent: true, cause: err }))
      return
    }
    this.armTimer(head.deadline)
  }

  private finishHead(reply: unknown): void {
    const head = this.pending.shift()!
    ;(head.resolve as (r: unknown) => void)(reply)
    const next = this.pending.peek()
    if (next !== undefined && (this.timer === undefined || next.deadline < this.timerAt)) this.armTimer(next.deadline)
  }

  private failHead(err: Error): void {
    const head = this.pending.shift()!
    head.reject(err)
  }

  private readonly onReply = (event: ReplyEvent): void => {
    const head = this.pending.peek()
    if (head === undefined) {
      throw new StarlingClientError('PROTOCOL', `${this.server}: unexpected reply ${event.kind === 'line' ? event.line : 'VALUE'}`)
    }
    if (event.kind === 'value') {
      if (head.values === undefined) throw new StarlingClientError('PROTOCOL', `${this.server}: unexpected VALUE`)
      head.values.push({ key: event.key, flags: event.flags, data: event.data })
      return
    }
    const line = event.line
    switch (head.kind) {
      case 'line':
        if (isErrorLine(line)) this.failHead(new ServerError(line, this.server))
        else this.finishHead(line)
        return
      case 'values':
        if (line === 'END') this.finishHead(head.values)
        else if (isErrorLine(line)) this.failHead(new ServerError(line, this.server))
        else throw new StarlingClientError('PROTOCOL', `${this.server}: unexpected reply to get: ${line}`)
        return
      case 'stats':
        if (line.startsWith('STAT ')) {
          const space = line.indexOf(' ', 5)
          head.stats!.push(space < 0 ? [line.slice(5), ''] : [line.slice(5, space), line.slice(space + 1)])
        } else if (line === 'END') this.finishHead(head.stats)
        else if (isErrorLine(line)) this.failHead(new ServerError(line, this.server))
        else throw new StarlingClientError('PROTOCOL', `${this.server}: unexpected reply to stats: ${line}`)
        return
    }
  }
}
