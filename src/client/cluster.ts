/**
 * The client's servers as one unit: the endpoints, the order a set or a read tries them in, and
 * the two ways of using several of them — one after another until one answers (`Sweep`), or all
 * at once (`onEveryServer`).
 *
 * It also owns the client's closed state, because every failure has to be reported the same way
 * once the client is closed (see translate()).
 */
import type { Connection, ValueReply } from './connection.js'
import { ConnectionError, StarlingClientError } from './errors.js'
import { ServerEndpoint } from './servers.js'
import type { ResolvedClientOptions } from './types.js'

export class Cluster {
  readonly endpoints: readonly ServerEndpoint[]
  /** `host:port` of each server, in the order given. */
  readonly labels: readonly string[]
  private readonly closing = new AbortController()
  private nextSet = 0
  private nextGet = 0

  constructor(
    specs: readonly string[],
    private readonly options: ResolvedClientOptions,
  ) {
    this.endpoints = specs.map((spec) => new ServerEndpoint(spec, options))
    this.labels = this.endpoints.map((e) => e.label)
  }

  get closed(): boolean {
    return this.closing.signal.aborted
  }

  /** Aborts when the client is closed: waits listen to it. */
  get closedSignal(): AbortSignal {
    return this.closing.signal
  }

  close(): void {
    if (this.closed) return
    this.closing.abort(new StarlingClientError('CLOSED', 'client closed'))
    for (const endpoint of this.endpoints) endpoint.close()
  }

  /** After close(), whatever a request failed with, the caller learns the client is closed. */
  translate(err: unknown): unknown {
    if (this.closed && !(err instanceof StarlingClientError && err.code === 'CLOSED')) {
      return new StarlingClientError('CLOSED', 'client closed', { cause: err })
    }
    return err
  }

  /** Servers in a set's order: the chosen one (round-robin or random) first, then the others. */
  setOrder(): ServerEndpoint[] {
    const n = this.endpoints.length
    const start = this.options.distribution === 'random' ? Math.floor(Math.random() * n) : this.nextSet++ % n
    return this.rotated(start)
  }

  /** Servers in a read's order: one further along each call, so no server's queue is starved. */
  readOrder(): readonly ServerEndpoint[] {
    if (this.endpoints.length === 1) return this.endpoints
    return this.rotated(this.nextGet++ % this.endpoints.length)
  }

  /** A new pass over the servers, one after another (see Sweep). */
  sweep(what = 'no server available'): Sweep {
    return new Sweep(this, what)
  }

  /** Run a one-connection command on every reachable server; fails only if none answered. */
  async onEveryServer<R>(run: (conn: Connection) => Promise<R>): Promise<Record<string, R>> {
    const results = await Promise.allSettled(
      this.endpoints.map((endpoint) => (endpoint.available ? run(endpoint.shared()) : Promise.reject(endpoint.downError()))),
    )
    const out: Record<string, R> = {}
    let firstError: unknown
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') out[this.labels[i]!] = r.value
      else if (r.reason instanceof ConnectionError) firstError ??= r.reason
      else throw this.translate(r.reason)
    })
    if (Object.keys(out).length === 0) throw this.noServer(firstError)
    return out
  }

  /**
   * Repeat `command` (a plain get) on each reachable server until it answers empty or `more()` is
   * false, handing each item to `onValue` in order. Requests go in pipelined batches that grow
   * while the server keeps answering with items.
   */
  async drain(command: Buffer, timeoutMs: number, onValue: (value: ValueReply) => Promise<void>, more: () => boolean): Promise<void> {
    for (const endpoint of this.endpoints) {
      if (!endpoint.available) continue
      let batch = 1
      for (let empty = false; !empty && more(); batch = Math.min(batch * 2, 64)) {
        const conn = endpoint.shared()
        const replies = await Promise.all(Array.from({ length: batch }, () => conn.request(command, 'values', timeoutMs))).catch((err: unknown) => {
          throw this.translate(err)
        })
        for (const values of replies) {
          const value = values[0]
          if (value === undefined) empty = true
          else await onValue(value)
        }
      }
    }
  }

  /** The error for "no server answered": the last connection failure seen, if any. */
  noServer(lastError: unknown, what = 'no server available'): unknown {
    return this.translate(lastError ?? new ConnectionError(what, { sent: false }))
  }

  private rotated(start: number): ServerEndpoint[] {
    const n = this.endpoints.length
    return Array.from({ length: n }, (_, i) => this.endpoints[(start + i) % n]!)
  }
}

/**
 * Servers tried one after another: a server marked down is skipped, a connection failure moves on
 * to the next server, and when none answered the caller gets the last failure (or "no server
 * available"). Any other error — a server's error reply, a protocol error — ends the pass at once.
 * One Sweep may span several passes (a priority read tries each queue on every server).
 */
export class Sweep {
  /** Whether any server answered (even with nothing). */
  answered = false
  private lastError: unknown

  constructor(
    private readonly cluster: Cluster,
    private readonly what: string,
  ) {}

  /** False, remembering why, for a server that is marked down. */
  usable(endpoint: ServerEndpoint): boolean {
    if (endpoint.available) return true
    this.lastError ??= endpoint.downError()
    return false
  }

  /**
   * Remember a connection failure that `retryable` allows to go on with the next server (and only
   * while the client is open); throw any other error.
   */
  failed(err: unknown, retryable: (err: ConnectionError) => boolean = () => true): void {
    if (err instanceof ConnectionError && retryable(err) && !this.cluster.closed) {
      this.lastError = err
      return
    }
    throw this.cluster.translate(err)
  }

  /**
   * Ask each usable server of `order` in turn until `attempt` returns a result; `undefined` when
   * every one that answered had nothing. Connection failures go through failed().
   */
  async first<R>(
    order: readonly ServerEndpoint[],
    attempt: (endpoint: ServerEndpoint) => Promise<R | undefined>,
    retryable?: (err: ConnectionError) => boolean,
  ): Promise<R | undefined> {
    for (const endpoint of order) {
      if (!this.usable(endpoint)) continue
      let result: R | undefined
      try {
        result = await attempt(endpoint)
      } catch (err) {
        this.failed(err, retryable)
        continue
      }
      this.answered = true
      if (result !== undefined) return result
    }
    return undefined
  }

  /** Throw "no server available" (or the last failure) unless some server answered. */
  requireAnswer(): void {
    if (!this.answered) throw this.noAnswer()
  }

  /** The error for a pass in which no server answered. */
  noAnswer(): unknown {
    return this.cluster.noServer(this.lastError, this.what)
  }
}
