/**
 * One server of the client's list: its connections and its health.
 *
 * - `shared()` hands out the pipelined connections used for commands that answer at once (set,
 *   plain get, stats...), round-robin over `connectionsPerServer` of them.
 * - `lease()` hands out a connection for one caller's exclusive use: blocking gets (`/t=`) would
 *   hold up everything pipelined behind them, and open reads belong to the connection they were
 *   opened on. Released connections are kept for reuse, up to `maxIdleConnections`.
 * - A failed connect marks the server down: it is skipped until `retryAt`, with the delay doubling
 *   on each failure up to `maxRetryDelayMs`; the first successful connect clears it. A connection
 *   that drops after connecting is simply replaced on next use.
 */
import { Connection } from './connection.js'
import { ConnectionError } from './errors.js'

export interface ServerEndpointOptions {
  connectTimeoutMs: number
  retryDelayMs: number
  maxRetryDelayMs: number
  connectionsPerServer: number
  maxIdleConnections: number
}

/** `host:port`, `host` (port 22122), `[v6]:port` or `:port`. */
export function parseServer(spec: string): { host: string; port: number } {
  const text = spec.trim()
  let host: string
  let portText: string | undefined
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text)
  if (v6) {
    host = v6[1]!
    portText = v6[2]
  } else {
    const colon = text.lastIndexOf(':')
    host = colon < 0 ? text : text.slice(0, colon)
    portText = colon < 0 ? undefined : text.slice(colon + 1)
  }
  if (host === '') host = '127.0.0.1'
  const port = portText === undefined ? 22122 : Number(portText)
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new TypeError(`bad server address ${JSON.stringify(spec)}`)
  return { host, port }
}

export class ServerEndpoint {
  readonly host: string
  readonly port: number
  /** `host:port`, the key used in stats() and version(). */
  readonly label: string
  /** Consecutive failed connects; 0 when healthy. */
  failures = 0
  /** While down, the time (ms since epoch) after which a reconnect is tried. */
  retryAt = 0

  private readonly shared_: Array<Connection | undefined>
  private nextShared = 0
  private readonly idle: Connection[] = []
  private readonly leased = new Set<Connection>()
  private closed = false

  constructor(spec: string, private readonly options: ServerEndpointOptions) {
    const { host, port } = parseServer(spec)
    this.host = host
    this.port = port
    this.label = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
    this.shared_ = new Array<Connection | undefined>(Math.max(1, options.connectionsPerServer)).fill(undefined)
  }

  /** Up, or down but due for a retry. */
  get available(): boolean {
    return !this.closed && (this.failures === 0 || Date.now() >= this.retryAt)
  }

  /** The error to give callers while the server is skipped. */
  downError(): ConnectionError {
    return new ConnectionError(`${this.label}: server is down (retry in ${Math.max(0, this.retryAt - Date.now())} ms)`, { server: this.label, sent: false })
  }

  /** A pipelined connection for commands that answer at once. */
  shared(): Connection {
    const i = this.nextShared
    this.nextShared = (i + 1) % this.shared_.length
    let conn = this.shared_[i]
    if (conn === undefined || !conn.alive) {
      conn = this.open()
      this.shared_[i] = conn
    }
    return conn
  }

  /** A connection for the caller alone, until release() or discard(). */
  lease(): Connection {
    let conn: Connection | undefined
    while ((conn = this.idle.pop()) !== undefined) {
      if (conn.alive) break
    }
    if (conn === undefined) conn = this.open()
    this.leased.add(conn)
    return conn
  }

  /** Give a leased connection back. Its requests must all be answered. */
  release(conn: Connection): void {
    this.leased.delete(conn)
    if (!this.closed && conn.alive && conn.inFlight === 0 && this.idle.length < this.options.maxIdleConnections) {
      this.idle.push(conn)
    } else {
      conn.close()
    }
  }

  /** Drop a leased connection that can no longer be trusted. */
  discard(conn: Connection): void {
    this.leased.delete(conn)
    conn.close()
  }

  close(): void {
    this.closed = true
    for (const conn of this.shared_) conn?.close()
    for (const conn of this.idle) conn.close()
    for (const conn of this.leased) conn.close()
    this.idle.length = 0
    this.leased.clear()
  }

  private open(): Connection {
    const conn = new Connection({ host: this.host, port: this.port, connectTimeoutMs: this.options.connectTimeoutMs })
    conn.ready.then(
      () => {
        this.failures = 0
        this.retryAt = 0
      },
      () => {},
    )
    // Counted synchronously, before the callers' own error handlers run, so a retry skips us.
    conn.onClose = (err) => {
      if (err instanceof ConnectionError && !err.sent) {
        this.failures += 1
        const delay = Math.min(this.options.retryDelayMs * 2 ** (this.failures - 1), this.options.maxRetryDelayMs)
        this.retryAt = Date.now() + delay
      }
    }
    return conn
  }
}
