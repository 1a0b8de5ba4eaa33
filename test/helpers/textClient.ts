/**
 * A raw text-protocol socket for tests: send bytes, read replies by line or by exact byte count.
 */
import type { Socket } from 'node:net'
import { connectSocket, SocketReader } from './socketReader.js'

export class RawClient extends SocketReader {
  private constructor(socket: Socket) {
    super(socket, (b) => JSON.stringify(b.toString('latin1')))
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new RawClient(await connectSocket(port, host))
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
