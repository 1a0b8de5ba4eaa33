/**
 * memcached binary protocol client: SET and GET (dequeue, for a queue server), NOOP. Replies come
 * back in request order (no quiet commands are used), so the opaque field is only checked.
 */
import { Connection, INCOMPLETE, ReplyError, type Pending } from './connection.js'

const HEADER = 24
const REQUEST_MAGIC = 0x80
const RESPONSE_MAGIC = 0x81
const OP_GET = 0x00
const OP_SET = 0x01
const OP_NOOP = 0x0a
const STATUS_OK = 0
const STATUS_KEY_NOT_FOUND = 1

type Kind = 'set' | 'get' | 'noop'

export class MemcacheBinaryClient extends Connection<Kind> {
  private opaque = 0

  static async connect(host: string, port: number): Promise<MemcacheBinaryClient> {
    return new MemcacheBinaryClient(await Connection.open(host, port))
  }

  private header(op: number, keyLength: number, extrasLength: number, bodyLength: number): Buffer {
    const h = Buffer.alloc(HEADER)
    h[0] = REQUEST_MAGIC
    h[1] = op
    h.writeUInt16BE(keyLength, 2)
    h[4] = extrasLength
    h.writeUInt32BE(bodyLength, 8)
    h.writeUInt32BE(++this.opaque >>> 0, 12)
    return h
  }

  set(key: string, value: Buffer, flags = 0, exptime = 0): Promise<void> {
    const keyBytes = Buffer.from(key, 'latin1')
    const h = this.header(OP_SET, keyBytes.length, 8, 8 + keyBytes.length + value.length)
    const extras = Buffer.alloc(8)
    extras.writeUInt32BE(flags >>> 0, 0)
    extras.writeUInt32BE(exptime >>> 0, 4)
    return this.request('set', [Buffer.concat([h, extras, keyBytes]), value])
  }

  get(key: string): Promise<Buffer | null> {
    const keyBytes = Buffer.from(key, 'latin1')
    return this.request('get', Buffer.concat([this.header(OP_GET, keyBytes.length, 0, keyBytes.length), keyBytes]))
  }

  noop(): Promise<void> {
    return this.request('noop', this.header(OP_NOOP, 0, 0, 0))
  }

  protected parse(p: Pending<Kind>, buf: Buffer, off: number): number {
    if (buf.length - off < HEADER) return INCOMPLETE
    const body = buf.readUInt32BE(off + 8)
    const end = off + HEADER + body
    if (buf.length < end) return INCOMPLETE
    if (buf[off] !== RESPONSE_MAGIC) {
      this.settleError(p, new ReplyError(`bad response magic 0x${buf[off]!.toString(16)}`))
      return end
    }
    const status = buf.readUInt16BE(off + 6)
    const extras = buf[off + 4]!
    const keyLength = buf.readUInt16BE(off + 2)
    if (p.kind === 'get') {
      if (status === STATUS_OK) this.settle(p, buf.subarray(off + HEADER + extras + keyLength, end))
      else if (status === STATUS_KEY_NOT_FOUND) this.settle(p, null)
      else this.settleError(p, new ReplyError(`status ${status}: ${buf.toString('latin1', off + HEADER, end)}`))
    } else if (status === STATUS_OK) {
      this.settle(p, undefined)
    } else {
      this.settleError(p, new ReplyError(`status ${status}: ${buf.toString('latin1', off + HEADER, end)}`))
    }
    return end
  }
}
