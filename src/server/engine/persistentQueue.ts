/**
 * One queue (Kestrel's PersistentQueue): the items in memory, the ones left on disk beyond the
 * memory budget (read-behind), the open reads, the blocked readers, the limits, and expiry.
 * Every change goes through the journal; this class decides what happens, the journal makes it
 * durable. No sockets, no protocol bytes.
 *
 * Order: items are always in seq order. A get's reply never carries an item whose ADD record the
 * OS does not have yet (`kill -9` cannot lose it; pendingSets.ts); the `STORED` reply waits for
 * `onDurable` (the fsync, under `sync: always`).
 */
import type { QueueSettings } from '../config.js'
import { StarlingError } from '../errors.js'
import type { JournalItem, QueueJournal, ReplayResult } from '../journal/types.js'
import type { QueueReadOptions, ReplyFrame } from './requests.js'
import { Consumer, type ConsumerHost } from './consumer.js'
import { parkPoll, pollMayWait } from './emptyPoll.js'
import { holdUntil } from './heldReply.js'
import { isExpired, PendingItem, type QueueItem } from './item.js'
import { ItemDeque } from './itemDeque.js'
import { PendingSets } from './pendingSets.js'
import { ITEM_OVERHEAD_BYTES } from './itemStore.js'
import type { MemoryGate, QueueEvents } from './queueHooks.js'
import { Waiter, WaitQueue } from './waitQueue.js'

export type ItemCallback = (err: StarlingError | null, item: QueueItem | null) => void

export type { MemoryGate, QueueEvents } from './queueHooks.js'

/** Never written: a queue makes its own map on its first open read. */
const NO_OPEN_ITEMS = new Map<number, { item: QueueItem; consumer: Consumer }>()

/** Read back from disk in batches of about this many bytes (at least). */
const READ_BEHIND_BATCH_MIN = 1 << 20
// ...and at most: a batch is a synchronous read, crc check and copy that holds every connection
// (16 MiB took tens of ms); within itemStore's spare chunks (8 MiB) it reuses the drain's chunks.
const READ_BEHIND_BATCH_MAX = 2 << 20

export class PersistentQueue extends PendingSets implements ConsumerHost {
  // Items in memory, packed (itemDeque.ts); what they cost is charged to the memory gate.
  private readonly mem = new ItemDeque()
  private memCost = 0
  // Items on disk beyond the memory budget.
  private diskItems = 0
  private diskBytes = 0
  private readingBehind = false
  /** Newest seq whose ADD was written (read-behind never reads past it). */
  private lastWrittenSeq = 0
  private nextSeq: number
  /** Open reads: seq → (item, who holds it). */
  private openItems = NO_OPEN_ITEMS // made on the first open read (an empty Map costs ~180 B a queue)
  private waiters: WaitQueue<QueueItem> | undefined // made on the first wait (issue 17: 32 B a queue)
  private closed = false

  // Stats.
  totalItems = 0
  expiredItems = 0
  discardedItems = 0
  /** Items handed to readers (gets and opens; an aborted item counts again when re-read). */
  dequeuedItems = 0
  lastAgeMs = 0 // ms the last dequeued item had waited in the queue

  constructor(
    readonly name: string,
    public settings: QueueSettings,
    private readonly journal: QueueJournal,
    replay: ReplayResult,
    private readonly memory: MemoryGate,
    private readonly events: QueueEvents,
  ) {
    super()
    this.nextSeq = replay.nextSeq
    for (const item of replay.items) this.pushMem(item) // none when opened with memoryBudgetBytes 0
    this.diskItems = replay.diskItems
    this.diskBytes = replay.diskBytes
    if (replay.diskItems > 0) this.readingBehind = true
    this.lastWrittenSeq = replay.nextSeq - 1
    // Replay may leave every item on disk (no object per item, queueCollection): read up to the budget.
    const room = Math.min(this.settings.maxMemorySize, this.memory.limit - this.memory.used) - this.memCost
    if (this.readingBehind && room > 0) this.refill(room)
  }

  /** Items waiting to be read (open reads not included). */
  get length(): number {
    return this.mem.length + this.diskItems
  }

  /** Payload bytes waiting to be read. */
  get bytes(): number {
    return this.mem.bytes + this.diskBytes
  }

  get openCount(): number {
    return this.openItems.size
  }

  get waiterCount(): number {
    return this.waiters?.size ?? 0
  }

  get memoryItems(): number {
    return this.mem.length
  }

