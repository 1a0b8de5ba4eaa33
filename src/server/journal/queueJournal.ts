/**
 * One queue's journal: batching, the sync policy (group commit), write-error recovery,
 * read-behind, and keeping the journal bounded (rotation, dropping consumed segments,
 * carry-forward, reset). The record format is in format.ts, replay in replay.ts.
 *
 * Bounding the journal (DESIGN §8):
 * - Appends go to the last segment. Once it holds `maxJournalSize` bytes, a new segment is started
 *   (created crash-safely: tmp, fsync, rename, fsync dir).
 * - A segment is deleted when it is the oldest and every ADD in it has been REMOVEd. Only the
 *   oldest goes, so a REMOVE is never deleted while the ADD it cancels still exists. This also
 *   gives Starling's rule: an empty queue's journal over `maxJournalSize` is rotated and the old
 *   segment, all consumed, is deleted.
 * - Carry-forward: when the oldest segment still holds a few live items (under 1/8 of its bytes,
 *   e.g. long-lived open reads) and the current segment is half full, their ADD records are
 *   re-appended verbatim (same seq) to the current segment, fsynced, and the old segment deleted.
 *   A crash at any step leaves either the old copy, or both (replay keeps one), never neither.
 * - `reset` (flush) writes a new segment flagged RESET before deleting the older ones; `destroy`
 *   writes a DELETED tombstone first. Replay finishes either if a crash interrupted it.
 *
 * Writes are synchronous positional writes of the whole batch (one syscall per event-loop turn);
 * fsyncs for sync=always and sync=<ms> run on the libuv thread pool (fs.fdatasync), so the event
 * loop keeps taking commands while the disk works. Rotation and carry-forward, which happen once
 * per `maxJournalSize` bytes, fsync synchronously.
 */
import * as fs from 'node:fs'
import { StarlingError } from '../errors.js'
import {
  addRecordSize,
  ADD_FIXED_LENGTH,
  decodeAddItem,
  encodeAdd,
  encodeRemove,
  FLAG_DELETED,
  FLAG_RESET,
  OP_ADD,
  OP_REMOVE,
  RECORD_PREFIX_BYTES,
  recordCrc,
  REMOVE_RECORD_SIZE,
} from './format.js'
import {
  failpoint,
  fdatasyncAsync,
  fdatasyncNow,
  fsyncDir,
  ftruncateNow,
  unlinkNow,
  writeFully,
  type FailpointName,
} from './faults.js'
import { LiveIndex } from './liveIndex.js'
import type { JournalLogger, ReplayState } from './replay.js'
import { ChunkReader, createSegment, type Segment } from './segment.js'
import type { JournalItem, JournalStats, QueueJournal, SyncPolicy, WriteCallback } from './types.js'

// Process-wide fsync counters (stats).
const counters = { fsyncs: 0, recordsSynced: 0 }

export function journalStats(): JournalStats {
  return {
    fsyncs: counters.fsyncs,
    fsyncBatchAvg: counters.fsyncs === 0 ? 0 : counters.recordsSynced / counters.fsyncs,
  }
}

/** Retry failed REMOVEs after this long if nothing else writes first. */
const REMOVE_RETRY_MS = 100

/**
 * The error handed to callbacks: the OS error itself when it has an errno code (ENOSPC, EIO: the
 * engine puts the code in its SERVER_ERROR reply), else a StarlingError with code 'IO'.
 */
function ioError(err: unknown, what: string): Error {
  const e = err as NodeJS.ErrnoException
  if (e instanceof Error && typeof e.code === 'string') return e
  return new StarlingError('IO', `${what}: ${e?.message ?? String(err)}`, { cause: err })
}

/** Run an engine callback; a throw must not break the journal's bookkeeping. */
function call(cb: WriteCallback | undefined, err: Error | null): void {
  if (cb === undefined) return
  try {
    cb(err)
  } catch (thrown) {
    process.nextTick(() => {
      throw thrown
    })
  }
}

export interface QueueJournalSettings {
  dir: string
  queue: string
  encoded: string
  sync: SyncPolicy
  maxJournalSize: number
  logger: JournalLogger
}

export class FileQueueJournal implements QueueJournal {
  readonly queue: string
  private readonly dir: string
  private readonly encoded: string
  private readonly sync: SyncPolicy
  private readonly maxJournalSize: number
  private readonly logger: JournalLogger

