/**
 * StarlingClient: Starling's Ruby client API in TypeScript, plus Kestrel's reliable reads.
 *
 * Several servers are used Starling's way: each set goes to one server (round-robin or random),
 * and reads cycle through all of them, starting one further along on each call, so no server's
 * queue is starved. Waiting is done by the server (`get q/t=<ms>`), in slices of `waitSliceMs`,
 * never by sleeping here; between slices an AbortSignal or close() ends the wait at once.
 *
 * Reads that wait are made as open reads (`/open`, then `/close` once the caller has the item),
 * so an item the server hands over just as the caller gave up is put back (`/abort`), not lost.
 */
import type { Connection, ValueReply } from './connection.js'
import { abortReason, ConnectionError, StarlingClientError } from './errors.js'
import { checkQueueName, encodeLine, encodeSet, getKey } from './protocol.js'
import { SerializerRegistry, type Serializer, type SerializerName } from './serializers.js'
import { ServerEndpoint } from './servers.js'
import { parseStats, queueStats, type ServerStats } from './stats.js'
import { Poller, type PollHandler, type PollOptions } from './poller.js'

export interface StarlingClientOptions {
  /** Serializer for values written (default `json`); reads decode by each item's flags. */
  serializer?: SerializerName | Serializer
  /** Extra serializers, known by name for writing and by flags for reading. */
  serializers?: Serializer[]
  /** How a set picks its server (default `round-robin`). */
  distribution?: 'round-robin' | 'random'
  /** Longest wait for any reply, ms (default 5000). Blocking gets add their own wait to it. */
  timeoutMs?: number
  /** Longest wait for a TCP connect, ms (default 2000). */
  connectTimeoutMs?: number
  /** A blocking get is sent as server-side waits of at most this long, ms (default 1000). */
  waitSliceMs?: number
  /** First delay before a down server is tried again, ms; doubles per failure (default 200). */
  retryDelayMs?: number
  /** Cap on that delay, ms (default 10000). */
  maxRetryDelayMs?: number
  /** Pipelined connections per server for non-blocking commands (default 1). */
  connectionsPerServer?: number
  /** Idle connections kept per server for blocking gets and open reads (default 16). */
  maxIdleConnections?: number
}

export interface SetOptions {
  /** Seconds until the item expires (memcached exptime: 0 never, > 30 days a Unix time). */
  ttl?: number
  /** Store these flags instead of the serializer's (for interop with other clients). */
  flags?: number
  serializer?: SerializerName | Serializer
}

export interface ReadOptions {
  /** Decode with this serializer whatever the item's flags say (e.g. `raw` to get the bytes). */
  serializer?: SerializerName | Serializer
}

export interface GetOptions extends ReadOptions {
  /** How long to wait for an item, ms; default: until one comes. 0 = don't wait (as fetch). */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface OpenOptions extends GetOptions {}

/** An item taken with an open read: confirm it with close(), or give it back with abort(). */
export interface ReliableItem<T = unknown> {
  readonly value: T
  readonly queue: string
  /** `host:port` of the server holding the open read. */
  readonly server: string
  readonly flags: number
  /** `close` or `abort` once one of them has been called. */
  readonly settled: 'close' | 'abort' | undefined
  /** Confirm: the item is removed for good. */
  close(): Promise<void>
  /** Give the item back: it returns to the head of its queue. */
  abort(): Promise<void>
}

const DEFAULTS = {
  serializer: 'json' as SerializerName | Serializer,
  distribution: 'round-robin' as 'round-robin' | 'random',
  timeoutMs: 5000,
  connectTimeoutMs: 2000,
  waitSliceMs: 1000,
  retryDelayMs: 200,
  maxRetryDelayMs: 10_000,
  connectionsPerServer: 1,
  maxIdleConnections: 16,
}

/** An open read in progress: which connection holds it. */
interface Opened {
  endpoint: ServerEndpoint
  conn: Connection
  queue: string
  value: ValueReply
}

export class StarlingClient {
  readonly servers: readonly string[]
  private readonly endpoints: ServerEndpoint[]
  private readonly options: typeof DEFAULTS
  private readonly serializers: SerializerRegistry
  private readonly writeSerializer: Serializer
  private readonly closing = new AbortController()
  private nextSet = 0
  private nextGet = 0