  /** What the items in memory cost: payload plus ITEM_OVERHEAD_BYTES each (the `mem_bytes` stat). */
  get memoryBytes(): number {
    return this.memCost
  }

  get journalSize(): number {
    return this.journal.sizeOnDisk
  }
  flushJournal(): void { if (!this.closed) this.journal.flushNow() } // stats: logsize counts earlier commands
  get owesCloseSync(): boolean { return !this.closed && this.journal.owesCloseSync } // shutdown: fsync or syncfs

  get journalRotations(): number {
    return this.journal.rotations
  }

  /** Nothing in it, nobody on it, no file: the queue can go without a trace. */
  get isBlank(): boolean {
    return this.length === 0 && this.openItems.size === 0 && this.waiterCount === 0 && this.pendingAdds === 0 && this.journal.sizeOnDisk === 0
  }

  /** Create the journal file now, even empty (a fanout child must outlive a restart). */
  persist(): void {
    this.journal.persist()
  }

  // ---------------------------------------------------------------------------------------------
  // Enqueue

  /**
   * Add an item. `data` becomes the queue's: the caller never changes it afterwards (the collection
   * made the one copy of a set's bytes, shared by fanout children). `done` runs when the item is
   * durable per the sync policy (the STORED reply).
   */
  add(data: Buffer, flags: number, expiresAt: number, addedAt: number, done: (err: StarlingError | null) => void): void {
    if (this.closed) return done(new StarlingError('SHUTTING_DOWN', 'queue closed'))
    if (data.length > this.settings.maxItemSize) {
      return done(new StarlingError('TOO_LARGE', 'object too large for cache'))
    }
    if (this.isFull(data.length)) {
      if (!this.settings.discardOldWhenFull) return done(new StarlingError('QUEUE_FULL', 'queue full'))
      while (this.isFull(data.length) && this.discardOldest()) {
        /* drop from the head until the new item fits */
      }
      if (this.isFull(data.length)) return done(new StarlingError('QUEUE_FULL', 'queue full'))
    }
    // kept until the write is done (then copied into the item store, or handed to a waiter); no
    // second copy here: a copy and an allocation per set (issue 13)
    const item = new PendingItem(this.nextSeq++, flags, expiresAt, addedAt, data)
    this.pushPending(item)
    this.journal.add(
      item,
      (err) => {
        this.pendingWritten(item, err !== null || this.closed)
        if (err || this.closed) return
        if (item.seq > this.lastWrittenSeq) this.lastWrittenSeq = item.seq
        if (item.taken === 0) this.accept(item)
        else this.totalItems++ // a get has it
      },
      (err) => done(err ? new StarlingError('IO', `journal write failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`) : null),
    )
  }

  private isFull(incoming: number): boolean {
    const { maxItems, maxSize } = this.settings
    if (maxItems > 0 && this.length + this.pendingAdds + this.openItems.size + 1 > maxItems) return true
    return maxSize > 0 && this.bytes + this.pendingBytes + incoming > maxSize
  }

  /** Drop the head item (discard_old_when_full). Returns false if there was nothing to drop. */
  private discardOldest(): boolean {
    const item = this.takeHead()
    if (!item) return false
    this.discardedItems++
    this.journal.remove(item.seq)
    return true
  }

  /** A written item becomes visible: straight to a waiter, or into memory, or left on disk. */
  private accept(item: QueueItem): void {
    this.totalItems++
    if (this.waiters !== undefined && this.waiters.size > 0 && this.length === 0) {
      if (isExpired(item, Date.now(), this.settings.maxAgeMs)) return this.expire(item)
      this.handTo(this.waiters.shift()!, item)
      return
    }
    const size = item.data.length
    const cost = size + ITEM_OVERHEAD_BYTES
    if (
      this.readingBehind ||
      this.memCost + cost > this.settings.maxMemorySize ||
      this.memory.used + cost > this.memory.limit
    ) {
      if (!this.readingBehind) {
        this.readingBehind = true
        this.journal.startReadBehind(item.seq)
      }
      this.diskItems++
      this.diskBytes += size
      return
    }
    this.pushMem(item)
  }

  // ---------------------------------------------------------------------------------------------
  // Dequeue

