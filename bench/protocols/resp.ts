/**
 * RESP2 client (Redis): commands as arrays of bulk strings; replies parsed recursively from one
 * buffer and offset. Only what the queue workloads need: RPUSH/LPUSH, LPOP/RPOP, BRPOP, PING.
 */
import { Connection, INCOMPLETE, lineEnd, ReplyError, type Pending } from './connection.js'

export type RespValue = string | number | Buffer | null | RespValue[] | ReplyError

type Kind = 'cmd'

const CRLF = '\r\n'

export class RespClient extends Connection<Kind> {
  static async connect(host: string, port: number): Promise<RespClient> {
    return new RespClient(await Connection.open(host, port))
  }

  /** Sends a command; rejects if the reply is an error (`-ERR ...`). */
  command(args: Array<string | Buffer>): Promise<RespValue> {
    const parts: Array<string | Buffer> = []
    let head = `*${args.length}\r\n`
    for (const arg of args) {
      if (typeof arg === 'string') {
        head += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`
      } else {
        parts.push(head + `$${arg.length}\r\n`, arg)
        head = CRLF
      }
    }
    parts.push(head)
    return this.request('cmd', parts)
  }

  protected parse(p: Pending<Kind>, buf: Buffer, off: number): number {
    const r = parseValue(buf, off)
    if (r === undefined) return INCOMPLETE
    if (r.value instanceof ReplyError) this.settleError(p, r.value)
    else this.settle(p, r.value)
    return r.next
  }
}

function parseValue(buf: Buffer, off: number): { value: RespValue; next: number } | undefined {
  const eol = lineEnd(buf, off)
  if (eol < 0) return undefined
  const type = buf[off]
  switch (type) {
    case 0x2b: // + simple string
      return { value: buf.toString('latin1', off + 1, eol), next: eol + 2 }
    case 0x2d: // - error
      return { value: new ReplyError(buf.toString('latin1', off + 1, eol)), next: eol + 2 }
    case 0x3a: // : integer
      return { value: Number(buf.toString('latin1', off + 1, eol)), next: eol + 2 }
    case 0x24: {
      // $ bulk string
      const length = Number(buf.toString('latin1', off + 1, eol))
      if (length < 0) return { value: null, next: eol + 2 }
      const end = eol + 2 + length
      if (buf.length < end + 2) return undefined
      return { value: buf.subarray(eol + 2, end), next: end + 2 }
    }
    case 0x2a: {
      // * array
      const count = Number(buf.toString('latin1', off + 1, eol))
      if (count < 0) return { value: null, next: eol + 2 }
      const items: RespValue[] = []
      let next = eol + 2
      for (let i = 0; i < count; i++) {
        const r = parseValue(buf, next)
        if (r === undefined) return undefined
        items.push(r.value)
        next = r.next
      }
      return { value: items, next }
    }
    default:
      return { value: new ReplyError(`bad RESP type byte 0x${(type ?? 0).toString(16)}`), next: eol + 2 }
  }
}