  constructor(servers: string | readonly string[] = '127.0.0.1:22122', options: StarlingClientOptions = {}) {
    const list = typeof servers === 'string' ? servers.split(',').filter((s) => s.trim() !== '') : [...servers]
    if (list.length === 0) throw new StarlingClientError('BAD_OPTION', 'no servers given')
    const merged = { ...DEFAULTS }
    for (const [k, v] of Object.entries(options)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v
    this.options = merged
    this.serializers = new SerializerRegistry(options.serializers)
    this.writeSerializer = this.serializers.resolve(merged.serializer)
    this.endpoints = list.map((spec) => new ServerEndpoint(spec, merged))
    this.servers = this.endpoints.map((e) => e.label)
  }

  get closed(): boolean {
    return this.closing.signal.aborted
  }

  // ---- writing -------------------------------------------------------------------------------

  /** Append a value to a queue on one server. */
  async set(queue: string, value: unknown, options: SetOptions = {}): Promise<void> {
    this.checkOpen()
    checkQueueName(queue)
    const serializer = options.serializer === undefined ? this.writeSerializer : this.serializers.resolve(options.serializer)
    const data = serializer.encode(value)
    const flags = options.flags ?? serializer.flags
    const ttl = options.ttl ?? 0
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) throw new StarlingClientError('BAD_OPTION', `flags must be a 32-bit unsigned integer`)
    if (!Number.isInteger(ttl)) throw new StarlingClientError('BAD_OPTION', `ttl must be a whole number of seconds`)
    const command = encodeSet(queue, flags, ttl, data)
    const n = this.endpoints.length
    const start = this.options.distribution === 'random' ? Math.floor(Math.random() * n) : this.nextSet++ % n
    let lastError: ConnectionError | undefined
    // Try the chosen server, then the others — but only while the command surely never reached a
    // server: once it may have been stored, a retry could store it twice.
    for (let i = 0; i < n; i++) {
      const endpoint = this.endpoints[(start + i) % n]!
      if (!endpoint.available) {
        lastError ??= endpoint.downError()
        continue
      }
      try {
        const reply = await endpoint.shared().request(command, 'line', this.options.timeoutMs)
        if (reply !== 'STORED') throw new StarlingClientError('PROTOCOL', `${endpoint.label}: unexpected reply to set: ${reply}`)
        return
      } catch (err) {
        if (err instanceof ConnectionError && !err.sent && !this.closed) {
          lastError = err
          continue
        }
        throw this.translate(err)
      }
    }
    throw lastError ?? new ConnectionError('no server available', { sent: false })
  }

  // ---- reading -------------------------------------------------------------------------------

  /** Take the head item without waiting: `undefined` when every server's queue is empty. */
  async fetch<T = unknown>(queue: string, options: ReadOptions = {}): Promise<T | undefined> {
    this.checkOpen()
    checkQueueName(queue)
    const found = await this.fetchRaw(queue, queue)
    return found === undefined ? undefined : (this.decode(found, options) as T)
  }

  /** The head item, left in place; `undefined` when every server's queue is empty. */
  async peek<T = unknown>(queue: string, options: ReadOptions = {}): Promise<T | undefined> {
    this.checkOpen()
    checkQueueName(queue)
    const found = await this.fetchRaw(queue, getKey(queue, { peek: true }))
    return found === undefined ? undefined : (this.decode(found, options) as T)
  }

  /**
   * Take the head item, waiting for one up to `timeoutMs` (default: as long as it takes).
   * Resolves `undefined` only when the time is up; rejects with the signal's reason on abort.
   */
  async get<T = unknown>(queue: string, options: GetOptions = {}): Promise<T | undefined> {
    this.checkOpen()
    checkQueueName(queue)
    options.signal?.throwIfAborted()
    const timeoutMs = options.timeoutMs ?? Infinity
    const found = await this.fetchRaw(queue, queue)
    if (found !== undefined) return this.decode(found, options) as T
    if (timeoutMs <= 0) return undefined
    const opened = await this.waitForOpen([queue], timeoutMs, options.signal)
    if (opened === undefined) return undefined
    // The item is ours: confirm it before decoding, so a decode error does not leave it open.
    await this.settle(opened, 'close')
    return this.decode(opened.value, options) as T
  }

