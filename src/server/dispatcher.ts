/**
 * The dispatcher: commands in, engine calls out. It knows no bytes and no sockets (Kestrel's
 * KestrelHandler). Each connection gets a Session, whatever protocol it speaks; the protocol
 * handlers (text, meta, binary) call these methods with parsed arguments and encode the results.
 *
 * Completion callbacks may run synchronously or later (journal write, fsync, blocking get), and
 * always exactly once. A handler keeps its replies in command order with an Outbox.
 */
import { scrypt, timingSafeEqual } from 'node:crypto'
import type { AuthConfig } from './config.js'
import { Consumer } from './engine/consumer.js'
import { expiresAtFromExptime } from './engine/item.js'
import type { QueueCollection } from './engine/queueCollection.js'
import type { QueueReadOptions, ReplyFrame } from './engine/requests.js'
import { StarlingError } from './errors.js'
import { queueStatPairs, resetCounters, takeSnapshot, type StatBatches, type StatsSources } from './stats.js'

export interface DeliveredItem {
  data: Buffer
  flags: number
  /** A unique id for `gets` / binary CAS fields (the item's sequence number; never 0). */
  readonly cas: number
  /** When the item expires, in ms since the epoch; absent or 0 = never (meta `mg ... t`). */
  expiresAt?: number
  /** The reply buffer `data` is a view of, when the get passed a ReplyFrame (engine/requests.ts). */
  framed?: Buffer | null
}

export type Done = (err: StarlingError | null) => void
export type AuthDone = (ok: boolean, close: boolean) => void
export type GetDone = (err: StarlingError | null, item: DeliveredItem | null) => void

export interface Session {
  /**
   * Enqueue. `data` is only valid during the call (it may be a view of the input buffer): the
   * session copies what it keeps. `exptime` is memcached's: 0 never, <= 30 days relative seconds, else Unix time, < 0 expired. */
  set(queue: string, flags: number, exptime: number, data: Buffer, done: Done): void
  /** Dequeue (or peek/open/close/abort, per options). `null` item = empty (after waiting, if asked). */
  get(queue: string, options: QueueReadOptions, done: GetDone, frame?: ReplyFrame): void
  /** Drop the queue, its items and its journal. `existed` false = NOT_FOUND. */
  delete(queue: string, done: (err: StarlingError | null, existed: boolean) => void): void
  /** Discard the queue's items, keep the queue. */
  flush(queue: string, done: Done): void
  /** Starling compatibility: clears every queue only when enabled in config, else a no-op. */
  flushAll(done: Done): void
  /**
   * Ordered `[name, value]` pairs, server fields then per-queue fields (docs/architecture.md, "Stats"), in batches: the
   * numbers are taken at the call, the text is made as the batches are read.
   */
  stats(): StatBatches
  /** `stats reset`: zero the server's resettable counters (memcached's set). */
  resetStats(): void
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
  /**
   * Check SASL PLAIN credentials; hashing runs off the event loop, so `done` comes later. On
   * success the session is authenticated. `close`: too many failed logins, end the connection.
   */
  authenticate(mechanism: string, payload: Buffer, done: AuthDone): void

  /** Account bytes for stats (bytes_read / bytes_written). */
  countBytes(read: number, written: number): void
  /** Connection closed: abort open reads, cancel waiters. Idempotent. */
  close(): void
}

// -------------------------------------------------------------------------------------------------
// The implementation: one Dispatcher per server, one DispatcherSession per connection.


export interface DispatcherOptions {
  collection: QueueCollection
  stats: StatsSources
  version: string
  auth: AuthConfig | null
  enableFlushAll: boolean
  enableShutdown: boolean
  /** Begin a clean shutdown (the `shutdown` command, when enabled). */
  requestShutdown: () => void
  /** Change the log level (`verbosity`). */
  setVerbosity: (level: number) => void
  /** Where failed logins are reported. */
  log?: { warn(obj: object, msg: string): void }
}

/**
 * Check a password against a plain value or `scrypt$<salt-hex>$<hash-hex>`. The scrypt hash runs on
 * the thread pool: a burst of wrong logins must not stall every other client (issue 12).
 */
