/**
 * The fsync policy of one queue's journal (Kestrel's PeriodicSyncFile): when written records are
 * made durable, and when the engine hears of it (README.md, invariant 6, "Crash safety").
 * - `always`: a record's onDurable waits for an fsync that began after its write. Group commit:
 *   - while fsyncs are fast, one fsync at the end of the event-loop turn, on the loop itself
 *     (turnSync.ts, Redis's way), covers every set of the turn; the journal's end-of-turn flush
 *     (QueueJournal.flushNow(true)) runs it, and a batch written earlier in the turn waits for it;
 *   - otherwise (a slow disk, the turn's inline budget spent, or pool fsyncs still in flight),
 *     pipelined on the thread pool: each batch starts its own fsync as soon as it is written, up to
 *     FSYNCS_PER_JOURNAL in flight (a batch written while all are busy shares the next one),
 *     resolved in the order they began; a set waits about one fsync, not two.
 *   A batch of REMOVEs only (gets: their replies wait for the write, not the fsync) starts a pool
 *   fsync only when none is in flight: otherwise it rides along with the next one, so consumers'
 *   gets do not multiply fsyncs that the sets then queue behind.
 * - `<ms>`: onDurable runs once the write returned; an fsync follows within that many ms.
 * - `never`: onDurable runs once the write returned; the OS decides when the disk sees it.
 * Pool fsyncs share a few slots (dirSync.ts), each pinning its fd in the LRU (fdCache.ts).
 */
import { ioError, runCallback } from './callbacks.js'
import { countFsync } from './counters.js'
import { fsyncSlot, syncDirAsync } from './dirSync.js'
import { openJournals } from './fdCache.js'
import { fdatasyncAsync, fdatasyncNow, fsyncDir } from './fileOps.js'
import { OP_REMOVE } from './format.js'
import type { Segment } from './segment.js'
import { averageFsyncMs, fsyncTook, mayFsyncInline } from './turnSync.js'
import type { SyncPolicy, WriteCallback } from './types.js'
import type { BatchRecord } from './writeBatch.js'

/** One fsync started: the callbacks it makes durable, and its outcome once it ended. */
interface Ticket {
  cbs: WriteCallback[]
  records: number
  done: boolean
  err: Error | null
  /** When its fsync got a slot (performance.now()), for turnSync's average. */
  began: number
}

/**
 * fsyncs of one journal in flight at once: libuv's default thread pool runs 4 at a time, and the
 * disk merges concurrent fdatasyncs of one file into one journal commit. Measured with 2 and 4
 * (no clear difference); 1 is the old one-at-a-time group commit.
 */
const FSYNCS_PER_JOURNAL = 4

// Shared empty lists (frozen: a push into one throws): an idle journal holds no array of its own
// (issue 17: 100k queues, ~32 bytes an empty array).
const NO_CBS: WriteCallback[] = Object.freeze([]) as unknown as WriteCallback[]
const NO_TICKETS: Ticket[] = Object.freeze([]) as unknown as Ticket[]
const NO_WAITERS: Array<() => void> = Object.freeze([]) as unknown as Array<() => void>

export class GroupCommit {
  /** onDurable callbacks of records written under `always`, waiting for the next fsync. */
  private waiting = NO_CBS
  /**
   * Of them, gets' replies (their REMOVEs' onWritten): in a turn with sets, fsynced on the loop,
   * they go out after that turn's fsync with the `STORED`s, as Redis's replies do, so consumers
   * poll an empty queue once a turn, not many times (issue 13: misses 40k -> ~100 in 8 s).
   */
  private heldGets = 0
  /** Sets (and polls) the last inline fsync made durable; since when a smaller turn waits for more. */
  private lastSets = 0
  private waitingSince = 0
  /** Records written since the last fsync started. */
  private unsynced = 0
  /** fsyncs started (queued for a slot or in flight) and not yet resolved, oldest first. */
  private inFlight = NO_TICKETS
  private idleWaiters = NO_WAITERS
  private timer: NodeJS.Timeout | undefined

  /**
   * `segments.current` is the segment being appended to: the one an fsync goes to (the list, not a
   * closure: ~100 bytes less a queue). `dir` is the spool: a
   * segment created by its first write needs the directory fsynced too.
   */
  constructor(
    private readonly policy: SyncPolicy,
    private readonly dir: string,
    private readonly segments: { readonly current: Segment },
  ) {}

  /**
   * A batch was written to the current segment (the OS has it). Count it now: rotation, which runs
   * before the callbacks, must know there is something to fsync.
   */
  written(records: BatchRecord[]): void {
    this.unsynced += records.length
  }

