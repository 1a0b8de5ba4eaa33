/**
 * The dispatcher: commands in, engine calls out. It knows no bytes and no sockets (Kestrel's
 * KestrelHandler). Each connection gets a Session, whatever protocol it speaks; the protocol
 * handlers (text, meta, binary) call these methods with parsed arguments and encode the results.
 *
 * Completion callbacks may run synchronously or later (journal write, fsync, blocking get), and
 * always exactly once. A handler keeps its replies in command order with an Outbox.
 */
import type { StarlingError } from './errors.js'
import type { GetOptions } from './protocol/keyOptions.js'

export interface DeliveredItem {
  data: Buffer
  flags: number
  /** A unique id for `gets` / binary CAS fields (the item's sequence number; never 0). */
  cas: number
}

export type Done = (err: StarlingError | null) => void
export type GetDone = (err: StarlingError | null, item: DeliveredItem | null) => void

export interface Session {
  /**
   * Enqueue. `data` is only valid during the call (it may be a view of the input buffer): the
   * session copies what it keeps. `exptime` is memcached's: 0 never, <= 30 days relative seconds, else Unix time, < 0 expired. */
  set(queue: string, flags: number, exptime: number, data: Buffer, done: Done): void
  /** Dequeue (or peek/open/close/abort, per options). `null` item = empty (after waiting, if asked). */
  get(queue: string, options: GetOptions, done: GetDone): void
  /** Drop the queue, its items and its journal. `existed` false = NOT_FOUND. */
  delete(queue: string, done: (err: StarlingError | null, existed: boolean) => void): void
  /** Discard the queue's items, keep the queue. */
  flush(queue: string, done: Done): void
  /** Starling compatibility: clears every queue only when enabled in config, else a no-op. */
  flushAll(done: Done): void
  /** Ordered `[name, value]` pairs: server fields then per-queue fields (DESIGN §7). */
  stats(): Array<[string, string]>
  /** Per-queue subset for `stats <queue>` / binary STAT with a key; `null` if no such queue. */
  queueStats(queue: string): Array<[string, string]> | null
  version(): string
  verbosity(level: number): void
  /** Start a clean shutdown if enabled in config; false = refused. */
  shutdown(): boolean

  /** Authentication (SASL PLAIN, or the text-protocol `set` convention). */
  readonly authRequired: boolean
  readonly authenticated: boolean
  /** Text/meta commands allowed without auth (auth.allow_text_unauthenticated). */
  readonly textAllowedUnauthenticated: boolean
  saslMechanisms(): string[]
  /** Returns true and marks the session authenticated on success. */
  authenticate(mechanism: string, payload: Buffer): boolean

  /** Account bytes for stats (bytes_read / bytes_written). */
  countBytes(read: number, written: number): void
  /** Connection closed: abort open reads, cancel waiters. Idempotent. */
  close(): void
}
