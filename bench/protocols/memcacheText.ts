/**
 * memcached text protocol client: `set`, `get` (one key; a Starling queue key may carry Kestrel
 * options such as `/t=1000`), `stats`, `version`. Pipelines: callers may issue requests without
 * awaiting the previous one.
 */
import { Connection, INCOMPLETE, lineEnd, ReplyError, type Pending } from './connection.js'

type Kind = 'store' | 'get' | 'stats' | 'line'

export class MemcacheTextClient extends Connection<Kind> {
  static async connect(host: string, port: number): Promise<MemcacheTextClient> {
    return new MemcacheTextClient(await Connection.open(host, port))
  }

  /** Resolves on STORED; rejects with the reply line otherwise. */
  set(key: string, value: Buffer, flags = 0, exptime = 0): Promise<void> {
    return this.request('store', [`set ${key} ${flags} ${exptime} ${value.length}\r\n`, value, '\r\n'])
  }

  /** The value, or null on a miss (END without VALUE). */
  get(key: string): Promise<Buffer | null> {
    return this.request('get', `get ${key}\r\n`)
  }

  stats(): Promise<Map<string, string>> {
    return this.request('stats', 'stats\r\n')
  }

  version(): Promise<string> {
    return this.request('line', 'version\r\n')
  }

  protected parse(p: Pending<Kind>, buf: Buffer, off: number): number {
    const eol = lineEnd(buf, off)
    if (eol < 0) return INCOMPLETE
    const first = buf[off]
    switch (p.kind) {
      case 'store':
        if (eol - off === 6 && first === 0x53 /* S */ && buf[off + 1] === 0x54 /* T */) {
          this.settle(p, undefined) // STORED
        } else {
          this.settleError(p, new ReplyError(buf.toString('latin1', off, eol)))
        }
        return eol + 2
      case 'get': {
        if (eol - off === 3 && first === 0x45 /* E */) {
          this.settle(p, (p.acc as Buffer | undefined) ?? null) // END
          return eol + 2
        }
        if (first === 0x56 /* V */ && buf.toString('latin1', off, off + 6) === 'VALUE ') {
          // VALUE <key> <flags> <bytes> [<cas>]
          const parts = buf.toString('latin1', off + 6, eol).split(' ')
          const bytes = Number(parts[2])
          if (!Number.isInteger(bytes) || bytes < 0) {
            this.settleError(p, new ReplyError(`bad VALUE line: ${buf.toString('latin1', off, eol)}`))
            return eol + 2
          }
          const end = eol + 2 + bytes
          if (buf.length < end + 2) return INCOMPLETE
          if (p.acc === undefined) p.acc = buf.subarray(eol + 2, end)
          return end + 2
        }
        this.settleError(p, new ReplyError(buf.toString('latin1', off, eol)))
        return eol + 2
      }
      case 'stats': {
        const line = buf.toString('latin1', off, eol)
        if (line === 'END') {
          this.settle(p, (p.acc as Map<string, string> | undefined) ?? new Map())
        } else if (line.startsWith('STAT ')) {
          const map = (p.acc as Map<string, string> | undefined) ?? new Map<string, string>()
          p.acc = map
          const sp = line.indexOf(' ', 5)
          map.set(line.slice(5, sp), line.slice(sp + 1))
        } else {
          this.settleError(p, new ReplyError(line))
        }
        return eol + 2
      }
      case 'line':
        this.settle(p, buf.toString('latin1', off, eol))
        return eol + 2
    }
  }
}
