/**
 * Test helper for the memcached binary protocol: build request frames byte by byte (independently
 * of the server's serializer), and a raw socket client that reads whole response frames.
 */
import type { Socket } from 'node:net'
import { Opcode } from '../../src/server/protocol/binary/commands.js'
import { connectSocket, SocketReader } from './socketReader.js'

export interface RequestSpec {
  opcode: number
  key?: string | Buffer
  extras?: Buffer
  value?: string | Buffer
  opaque?: number
  cas?: bigint
  /** Override the magic byte (bad-input tests). */
  magic?: number
  /** Override the declared lengths (lying-length tests). */
  keyLength?: number
  extrasLength?: number
  bodyLength?: number
}

export function frame(spec: RequestSpec): Buffer {
  const key = typeof spec.key === 'string' ? Buffer.from(spec.key, 'latin1') : (spec.key ?? Buffer.alloc(0))
  const extras = spec.extras ?? Buffer.alloc(0)
  const value = typeof spec.value === 'string' ? Buffer.from(spec.value, 'latin1') : (spec.value ?? Buffer.alloc(0))
  const header = Buffer.alloc(24)
  header[0] = spec.magic ?? 0x80
  header[1] = spec.opcode
  header.writeUInt16BE(spec.keyLength ?? key.length, 2)
  header[4] = spec.extrasLength ?? extras.length
  header.writeUInt32BE(spec.bodyLength ?? extras.length + key.length + value.length, 8)
  header.writeUInt32BE(spec.opaque ?? 0, 12)
  header.writeBigUInt64BE(spec.cas ?? 0n, 16)
  return Buffer.concat([header, extras, key, value])
}

export function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4)
  values.forEach((v, i) => b.writeUInt32BE(v, i * 4))
  return b
}

// the server's opcode table (memcached's numbers)
export const op = Opcode

export function set(key: string, value: string | Buffer, opts: { flags?: number; exptime?: number; opaque?: number; quiet?: boolean; cas?: bigint } = {}): Buffer {
  return frame({
    opcode: opts.quiet ? op.SETQ : op.SET,
    key,
    extras: u32s(opts.flags ?? 0, opts.exptime ?? 0),
    value,
    opaque: opts.opaque ?? 0,
    cas: opts.cas ?? 0n,
  })
}

export function get(key: string, opcode: number = op.GET, opaque = 0): Buffer {
  return frame({ opcode, key, opaque })
}

export interface Response {
  magic: number
  opcode: number
  keyLength: number
  extrasLength: number
  dataType: number
  status: number
  bodyLength: number
  opaque: number
  cas: bigint
  extras: Buffer
  key: string
  value: Buffer
}

export function decodeResponse(buf: Buffer, offset = 0): Response | null {
  if (buf.length - offset < 24) return null
  const bodyLength = buf.readUInt32BE(offset + 8)
  if (buf.length - offset < 24 + bodyLength) return null
  const keyLength = buf.readUInt16BE(offset + 2)
  const extrasLength = buf[offset + 4]!
  const body = offset + 24
  return {
    magic: buf[offset]!,
    opcode: buf[offset + 1]!,
    keyLength,
    extrasLength,
    dataType: buf[offset + 5]!,
    status: buf.readUInt16BE(offset + 6),
    bodyLength,
    opaque: buf.readUInt32BE(offset + 12),
    cas: buf.readBigUInt64BE(offset + 16),
    extras: Buffer.from(buf.subarray(body, body + extrasLength)),
    key: buf.toString('latin1', body + extrasLength, body + extrasLength + keyLength),
    value: Buffer.from(buf.subarray(body + extrasLength + keyLength, body + bodyLength)),
  }
}

/** A raw binary-protocol socket: send frames, read whole response frames. */
export class BinaryClient extends SocketReader {
  private constructor(socket: Socket) {
    super(socket, (b) => b.toString('hex'))
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<BinaryClient> {
    return new BinaryClient(await connectSocket(port, host))
  }

  send(data: Buffer): void {
    this.socket.write(data)
  }

  async response(timeoutMs = 5000): Promise<Response> {
    await this.until(() => decodeResponse(this.buf) !== null, timeoutMs)
    const r = decodeResponse(this.buf)!
    this.buf = this.buf.subarray(24 + r.bodyLength)
    return r
  }

  /** Send one frame and read one response. */
  async request(data: Buffer, timeoutMs = 5000): Promise<Response> {
    this.send(data)
    return this.response(timeoutMs)
  }

  /** Read responses up to and including the first one with this opcode (e.g. NOOP). */
  async responsesUntil(opcode: number, timeoutMs = 5000): Promise<Response[]> {
    const out: Response[] = []
    for (;;) {
      const r = await this.response(timeoutMs)
      out.push(r)
      if (r.opcode === opcode) return out
    }
  }

  /** Bytes received and not yet read as responses. */
  get pending(): Buffer {
    return this.buf
  }

  /** Resolve when the server closes the connection; reject after the timeout. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.closed, timeoutMs).catch((e: Error) => {
      if (!this.closed) throw e
    })
  }

  close(): void {
    this.socket.destroy()
  }
}