  /**
   * Run a written batch's callbacks (none: the turn ended with nothing to write), in record order,
   * as the policy says. `endOfTurn`: called from the journal's end-of-turn flush. True: what waits
   * needs that flush still to come (an inline fsync at the end of this turn).
   */
  deliver(records: BatchRecord[], endOfTurn: boolean): boolean {
    if (this.policy === 'always') {
      // a get's reply waits for its turn's fsync on the loop, if the turn has one (see commitTurn)
      const holdGets = this.inFlight.length === 0 && mayFsyncInline()
      for (const r of records) {
        if (holdGets && r.op === OP_REMOVE && r.onWritten !== undefined) {
          this.wait(r.onWritten)
          this.heldGets++
        } else runCallback(r.onWritten, null)
        if (r.onDurable) this.wait(r.onDurable)
      }
      return this.commitTurn(endOfTurn)
    }
    if (records.length === 0) return false
    for (const r of records) {
      runCallback(r.onWritten, null)
      runCallback(r.onDurable, null)
    }
    if (typeof this.policy === 'number' && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.start()
      }, this.policy)
      this.timer.unref()
    }
    return false
  }

  /**
   * Under `always`, after a write: sync inline at the end of the turn (true mid-turn: the journal
   * must flush then), or on the pool now (see the top of this file).
   */
  private commitTurn(endOfTurn: boolean): boolean {
    if (this.heldGets > 0 && this.heldGets === this.waiting.length) {
      // gets only, no set: their replies go at the end of the turn, their REMOVEs' fsync on the pool
      if (!endOfTurn) return true
      this.settleWaiting(null)
      this.kick()
      return false
    }
    if (this.waiting.length === 0 || this.inFlight.length > 0 || !mayFsyncInline()) {
      this.kick()
      return false
    }
    if (!endOfTurn) return true
    // Fewer sets than the last fsync carried: their writers' next sets are on their way (they had
    // the STOREDs a moment ago). Wait for them, a few loop turns (each reads what arrived), for at
    // most one fsync's time (an fsync more would cost that much): Postgres's commit_delay.
    const sets = this.waiting.length - this.heldGets
    if (sets < this.lastSets * 0.75) {
      const now = performance.now()
      if (this.waitingSince === 0) this.waitingSince = now
      if (now - this.waitingSince < averageFsyncMs()) return true
    }
    this.waitingSince = 0
    this.lastSets = sets
    this.syncInline()
    return false
  }

  /** fsync the current segment on this thread, then run what waited for it. */
  private syncInline(): void {
    const cbs = this.takeWaiting()
    const began = performance.now()
    let err: Error | null = null
    try {
      this.syncNow(this.segments.current)
    } catch (cause) {
      err = ioError(cause, 'journal fsync failed')
    }
    fsyncTook(performance.now() - began, true)
    for (const cb of cbs) runCallback(cb, err)
  }

  /** Records in the current segment are owed an fsync: sync them before appending elsewhere. */
  get owesSync(): boolean {
    return this.policy !== 'never' && (this.unsynced > 0 || this.waiting.length > 0 || this.inFlight.length > 0)
  }

  /** Start an fsync for what was written, unless only REMOVEs wait and one is in flight already. */
  private kick(): void {
    if (this.waiting.length > 0 || this.inFlight.length === 0) this.start()
  }

  private start(): void {
    if (this.inFlight.length >= FSYNCS_PER_JOURNAL || (this.unsynced === 0 && this.waiting.length === 0)) return
    // afterInFlight adds to the ticket's list: it must be its own
    const cbs = this.takeWaiting()
    const ticket: Ticket = { cbs: cbs === NO_CBS ? [] : cbs, records: this.unsynced, done: false, err: null, began: 0 }
    this.unsynced = 0
    if (this.inFlight === NO_TICKETS) this.inFlight = [ticket]
    else this.inFlight.push(ticket)
    const seg = this.segments.current
    // Fsyncs of all journals share a few slots: each pins an fd, and thousands of queues syncing
    // at once (a shutdown, sync=always) must stay under the fd limit.
    fsyncSlot((release) => {
      let fd: number
      try {
        fd = openJournals.pin(seg)
      } catch (err) {
        release()
        return this.finish(ticket, ioError(err, 'journal fsync failed'))
      }
      const dirUnsynced = seg.dirUnsynced
      ticket.began = performance.now()
      fdatasyncAsync(fd, seg.path, (err) => {
        // a file created by its first write: its directory entry is durable before the reply
        if (err || !dirUnsynced) return this.afterSync(seg, ticket, err, release)
        syncDirAsync(this.dir, (dirErr) => {
          if (!dirErr) seg.dirUnsynced = false
          this.afterSync(seg, ticket, dirErr, release)
        })
      })
    })
  }

  private afterSync(seg: Segment, ticket: Ticket, err: Error | null, release: () => void): void {
    openJournals.unpin(seg)
    release()
    fsyncTook(performance.now() - ticket.began, false)
    this.finish(ticket, err ? ioError(err, 'journal fsync failed') : null)
  }

  /** An fsync ended: resolve it and every one before it that ended too, in the order they began. */
  private finish(ticket: Ticket, err: Error | null): void {
    ticket.done = true
    ticket.err = err
    while (this.inFlight.length > 0 && this.inFlight[0]!.done) {
      const t = this.inFlight.shift()!
      countFsync(t.records)
      for (const cb of t.cbs) runCallback(cb, t.err)
    }
    if (this.inFlight.length === 0) this.inFlight = NO_TICKETS
    if (this.policy === 'always') this.kick()
    if (this.inFlight.length === 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = NO_WAITERS
      for (const w of waiters) w()
    }
  }

  /** Under `always`, an fsync is in flight, or records wait for the end-of-turn one. */
  get syncing(): boolean {
    return this.policy === 'always' && (this.inFlight.length > 0 || this.waiting.length > 0)
  }

  /**
   * Under `always`, with an fsync in flight or due at the end of the turn: run `cb` once every such
   * fsync has resolved (after their records' callbacks), and return true. Otherwise false and `cb`
   * never runs. An empty poll waits on this (engine/emptyPoll.ts): its miss is answered at the
   * fsync rate.
   */
  afterInFlight(cb: () => void): boolean {
    if (!this.syncing) return false
    if (this.inFlight.length > 0) this.inFlight[this.inFlight.length - 1]!.cbs.push(() => cb())
    else this.wait(() => cb())
    return true
  }

  /** What waits for the end-of-turn fsync gets a pool fsync now (the journal is being reset or deleted). */
  startWaiting(): void {
    if (this.waiting.length > 0) this.start()
  }

  /** Resolves once no fsync is in flight. */
  whenIdle(): Promise<void> {
    if (this.inFlight.length === 0) return Promise.resolve()
    return new Promise((resolve) => {
      if (this.idleWaiters === NO_WAITERS) this.idleWaiters = []
      this.idleWaiters.push(resolve)
    })
  }

  /** fsync now, on this thread (rotation, carry-forward). */
  syncNow(seg: Segment): void {
    if (!seg.exists) return
    fdatasyncNow(seg.fd, seg.path)
    if (seg.dirUnsynced) {
      fsyncDir(this.dir)
      seg.dirUnsynced = false
    }
    if (seg === this.segments.current) {
      countFsync(this.unsynced)
      this.unsynced = 0
    } else {
      countFsync(0)
    }
  }

  /**
   * The last fsync before the journal closes, on the thread pool (the server closes every journal
   * at once); none for an idle journal. Its error, if any.
   */
  /** What close would have to fsync: records written since the last fsync, or a new file's entry. */
  owesCloseSync(cur: Segment | undefined): boolean {
    return cur !== undefined && cur.exists && (this.unsynced > 0 || this.waiting.length > 0 || this.inFlight.length > 0 || cur.dirUnsynced)
  }

  /**
   * `spoolSynced`: the file system was synced after every record here was written (syncfs at
   * shutdown), so what waits for an fsync is durable already: no fsync of this file.
   */
  async syncForClose(cur: Segment | undefined, spoolSynced = false): Promise<Error | null> {
    await this.whenIdle()
    let err: Error | null = null
    if (spoolSynced && cur !== undefined) {
      this.unsynced = 0
      cur.dirUnsynced = false
      this.settleWaiting(null)
    } else if (cur?.exists && (this.unsynced > 0 || this.waiting.length > 0 || cur.dirUnsynced)) {
      this.unsynced = Math.max(1, this.unsynced)
      this.wait((e) => (err = e))
      this.start()
      await this.whenIdle()
    }
    return err
  }

  /** Give every record waiting for durability its outcome (close, destroy). */
  settleWaiting(err: Error | null): void {
    for (const cb of this.takeWaiting()) runCallback(cb, err)
  }

  /** The callbacks waiting for the next fsync (the held gets among them), leaving none. */
  private takeWaiting(): WriteCallback[] {
    const cbs = this.waiting
    this.waiting = NO_CBS
    this.heldGets = 0
    return cbs
  }

  /** A callback for the next fsync. */
  private wait(cb: WriteCallback): void {
    if (this.waiting === NO_CBS) this.waiting = [cb]
    else this.waiting.push(cb)
  }

  stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}
