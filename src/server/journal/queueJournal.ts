/**
 * One queue's journal: the coordinator of its parts, as Kestrel splits Journal, PeriodicSyncFile
 * and JournalPacker. It appends records to the write batch and writes it once per event-loop
 * turn, and recovers from a failed write; the rest is delegated:
 * - writeBatch.ts: the records of this turn, in one buffer;
 * - groupCommit.ts: the fsync policy (always / <ms> / never) and when onDurable runs;
 * - readBehind.ts: reading items beyond the memory budget back from disk;
 * - compaction.ts: rotation, dropping, carry-forward, reset and destroy;
 * - segmentList.ts: the segments and the live index they share.
 * The format is in format.ts, replay in replay.ts. The invariants kept here, and why a crash at any
 * step loses nothing acknowledged, are in ./README.md ("Invariants", "Crash safety").
 */
import { StarlingError } from '../errors.js'
import type { EventLogger } from '../logger.js'
import { ioError, runCallback } from './callbacks.js'
import { Compaction } from './compaction.js'
import { ftruncateNow, writeFully } from './fileOps.js'
import { OP_ADD } from './format.js'
import { GroupCommit } from './groupCommit.js'
import { ReadBehind } from './readBehind.js'
import type { ReplayState } from './replay.js'
import type { Segment } from './segment.js'
import { SegmentList } from './segmentList.js'
import type { ItemSink, JournalItem, QueueJournal, SyncPolicy, WriteCallback } from './types.js'
import { type BatchRecord, WriteBatch } from './writeBatch.js'

/** Retry failed REMOVEs after this long if nothing else writes first. */
const REMOVE_RETRY_MS = 100

/** What the journals of one spool directory and policy share (one object, not one a queue). */
export interface JournalShared {
  dir: string
  sync: SyncPolicy
  maxJournalSize: number
  logger: EventLogger
}

const NO_RETRIES: number[] = Object.freeze([]) as unknown as number[]
const NO_RECORDS: BatchRecord[] = Object.freeze([]) as unknown as BatchRecord[]

/**
 * The journal extends its write batch rather than holding one (issue 17: an object less a queue,
 * ~50 B, as ItemDeque extends ItemStore); `batch` names that part.
 */
export class FileQueueJournal extends WriteBatch implements QueueJournal {
  private readonly shared: JournalShared
  readonly queue: string
  /** The name in file names (format.ts): the same string as `queue` when it needs no encoding. */
  private readonly encoded: string
  private readonly list: SegmentList
  private readonly commit: GroupCommit
  /** Made when the journal first has more than one segment or a full one (issue 17: ~80 B a queue). */
  private compaction: Compaction | undefined
  private closed = false
  /** A write failed and none has succeeded since (log once per outage). */
  private writeFailing = false
  private scheduled: NodeJS.Immediate | undefined
  private retryRemoves = NO_RETRIES // its own array only after a failed write (issue 17: ~32 B a queue)
  private retryTimer: NodeJS.Timeout | undefined

  constructor(shared: JournalShared, queue: string, encoded: string, state: ReplayState) {
    super()
    this.shared = shared
    this.queue = queue
    this.encoded = encoded === queue ? queue : encoded
    const list = (this.list = new SegmentList(state))
    this.commit = new GroupCommit(shared.sync, shared.dir, list)
  }

  /** This turn's records (writeBatch.ts). */
  private get batch(): WriteBatch {
    return this
  }

  private get logger(): EventLogger {
    return this.shared.logger
  }

  /** Read-behind, made on first use: most queues never read back from disk. */
  private get reader(): ReadBehind {
    const list = this.list
    return (list.behind ??= new ReadBehind(list, this.batch, this.queue, this.shared.logger))
  }

  private get compactor(): Compaction {
    if (this.compaction !== undefined) return this.compaction
    const { dir, sync, maxJournalSize, logger } = this.shared
    const settings = { dir, sync, maxJournalSize, logger, queue: this.queue, encoded: this.encoded }
    return (this.compaction = new Compaction(settings, this.list, this.commit))
  }

  /**
   * Right after replay: read the first live items, in order, up to `memoryBudgetBytes` of payload;
   * the rest stays on disk, where readBehind continues.
   */
  loadInitial(memoryBudgetBytes: number): { items: JournalItem[]; diskItems: number; diskBytes: number } {
    const loaded = this.reader.loadInitial(memoryBudgetBytes)
    // caught up: nothing to read back, so no read-behind to keep
    if (!this.list.behind!.isActive) this.list.behind = undefined
    return loaded
  }