  /**
   * Reliable read: take the head item tentatively. The returned item must be confirmed with
   * `close()` or handed back with `abort()`; if this client dies first, the server puts it back.
   * Waits up to `timeoutMs` (default 0: don't wait); `undefined` when nothing came.
   */
  async open<T = unknown>(queue: string, options: OpenOptions = {}): Promise<ReliableItem<T> | undefined> {
    this.checkOpen()
    checkQueueName(queue)
    options.signal?.throwIfAborted()
    const opened = await this.openFirst([queue], options.timeoutMs ?? 0, options.signal)
    return opened === undefined ? undefined : this.reliableItem<T>(opened, options)
  }

  /**
   * Take from the first non-empty queue of `queues` (highest priority first), as an open read,
   * waiting up to `timeoutMs`. Used by poll(); public for callers who run their own loop.
   */
  async openAny<T = unknown>(queues: readonly string[], options: OpenOptions = {}): Promise<ReliableItem<T> | undefined> {
    this.checkOpen()
    for (const q of queues) checkQueueName(q)
    options.signal?.throwIfAborted()
    const opened = await this.openFirst(queues, options.timeoutMs ?? 0, options.signal)
    return opened === undefined ? undefined : this.reliableItem<T>(opened, options)
  }

  /**
   * Every item of the queue, as a reliable read: each item is confirmed when the loop asks for
   * the next one. Leaving the loop early (break, return, throw) hands the current item back.
   * Ends when `signal` aborts or the client is closed.
   */
  async *consume<T = unknown>(queue: string, options: ReadOptions & { signal?: AbortSignal } = {}): AsyncGenerator<T, void, undefined> {
    checkQueueName(queue)
    for (;;) {
      let item: ReliableItem<T> | undefined
      try {
        item = await this.open<T>(queue, { ...options, timeoutMs: Infinity })
      } catch (err) {
        if (this.closed || options.signal?.aborted) return
        throw err
      }
      if (item === undefined) continue
      let done = false
      try {
        yield item.value
        done = true
      } finally {
        if (done) await item.close()
        else await item.abort().catch(() => {})
      }
    }
  }

  /**
   * Take items from `queues`, highest priority first, and run `handler` on each while it is held
   * as an open read: confirmed when the handler resolves, handed back when it throws. Returns the
   * running Poller; `stop()` (or SIGTERM) lets in-flight items finish, then ends it.
   */
  poll<T = unknown>(queues: string | readonly string[], handler: PollHandler<T>, options: PollOptions = {}): Poller<T> {
    this.checkOpen()
    const list = typeof queues === 'string' ? [queues] : [...queues]
    if (list.length === 0) throw new StarlingClientError('BAD_OPTION', 'poll needs at least one queue')
    for (const q of list) checkQueueName(q)
    return new Poller<T>(this, list, handler, options)
  }

  /** poll() on one queue. */
  process<T = unknown>(queue: string, handler: PollHandler<T>, options: PollOptions = {}): Poller<T> {
    return this.poll<T>([queue], handler, options)
  }

  // ---- queues and servers --------------------------------------------------------------------

  /** Items waiting in a queue, summed over the servers. */
  sizeof(queue: 'all'): Promise<Record<string, number>>
  sizeof(queue: string): Promise<number>
  async sizeof(queue: string): Promise<number | Record<string, number>> {
    const all: Record<string, number> = {}
    for (const stats of Object.values(await this.stats())) {
      for (const [name, q] of Object.entries(queueStats(stats))) all[name] = (all[name] ?? 0) + q.items
    }
    if (queue === 'all') return all
    checkQueueName(queue)
    return all[queue] ?? 0
  }