  /**
   * A get, with Kestrel's options: close confirms this consumer's open read, abort returns it,
   * peek looks, open reads tentatively, t= waits. `done` runs once, maybe later. `frame`: requests.ts.
   * `deferred`: run after the queue loaded, behind the connection's later commands (emptyPoll.ts). */
  get(consumer: Consumer, options: QueueReadOptions, done: ItemCallback, frame?: ReplyFrame, deferred = false): void {
    if (this.closed) return done(null, null)
    if (options.close) done = this.confirmOpenRead(consumer, done)
    if (options.abort) {
      this.abortOpenRead(consumer)
      return done(null, null)
    }
    if (options.close && !options.open) return done(null, null)
    if (options.open && (consumer.openReads.has(this) || consumer.opening.has(this))) {
      return done(new StarlingError('OPEN_READ_PENDING', 'an open read is already pending on this queue; close or abort it first'), null)
    }
    // Sets read ahead of this get (this turn) must be visible to it when nothing visible is ahead of
    // them: a plain get takes the oldest (no write of its own), any other writes the batch now.
    if (this.pendingAdds > 0 && this.length === 0) {
      // (blocked readers come first: the write hands them the sets)
      const taken = options.peek || options.open || (this.waiters?.size ?? 0) > 0 ? null : this.takePending(this.settings.maxAgeMs)
      if (taken !== null) return this.deliver(taken, consumer, false, done)
      this.journal.flushNow()
    }
    if (options.peek) {
      const head = this.peekHead()
      this.events.got(head !== null)
      return done(null, head)
    }
    const item = this.takeHead(options.open ? undefined : frame)
    if (item) return this.deliver(item, consumer, options.open, done)
    if (options.timeoutMs <= 0 || consumer.isReleased) {
      if (pollMayWait(this.journal, consumer, options.timeoutMs, deferred)) return this.wait(consumer, options, done, true)
      this.events.got(false)
      return done(null, null)
    }
    this.wait(consumer, options, done)
  }

  /** Block as a reader: until `timeoutMs`, or (`poll`) until the fsyncs in flight end (emptyPoll.ts). */
  private wait(consumer: Consumer, options: QueueReadOptions, done: ItemCallback, poll = false): void {
    const waiter: Waiter<QueueItem> = new Waiter<QueueItem>((served) => {
      consumer.waits.delete(waiter)
      if (options.open) consumer.opening.delete(this)
      if (!served || !waiter.value) {
        this.events.got(false)
        return done(null, null)
      }
      this.deliver(waiter.value, consumer, options.open, done)
    }, consumer)
    consumer.waits.set(waiter, this)
    if (options.open) consumer.opening.add(this)
    const waiters = (this.waiters ??= new WaitQueue<QueueItem>())
    if (poll) parkPoll(waiters, waiter, consumer, this.journal, this.settings.maxPollWaitMs)
    else waiters.add(waiter, options.timeoutMs, () => waiter.wake(false))
  }

  private handTo(waiter: Waiter<QueueItem>, item: QueueItem): void {
    waiter.value = item
    waiter.wake(true)
  }

  /** Serve blocked readers while there are items (after an abort, or a refill). */
  private serveWaiters(): void {
    while (this.waiters !== undefined && this.waiters.size > 0) {
      const item = this.takeHead()
      if (!item) return
      this.handTo(this.waiters.shift()!, item)
    }
  }

  cancelWait(waiter: Waiter): void {
    this.waiters?.remove(waiter as Waiter<QueueItem>)
  }

  private deliver(item: QueueItem, consumer: Consumer, open: boolean, done: ItemCallback): void {
    this.events.got(true)
    this.dequeuedItems++
    this.lastAgeMs = Math.max(0, Date.now() - item.addedAt)
    if (open) {
      if (consumer.isReleased) {
        // The connection went away while the item was on its way: it goes straight back.
        this.returnToQueue(item)
        return done(null, null)
      }
      if (this.openItems === NO_OPEN_ITEMS) this.openItems = new Map()
      this.openItems.set(item.seq, { item, consumer })
      consumer.openReads.set(this, item)
      return done(null, item)
    }
    // The reply waits for the REMOVE's write (a crash cannot resurrect what the client has); a failed
    // write still delivers (at least once), unless it carried the taken set's ADD (pendingSets.ts).
    this.journal.remove(item.seq, () => done(null, (item as PendingItem).taken === 2 ? null : item))
  }

  private confirmOpenRead(consumer: Consumer, done: ItemCallback): ItemCallback {
    const item = consumer.openReads.get(this)
    if (!item) return done
    consumer.openReads.delete(this)
    this.openItems.delete(item.seq)
    return holdUntil(done, (release) => this.journal.remove(item.seq, release))
  }

  /** Put the consumer's open read back at its place (ahead of newer items). */
  abortOpenRead(consumer: Consumer): void {
    const item = consumer.openReads.get(this)
    if (!item) return
    consumer.openReads.delete(this)
    this.openItems.delete(item.seq)
    if (!this.closed) this.returnToQueue(item)
  }