  get sizeOnDisk(): number {
    return this.list.sizeOnDisk
  }

  get rotations(): number {
    return this.compaction?.rotations ?? 0
  }

  /** Live items the journal knows of (tests, diagnostics). */
  get liveItems(): number {
    return this.list.liveItems
  }

  /** Record bytes of the live items, as the segments count them (tests, diagnostics). */
  get liveBytes(): number {
    return this.list.liveBytes
  }

  /** Live items held as carried-forward copies (tests, diagnostics). */
  get carriedItems(): number {
    return this.list.carried.size
  }

  /** Bytes of memory the live index holds (tests, diagnostics): bitmaps, checkpoints, etc. */
  get indexMemoryBytes(): number {
    return this.list.indexMemoryBytes
  }

  /** Segment numbers currently on disk (tests, diagnostics). */
  get segmentNumbers(): number[] {
    return this.list.segments.map((s) => s.segno)
  }

  persist(): void {
    const cur = this.list.current
    if (!this.closed && !cur.exists && !cur.createNow()) this.logger.warn({ queue: this.queue }, 'journal file not created yet; the first write will')
  }

  // -------------------------------------------------------------------------------------------
  // Appending

  add(item: JournalItem, onWritten: WriteCallback, onDurable: WriteCallback): void {
    if (this.closed) {
      const err = new StarlingError('IO', 'journal closed')
      setImmediate(() => {
        runCallback(onWritten, err)
        runCallback(onDurable, err)
      })
      return
    }
    const list = this.list
    if (item.seq < list.nextSeq) throw new RangeError(`journal add: seq ${item.seq} not above ${list.nextSeq - 1}`)
    const off = list.current.size + this.batch.length
    const size = this.batch.appendAdd(item, onWritten, onDurable)
    list.addOriginal(item.seq, off, size)
    // not reading behind: the engine keeps this item in memory (its size is known without an
    // entry while its segment's records are all one size)
    if (list.behind?.isActive !== true && list.current.live.runSizeOf(item.seq) === 0) list.knownSizes.push(item.seq, size)
    this.schedule()
  }

  remove(seq: number, onWritten?: WriteCallback): void {
    if (this.closed) {
      if (onWritten) setImmediate(runCallback, onWritten, new StarlingError('IO', 'journal closed'))
      return
    }
    this.list.forget(seq)
    this.batch.appendRemove(seq, onWritten)
    this.schedule()
  }

  private schedule(): void {
    if (this.scheduled === undefined) this.scheduled = setImmediate(() => this.flushNow(true))
  }