  /** Names of the queues on any server, sorted. */
  async availableQueues(): Promise<string[]> {
    return Object.keys(await this.sizeof('all')).sort()
  }

  /**
   * Drain a queue on every server, calling `onItem` for each item taken; resolves with the count.
   * Every item taken is handed to onItem; if onItem throws, draining stops after the items
   * already taken and the first error is thrown.
   */
  async flush<T = unknown>(queue: string, onItem?: (value: T) => unknown, options: ReadOptions = {}): Promise<number> {
    this.checkOpen()
    checkQueueName(queue)
    const command = encodeLine(`get ${queue}`)
    let count = 0
    let firstError: unknown
    for (const endpoint of this.endpoints) {
      if (!endpoint.available) continue
      // Pipelined batches, growing while the queue keeps answering.
      let batch = 1
      for (let empty = false; !empty && firstError === undefined; batch = Math.min(batch * 2, 64)) {
        const conn = endpoint.shared()
        const replies = await Promise.all(Array.from({ length: batch }, () => conn.request(command, 'values', this.options.timeoutMs))).catch((err: unknown) => {
          throw this.translate(err)
        })
        for (const values of replies) {
          const value = values[0]
          if (value === undefined) {
            empty = true
            continue
          }
          count++
          if (onItem === undefined) continue
          try {
            await onItem(this.decode(value, options) as T)
          } catch (err) {
            firstError ??= err
          }
        }
      }
    }
    if (firstError !== undefined) throw firstError
    return count
  }

  /** Delete a queue (items and journal) on every server; true if any server had it. */
  async delete(queue: string): Promise<boolean> {
    this.checkOpen()
    checkQueueName(queue)
    const command = encodeLine(`delete ${queue}`)
    const replies = await this.onEveryServer((conn) => conn.request(command, 'line', this.options.timeoutMs))
    return Object.values(replies).some((r) => r === 'DELETED')
  }

  /** Parsed `stats` of every reachable server, keyed by `host:port`. */
  async stats(): Promise<Record<string, ServerStats>> {
    this.checkOpen()
    const command = encodeLine('stats')
    const replies = await this.onEveryServer((conn) => conn.request(command, 'stats', this.options.timeoutMs))
    const out: Record<string, ServerStats> = {}
    for (const [server, pairs] of Object.entries(replies)) out[server] = parseStats(pairs)
    return out
  }

  /** `version` of every reachable server, keyed by `host:port`. */
  async version(): Promise<Record<string, string>> {
    this.checkOpen()
    const command = encodeLine('version')
    const replies = await this.onEveryServer((conn) => conn.request(command, 'line', this.options.timeoutMs))
    const out: Record<string, string> = {}
    for (const [server, line] of Object.entries(replies)) out[server] = line.replace(/^VERSION /, '')
    return out
  }

  /** Close every connection. Waiting gets and open() calls end with a CLOSED error. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closing.abort(new StarlingClientError('CLOSED', 'client closed'))
    for (const endpoint of this.endpoints) endpoint.close()
  }

  // ---- internals -----------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new StarlingClientError('CLOSED', 'client closed')
  }

  /** After close(), whatever a request failed with, the caller learns the client is closed. */
  private translate(err: unknown): unknown {
    if (this.closed && !(err instanceof StarlingClientError && err.code === 'CLOSED')) {
      return new StarlingClientError('CLOSED', 'client closed', { cause: err })
    }
    return err
  }

  private decode(value: ValueReply, options: ReadOptions): unknown {
    const forced = options.serializer === undefined ? undefined : this.serializers.resolve(options.serializer)
    return this.serializers.decode(value.data, value.flags, forced)
  }

  /** Servers in this read's order: one further along each call. */
  private readOrder(): ServerEndpoint[] {
    const n = this.endpoints.length
    if (n === 1) return this.endpoints
    const start = this.nextGet++ % n
    return Array.from({ length: n }, (_, i) => this.endpoints[(start + i) % n]!)
  }

