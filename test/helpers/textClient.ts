/**
 * A raw text-protocol socket for tests: send bytes, read replies by line or by exact byte count.
 */
import { connect, type Socket } from 'node:net'

export class RawClient {
  private buf = Buffer.alloc(0)
  private waiters: Array<() => void> = []
  closed = false
  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    socket.on('error', () => {})
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, host, () => resolve(new RawClient(s)))
      s.once('error', reject)
    })
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  private async until(pred: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pred()) {
      if (this.closed) throw new Error(`connection closed; buffered: ${JSON.stringify(this.buf.toString('latin1'))}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timeout; buffered: ${JSON.stringify(this.buf.toString('latin1'))}`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)
  }

  /** Read one line without its CRLF. */
  async line(timeoutMs = 5000): Promise<string> {
    await this.until(() => this.buf.indexOf('\r\n') >= 0, timeoutMs)
    const i = this.buf.indexOf('\r\n')
    const s = this.buf.subarray(0, i).toString('latin1')
    this.buf = this.buf.subarray(i + 2)
    return s
  }

  async bytes(n: number, timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.buf.length >= n, timeoutMs)
    const b = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return b
  }

  /** Send a command and read lines until one of `terminators` (default END/STORED/error lines). */
  async request(cmd: string | Buffer, terminators = /^(END|STORED|DELETED|NOT_FOUND|OK|ERROR|CLIENT_ERROR.*|SERVER_ERROR.*|VERSION .*)$/): Promise<string[]> {
    this.send(cmd)
    const lines: string[] = []
    for (;;) {
      const l = await this.line()
      lines.push(l)
      if (terminators.test(l)) return lines
    }
  }

  /** `get` one key; returns the value (latin1 string) or null. */
  async get(key: string): Promise<string | null> {
    this.send(`get ${key}\r\n`)
    const first = await this.line()
    if (first === 'END') return null
    const m = /^VALUE \S+ \d+ (\d+)/.exec(first)
    if (!m) throw new Error(`unexpected reply ${first}`)
    const data = await this.bytes(Number(m[1]) + 2)
    const end = await this.line()
    if (end !== 'END') throw new Error(`expected END, got ${end}`)
    return data.subarray(0, -2).toString('latin1')
  }

  async set(key: string, value: string | Buffer, flags = 0, exptime = 0): Promise<string> {
    const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value
    this.send(Buffer.concat([Buffer.from(`set ${key} ${flags} ${exptime} ${v.length}\r\n`, 'latin1'), v, Buffer.from('\r\n')]))
    return this.line()
  }

  /** Wait for the server to close the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.until(() => false, timeoutMs).catch((e: Error) => {
      if (!this.closed) throw e
    })
  }

  close(): void {
    this.socket.destroy()
  }
}
