/**
 * The memcached text protocol as the client speaks it: commands out as buffers, a byte stream in
 * as reply events. Pure — no sockets — so it can be tested on raw buffers split anywhere.
 *
 * The parser keeps one buffer and an offset; it only copies when a reply straddles two chunks.
 */
import { StarlingClientError } from './errors.js'

export type ReplyEvent =
  | { kind: 'line'; line: string }
  | { kind: 'value'; key: string; flags: number; cas: string | undefined; data: Buffer }

const CR = 0x0d
const LF = 0x0a
const EMPTY = Buffer.alloc(0)
/** A reply line longer than this without CRLF means we are out of step with the server. */
export const MAX_REPLY_LINE = 64 * 1024

interface PendingValue {
  key: string
  flags: number
  cas: string | undefined
  bytes: number
}

export class ReplyParser {
  private buf: Buffer = EMPTY
  private pos = 0
  private value: PendingValue | undefined

  /** Feed a chunk; `emit` is called for every complete reply event, in order. Throws on garbage. */
  feed(chunk: Buffer, emit: (event: ReplyEvent) => void): void {
    if (this.pos < this.buf.length) {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk])
    } else {
      this.buf = chunk
    }
    this.pos = 0
    const buf = this.buf
    for (;;) {
      const value = this.value
      if (value !== undefined) {
        const end = this.pos + value.bytes
        if (buf.length < end + 2) break
        if (buf[end] !== CR || buf[end + 1] !== LF) {
          throw new StarlingClientError('PROTOCOL', 'data block not terminated by CRLF')
        }
        this.value = undefined
        const data = buf.subarray(this.pos, end)
        this.pos = end + 2
        emit({ kind: 'value', key: value.key, flags: value.flags, cas: value.cas, data })
        continue
      }
      const lf = buf.indexOf(LF, this.pos)
      if (lf < 0) {
        if (buf.length - this.pos > MAX_REPLY_LINE) {
          throw new StarlingClientError('PROTOCOL', 'reply line too long')
        }
        break
      }
      if (lf === this.pos || buf[lf - 1] !== CR) {
        throw new StarlingClientError('PROTOCOL', 'reply line not terminated by CRLF')
      }
      const line = buf.toString('latin1', this.pos, lf - 1)
      this.pos = lf + 1
      if (line.startsWith('VALUE ')) {
        this.value = parseValueHeader(line)
      } else {
        emit({ kind: 'line', line })
      }
    }
    if (this.pos >= this.buf.length) {
      this.buf = EMPTY
      this.pos = 0
    }
  }

  /** Bytes held back waiting for the rest of a reply. */
  get buffered(): number {
    return this.buf.length - this.pos
  }
}

function parseValueHeader(line: string): PendingValue {
  const parts = line.split(' ')
  if (parts.length < 4 || parts.length > 5) throw new StarlingClientError('PROTOCOL', `bad VALUE line: ${line}`)
  const flags = Number(parts[2])
  const bytes = Number(parts[3])
  if (!Number.isInteger(flags) || flags < 0 || !Number.isInteger(bytes) || bytes < 0) {
    throw new StarlingClientError('PROTOCOL', `bad VALUE line: ${line}`)
  }
  return { key: parts[1]!, flags, bytes, cas: parts[4] }
}

/** True for the lines that end any request with an error. */
export function isErrorLine(line: string): boolean {
  return line === 'ERROR' || line.startsWith('CLIENT_ERROR') || line.startsWith('SERVER_ERROR')
}

/** Longest key memcached accepts, in bytes. */
export const MAX_KEY_BYTES = 250

/**
 * A queue name as a key: 1..250 bytes of UTF-8, no spaces or control characters, and no `/`
 * (that starts the Kestrel options). `+` is allowed: `parent+child` names a fanout child.
 */
export function checkQueueName(queue: string): void {
  if (typeof queue !== 'string' || queue.length === 0) {
    throw new StarlingClientError('BAD_KEY', 'queue name must be a non-empty string')
  }
  for (let i = 0; i < queue.length; i++) {
    const c = queue.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f || c === 0x2f /* / */) {
      throw new StarlingClientError('BAD_KEY', `queue name ${JSON.stringify(queue)} contains a space, control character or '/'`)
    }
  }
  if (Buffer.byteLength(queue, 'utf8') > MAX_KEY_BYTES) {
    throw new StarlingClientError('BAD_KEY', `queue name longer than ${MAX_KEY_BYTES} bytes`)
  }
}

/** Key bytes come back from the server one char per byte; turn them back into the UTF-8 name. */
export function keyFromWire(latin1: string): string {
  for (let i = 0; i < latin1.length; i++) {
    if (latin1.charCodeAt(i) > 0x7f) return Buffer.from(latin1, 'latin1').toString('utf8')
  }
  return latin1
}

/** `set <key> <flags> <exptime> <bytes>\r\n<data>\r\n` in one buffer. */
export function encodeSet(queue: string, flags: number, exptime: number, data: Buffer): Buffer {
  const header = `set ${queue} ${flags} ${exptime} ${data.length}\r\n`
  const headerBytes = Buffer.byteLength(header, 'utf8')
  const out = Buffer.allocUnsafe(headerBytes + data.length + 2)
  out.write(header, 0, 'utf8')
  data.copy(out, headerBytes)
  out[headerBytes + data.length] = CR
  out[headerBytes + data.length + 1] = LF
  return out
}

/** Any one-line command. */
export function encodeLine(line: string): Buffer {
  return Buffer.from(line + '\r\n', 'utf8')
}

export interface GetKeyOptions {
  open?: boolean
  close?: boolean
  abort?: boolean
  peek?: boolean
  /** Server-side wait, ms; 0 or undefined = don't wait. */
  waitMs?: number
}

/** `queue/close/open/t=500` — the Kestrel options in the order Kestrel documents them. */
export function getKey(queue: string, options: GetKeyOptions = {}): string {
  let key = queue
  if (options.close) key += '/close'
  if (options.open) key += '/open'
  if (options.abort) key += '/abort'
  if (options.peek) key += '/peek'
  if (options.waitMs !== undefined && options.waitMs > 0) key += `/t=${Math.ceil(options.waitMs)}`
  return key
}
