/**
 * A pipelining TCP client connection: requests go out in order, replies come back in order, and a
 * protocol subclass turns bytes into replies with one buffer and an offset (no per-reply string
 * building beyond the reply line itself). Every request resolves or rejects exactly once; a closed
 * socket rejects everything still pending.
 */
import { connect, type Socket } from 'node:net'

export interface Pending<K extends string = string> {
  kind: K
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  /** Scratch space for multi-part replies (a VALUE block before END, STAT lines). */
  acc?: unknown
}

/** Thrown for a reply the protocol defines as an error (ERROR, CLIENT_ERROR, -ERR, status != 0). */
export class ReplyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ReplyError'
  }
}

export const INCOMPLETE = -1

export abstract class Connection<K extends string = string> {
  protected readonly socket: Socket
  private readonly pending: Array<Pending<K>> = []
  private head = 0
  private buf: Buffer = Buffer.alloc(0)
  private off = 0
  private closedError: Error | null = null
  bytesIn = 0
  bytesOut = 0

  protected constructor(socket: Socket) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => this.fail(err))
    socket.on('close', () => this.fail(new Error('connection closed')))
  }

  /** Opens a socket and waits until it is connected (bounded by `timeoutMs`). */
  protected static open(host: string, port: number, timeoutMs = 5000): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`connect ${host}:${port} timed out`))
      }, timeoutMs)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.removeAllListeners('error')
        resolve(socket)
      })
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
  }

  get inFlight(): number {
    return this.pending.length - this.head
  }

  /** Sends one request (already encoded) and returns a promise of its reply. */
  protected request<T>(kind: K, bytes: Buffer | string | Array<Buffer | string>): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError)
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ kind, resolve: resolve as (v: unknown) => void, reject })
      if (Array.isArray(bytes)) {
        this.socket.cork()
        for (const part of bytes) this.write(part)
        this.socket.uncork()
      } else {
        this.write(bytes)
      }
    })
  }

  private write(part: Buffer | string): void {
    this.bytesOut += typeof part === 'string' ? Buffer.byteLength(part, 'latin1') : part.length
    this.socket.write(typeof part === 'string' ? Buffer.from(part, 'latin1') : part)
  }

  /**
   * Parses at most one reply (or one part of one) for `p` from `buf` at `off`. Returns the offset
   * after what it consumed, or INCOMPLETE when more bytes are needed. Calls `p.resolve`/`p.reject`
   * (via `settle`) when the reply is complete; returning an offset without settling means "part
   * consumed, keep parsing for the same request".
   */
  protected abstract parse(p: Pending<K>, buf: Buffer, off: number): number

  private settled = false
  protected settle(p: Pending<K>, value: unknown): void {
    this.settled = true
    p.resolve(value)
  }
  protected settleError(p: Pending<K>, err: Error): void {
    this.settled = true
    p.reject(err)
  }

  private onData(chunk: Buffer): void {
    this.bytesIn += chunk.length
    if (this.off >= this.buf.length) {
      this.buf = chunk
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.off), chunk])
    }
    this.off = 0
    // Bounded by the bytes at hand: each iteration consumes at least one byte or stops.
    while (this.off < this.buf.length) {
      const p = this.pending[this.head]
      if (p === undefined) {
        this.fail(new Error(`unexpected bytes from server: ${JSON.stringify(this.buf.toString('latin1', this.off, this.off + 80))}`))
        return
      }
      this.settled = false
      const next = this.parse(p, this.buf, this.off)
      if (next === INCOMPLETE) break
      if (next <= this.off) {
        this.fail(new Error('parser made no progress'))
        return
      }
      this.off = next
      if (this.settled) {
        this.pending[this.head] = undefined as unknown as Pending<K>
        this.head++
        if (this.head > 1024 && this.head * 2 > this.pending.length) {
          this.pending.splice(0, this.head)
          this.head = 0
        }
      }
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return
    this.closedError = err
    for (let i = this.head; i < this.pending.length; i++) this.pending[i]!.reject(err)
    this.pending.length = 0
    this.head = 0
    this.socket.destroy()
  }

  close(): void {
    this.fail(new Error('connection closed by client'))
  }
}

/** Index of the `\r\n` that ends the line starting at `off`, or -1. */
export function lineEnd(buf: Buffer, off: number): number {
  return buf.indexOf('\r\n', off, 'latin1')
}