  private segments: Segment[]
  private readonly bySegno = new Map<number, Segment>()
  private readonly index: LiveIndex
  /** Above every seq seen: the base seq of the next segment. */
  private nextSeq: number
  private rotationCount = 0
  private closed = false
  /** A write failed and none has succeeded since (log once per outage). */
  private writeFailing = false

  // The batch being built this event-loop turn.
  private batch = Buffer.allocUnsafe(64 * 1024)
  private batchLen = 0
  private batchOps: number[] = []
  private batchSeqs: number[] = []
  private batchWritten: Array<WriteCallback | undefined> = []
  private batchDurable: Array<WriteCallback | undefined> = []
  private scheduled: NodeJS.Immediate | undefined
  private retryRemoves: number[] = []
  private retryTimer: NodeJS.Timeout | undefined

  // Durability.
  private waiting: WriteCallback[] = []
  /** Records written since the last fsync started. */
  private unsynced = 0
  private syncingFd = -1
  private syncIdleWaiters: Array<() => void> = []
  private syncTimer: NodeJS.Timeout | undefined
  private closeAfterSync: number[] = []

  // Read-behind.
  private readingBehind = false
  private readCursor = 0
  private readonly reader = new ChunkReader()

  constructor(settings: QueueJournalSettings, state: ReplayState) {
    this.queue = settings.queue
    this.dir = settings.dir
    this.encoded = settings.encoded
    this.sync = settings.sync
    this.maxJournalSize = settings.maxJournalSize
    this.logger = settings.logger
    this.segments = state.segments
    for (const s of this.segments) this.bySegno.set(s.segno, s)
    this.index = state.index
    this.nextSeq = state.nextSeq
    if (state.diskItems > 0) {
      this.readingBehind = true
      this.readCursor = state.firstDiskSeq
    }
  }

  get sizeOnDisk(): number {
    let n = 0
    for (const s of this.segments) n += s.size
    return n
  }

  get rotations(): number {
    return this.rotationCount
  }

  /** Live items the journal knows of (tests, diagnostics). */
  get liveItems(): number {
    return this.index.count
  }

  /** Segment numbers currently on disk (tests, diagnostics). */
  get segmentNumbers(): number[] {
    return this.segments.map((s) => s.segno)
  }

  private get current(): Segment {
    return this.segments[this.segments.length - 1]!
  }

  // -------------------------------------------------------------------------------------------
  // Appending

  private reserve(size: number): void {
    if (this.batchLen + size <= this.batch.length) return
    let cap = this.batch.length * 2
    while (cap < this.batchLen + size) cap *= 2
    const bigger = Buffer.allocUnsafe(cap)
    this.batch.copy(bigger, 0, 0, this.batchLen)
    this.batch = bigger
  }

  add(item: JournalItem, onWritten: WriteCallback, onDurable: WriteCallback): void {
    if (this.closed) {
      const err = new StarlingError('IO', 'journal closed')
      setImmediate(() => {
        call(onWritten, err)
        call(onDurable, err)
      })
      return
    }
    if (item.seq <= this.index.lastSeq) throw new RangeError(`journal add: seq ${item.seq} not above ${this.index.lastSeq}`)
    const size = addRecordSize(item.data.length)
    this.reserve(size)
    const seg = this.current
    const off = seg.size + this.batchLen
    this.batchLen = encodeAdd(this.batch, this.batchLen, item)
    this.index.push(item.seq, seg.segno, off, size)
    seg.liveCount++
    seg.liveBytes += size
    if (item.seq >= this.nextSeq) this.nextSeq = item.seq + 1
    this.batchOps.push(OP_ADD)
    this.batchSeqs.push(item.seq)
    this.batchWritten.push(onWritten)
    this.batchDurable.push(onDurable)
    this.schedule()
  }

  remove(seq: number, onWritten?: WriteCallback): void {
    if (this.closed) {
      if (onWritten) setImmediate(call, onWritten, new StarlingError('IO', 'journal closed'))
      return
    }
    this.forget(seq)
    this.encodeRemove(seq, onWritten)
    this.schedule()
  }

  /** Take seq out of the live index and its segment's counts. */
  private forget(seq: number): void {
    const i = this.index.find(seq)
    if (i < 0) return
    const seg = this.bySegno.get(this.index.segAt(i))
    if (seg) {
      seg.liveCount--
      seg.liveBytes -= this.index.sizeAt(i)
    }
    this.index.kill(i)
  }

  private encodeRemove(seq: number, onWritten: WriteCallback | undefined): void {
    this.reserve(REMOVE_RECORD_SIZE)
    this.batchLen = encodeRemove(this.batch, this.batchLen, seq)
    this.batchOps.push(OP_REMOVE)
    this.batchSeqs.push(seq)
    this.batchWritten.push(onWritten)
    this.batchDurable.push(undefined)
  }

