/**
 * The set of queues (Kestrel's QueueCollection): creates a queue on first use, replays journals at
 * start, applies per-queue settings, copies items to fanout children (`parent+child`), moves expired
 * items (`expire_to`), and keeps the server-wide counters. Operations on a queue that is still
 * loading, being flushed or being deleted wait for it, in order.
 */
import type { ServerConfig } from '../config.js'
import { queueSettings } from '../config.js'
import { StarlingError } from '../errors.js'
import type { EventLogger } from '../logger.js'
import type { JournalFactory } from '../journal/types.js'
import type { QueueReadOptions, ReplyFrame } from './requests.js'
import type { Consumer } from './consumer.js'
import type { QueueItem } from './item.js'
import { SortedNames } from './sortedNames.js'
import { PersistentQueue, type ItemCallback, type MemoryGate, type QueueEvents } from './persistentQueue.js'
import { collectGarbage } from './reclaim.js'
import { syncSpoolForClose } from './closeSync.js'

/** Runs with the queue, or with null and the reason there is none. */
type QueueOp = ((queue: PersistentQueue | null, err?: StarlingError) => void) & {
  /** A whole-queue operation (delete, flush) that finds its queue deleted starts over with this. */
  retry?: () => void
}

interface QueueEntry {
  queue: PersistentQueue | null
  /** Operations waiting for the queue to be ready (loading, flushing, deleting). */
  waiting: QueueOp[] | null
}

export interface CollectionCounters {
  cmdGet: number
  cmdSet: number
  getHits: number
  getMisses: number
}

const FANOUT_SEPARATOR = '+'
const SWEEP_INTERVAL_MS = 1000

function isFanoutChild(name: string): boolean {
  const i = name.indexOf(FANOUT_SEPARATOR)
  return i > 0 && i < name.length - 1
}

/**
 * Does a read of a name that has no queue create one? Only a fanout child (Kestrel's rule) and a
 * get that waits (`/t=`; not a peek, close or abort, which never wait) while under max_queues.
 */
function readCreatesQueue(name: string, o: QueueReadOptions, refused: boolean): boolean {
  if (isFanoutChild(name)) return !refused
  return o.timeoutMs > 0 && !o.peek && !o.abort && !(o.close && !o.open) && !refused
}

export class QueueCollection {
  private readonly slots = new Map<string, QueueEntry>()
  /** Deleted queues whose files are still being removed: a new queue of that name opens after. */
  private readonly removing = new Map<string, Promise<void>>()
  private readonly names = new SortedNames((n) => this.slots.has(n))
  /** parent name → names of its fanout children. */
  private readonly children = new Map<string, Set<string>>()
  readonly memory: MemoryGate
  readonly counters: CollectionCounters = { cmdGet: 0, cmdSet: 0, getHits: 0, getMisses: 0 }
  private readonly events: QueueEvents
  private sweepTimer: NodeJS.Timeout | null = null
  private closing = false
  /** Told of each deleted queue (the server's memory reclaimer; never on a set's or get's path). */
  onQueueDeleted: () => void = () => {}

  constructor(
    private config: ServerConfig,
    private readonly journals: JournalFactory,
    private readonly log: EventLogger,
  ) {
    this.memory = { used: 0, limit: config.maxMemoryTotal }
    this.events = {
      got: (hit) => (hit ? this.counters.getHits++ : this.counters.getMisses++),
      expired: (queue, item) => this.moveExpired(queue, item),
    }
  }

