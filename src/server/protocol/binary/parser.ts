/**
 * Binary protocol parser: one buffer and an offset in, one typed request out. Pure — no sockets,
 * no session, no state between calls — so it can be fed a stream split at any byte.
 *
 * Frame: a 24-byte header (magic 0x80, opcode, key length u16, extras length u8, data type u8,
 * vbucket u16, total body length u32, opaque u32, cas u64; big-endian), then extras, key, value.
 * Structure is checked the way memcached's dispatch_bin_command checks it; a frame that fails is a
 * ProtocolViolation and the connection closes. Requests that need no body (unknown opcodes,
 * commands a queue does not support, an oversized SET) are returned from the header alone, with
 * the number of body bytes to skip, so their payloads are never buffered and the connection stays
 * open (up to MAX_SKIPPED_BODY_BYTES).
 */
import {
  HEADER_LENGTH,
  Opcode,
  REQUEST_MAGIC,
  Status,
  type BinaryRequest,
  type ProtocolViolation,
  type StatusCode,
} from './commands.js'

export interface BinaryParserLimits {
  /** Largest value a SET may carry; larger ones are answered E2BIG and skipped. */
  maxItemSize: number
}

/** Room a buffered frame may take beyond its value (key, extras) before it is refused outright. */
export const FRAME_SLACK_BYTES = 64 * 1024

/**
 * The largest body a refused frame (an oversized SET, an unknown or unsupported opcode) may declare
 * and still be skipped with the connection kept open, as memcached swallows it. Beyond it (or
 * beyond maxItemSize + FRAME_SLACK_BYTES when that is larger) the length is taken for garbage:
 * E2BIG, then the connection closes.
 */
export const MAX_SKIPPED_BODY_BYTES = 64 * 1024 * 1024

export function maxSkippableBody(limits: BinaryParserLimits): number {
  return Math.max(MAX_SKIPPED_BODY_BYTES, limits.maxItemSize + FRAME_SLACK_BYTES)
}

export type ParseOutcome =
  /** A request; `consumed` bytes from `start` belong to it (header only, for skipped requests). */
  | { request: BinaryRequest; consumed: number }
  /**
   * Incomplete: the frame needs `needed` bytes from `start` in total. `header` is set once the
   * header is in and checked (its body is what is awaited), so the frame can still be refused.
   */
  | { request: null; needed: number; header: { opcode: number; opaque: number } | null }

interface Header {
  opcode: number
  keyLength: number
  extrasLength: number
  bodyLength: number
  opaque: number
}

export function parseRequest(
  buf: Buffer,
  start: number,
  end: number,
  limits: BinaryParserLimits,
): ParseOutcome {
  const available = end - start
  if (available <= 0) return { request: null, needed: HEADER_LENGTH, header: null }
  // Wrong magic is known from the first byte: do not wait for a header that may never come.
  if (buf[start] !== REQUEST_MAGIC) {
    return violation({ opcode: 0, opaque: 0 }, Status.EINVAL, 'bad magic byte', available)
  }
  if (available < HEADER_LENGTH) return { request: null, needed: HEADER_LENGTH, header: null }

  const header: Header = {
    opcode: buf[start + 1]!,
    keyLength: buf.readUInt16BE(start + 2),
    extrasLength: buf[start + 4]!,
    bodyLength: buf.readUInt32BE(start + 8),
    opaque: buf.readUInt32BE(start + 12),
  }
  const { keyLength: k, extrasLength: e, bodyLength: b } = header

  if (b > maxSkippableBody(limits)) {
    return violation(header, Status.E2BIG, 'frame too large', available)
  }
  if (k + e > b) {
    return violation(header, Status.EINVAL, 'key and extras longer than body', available)
  }
  const problem = checkShape(header)
  if (problem !== null) return violation(header, Status.EINVAL, problem, available)

  // A skipped body is streamed away, never buffered, so it may exceed the buffered-frame limit.
  const skipped = skippedKind(header, limits)
  if (skipped !== null) {
    return {
      request: { kind: skipped, opcode: header.opcode, opaque: header.opaque, skip: b },
      consumed: HEADER_LENGTH,
    }
  }
  if (b > limits.maxItemSize + FRAME_SLACK_BYTES) {
    return violation(header, Status.E2BIG, 'frame too large', available)
  }

  const total = HEADER_LENGTH + b
  if (available < total) return { request: null, needed: total, header: { opcode: header.opcode, opaque: header.opaque } }
  return { request: build(buf, start, header), consumed: total }
}