  /** A plain (non-waiting) get of `key` on each server in turn; the first item found. */
  private async fetchRaw(queue: string, key: string): Promise<ValueReply | undefined> {
    const command = encodeLine(`get ${key}`)
    let answered = false
    let lastError: unknown
    for (const endpoint of this.readOrder()) {
      if (!endpoint.available) {
        lastError ??= endpoint.downError()
        continue
      }
      try {
        const values = await endpoint.shared().request(command, 'values', this.options.timeoutMs)
        answered = true
        const value = values[0]
        if (value !== undefined) return value
      } catch (err) {
        if (!(err instanceof ConnectionError) || this.closed) throw this.translate(err)
        lastError = err
      }
    }
    if (!answered) throw this.translate(lastError ?? new ConnectionError(`no server available for ${queue}`, { sent: false }))
    return undefined
  }

  /** Run a one-connection command on every reachable server; fails only if none answered. */
  private async onEveryServer<R>(run: (conn: Connection) => Promise<R>): Promise<Record<string, R>> {
    const results = await Promise.allSettled(
      this.endpoints.map((endpoint) => (endpoint.available ? run(endpoint.shared()) : Promise.reject(endpoint.downError()))),
    )
    const out: Record<string, R> = {}
    let firstError: unknown
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') out[this.endpoints[i]!.label] = r.value
      else if (r.reason instanceof ConnectionError) firstError ??= r.reason
      else throw this.translate(r.reason)
    })
    if (Object.keys(out).length === 0) throw this.translate(firstError ?? new ConnectionError('no server available', { sent: false }))
    return out
  }

  /**
   * Open reads of `queues` in priority order: first a pass that does not wait (each queue, every
   * server), then server-side waits on all of them at once, in slices, until one delivers.
   */
  private async openFirst(queues: readonly string[], timeoutMs: number, signal: AbortSignal | undefined): Promise<Opened | undefined> {
    const order = this.readOrder()
    let answered = false
    let lastError: unknown
    for (const queue of queues) {
      const command = encodeLine(`get ${getKey(queue, { open: true })}`)
      for (const endpoint of order) {
        if (!endpoint.available) {
          lastError ??= endpoint.downError()
          continue
        }
        const conn = endpoint.lease()
        try {
          const values = await conn.request(command, 'values', this.options.timeoutMs)
          answered = true
          const value = values[0]
          if (value !== undefined) return { endpoint, conn, queue, value }
          endpoint.release(conn)
        } catch (err) {
          endpoint.discard(conn)
          if (!(err instanceof ConnectionError) || this.closed) throw this.translate(err)
          lastError = err
        }
      }
    }
    if (!answered) throw this.translate(lastError ?? new ConnectionError('no server available', { sent: false }))
    if (timeoutMs <= 0) return undefined
    return this.waitForOpen(queues, timeoutMs, signal)
  }

  /** Server-side waits (`/open/t=`) on every queue × server at once, slice after slice. */
  private async waitForOpen(queues: readonly string[], timeoutMs: number, signal: AbortSignal | undefined): Promise<Opened | undefined> {
    const stop = signal === undefined ? this.closing.signal : AbortSignal.any([signal, this.closing.signal])
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (stop.aborted) throw this.translate(abortReason(stop))
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      const slice = Math.max(1, Math.min(this.options.waitSliceMs, left))
      const roundStarted = Date.now()
      const opened = await this.waitRound(queues, slice, stop)
      if (opened !== undefined) return opened
      // A server that answers empty long before the wait it was asked for (one that ignores /t=,
      // or a wake-up another reader won) must not be hammered: at most one round per 50 ms.
      const early = Math.min(50, slice) - (Date.now() - roundStarted)
      if (early > 0) await pause(early, stop)
    }
  }

  /**
   * One round of waits. The first item to arrive wins — or, when several arrive together, the one
   * from the highest-priority queue; every other item that arrives, now or after the caller has
   * moved on, is aborted back to its queue. Abort ends the round at once.
   */
  private waitRound(queues: readonly string[], sliceMs: number, stop: AbortSignal): Promise<Opened | undefined> {
    return new Promise<Opened | undefined>((resolve, reject) => {
      let settled = false
      let outstanding = 0
      let answered = false
      let lastError: unknown
      let arrived: Array<Opened & { rank: number }> = []
      const finish = (result: Opened | undefined, err?: unknown): void => {
        if (settled) return
        settled = true
        stop.removeEventListener('abort', onAbort)
        if (err !== undefined) reject(err)
        else resolve(result)
      }
      const giveBack = (o: Opened): void => {
        o.conn.request(encodeLine(`get ${getKey(o.queue, { abort: true })}`), 'values', this.options.timeoutMs).then(
          () => o.endpoint.release(o.conn),
          () => o.endpoint.discard(o.conn),
        )
      }
      const decide = (): void => {
        const candidates = arrived
        arrived = []
        if (candidates.length === 0) return
        candidates.sort((a, b) => a.rank - b.rank)
        const [best, ...rest] = candidates
        for (const o of rest) giveBack(o)
        if (settled) giveBack(best!)
        else finish(best)
      }
      const onAbort = (): void => finish(undefined, this.translate(abortReason(stop)))
      stop.addEventListener('abort', onAbort, { once: true })

      queues.forEach((queue, rank) => {
        const command = encodeLine(`get ${getKey(queue, { open: true, waitMs: sliceMs })}`)
        for (const endpoint of this.endpoints) {
          if (!endpoint.available) {
            lastError ??= endpoint.downError()
            continue
          }
          const conn = endpoint.lease()
          outstanding++
          conn.request(command, 'values', sliceMs + this.options.timeoutMs).then(
            (values) => {
              outstanding--
              answered = true
              const value = values[0]
              if (value === undefined) {
                endpoint.release(conn)
                if (outstanding === 0 && arrived.length === 0) finish(undefined)
                return
              }
              const o = { endpoint, conn, queue, value, rank }
              if (settled) return giveBack(o)
              // Let replies already read in this turn of the event loop compete on priority.
              if (arrived.push(o) === 1) setImmediate(decide)
            },
            (err: unknown) => {
              outstanding--
              endpoint.discard(conn)
              lastError = err
              if (outstanding === 0 && arrived.length === 0) {
                if (answered) finish(undefined)
                else finish(undefined, this.translate(err))
              }
            },
          )
        }
      })
      if (outstanding === 0) finish(undefined, this.translate(lastError ?? new ConnectionError('no server available', { sent: false })))
    })
  }

  /** Send `/close` or `/abort` for an open read on its connection, then give the connection back. */
  private async settle(opened: Opened, how: 'close' | 'abort'): Promise<void> {
    const command = encodeLine(`get ${getKey(opened.queue, how === 'close' ? { close: true } : { abort: true })}`)
    try {
      await opened.conn.request(command, 'values', this.options.timeoutMs)
    } catch (err) {
      opened.endpoint.discard(opened.conn)
      throw this.translate(err)
    }
    opened.endpoint.release(opened.conn)
  }

  private async reliableItem<T>(opened: Opened, options: ReadOptions): Promise<ReliableItem<T>> {
    let value: T
    try {
      value = this.decode(opened.value, options) as T
    } catch (err) {
      // Undecodable: handed back it would come round forever, so it is taken, as fetch() would.
      await this.settle(opened, 'close').catch(() => {})
      throw err
    }
    let state: 'close' | 'abort' | undefined
    let settling: Promise<void> | undefined
    const settleOnce = (how: 'close' | 'abort'): Promise<void> => {
      if (state !== undefined) {
        if (state === how) return settling!
        return Promise.reject(new StarlingClientError('ALREADY_SETTLED', `item already ${state === 'close' ? 'closed' : 'aborted'}`))
      }
      state = how
      settling = this.settle(opened, how)
      return settling
    }
    return {
      value,
      queue: opened.queue,
      server: opened.endpoint.label,
      flags: opened.value.flags,
      get settled() {
        return state
      },
      close: () => settleOnce('close'),
      abort: () => settleOnce('abort'),
    }
  }
}

/** Sleep that an abort ends early (the caller checks the signal afterwards). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
