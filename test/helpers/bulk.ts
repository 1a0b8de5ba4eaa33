/**
 * A text-protocol client for bulk tests (thousands of queues): pipelines many commands in one
 * write and counts reply lines, parsing in linear time (the raw clients re-concatenate their
 * buffer on every chunk, which is quadratic for replies of megabytes).
 */
import type { Socket } from 'node:net'
import { connectSocket } from './socketReader.js'

export class BulkClient {
  private rest = ''
  private lines: string[] = []
  private want = 0
  private got = 0
  private match: (line: string) => boolean = () => true
  private wake: ((err?: Error) => void) | null = null

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => this.onData(d))
    socket.on('close', () => this.wake?.(new Error(`connection closed after ${this.got}/${this.want} replies`)))
    socket.on('error', () => {})
  }

  static async connect(port: number): Promise<BulkClient> {
    return new BulkClient(await connectSocket(port))
  }

  private onData(d: string): void {
    const text = this.rest + d
    let at = 0
    let i: number
    while ((i = text.indexOf('\r\n', at)) >= 0) {
      const line = text.slice(at, i)
      at = i + 2
      this.lines.push(line)
      if (this.match(line)) this.got++
    }
    this.rest = text.slice(at)
    if (this.got >= this.want && this.wake) {
      const w = this.wake
      this.wake = null
      w()
    }
  }

  /** Send `text`; resolve with every line once `count` lines matching `match` have arrived. */
  run(text: string, count: number, match: (line: string) => boolean, timeoutMs = 60_000): Promise<string[]> {
    this.lines = []
    this.got = 0
    this.want = count
    this.match = match
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout: ${this.got}/${count} replies`)), timeoutMs)
      this.wake = (err) => {
        clearTimeout(timer)
        if (err) reject(err)
        else resolve(this.lines)
      }
      this.socket.write(text, 'latin1')
      if (count === 0) this.wake()
    })
  }

  /** Run `cmd(i)` for i in [from, to), 1000 commands per write, `per` matching replies each. */
  async each(from: number, to: number, cmd: (i: number) => string, match: (line: string) => boolean, per = 1): Promise<string[]> {
    const out: string[] = []
    for (let i = from; i < to; i += 1000) {
      const end = Math.min(to, i + 1000)
      let text = ''
      for (let k = i; k < end; k++) text += cmd(k)
      for (const l of await this.run(text, (end - i) * per, match)) out.push(l)
    }
    return out
  }

  close(): void {
    this.socket.destroy()
  }
}

/** A reply line that ends a storage, delete or error reply. */
export const isReply = (l: string): boolean => /^(STORED|DELETED|NOT_FOUND|SERVER_ERROR|CLIENT_ERROR|ERROR)/.test(l)
/** The line that ends a get (or its error). */
export const isEnd = (l: string): boolean => l === 'END' || /^(SERVER_ERROR|CLIENT_ERROR|ERROR)/.test(l)

/** VmRSS of a process in bytes (Linux). */
export async function rssBytes(pid: number): Promise<number> {
  const { readFileSync } = await import('node:fs')
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
  return m ? Number(m[1]) * 1024 : NaN
}