  /**
   * Write this turn's batch now. `endOfTurn`: the flush scheduled for the end of the turn (the
   * check phase), where an inline fsync under `always` runs (groupCommit.ts); an earlier flush
   * (a get that must see the sets before it, stats, reset) leaves the fsync to that one.
   */
  flushNow(endOfTurn = false): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled)
      this.scheduled = undefined
    }
    if (this.retryRemoves.length > 0) {
      if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
      this.retryTimer = undefined
      const retry = this.retryRemoves
      this.retryRemoves = NO_RETRIES
      for (const seq of retry) this.batch.appendRemove(seq, undefined)
    }
    const records = this.batch.isEmpty ? NO_RECORDS : this.writeTaken()
    if (this.commit.deliver(records, endOfTurn) && !this.closed) this.schedule()
  }

  /** Take the batch and write it; its records, to deliver (none if the write failed: failBatch ran them). */
  private writeTaken(): BatchRecord[] {
    const seg = this.list.current
    const taken = this.batch.take()
    const { length, records } = taken
    try {
      writeFully(seg.fd, taken.buf, length, seg.size, seg.path)
    } catch (cause) {
      this.batch.giveBack(taken)
      this.failBatch(seg, records, cause)
      return NO_RECORDS
    }
    this.batch.giveBack(taken)
    seg.size += length
    this.commit.written(records)
    if (this.writeFailing) {
      this.writeFailing = false
      this.logger.info({ queue: this.queue }, 'journal writes work again')
    }
    // compaction has nothing to do while there is one segment, not full (see Compaction.maintain)
    const list = this.list
    if (this.compaction !== undefined || list.segments.length > 1 || seg.size >= this.shared.maxJournalSize) this.compactor.maintain()
    // Callbacks last (the caller delivers): they may add records, which must be planned against the final segment.
    return records
  }

  get syncing(): boolean {
    return !this.closed && this.commit.syncing
  }

  afterInFlight(cb: () => void): boolean {
    return !this.closed && this.commit.afterInFlight(cb)
  }

  /** Undo a batch whose write failed (README.md, invariant 7) and give its records the error. */
  private failBatch(seg: Segment, records: BatchRecord[], cause: unknown): void {
    const err = ioError(cause, 'journal write failed')
    try {
      ftruncateNow(seg.fd, seg.size, seg.path)
    } catch (e) {
      // the next batch overwrites the torn bytes at the same position anyway
      this.logger.warn({ queue: this.queue, err: String(e) }, 'journal: could not cut back a failed write')
    }
    this.list.invalidateReader()
    for (const r of records) {
      if (r.op === OP_ADD) {
        this.list.forget(r.seq, r.size)
        seg.live.unappend(r.size)
      } else {
        if (this.retryRemoves === NO_RETRIES) this.retryRemoves = []
        this.retryRemoves.push(r.seq)
      }
    }
    // the batch's bytes are gone: no checkpoint or cursor may point into them
    seg.live.cutCheckpoints(seg.size)
    this.list.behind?.segmentCut(seg)
    if (this.retryRemoves.length > 0 && this.retryTimer === undefined) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        if (!this.closed) this.flushNow()
      }, REMOVE_RETRY_MS)
      this.retryTimer.unref()
    }
    // Once per outage (disk full can last): the first failure, then the recovery.
    if (!this.writeFailing) {
      this.writeFailing = true
      this.logger.warn(
        { queue: this.queue, err: err.message, code: (err as NodeJS.ErrnoException).code, records: records.length },
        'journal write failed; sets are refused until writes work again',
      )
    }
    for (const r of records) {
      runCallback(r.onWritten, err)
      runCallback(r.onDurable, err)
    }
  }

  // -------------------------------------------------------------------------------------------
  // Read-behind

  startReadBehind(fromSeq: number): void {
    this.reader.start(fromSeq)
  }

  readBehind(maxBytes: number, maxSeq: number): JournalItem[] {
    return this.list.behind?.read(maxBytes, maxSeq) ?? []
  }

  readBehindInto(maxBytes: number, maxSeq: number, sink: ItemSink, perItemBytes: number): number {
    return this.list.behind?.readInto(maxBytes, maxSeq, sink, perItemBytes) ?? 0
  }

  // -------------------------------------------------------------------------------------------
  // reset / destroy / close

  async reset(): Promise<void> {
    this.assertOpen()
    this.flushNow()
    this.commit.startWaiting()
    this.compactor.reset()
  }

  async destroy(): Promise<void> {
    this.assertOpen()
    this.flushNow()
    this.commit.startWaiting()
    this.clearTimers()
    this.closed = true
    await this.compactor.destroy()
    await this.commit.whenIdle()
    this.commit.settleWaiting(new StarlingError('IO', 'queue deleted'))
  }

  get owesCloseSync(): boolean {
    return !this.closed && (!this.batch.isEmpty || this.retryRemoves.length > 0 || this.commit.owesCloseSync(this.list.current))
  }

  async close(spoolSynced = false): Promise<void> {
    if (this.closed) return
    // with the spool synced, this writes nothing: the caller flushed every journal before syncing
    if (spoolSynced && (!this.batch.isEmpty || this.retryRemoves.length > 0)) spoolSynced = false
    this.flushNow()
    this.clearTimers()
    this.closed = true
    const segments = this.list.segments
    const err = await this.commit.syncForClose(segments[segments.length - 1], spoolSynced)
    this.commit.settleWaiting(err)
    for (const seg of segments) seg.close()
    this.list.segments = []
    if (this.retryRemoves.length > 0) {
      this.logger.warn({ queue: this.queue, removes: this.retryRemoves.length }, 'journal closed with unwritten removals')
    }
    if (err) throw err
  }

  private clearTimers(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled)
    this.scheduled = undefined
    this.commit.stopTimer()
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
  }

  private assertOpen(): void {
    if (this.closed) throw new StarlingError('IO', 'journal closed')
  }
}
