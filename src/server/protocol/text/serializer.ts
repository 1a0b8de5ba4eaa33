/**
 * Text and meta protocol replies. Constant replies are Buffers made once; variable ones are built
 * as one latin1 string (keys are latin1, so they go back byte for byte) and encoded once. Item data
 * is never copied: a VALUE reply is [header, data, CRLF] for a writev.
 */
import { StarlingError } from '../../errors.js'
import { payloadInPlace, type ReplyFrame } from '../../engine/requests.js'
import type { MetaReturnFlags } from './commands.js'

const line = (text: string): Buffer => Buffer.from(text + '\r\n', 'latin1')

export const CRLF = Buffer.from('\r\n', 'latin1')
export const STORED = line('STORED')
export const END = line('END')
export const DELETED = line('DELETED')
export const NOT_FOUND = line('NOT_FOUND')
export const OK = line('OK')
export const RESET = line('RESET')
export const ERROR = line('ERROR')
export const MN = line('MN')
export const EN = line('EN')
export const HD = line('HD')
export const NS = line('NS')
export const NF = line('NF')

export const BAD_COMMAND_LINE = line('CLIENT_ERROR bad command line format')
export const BAD_DATA_CHUNK = line('CLIENT_ERROR bad data chunk')
export const LINE_TOO_LONG = line('CLIENT_ERROR line too long')
export const TOO_LARGE = line('SERVER_ERROR object too large for cache')
export const QUEUE_FULL = line('SERVER_ERROR queue full')
export const SHUTTING_DOWN = line('SERVER_ERROR shutting down')
export const UNAUTHENTICATED = line('CLIENT_ERROR unauthenticated')
export const AUTH_FAILED = line('CLIENT_ERROR authentication failure')

/** Fixed messages that come up often enough to keep their reply line. */
const CACHED_CLIENT_ERRORS = new Map<string, Buffer>([
  ['bad command line format', BAD_COMMAND_LINE],
  ['line too long', LINE_TOO_LONG],
  ['unauthenticated', UNAUTHENTICATED],
  ['authentication failure', AUTH_FAILED],
])

/** `CLIENT_ERROR <message>` / `SERVER_ERROR <message>` for an error code (see errors.ts). */
export function errorReply(err: StarlingError): Buffer {
  switch (err.code) {
    case 'BAD_DATA_CHUNK':
      return BAD_DATA_CHUNK
    case 'TOO_LARGE':
      return TOO_LARGE
    case 'QUEUE_FULL':
      return QUEUE_FULL
    case 'SHUTTING_DOWN':
      return SHUTTING_DOWN
    case 'IO':
      return line('SERVER_ERROR ' + oneLine(err.message))
    default: {
      const cached = CACHED_CLIENT_ERRORS.get(err.message)
      if (cached) return cached
      return err.clientSide ? line('CLIENT_ERROR ' + oneLine(err.message)) : line('SERVER_ERROR ' + oneLine(err.message))
    }
  }
}

/** The reply for anything thrown: a typed error's own reply, else SERVER_ERROR with its message. */
export function replyFor(err: unknown): Buffer {
  return err instanceof StarlingError ? errorReply(err) : internalErrorReply(err)
}

/** For an error that is not a StarlingError (a bug below us): never leak a stack, never crash. */
export function internalErrorReply(err: unknown): Buffer {
  const message = err instanceof Error ? err.message : String(err)
  return line('SERVER_ERROR ' + oneLine(message || 'internal error'))
}

export function clientError(message: string): Buffer {
  return CACHED_CLIENT_ERRORS.get(message) ?? line('CLIENT_ERROR ' + oneLine(message))
}

/** A message that cannot break the framing: no CR, LF or other control bytes, bounded length. */
function oneLine(message: string): string {
  let out = ''
  const n = Math.min(message.length, 512)
  for (let i = 0; i < n; i++) {
    const c = message.charCodeAt(i)
    out += c < 0x20 || c === 0x7f ? ' ' : message[i]
  }
  return out
}

/** `VALUE <key> <flags> <bytes>[ <cas>]\r\n`; cas < 0 leaves it out (get rather than gets). */
export function valueHeader(key: string, flags: number, bytes: number, cas = -1): Buffer {
  const text = cas < 0 ? `VALUE ${key} ${flags} ${bytes}\r\n` : `VALUE ${key} ${flags} ${bytes} ${cas}\r\n`
  return Buffer.from(text, 'latin1')
}

const VALUE_TAIL = Buffer.from('\r\nEND\r\n', 'latin1')

/**
 * A whole single-key hit, `VALUE ...\r\n<data>\r\nEND\r\n`, in one buffer: one allocation and one
 * copy of the data, and the Outbox writes it as is (no header Buffer, no concat at flush).
 */
export function valueReply(key: string, flags: number, data: Buffer, cas = -1): Buffer {
  const header = cas < 0 ? `VALUE ${key} ${flags} ${data.length}\r\n` : `VALUE ${key} ${flags} ${data.length} ${cas}\r\n`
  const out = Buffer.allocUnsafe(header.length + data.length + VALUE_TAIL.length)
  // latin1: one byte per char, so header.length is its size in bytes.
  out.write(header, 0, 'latin1')
  data.copy(out, header.length)
  VALUE_TAIL.copy(out, header.length + data.length)
  return out
}

