/**
 * The socket half shared by the raw test clients (text and binary): buffers what arrives, and
 * `until` waits for a condition on the buffer, failing on close or timeout with what was buffered.
 */
import { connect, type Socket } from 'node:net'

export function connectSocket(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => resolve(s))
    s.once('error', reject)
  })
}

export class SocketReader {
  protected buf = Buffer.alloc(0)
  private waiters: Array<() => void> = []
  closed = false

  constructor(
    readonly socket: Socket,
    /** How the buffer is shown in an error message. */
    private readonly show: (buf: Buffer) => string,
  ) {
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

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  protected async until(pred: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pred()) {
      if (this.closed) throw new Error(`connection closed; buffered: ${this.show(this.buf)}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timeout; buffered: ${this.show(this.buf)}`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }
}