export function passwordMatches(stored: string, given: string, done: (ok: boolean) => void): void {
  const parts = stored.split('$')
  if (parts.length === 3 && parts[0] === 'scrypt') {
    const salt = Buffer.from(parts[1]!, 'hex')
    const expected = Buffer.from(parts[2]!, 'hex')
    if (expected.length === 0) return done(false)
    scrypt(given, salt, expected.length, (err, actual) => done(!err && timingSafeEqual(actual, expected)))
    return
  }
  const a = Buffer.from(stored)
  const b = Buffer.from(given)
  done(a.length === b.length && timingSafeEqual(a, b))
}

export class Dispatcher {
  constructor(readonly options: DispatcherOptions) {}

  /** `peer` (address:port) names the client in log lines. */
  createSession(peer = 'unknown'): Session {
    return new DispatcherSession(this.options, peer)
  }
}

class DispatcherSession implements Session {
  private readonly consumer = new Consumer()
  private authed = false
  private closed = false
  private loginFailures = 0

  /** `server`: what every session of the server shares (queues, stats, auth, settings). */
  constructor(
    private readonly server: DispatcherOptions,
    private readonly peer: string,
  ) {}

  set(queue: string, flags: number, exptime: number, data: Buffer, done: Done): void {
    if (this.closed) return done(new StarlingError('SHUTTING_DOWN', 'connection closed'))
    this.consumer.endPolls()
    this.server.collection.set(queue, data, flags >>> 0, expiresAtFromExptime(exptime, Date.now()), done)
  }

  get(queue: string, options: QueueReadOptions, done: GetDone, frame?: ReplyFrame): void {
    if (this.closed) return done(null, null)
    this.consumer.endPolls()
    // the engine's item is a DeliveredItem (cas is its seq): no wrapper object or closure per get
    this.server.collection.get(queue, this.consumer, options, done, frame)
  }

  delete(queue: string, done: (err: StarlingError | null, existed: boolean) => void): void {
    this.consumer.endPolls()
    this.server.collection.delete(queue, done)
  }

  flush(queue: string, done: Done): void {
    this.consumer.endPolls()
    this.server.collection.flush(queue, done)
  }

  flushAll(done: Done): void {
    this.consumer.endPolls()
    if (!this.server.enableFlushAll) return done(null)
    this.server.collection.flushAll(done)
  }

  stats(): StatBatches {
    this.consumer.endPolls()
    return takeSnapshot(this.server.stats)
  }

  resetStats(): void {
    resetCounters(this.server.stats)
  }

  queueStats(queue: string): Array<[string, string]> | null {
    this.consumer.endPolls()
    const q = this.server.collection.peekQueue(queue)
    return q ? queueStatPairs(q) : null
  }

  version(): string {
    return this.server.version
  }

  verbosity(level: number): void {
    this.server.setVerbosity(level)
  }

  shutdown(): boolean {
    if (!this.server.enableShutdown) return false
    setImmediate(this.server.requestShutdown)
    return true
  }

  get authRequired(): boolean {
    return this.server.auth !== null
  }

  get authenticated(): boolean {
    return this.server.auth === null || this.authed
  }

  get textAllowedUnauthenticated(): boolean {
    return this.server.auth?.allowTextUnauthenticated ?? true
  }

  saslMechanisms(): string[] {
    return ['PLAIN']
  }

  authenticate(mechanism: string, payload: Buffer, done: AuthDone): void {
    const auth = this.server.auth
    if (!auth) return done(true, false)
    // RFC 4616: [authzid] NUL authcid NUL passwd
    const first = payload.indexOf(0)
    const second = first < 0 ? -1 : payload.indexOf(0, first + 1)
    const user = second < 0 ? '' : payload.subarray(first + 1, second).toString('utf8')
    const finish = (ok: boolean): void => {
      this.authed = ok
      if (ok) return done(true, false)
      this.loginFailures++
      const close = this.loginFailures >= auth.maxLoginFailures
      // The user and where from, never the password.
      this.server.log?.warn({ user, peer: this.peer, failures: this.loginFailures, closing: close }, 'login failed')
      done(false, close)
    }
    if (mechanism.toUpperCase() !== 'PLAIN' || second < 0) return finish(false)
    const password = payload.subarray(second + 1).toString('utf8')
    const stored = Object.prototype.hasOwnProperty.call(auth.users, user) ? auth.users[user] : undefined
    if (stored === undefined) return finish(false)
    passwordMatches(stored, password, finish)
  }

  countBytes(read: number, written: number): void {
    this.server.stats.server.bytesRead += read
    this.server.stats.server.bytesWritten += written
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.consumer.release()
  }
}
