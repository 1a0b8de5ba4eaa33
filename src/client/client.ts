/**
 * StarlingClient: Starling's Ruby client API in TypeScript, plus Kestrel's reliable reads.
 *
 * This file is the public surface. Several servers are used Starling's way (cluster.ts): each set
 * goes to one server, reads cycle through all of them. Reads that wait are made as open reads
 * (openRead.ts), so an item handed over just as the caller gave up is put back, not lost.
 */
import type { ValueReply } from './connection.js'
import { StarlingClientError } from './errors.js'
import { checkQueueName, encodeLine, encodeSet, getKey } from './protocol.js'
import { SerializerRegistry, type Serializer } from './serializers.js'
import { parseStats, queueStats, type ServerStats } from './stats.js'
import { Poller } from './poller.js'
import { Cluster } from './cluster.js'
import { OpenReads } from './openRead.js'
import {
  CLIENT_DEFAULTS,
  type OpenOptions,
  type PollHandler,
  type PollOptions,
  type ReadOptions,
  type ReliableItem,
  type ResolvedClientOptions,
  type SetOptions,
  type StarlingClientOptions,
  type WaitOptions,
} from './types.js'

export class StarlingClient {
  readonly servers: readonly string[]
  private readonly cluster: Cluster
  private readonly openReads: OpenReads
  private readonly options: ResolvedClientOptions
  private readonly serializers: SerializerRegistry
  private readonly writeSerializer: Serializer

  constructor(servers: string | readonly string[] = '127.0.0.1:22122', options: StarlingClientOptions = {}) {
    const list = typeof servers === 'string' ? servers.split(',').filter((s) => s.trim() !== '') : [...servers]
    if (list.length === 0) throw new StarlingClientError('BAD_OPTION', 'no servers given')
    const merged = { ...CLIENT_DEFAULTS }
    for (const [k, v] of Object.entries(options)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v
    this.options = merged
    this.serializers = new SerializerRegistry(options.serializers)
    this.writeSerializer = this.serializers.resolve(merged.serializer)
    this.cluster = new Cluster(list, merged)
    this.servers = this.cluster.labels
    this.openReads = new OpenReads(this.cluster, merged, (value, opts) => this.decode(value, opts))
  }

  get closed(): boolean {
    return this.cluster.closed
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
    // Try the chosen server, then the others — but only while the command surely never reached a
    // server: once it may have been stored, a retry could store it twice.
    const sweep = this.cluster.sweep()
    const stored = await sweep.first(
      this.cluster.setOrder(),
      async (endpoint) => {
        const reply = await endpoint.shared().request(command, 'line', this.options.timeoutMs)
        if (reply !== 'STORED') throw new StarlingClientError('PROTOCOL', `${endpoint.label}: unexpected reply to set: ${reply}`)
        return true
      },
      (err) => !err.sent,
    )
    if (!stored) sweep.requireAnswer()
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
  async get<T = unknown>(queue: string, options: WaitOptions = {}): Promise<T | undefined> {
    this.checkOpen()
    checkQueueName(queue)
    options.signal?.throwIfAborted()
    const timeoutMs = options.timeoutMs ?? Infinity
    const found = await this.fetchRaw(queue, queue)
    if (found !== undefined) return this.decode(found, options) as T
    if (timeoutMs <= 0) return undefined
    const opened = await this.openReads.wait([queue], timeoutMs, options.signal)
    if (opened === undefined) return undefined
    // The item is ours: confirm it before decoding, so a decode error does not leave it open.
    await this.openReads.settle(opened, 'close')
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
    const opened = await this.openReads.first([queue], options.timeoutMs ?? 0, options.signal)
    return opened === undefined ? undefined : this.openReads.reliableItem<T>(opened, options)
  }

  /**
   * Take from the first non-empty queue of `queues` (highest priority first), as an open read,
   * waiting up to `timeoutMs`. Used by poll(); public for callers who run their own loop.
   */
  async openAny<T = unknown>(queues: readonly string[], options: OpenOptions = {}): Promise<ReliableItem<T> | undefined> {
    this.checkOpen()
    for (const q of queues) checkQueueName(q)
    options.signal?.throwIfAborted()
    const opened = await this.openReads.first(queues, options.timeoutMs ?? 0, options.signal)
    return opened === undefined ? undefined : this.openReads.reliableItem<T>(opened, options)
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
    const onValue = async (value: ValueReply): Promise<void> => {
      count++
      if (onItem === undefined) return
      try {
        await onItem(this.decode(value, options) as T)
      } catch (err) {
        firstError ??= err
      }
    }
    await this.cluster.drain(command, this.options.timeoutMs, onValue, () => firstError === undefined)
    if (firstError !== undefined) throw firstError
    return count
  }

  /** Delete a queue (items and journal) on every server; true if any server had it. */
  async delete(queue: string): Promise<boolean> {
    this.checkOpen()
    checkQueueName(queue)
    const command = encodeLine(`delete ${queue}`)
    const replies = await this.cluster.onEveryServer((conn) => conn.request(command, 'line', this.options.timeoutMs))
    return Object.values(replies).some((r) => r === 'DELETED')
  }

  /** Parsed `stats` of every reachable server, keyed by `host:port`. */
  async stats(): Promise<Record<string, ServerStats>> {
    this.checkOpen()
    const command = encodeLine('stats')
    const replies = await this.cluster.onEveryServer((conn) => conn.request(command, 'stats', this.options.timeoutMs))
    const out: Record<string, ServerStats> = {}
    for (const [server, pairs] of Object.entries(replies)) out[server] = parseStats(pairs)
    return out
  }

  /** `version` of every reachable server, keyed by `host:port`. */
  async version(): Promise<Record<string, string>> {
    this.checkOpen()
    const command = encodeLine('version')
    const replies = await this.cluster.onEveryServer((conn) => conn.request(command, 'line', this.options.timeoutMs))
    const out: Record<string, string> = {}
    for (const [server, line] of Object.entries(replies)) out[server] = line.replace(/^VERSION /, '')
    return out
  }

  /** Close every connection. Waiting gets and open() calls end with a CLOSED error. */
  async close(): Promise<void> {
    this.cluster.close()
  }

  // ---- internals -----------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new StarlingClientError('CLOSED', 'client closed')
  }

  private decode(value: ValueReply, options: ReadOptions): unknown {
    const forced = options.serializer === undefined ? undefined : this.serializers.resolve(options.serializer)
    return this.serializers.decode(value.data, value.flags, forced)
  }

  /** A plain (non-waiting) get of `key` on each server in turn; the first item found. */
  private async fetchRaw(queue: string, key: string): Promise<ValueReply | undefined> {
    const command = encodeLine(`get ${key}`)
    const sweep = this.cluster.sweep(`no server available for ${queue}`)
    const found = await sweep.first(this.cluster.readOrder(), async (endpoint) => {
      const values = await endpoint.shared().request(command, 'values', this.options.timeoutMs)
      return values[0]
    })
    if (found === undefined) sweep.requireAnswer()
    return found
  }
}