/** Decimal digits of a non-negative integer (the length of its text). */
function digits(n: number): number {
  let d = 1
  while (n >= 10) {
    n = Math.floor(n / 10)
    d++
  }
  return d
}

/**
 * A single-key `get`'s reply laid out around the payload as the engine copies it out of memory
 * (ReplyFrame): the reply is one buffer with one copy of the data, and no Buffer of the item's own.
 */
export class ValueFrame implements ReplyFrame {
  readonly tailBytes = VALUE_TAIL.length
  constructor(readonly key: string) {}

  headBytes(flags: number, length: number): number {
    return valueHeaderBytes(this.key, flags, length)
  }
}

/** Bytes of `VALUE <key> <flags> <bytes>\r\n` (latin1: a char a byte). */
function valueHeaderBytes(key: string, flags: number, bytes: number): number {
  return 6 + key.length + 1 + digits(flags) + 1 + digits(bytes) + 2
}

/**
 * valueReply, completing the buffer a ValueFrame laid out when the item came with it (the payload is
 * in place); otherwise (an aborted read put back, an item handed to a waiter) a new one.
 */
export function framedValueReply(key: string, flags: number, data: Buffer, framed: Buffer | null | undefined): Buffer {
  const head = valueHeaderBytes(key, flags, data.length)
  if (!payloadInPlace(framed, data, head, VALUE_TAIL.length)) return valueReply(key, flags, data)
  writeValueHeader(framed, key, flags, data.length)
  VALUE_TAIL.copy(framed, head + data.length)
  return framed
}

const VALUE_ = Buffer.from('VALUE ', 'latin1')

/**
 * `VALUE <key> <flags> <bytes>\r\n` written byte by byte at buf[0]: a template string and its
 * latin1 encoding cost more than the rest of the reply (~0.5 µs a get, issue 13). Keys are latin1.
 */
function writeValueHeader(buf: Buffer, key: string, flags: number, bytes: number): void {
  for (let i = 0; i < 6; i++) buf[i] = VALUE_[i]!
  let at = 6
  for (let i = 0; i < key.length; i++) buf[at++] = key.charCodeAt(i)
  buf[at++] = 0x20
  at = writeDecimal(buf, at, flags)
  buf[at++] = 0x20
  at = writeDecimal(buf, at, bytes)
  buf[at++] = 0x0d
  buf[at] = 0x0a
}

/** A non-negative integer's decimal digits at buf[at]; returns where they end. */
function writeDecimal(buf: Buffer, at: number, n: number): number {
  const end = at + digits(n)
  let i = end
  do {
    const q = Math.floor(n / 10)
    buf[--i] = 0x30 + (n - q * 10)
    n = q
  } while (n > 0)
  return end
}

/** `STAT <name> <value>` lines then `END`, as one buffer. */
export function statsReply(pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.from(statText(pairs) + 'END\r\n', 'latin1')
}

/** `STAT name value` lines, without the END (one batch of a streamed stats reply). */
export function statLines(pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.from(statText(pairs), 'latin1')
}

function statText(pairs: ReadonlyArray<readonly [string, string]>): string {
  let text = ''
  for (const [name, value] of pairs) text += `STAT ${name} ${value}\r\n`
  return text
}

export function versionReply(version: string): Buffer {
  return line('VERSION ' + oneLine(version))
}

// ---- meta -------------------------------------------------------------------------------------

/** What a meta reply can report about an item (mg hits). */
export interface MetaItemInfo {
  flags: number
  size: number
  cas: number
  /** Seconds left before expiry, -1 for never. */
  ttlSeconds: number
}

/**
 * The return flags of a meta reply, in request order, each with a leading space. Without an item
 * (EN, HD of ms/md, NS, NF) only the opaque and the key are echoed, as memcached does.
 */
export function metaFlags(returns: MetaReturnFlags, item: MetaItemInfo | null): string {
  let text = ''
  for (let i = 0; i < returns.order.length; i++) {
    switch (returns.order[i]) {
      case 'O':
        text += ' O' + returns.opaque
        break
      case 'k':
        text += returns.base64 ? ` k${returns.keyToken} b` : ` k${returns.keyToken}`
        break
      case 'f':
        if (item) text += ' f' + item.flags
        break
      case 's':
        if (item) text += ' s' + item.size
        break
      case 't':
        if (item) text += ' t' + item.ttlSeconds
        break
      case 'c':
        if (item) text += ' c' + item.cas
        break
    }
  }
  return text
}

/** A meta status line: `HD`, `EN`, `NS`, `NF`, `VA <size>` followed by the return flags. */
export function metaLine(code: string, returns: MetaReturnFlags, item: MetaItemInfo | null): Buffer {
  const flags = metaFlags(returns, item)
  if (flags === '') {
    switch (code) {
      case 'HD':
        return HD
      case 'EN':
        return EN
      case 'NS':
        return NS
      case 'NF':
        return NF
    }
  }
  return Buffer.from(code + flags + '\r\n', 'latin1')
}

/** An mg hit with its value, `VA <size><flags>\r\n<data>\r\n`, in one buffer (as valueReply). */
export function metaValueReply(returns: MetaReturnFlags, item: MetaItemInfo, data: Buffer): Buffer {
  const header = `VA ${data.length}${metaFlags(returns, item)}\r\n`
  const out = Buffer.allocUnsafe(header.length + data.length + 2)
  out.write(header, 0, 'latin1')
  data.copy(out, header.length)
  CRLF.copy(out, header.length + data.length)
  return out
}