function violation(
  frame: { opcode: number; opaque: number },
  status: StatusCode,
  message: string,
  available: number,
): { request: ProtocolViolation; consumed: number } {
  return {
    request: { kind: 'violation', opcode: frame.opcode, opaque: frame.opaque, status, message },
    consumed: available,
  }
}

/** memcached's per-opcode extras/key/body rules; null when the frame is well formed. */
function checkShape(h: Header): string | null {
  const { keyLength: k, extrasLength: e, bodyLength: b } = h
  switch (h.opcode) {
    case Opcode.GET:
    case Opcode.GETQ:
    case Opcode.GETK:
    case Opcode.GETKQ:
      return e === 0 && k > 0 && b === k ? null : 'get takes a key and nothing else'
    case Opcode.SET:
    case Opcode.SETQ:
    case Opcode.ADD:
    case Opcode.ADDQ:
    case Opcode.REPLACE:
    case Opcode.REPLACEQ:
      return e === 8 && k > 0 ? null : 'storage commands take 8 bytes of extras and a key'
    case Opcode.DELETE:
    case Opcode.DELETEQ:
      return e === 0 && k > 0 && b === k ? null : 'delete takes a key and nothing else'
    case Opcode.INCREMENT:
    case Opcode.INCREMENTQ:
    case Opcode.DECREMENT:
    case Opcode.DECREMENTQ:
      return e === 20 && k > 0 && b === k + e ? null : 'incr/decr take 20 bytes of extras and a key'
    case Opcode.APPEND:
    case Opcode.APPENDQ:
    case Opcode.PREPEND:
    case Opcode.PREPENDQ:
      return e === 0 && k > 0 ? null : 'append/prepend take a key and a value'
    case Opcode.TOUCH:
    case Opcode.GAT:
    case Opcode.GATQ:
    case Opcode.GATK:
    case Opcode.GATKQ:
      return e === 4 && k > 0 ? null : 'touch takes 4 bytes of extras and a key'
    case Opcode.STAT:
      return e === 0 && b === k ? null : 'stat takes an optional key and nothing else'
    case Opcode.FLUSH:
    case Opcode.FLUSHQ:
      return k === 0 && b === e && (e === 0 || e === 4) ? null : 'flush takes optional 4 bytes of extras'
    case Opcode.NOOP:
    case Opcode.VERSION:
    case Opcode.QUIT:
    case Opcode.QUITQ:
    case Opcode.SASL_LIST_MECHS:
      return k === 0 && e === 0 && b === 0 ? null : 'command takes no body'
    case Opcode.SASL_AUTH:
    case Opcode.SASL_STEP:
      return e === 0 && k > 0 ? null : 'sasl takes a mechanism and a payload'
    default:
      return null
  }
}

