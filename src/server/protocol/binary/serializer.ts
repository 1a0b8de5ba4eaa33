/**
 * Binary protocol responses: 24-byte header (magic 0x81, the request's opcode and opaque, status,
 * cas), then extras, key, value. Each encoder returns one reply as one buffer for the Outbox (an
 * item's payload copied in: cheaper than a second chunk concatenated at flush).
 */
import { payloadInPlace, type ReplyFrame } from '../../engine/requests.js'
import { HEADER_LENGTH, RESPONSE_MAGIC, STATUS_TEXT, Status } from './commands.js'

const TWO_32 = 2 ** 32

export interface ResponseHeader {
  opcode: number
  opaque: number
  status: number
  /** 0..2^53-1 (item cas ids are sequence numbers). */
  cas: number
  extrasLength: number
  keyLength: number
  bodyLength: number
}

/** Write a response header into `buf` at `offset`. */
export function writeHeader(buf: Buffer, offset: number, h: ResponseHeader): void {
  buf[offset] = RESPONSE_MAGIC
  buf[offset + 1] = h.opcode
  buf.writeUInt16BE(h.keyLength, offset + 2)
  buf[offset + 4] = h.extrasLength
  buf[offset + 5] = 0 // data type: raw bytes
  buf.writeUInt16BE(h.status, offset + 6)
  buf.writeUInt32BE(h.bodyLength, offset + 8)
  buf.writeUInt32BE(h.opaque >>> 0, offset + 12)
  buf.writeUInt32BE(Math.floor(h.cas / TWO_32), offset + 16)
  buf.writeUInt32BE(h.cas % TWO_32, offset + 20)
}

/** A reply with an optional body (text or bytes) and nothing else: success or error. */
export function encodeResponse(opcode: number, opaque: number, status: number, body?: Buffer | string): Buffer {
  const bodyLength = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length
  const buf = Buffer.allocUnsafe(HEADER_LENGTH + bodyLength)
  writeHeader(buf, 0, { opcode, opaque, status, cas: 0, extrasLength: 0, keyLength: 0, bodyLength })
  if (typeof body === 'string') buf.write(body, HEADER_LENGTH)
  else if (body !== undefined) body.copy(buf, HEADER_LENGTH)
  return buf
}

/** An error reply; the body is `message` or memcached's text for the status. */
export function encodeError(opcode: number, opaque: number, status: number, message?: string): Buffer {
  return encodeResponse(opcode, opaque, status, message ?? STATUS_TEXT[status] ?? '')
}

/**
 * A GET hit: extras = 4-byte flags, the key for GETK/GETKQ (latin1), the item as the value. One
 * buffer (one allocation, one copy of the payload): the Outbox writes it as is, with no concat.
 */
export function encodeItem(
  opcode: number,
  opaque: number,
  key: string | null,
  flags: number,
  cas: number,
  data: Buffer,
  framed: Buffer | null = null,
): Buffer {
  const keyLength = key === null ? 0 : key.length
  const valueAt = HEADER_LENGTH + 4 + keyLength
  // laid out by an ItemFrame: the value is in place already, the rest is written around it
  const inPlace = payloadInPlace(framed, data, valueAt, 0)
  const buf = inPlace ? framed : Buffer.allocUnsafe(valueAt + data.length)
  buf[0] = RESPONSE_MAGIC
  buf[1] = opcode
  buf.writeUInt16BE(keyLength, 2)
  buf[4] = 4 // extras: the flags
  buf[5] = 0 // data type: raw bytes
  buf.writeUInt16BE(Status.NO_ERROR, 6)
  buf.writeUInt32BE(4 + keyLength + data.length, 8)
  buf.writeUInt32BE(opaque >>> 0, 12)
  buf.writeUInt32BE(Math.floor(cas / TWO_32), 16)
  buf.writeUInt32BE(cas % TWO_32, 20)
  buf.writeUInt32BE(flags >>> 0, HEADER_LENGTH)
  if (key !== null) buf.write(key, HEADER_LENGTH + 4, 'latin1')
  if (!inPlace) data.copy(buf, valueAt)
  return buf
}

/**
 * A GET's reply laid out around the value as the engine copies it out of memory (ReplyFrame): one
 * buffer and one copy of the value per hit. `keyLength`: GETK's key (0 for GET).
 */
export class ItemFrame implements ReplyFrame {
  readonly tailBytes = 0
  constructor(private readonly keyLength: number) {}

  headBytes(): number {
    return HEADER_LENGTH + 4 + this.keyLength
  }
}

/** The frame of every GET/GETQ (no key in the reply): one for all. */
export const GET_FRAME = new ItemFrame(0)

/** A GETK miss as memcached sends it: KEY_ENOENT with the key in both key and body. */
export function encodeKeyMiss(opcode: number, opaque: number, key: string): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LENGTH + key.length)
  writeHeader(buf, 0, {
    opcode,
    opaque,
    status: Status.KEY_ENOENT,
    cas: 0,
    extrasLength: 0,
    keyLength: key.length,
    bodyLength: key.length,
  })
  buf.write(key, HEADER_LENGTH, 'latin1')
  return buf
}

/**
 * STAT: one response per pair (key = name, value = value), then one with an empty key that ends
 * the series. All in one buffer: stats are small and written together.
 */
export function encodeStats(opcode: number, opaque: number, pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat([encodeStatPairs(opcode, opaque, pairs), encodeResponse(opcode, opaque, Status.NO_ERROR)])
}

/** One response per pair, without the empty one that ends a STAT reply (a batch of a stream). */
export function encodeStatPairs(opcode: number, opaque: number, pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  let size = 0
  for (const [name, value] of pairs) {
    size += HEADER_LENGTH + Buffer.byteLength(name, 'latin1') + Buffer.byteLength(value, 'latin1')
  }
  const buf = Buffer.allocUnsafe(size)
  let offset = 0
  for (const [name, value] of pairs) {
    const keyLength = Buffer.byteLength(name, 'latin1')
    const valueLength = Buffer.byteLength(value, 'latin1')
    writeHeader(buf, offset, {
      opcode,
      opaque,
      status: Status.NO_ERROR,
      cas: 0,
      extrasLength: 0,
      keyLength,
      bodyLength: keyLength + valueLength,
    })
    offset += HEADER_LENGTH
    offset += buf.write(name, offset, 'latin1')
    offset += buf.write(value, offset, 'latin1')
  }
  return buf
}