  /** Replay every journal in the spool (and the queues named in config) before serving. */
  async load(): Promise<{ queues: number; items: number; durationMs: number; gcMs: number }> {
    const started = Date.now()
    const names = new Set(await this.journals.listQueues(this.config.queuePath))
    for (const name of Object.keys(this.config.queues)) names.add(name)
    // Two at a time: replay is mostly sequential reads plus parsing; the parsing is ours.
    const list = [...names]
    let items = 0
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < list.length) {
        const name = list[next++]!
        const queue = await this.open(name)
        items += queue.length + queue.openCount
        // Let the event loop breathe between queues (the HTTP /healthz answers 503 meanwhile).
        await new Promise((r) => setImmediate(r))
      }
    }
    await Promise.all([worker(), worker()])
    // A queue whose journal came back empty and fileless (a delete cut short) is not kept.
    for (const name of list) if (!(name in this.config.queues)) this.reapIfBlank(name)
    this.names.list() // sort every name now, not in the first `stats` (which holds the event loop)
    // Replay's read buffers are dead now, but an idle server may run no full GC for hours (reclaim.ts)
    const gcStarted = performance.now()
    if (list.length > 0) collectGarbage()
    const gcMs = performance.now() - gcStarted
    if (this.config.maxQueues > 0 && this.slots.size > this.config.maxQueues) {
      this.log.warn({ queues: this.slots.size, maxQueues: this.config.maxQueues }, 'more queues in the spool than max_queues: all kept, no new ones until some are deleted')
    }
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS)
    this.sweepTimer.unref()
    return { queues: list.length, items, durationMs: Date.now() - started, gcMs: Math.round(gcMs) }
  }

  /** Apply new settings (SIGHUP reload) to existing queues. */
  reconfigure(config: ServerConfig): void {
    this.config = config
    this.memory.limit = config.maxMemoryTotal
    for (const [name, slot] of this.slots) {
      if (slot.queue) slot.queue.settings = queueSettings(config, name)
    }
  }

  /** Loaded queues, sorted by name (cheap to call again: see SortedNames). */
  get queueNames(): string[] {
    return this.names.list().filter((n) => this.slots.get(n)!.queue !== null)
  }

  /** Each loaded queue in name order, one lookup per name (a stats snapshot over 100k queues). */
  forEachQueue(fn: (name: string, queue: PersistentQueue) => void): void {
    for (const name of this.names.list()) {
      const queue = this.slots.get(name)?.queue
      if (queue) fn(name, queue)
    }
  }

  /** Queues known (loaded, loading or being deleted). */
  get size(): number {
    return this.slots.size
  }

  /** A loaded queue, without creating it. */
  peekQueue(name: string): PersistentQueue | null {
    return this.slots.get(name)?.queue ?? null
  }

  // ---------------------------------------------------------------------------------------------
  // Commands

  set(name: string, data: Buffer, flags: number, expiresAt: number, done: (err: StarlingError | null) => void): void {
    this.counters.cmdSet++
    if (this.refusesNewQueue(name)) return done(new StarlingError('TOO_MANY_QUEUES', 'too many queues'))
    const addedAt = Date.now()
    // One copy, here: `data` may be a view of a connection's input buffer, and the queue may still
    // be loading. Fanout children share the copy (nobody modifies an item's bytes).
    const owned = Buffer.from(data)
    this.withQueue(name, (queue, err) => {
      if (!queue) return done(err ?? new StarlingError('IO', 'queue unavailable'))
      queue.add(owned, flags, expiresAt, addedAt, done)
      const kids = this.children.get(name)
      if (kids) for (const child of kids) this.copyToChild(child, owned, flags, expiresAt, addedAt)
    })
  }

  /** `frame`: lay a plain get's reply out around the payload (requests.ts, ReplyFrame). */
  get(name: string, consumer: Consumer, options: QueueReadOptions, done: ItemCallback, frame?: ReplyFrame): void {
    this.counters.cmdGet++
    this.read(name, consumer, options, done, frame)
  }

  private read(name: string, consumer: Consumer, options: QueueReadOptions, done: ItemCallback, frame?: ReplyFrame): void {
    const slot = this.slots.get(name)
    if (slot === undefined && !readCreatesQueue(name, options, this.refusesNewQueue(name))) {
      // nothing to read, and nothing created (docs/architecture.md, "The path of one `get`")
      if (!options.abort && !(options.close && !options.open)) this.counters.getMisses++
      return done(null, null)
    }
    // The common get (queue loaded, nothing queued before it, no wait): no closures (the hot path).
    if (slot?.queue && slot.waiting === null && options.timeoutMs <= 0 && !this.closing) {
      return slot.queue.get(consumer, options, done, frame)
    }
    // A blocking get made the queue to wait on: it goes again when the wait ends, if still blank.
    const finish: ItemCallback = options.timeoutMs > 0 ? (err, item) => (done(err, item), this.reapIfBlank(name)) : done
    const op: QueueOp = (queue, err) => {
      if (!queue) return finish(err?.code === 'SHUTTING_DOWN' ? null : (err ?? null), null)
      queue.get(consumer, options, finish, frame, true)
    }
    // Deleted by an earlier command while this read waited: as if it came after (creates nothing).
    op.retry = () => this.read(name, consumer, options, done, frame)
    this.withQueue(name, op)
  }

  /** Drop a queue and its files. Resolves false if it did not exist. */
  delete(name: string, done: (err: StarlingError | null, existed: boolean) => void): void {
    const slot = this.slots.get(name)
    if (!slot) return done(null, false)
    this.exclusive(
      name,
      async (queue) => {
        this.slots.delete(name)
        this.names.remove()
        this.forgetChild(name)
        this.onQueueDeleted()
        const removed = queue.destroy()
        const settled = removed.catch(() => {}) // a failure is the delete's to report, not the next open's
        this.removing.set(name, settled)
        void settled.then(() => this.removing.get(name) === settled && this.removing.delete(name))
        await removed
      },
      (err) => done(err, true),
      // Deleted by an earlier command while this one waited: as if sent after it (NOT_FOUND).
      () => this.delete(name, done),
    )
  }

  flush(name: string, done: (err: StarlingError | null) => void): void {
    if (!this.slots.has(name)) return done(null)
    this.exclusive(name, (queue) => queue.flush(), done, () => this.flush(name, done))
  }

  /** Empty every queue (flush_all when enabled). */
  flushAll(done: (err: StarlingError | null) => void): void {
    const names = [...this.slots.keys()]
    let left = names.length
    let failure: StarlingError | null = null
    if (left === 0) return done(null)
    for (const name of names) {
      this.flush(name, (err) => {
        failure ??= err
        if (--left === 0) done(failure)
      })
    }
  }

  /** Stop: close every journal (sync, close files). */
  async close(): Promise<void> {
    this.closing = true
    if (this.sweepTimer) clearInterval(this.sweepTimer)
    const queues = [...this.slots.values()].map((s) => s.queue).filter((q): q is PersistentQueue => q !== null)
    const spoolSynced = syncSpoolForClose(queues, this.journals, this.config.queuePath, this.log)
    // Every queue gets its chance to sync and close, whatever happened to the others.
    const results = await Promise.allSettled(queues.map((q) => q.close(spoolSynced)))
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ queue: queues[i]!.name, err: String((r.reason as Error)?.message ?? r.reason) }] : []))
    if (failed.length === 0) return
    // one line for the lot: a spool of 100k queues must not log 100k lines
    this.log.error({ failed: failed.length, first: failed.slice(0, 5) }, 'queues could not be synced and closed at shutdown')
    throw new StarlingError('IO', `${failed.length} queue(s) could not be synced and closed: ${failed[0]!.err}`)
  }

  // ---------------------------------------------------------------------------------------------
  // Queue lifecycle

  /** Run `fn` with the queue (created on first use), in arrival order. */
  private withQueue(name: string, fn: QueueOp): void {
    if (this.closing) return fn(null, new StarlingError('SHUTTING_DOWN', 'server is shutting down'))
    const slot = this.slots.get(name)
    if (slot?.queue && slot.waiting === null) return fn(slot.queue)
    if (slot) {
      slot.waiting!.push(fn)
      return
    }
    this.slots.set(name, { queue: null, waiting: [fn] })
    this.names.add(name)
    this.open(name).catch(() => {
      /* reported by open(), and to every waiting operation */
    })
  }

  /**
   * Run an async whole-queue operation with the queue to itself; later operations wait. `retry`
   * runs instead when an earlier operation deleted the queue while this one waited.
   */
  private exclusive(
    name: string,
    op: (queue: PersistentQueue) => Promise<void>,
    done: (err: StarlingError | null) => void,
    retry: () => void,
  ): void {
    const run: QueueOp = (queue, cause) => {
      const slot = this.slots.get(name)
      if (!queue || !slot || slot.queue !== queue) {
        // No queue: it could not be opened (report why), or it is gone (start over).
        if (cause && cause.code !== 'SHUTTING_DOWN') return done(cause)
        return queue || !cause ? retry() : done(null)
      }
      slot.waiting = []
      op(queue).then(
        () => done(null),
        (err: Error) => {
          this.log.error({ queue: name, err: err.message }, 'queue operation failed')
          done(new StarlingError('IO', err.message))
        },
      ).finally(() => {
        const waiting = slot.waiting ?? []
        slot.waiting = null
        this.runWaiting(name, slot, waiting)
      })
    }
    run.retry = retry
    this.withQueue(name, run)
  }

  /**
   * Hand a slot's waiting operations their queue, in order. One of them may start a whole-queue
   * operation (flush, delete): the rest then wait again, behind it — they must not see the queue
   * it is emptying or destroying. Operations on a queue deleted meanwhile start over on a new one.
   */
  private runWaiting(name: string, slot: QueueEntry, waiting: QueueOp[], cause?: StarlingError): void {
    for (let i = 0; i < waiting.length; i++) {
      const fn = waiting[i]!
      if (this.slots.get(name) !== slot && slot.queue !== null) {
        if (fn.retry) fn.retry()
        else this.withQueue(name, fn)
      } else if (slot.waiting !== null) {
        slot.waiting.unshift(...waiting.slice(i))
        return
      } else {
        fn(slot.queue, cause)
      }
    }
  }

  private async open(name: string): Promise<PersistentQueue> {
    let slot = this.slots.get(name)
    if (!slot) {
      slot = { queue: null, waiting: [] }
      this.slots.set(name, slot)
      this.names.add(name)
    }
    const settings = queueSettings(this.config, name)
    let queue: PersistentQueue | null = null
    let cause: StarlingError | undefined
    try {
      // A queue deleted just before: its files go first (a first write creates the file anew).
      const removing = this.removing.get(name)
      if (removing) await removing
      const { journal, replay } = await this.journals.open({
        dir: this.config.queuePath,
        queue: name,
        sync: settings.sync,
        maxJournalSize: settings.maxJournalSize,
        memoryBudgetBytes: 0, // the queue reads its items in itself, packed (no object per item)
      })
      queue = new PersistentQueue(name, settings, journal, replay, this.memory, this.events)
      if (replay.records > 0 || replay.truncatedBytes > 0) {
        // one line per queue at debug: a spool of 100k queues must not log 100k lines at start
        this.log.debug(
          { queue: name, items: queue.length, records: replay.records, truncatedBytes: replay.truncatedBytes, durationMs: replay.durationMs },
          'journal replayed',
        )
      }
      if (replay.truncatedBytes > 0) {
        this.log.warn({ queue: name, truncatedBytes: replay.truncatedBytes }, 'journal had a torn or corrupt tail; cut at the last good record')
      }
      this.registerChild(name)
      // Kestrel's rule: a fanout child exists (and gets copies) from its first use, restarts included
      if (isFanoutChild(name)) queue.persist()
      return queue
    } catch (err) {
      // Every operation waiting for this queue is told the real reason, not "shutting down".
      const code = (err as NodeJS.ErrnoException).code
      this.log.error({ queue: name, err: (err as Error).message }, 'cannot open queue journal')
      cause = new StarlingError('IO', `cannot open queue: ${code ?? (err as Error).message}`, { cause: err })
      throw err
    } finally {
      const waiting = slot.waiting ?? []
      slot.queue = queue
      slot.waiting = null
      if (!queue) {
        this.slots.delete(name)
        this.names.remove()
      }
      this.runWaiting(name, slot, waiting, cause)
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Fanout and expiry

  /** Would a new queue named `name` go beyond max_queues? */
  private refusesNewQueue(name: string): boolean {
    const max = this.config.maxQueues
    return max > 0 && this.slots.size >= max && !this.slots.has(name)
  }

  /** Drop a queue that holds nothing and has no files (made by a read that waited). */
  private reapIfBlank(name: string): void {
    const slot = this.slots.get(name)
    const queue = slot?.queue
    if (!queue || slot.waiting !== null || !queue.isBlank || isFanoutChild(name)) return
    this.slots.delete(name)
    this.names.remove()
    queue.close().catch((err: Error) => this.log.warn({ queue: name, err: err.message }, 'closing an unused queue failed'))
  }

  private registerChild(name: string): void {
    const i = name.indexOf(FANOUT_SEPARATOR)
    if (i <= 0 || i === name.length - 1) return
    const parent = name.slice(0, i)
    let kids = this.children.get(parent)
    if (!kids) this.children.set(parent, (kids = new Set()))
    kids.add(name)
  }

  private forgetChild(name: string): void {
    const i = name.indexOf(FANOUT_SEPARATOR)
    if (i <= 0) return
    const kids = this.children.get(name.slice(0, i))
    kids?.delete(name)
    if (kids?.size === 0) this.children.delete(name.slice(0, i))
  }

  private copyToChild(child: string, data: Buffer, flags: number, expiresAt: number, addedAt: number): void {
    this.withQueue(child, (queue) => {
      queue?.add(data, flags, expiresAt, addedAt, (err) => {
        if (err) this.log.warn({ queue: child, err: err.message }, 'fanout copy refused')
      })
    })
  }

  private moveExpired(from: PersistentQueue, item: QueueItem): void {
    const target = from.settings.expireTo
    if (!target || target === from.name) return
    this.withQueue(target, (queue) => {
      queue?.add(item.data, item.flags, 0, Date.now(), (err) => {
        if (err) this.log.warn({ queue: target, from: from.name, err: err.message }, 'expire_to move refused')
      })
    })
  }

  private sweep(): void {
    const now = Date.now()
    for (const slot of this.slots.values()) slot.queue?.sweepExpired(now)
  }
}