function skippedKind(h: Header, limits: BinaryParserLimits): 'notSupported' | 'unknown' | 'tooLarge' | null {
  switch (h.opcode) {
    case Opcode.SET:
    case Opcode.SETQ:
      return h.bodyLength - h.keyLength - h.extrasLength > limits.maxItemSize ? 'tooLarge' : null
    case Opcode.ADD:
    case Opcode.ADDQ:
    case Opcode.REPLACE:
    case Opcode.REPLACEQ:
    case Opcode.INCREMENT:
    case Opcode.INCREMENTQ:
    case Opcode.DECREMENT:
    case Opcode.DECREMENTQ:
    case Opcode.APPEND:
    case Opcode.APPENDQ:
    case Opcode.PREPEND:
    case Opcode.PREPENDQ:
    case Opcode.TOUCH:
    case Opcode.GAT:
    case Opcode.GATQ:
    case Opcode.GATK:
    case Opcode.GATKQ:
      return 'notSupported'
    case Opcode.GET:
    case Opcode.GETQ:
    case Opcode.GETK:
    case Opcode.GETKQ:
    case Opcode.DELETE:
    case Opcode.DELETEQ:
    case Opcode.STAT:
    case Opcode.FLUSH:
    case Opcode.FLUSHQ:
    case Opcode.NOOP:
    case Opcode.VERSION:
    case Opcode.QUIT:
    case Opcode.QUITQ:
    case Opcode.SASL_LIST_MECHS:
    case Opcode.SASL_AUTH:
    case Opcode.SASL_STEP:
      return null
    default:
      return 'unknown'
  }
}

/** Build the request from a complete, well-formed frame at `start`. */
function build(buf: Buffer, start: number, h: Header): BinaryRequest {
  const { opcode, opaque } = h
  const extras = start + HEADER_LENGTH
  const keyStart = extras + h.extrasLength
  const valueStart = keyStart + h.keyLength
  const frameEnd = start + HEADER_LENGTH + h.bodyLength
  // Keys are latin1: one char per byte, so any queue name round-trips exactly.
  const key = (): string => buf.toString('latin1', keyStart, valueStart)
  const cas = (): bigint => buf.readBigUInt64BE(start + 16)
  switch (opcode) {
    case Opcode.GET:
    case Opcode.GETQ:
    case Opcode.GETK:
    case Opcode.GETKQ:
      return {
        kind: 'get',
        opcode,
        opaque,
        key: key(),
        quiet: opcode === Opcode.GETQ || opcode === Opcode.GETKQ,
        withKey: opcode === Opcode.GETK || opcode === Opcode.GETKQ,
      }
    case Opcode.SET:
    case Opcode.SETQ:
      return {
        kind: 'set',
        opcode,
        opaque,
        key: key(),
        quiet: opcode === Opcode.SETQ,
        flags: buf.readUInt32BE(extras),
        exptime: buf.readUInt32BE(extras + 4),
        cas: cas(),
        value: buf.subarray(valueStart, frameEnd),
      }
    case Opcode.DELETE:
    case Opcode.DELETEQ:
      return { kind: 'delete', opcode, opaque, key: key(), quiet: opcode === Opcode.DELETEQ, cas: cas() }
    case Opcode.FLUSH:
    case Opcode.FLUSHQ:
      return {
        kind: 'flush',
        opcode,
        opaque,
        quiet: opcode === Opcode.FLUSHQ,
        delay: h.extrasLength === 4 ? buf.readUInt32BE(extras) : 0,
      }
    case Opcode.QUIT:
    case Opcode.QUITQ:
      return { kind: 'quit', opcode, opaque, quiet: opcode === Opcode.QUITQ }
    case Opcode.NOOP:
      return { kind: 'noop', opcode, opaque }
    case Opcode.VERSION:
      return { kind: 'version', opcode, opaque }
    case Opcode.SASL_LIST_MECHS:
      return { kind: 'saslListMechs', opcode, opaque }
    case Opcode.STAT:
      return { kind: 'stat', opcode, opaque, key: h.keyLength === 0 ? null : key() }
    case Opcode.SASL_AUTH:
    case Opcode.SASL_STEP:
      return {
        kind: opcode === Opcode.SASL_AUTH ? 'saslAuth' : 'saslStep',
        opcode,
        opaque,
        mechanism: key(),
        payload: buf.subarray(valueStart, frameEnd),
      }
    default:
      // skippedKind() sent every other opcode down the header-only path.
      throw new Error(`unreachable: opcode ${opcode}`)
  }
}
