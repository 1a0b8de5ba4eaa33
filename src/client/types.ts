/**
 * The client's public option and result types, apart from the code that uses them so that the
 * client, its open-read machinery and the poller can all import them without importing each other.
 */
import type { Serializer, SerializerName } from './serializers.js'

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

/** The one place for the client's defaults. */
export const CLIENT_DEFAULTS = {
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

export type ResolvedClientOptions = typeof CLIENT_DEFAULTS

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

/** A read that may wait for an item: how long, and a signal that ends the wait. */
export interface WaitOptions extends ReadOptions {
  /** How long to wait for an item, ms; default: until one comes. 0 = don't wait (as fetch). */
  timeoutMs?: number
  signal?: AbortSignal
}

/** @deprecated The old name of WaitOptions (it clashed with the server's key options). */
export type GetOptions = WaitOptions

export interface OpenOptions extends WaitOptions {}

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

export type PollHandler<T> = (value: T, item: ReliableItem<T>) => unknown

export interface PollOptions extends ReadOptions {
  /** Items handled at once (default 1). */
  concurrency?: number
  /** How long one server-side wait lasts when every queue is empty, ms (default 1000). */
  idleTimeoutMs?: number
  /** End each worker when a whole idle wait brings nothing (for batch jobs). Default false. */
  stopWhenIdle?: boolean
  /** Stop when this signal aborts. */
  signal?: AbortSignal
  /** Process signals that stop the poller gracefully (default ['SIGTERM']; [] for none). */
  stopOnSignals?: NodeJS.Signals[]
  /** Called with handler errors (and the item, handed back) and connection errors. Default: stderr. */
  onError?: (err: unknown, item?: ReliableItem<unknown>) => void
}

/** What a Poller needs from the client: taking from a list of queues, and whether it is closed. */
export interface OpenAnySource {
  readonly closed: boolean
  openAny<T = unknown>(queues: readonly string[], options?: OpenOptions): Promise<ReliableItem<T> | undefined>
}