  private returnToQueue(item: QueueItem): void {
    this.insertBySeq(item)
    this.serveWaiters()
  }

  /**
   * Drop expired items at the head (reading back from disk as needed); whether an item is left
   * at the head.
   */
  private dropExpired(now: number): boolean {
    for (;;) {
      if (this.mem.length === 0 && !this.refill()) return false
      if (!this.mem.headExpired(now, this.settings.maxAgeMs)) return true
      this.expire(this.shiftMem())
    }
  }

  /** The head item without removing it (expired heads are dropped on the way). */
  private peekHead(): QueueItem | null {
    return this.dropExpired(Date.now()) ? this.mem.peek() : null
  }

  /** Remove and return the head item, skipping (and expiring) expired ones. */
  private takeHead(frame?: ReplyFrame): QueueItem | null {
    return this.dropExpired(Date.now()) ? this.shiftMem(frame) : null
  }

  /** Expire items at the head (periodic sweep), so stats and expire_to do not wait for a get. */
  sweepExpired(now: number): void {
    if (this.closed || this.mem.length === 0) return
    if (this.mem.headExpired(now, this.settings.maxAgeMs)) this.dropExpired(now)
  }

  private expire(item: QueueItem): void {
    this.expiredItems++
    this.journal.remove(item.seq)
    this.events.expired(this, item)
  }

  // ---------------------------------------------------------------------------------------------
  // Memory and read-behind

  /** Charge what the items in memory cost now (after a change) to the queue and the gate. */
  private charge(): void {
    const cost = this.mem.cost
    this.memory.used += cost - this.memCost
    this.memCost = cost
  }

  private pushMem(item: JournalItem): void {
    this.mem.pushItem(item)
    this.charge()
  }

  private shiftMem(frame?: ReplyFrame): QueueItem {
    const item = this.mem.shift(frame)
    this.charge()
    if (this.readingBehind && this.memCost < this.settings.maxMemorySize / 2) this.refill()
    return item
  }

  /** Insert by seq: an aborted read goes back ahead of every newer item. */
  private insertBySeq(item: QueueItem): void {
    this.mem.insert(item)
    this.charge()
  }

  /**
   * Read the next batch (about `budget` bytes of cost) from disk into memory, straight into the
   * item store. Returns false when nothing was read.
   */
  private refill(budget = Math.max(READ_BEHIND_BATCH_MIN, Math.min(READ_BEHIND_BATCH_MAX, Math.floor(this.settings.maxMemorySize / 4)))): boolean {
    if (!this.readingBehind) return false
    let n = this.readBehind(budget)
    const read = n > 0
    if (n === 0 || this.diskItems <= 0) {
      // Caught up: let the journal see an empty read, then keep new items in memory again.
      while (n > 0) n = this.readBehind(budget)
      this.readingBehind = false
      this.diskItems = 0
      this.diskBytes = 0
    }
    return read
  }

  private readBehind(budget: number): number {
    const bytes = this.mem.bytes
    const n = this.journal.readBehindInto(budget, this.lastWrittenSeq, this.mem, ITEM_OVERHEAD_BYTES)
    this.diskItems -= n
    this.diskBytes -= this.mem.bytes - bytes
    this.charge()
    return n
  }

  // ---------------------------------------------------------------------------------------------
  // Whole-queue operations

  /** Discard every item and open read; the journal is reset. Blocked readers keep waiting. */
  async flush(): Promise<void> {
    if (this.pendingAdds > 0) this.journal.flushNow()
    this.dropEverything()
    await this.journal.reset()
  }

  /** The queue is being deleted: wake waiters empty-handed, drop everything, delete files. */
  async destroy(): Promise<void> {
    this.closed = true
    for (const waiter of this.waiters?.drain() ?? []) waiter.wake(false)
    this.dropEverything()
    await this.journal.destroy()
  }

  /** Clean shutdown: waiters get nothing, open reads stay unconfirmed (they come back on restart). */
  async close(spoolSynced = false): Promise<void> {
    this.closed = true
    for (const waiter of this.waiters?.drain() ?? []) waiter.wake(false)
    await this.journal.close(spoolSynced)
  }

  private dropEverything(): void {
    this.mem.clear()
    this.charge()
    this.diskItems = 0
    this.diskBytes = 0
    this.readingBehind = false
    for (const { consumer } of this.openItems.values()) consumer.openReads.delete(this)
    this.openItems.clear()
  }
}