  private schedule(): void {
    if (this.scheduled === undefined) this.scheduled = setImmediate(() => this.flushNow())
  }

  flushNow(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled)
      this.scheduled = undefined
    }
    if (this.retryRemoves.length > 0) {
      if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
      this.retryTimer = undefined
      const retry = this.retryRemoves
      this.retryRemoves = []
      for (const seq of retry) this.encodeRemove(seq, undefined)
    }
    if (this.batchLen === 0) return
    const seg = this.current
    const len = this.batchLen
    const ops = this.batchOps
    const seqs = this.batchSeqs
    const written = this.batchWritten
    const durable = this.batchDurable
    this.batchLen = 0
    this.batchOps = []
    this.batchSeqs = []
    this.batchWritten = []
    this.batchDurable = []
    try {
      writeFully(seg.fd, this.batch, len, seg.size, seg.path)
    } catch (cause) {
      this.failBatch(seg, cause, ops, seqs, written, durable)
      return
    }
    seg.size += len
    this.unsynced += ops.length
    if (this.writeFailing) {
      this.writeFailing = false
      this.logger.info({ queue: this.queue }, 'journal writes work again')
    }
    this.maintain()
    // Callbacks last: they may add records, which must be planned against the final segment.
    if (this.sync === 'always') {
      for (let k = 0; k < ops.length; k++) {
        call(written[k], null)
        const d = durable[k]
        if (d) this.waiting.push(d)
      }
      this.startSync()
    } else {
      for (let k = 0; k < ops.length; k++) {
        call(written[k], null)
        call(durable[k], null)
      }
      if (typeof this.sync === 'number' && this.syncTimer === undefined) {
        this.syncTimer = setTimeout(() => {
          this.syncTimer = undefined
          this.startSync()
        }, this.sync)
        this.syncTimer.unref()
      }
    }
  }

  private failBatch(
    seg: Segment,
    cause: unknown,
    ops: number[],
    seqs: number[],
    written: Array<WriteCallback | undefined>,
    durable: Array<WriteCallback | undefined>,
  ): void {
    const err = ioError(cause, 'journal write failed')
    try {
      ftruncateNow(seg.fd, seg.size, seg.path)
    } catch (e) {
      // the next batch overwrites the torn bytes at the same position anyway
      this.logger.warn({ queue: this.queue, err: String(e) }, 'journal: could not cut back a failed write')
    }
    this.reader.invalidate()
    for (let k = 0; k < ops.length; k++) {
      if (ops[k] === OP_ADD) this.forget(seqs[k]!)
      else this.retryRemoves.push(seqs[k]!)
    }
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
        { queue: this.queue, err: err.message, code: (err as NodeJS.ErrnoException).code, records: ops.length },
        'journal write failed; sets are refused until writes work again',
      )
    }
    for (let k = 0; k < ops.length; k++) {
      call(written[k], err)
      call(durable[k], err)
    }
  }

  // -------------------------------------------------------------------------------------------
  // fsync: group commit. Every record written while an fsync is in flight shares the next one.

  private startSync(): void {
    if (this.syncingFd >= 0 || this.unsynced === 0 && this.waiting.length === 0) return
    const cbs = this.waiting
    const records = this.unsynced
    this.waiting = []
    this.unsynced = 0
    const seg = this.current
    this.syncingFd = seg.fd
    fdatasyncAsync(seg.fd, seg.path, (err) => {
      this.syncingFd = -1
      counters.fsyncs++
      counters.recordsSynced += records
      for (const fd of this.closeAfterSync) fs.closeSync(fd)
      this.closeAfterSync = []
      const e = err ? ioError(err, 'journal fsync failed') : null
      for (const cb of cbs) call(cb, e)
      if (this.sync === 'always') this.startSync()
      if (this.syncingFd < 0) {
        const waiters = this.syncIdleWaiters
        this.syncIdleWaiters = []
        for (const w of waiters) w()
      }
    })
  }

  private whenSyncIdle(): Promise<void> {
    if (this.syncingFd < 0) return Promise.resolve()
    return new Promise((resolve) => this.syncIdleWaiters.push(resolve))
  }

  /** fsync now, on this thread (rotation, carry-forward, close). */
  private syncNow(seg: Segment): void {
    fdatasyncNow(seg.fd, seg.path)
    counters.fsyncs++
    if (seg === this.current) {
      counters.recordsSynced += this.unsynced
      this.unsynced = 0
    }
  }

  private closeFd(fd: number): void {
    if (fd === this.syncingFd) this.closeAfterSync.push(fd)
    else fs.closeSync(fd)
  }

  // -------------------------------------------------------------------------------------------
  // Keeping the journal bounded

  private maintain(): void {
    try {
      if (this.current.size >= this.maxJournalSize) this.rotate()
      while (this.segments.length > 1 && this.segments[0]!.liveCount === 0) {
        this.dropOldest('drop:after-unlink')
      }
      this.maybeCarryForward()
    } catch (err) {
      // Out of space for a new segment, say: keep appending where we are and try again later.
      this.logger.warn({ queue: this.queue, err: String(err) }, 'journal maintenance failed; will retry')
    }
  }

  private rotate(): void {
    const old = this.current
    // Records in the old segment waiting for an fsync: the next fsync goes to the new segment's fd.
    if (this.sync !== 'never' && (this.unsynced > 0 || this.waiting.length > 0 || this.syncingFd >= 0)) {
      this.syncNow(old)
    }
    const seg = createSegment({
      dir: this.dir,
      encoded: this.encoded,
      queue: this.queue,
      segno: old.segno + 1,
      baseSeq: this.nextSeq,
      flags: 0,
      failpoints: ['rotate:after-tmp-write', 'rotate:after-rename'],
    })
    this.segments.push(seg)
    this.bySegno.set(seg.segno, seg)
    this.rotationCount++
    failpoint('rotate:after-switch')
  }

  private dropOldest(fp: FailpointName): void {
    const seg = this.segments.shift()!
    this.bySegno.delete(seg.segno)
    this.reader.invalidate()
    this.closeFd(seg.fd)
    try {
      unlinkNow(seg.path)
    } catch (err) {
      // Harmless if it stays: all its ADDs are REMOVEd (or copied forward) in later segments.
      this.logger.warn({ queue: this.queue, file: seg.path, err: String(err) }, 'journal: could not delete a consumed segment')
      return
    }
    failpoint(fp)
    fsyncDir(this.dir)
  }

  private maybeCarryForward(): void {
    if (this.segments.length < 2) return
    const old = this.segments[0]!
    const cur = this.current
    const bytes = old.size - old.headerLength
    if (old.liveCount === 0 || old.liveBytes * 8 > bytes || old.liveBytes > this.maxJournalSize / 4) return
    if (this.segments.length < 3 && cur.size - cur.headerLength < this.maxJournalSize / 2) return
    this.carryForward(old)
  }

  private carryForward(old: Segment): void {
    const cur = this.current
    // Every ADD in `old` has a seq below the next segment's base seq; carried copies are older.
    const limit = this.segments[1]!.header?.baseSeq ?? Infinity
    const picked: number[] = []
    for (let i = this.index.start; i < this.index.end && this.index.seqAt(i) < limit; i++) {
      if (this.index.isLive(i) && this.index.segAt(i) === old.segno) picked.push(i)
    }
    let total = 0
    for (const i of picked) total += this.index.sizeAt(i)
    const buf = Buffer.allocUnsafe(total)
    let pos = 0
    for (const i of picked) {
      const size = this.index.sizeAt(i)
      const { buf: chunk, at } = this.reader.read(old.fd, this.index.offAt(i), size, old.size)
      chunk.copy(buf, pos, at, at + size)
      pos += size
    }
    try {
      writeFully(cur.fd, buf, total, cur.size, cur.path)
    } catch (err) {
      try {
        ftruncateNow(cur.fd, cur.size, cur.path)
      } catch {
        /* overwritten by the next batch */
      }
      this.reader.invalidate()
      throw err
    }
    failpoint('carry:after-copy-write')
    this.syncNow(cur)
    failpoint('carry:after-fsync')
    pos = cur.size
    cur.size += total
    for (const i of picked) {
      const size = this.index.sizeAt(i)
      this.index.move(i, cur.segno, pos)
      pos += size
      cur.liveCount++
      cur.liveBytes += size
    }
    old.liveCount = 0
    old.liveBytes = 0
    this.rotationCount++
    this.logger.info({ queue: this.queue, items: picked.length, bytes: total, segment: old.path }, 'journal: carried live items forward, deleting old segment')
    this.dropOldest('carry:after-unlink')
  }

  // -------------------------------------------------------------------------------------------
  // Read-behind

  startReadBehind(fromSeq: number): void {
    this.readingBehind = true
    this.readCursor = fromSeq
  }

  readBehind(maxBytes: number, maxSeq: number): JournalItem[] {
    const out: JournalItem[] = []
    if (!this.readingBehind) return out
    let bytes = 0
    const cur = this.current
    for (let i = this.index.lowerBound(this.readCursor); i < this.index.end; i++) {
      if (!this.index.isLive(i)) continue
      const seq = this.index.seqAt(i)
      if (seq > maxSeq) break
      const off = this.index.offAt(i)
      const size = this.index.sizeAt(i)
      const seg = this.bySegno.get(this.index.segAt(i))
      if (seg === undefined) continue
      let item: JournalItem
      if (seg === cur && off >= cur.size) {
        // still in this turn's batch, not yet written: take it from there
        item = decodeAddItem(this.batch, off - cur.size)
      } else {
        const { buf, at } = this.reader.read(seg.fd, off, size, seg.size)
        const length = buf.readUInt32LE(at)
        if (length + RECORD_PREFIX_BYTES !== size || recordCrc(buf, at + 8, length) !== buf.readUInt32LE(at + 4)) {
          this.logger.warn({ queue: this.queue, seq, file: seg.path, offset: off }, 'journal: record unreadable in read-behind; skipped')
          this.readCursor = seq + 1
          continue
        }
        item = decodeAddItem(buf, at)
      }
      out.push(item)
      this.readCursor = seq + 1
      bytes += size - RECORD_PREFIX_BYTES - ADD_FIXED_LENGTH
      if (bytes >= maxBytes) break
    }
    if (out.length === 0) this.readingBehind = false
    return out
  }

  // -------------------------------------------------------------------------------------------
  // reset / destroy / close

  async reset(): Promise<void> {
    this.assertOpen()
    this.flushNow()
    const old = this.segments
    const marker = createSegment({
      dir: this.dir,
      encoded: this.encoded,
      queue: this.queue,
      segno: this.current.segno + 1,
      baseSeq: this.nextSeq,
      flags: FLAG_RESET,
    })
    this.segments = [marker]
    this.bySegno.clear()
    this.bySegno.set(marker.segno, marker)
    this.index.clear()
    this.readingBehind = false
    this.reader.invalidate()
    this.rotationCount++
    failpoint('reset:after-marker')
    this.unlinkAll(old, 'reset:after-unlink-one')
    fsyncDir(this.dir)
  }

  async destroy(): Promise<void> {
    this.assertOpen()
    this.flushNow()
    this.clearTimers()
    const old = this.segments
    const tombstone = createSegment({
      dir: this.dir,
      encoded: this.encoded,
      queue: this.queue,
      segno: this.current.segno + 1,
      baseSeq: this.nextSeq,
      flags: FLAG_DELETED,
    })
    this.closed = true
    this.index.clear()
    this.segments = []
    this.bySegno.clear()
    this.reader.invalidate()
    failpoint('destroy:after-marker')
    this.unlinkAll(old, 'destroy:after-unlink-one')
    this.unlinkAll([tombstone], undefined)
    fsyncDir(this.dir)
    await this.whenSyncIdle()
    this.resolveWaiting(new StarlingError('IO', 'queue deleted'))
  }

  private unlinkAll(segs: Segment[], fp: FailpointName | undefined): void {
    let first = true
    for (const seg of segs) {
      this.closeFd(seg.fd)
      try {
        unlinkNow(seg.path)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
      if (first && fp) failpoint(fp)
      first = false
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.flushNow()
    this.clearTimers()
    this.closed = true
    await this.whenSyncIdle()
    let err: Error | null = null
    const cur = this.segments[this.segments.length - 1]
    if (cur) {
      try {
        this.syncNow(cur)
      } catch (e) {
        err = ioError(e, 'journal fsync failed')
      }
    }
    this.resolveWaiting(err)
    for (const seg of this.segments) fs.closeSync(seg.fd)
    this.segments = []
    this.bySegno.clear()
    if (this.retryRemoves.length > 0) {
      this.logger.warn({ queue: this.queue, removes: this.retryRemoves.length }, 'journal closed with unwritten removals')
    }
    if (err) throw err
  }

  private resolveWaiting(err: Error | null): void {
    const cbs = this.waiting
    this.waiting = []
    for (const cb of cbs) call(cb, err)
  }

  private clearTimers(): void {
    if (this.syncTimer !== undefined) clearTimeout(this.syncTimer)
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.syncTimer = undefined
    this.retryTimer = undefined
  }

  private assertOpen(): void {
    if (this.closed) throw new StarlingError('IO', 'journal closed')
  }
}
