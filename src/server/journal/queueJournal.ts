/**
 * One queue's journal: batching, the sync policy (group commit), write-error recovery,
 * read-behind, and keeping the journal bounded (rotation, dropping consumed segments,
 * carry-forward, reset). The record format is in format.ts, replay in replay.ts.
 *
 * The invariants this class keeps, and why a crash at any step loses nothing acknowledged, are in
 * ./README.md ("Invariants", "Crash safety").
 */
import * as fs from 'node:fs'
import { StarlingError } from '../errors.js'
import {
  addRecordSize,
  ADD_FIXED_LENGTH,
  decodeAddItem,
  MAX_RECORD_LENGTH,
  readU64,
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
} from './fileOps.js'
import { giveBatchBuffer, NO_BUFFER, takeBatchBuffer } from './batchBuffers.js'
import { fsyncSlot, syncDirAsync, unlinkAsync } from './dirSync.js'
import { call, counters, ioError, REMOVE_RETRY_MS } from './journalCalls.js'
import { openJournals } from './fdCache.js'
import { type CarriedItems, KnownSizes } from './liveIndex.js'
import type { EventLogger } from '../logger.js'
import { findOriginal, type ReplayState } from './replay.js'
import { ChunkReader, createSegment, forEachRecord, type Segment } from './segment.js'
import type { JournalItem, QueueJournal, SyncPolicy, WriteCallback } from './types.js'

export interface QueueJournalSettings {
  dir: string
  queue: string
  encoded: string
  sync: SyncPolicy
  maxJournalSize: number
  logger: EventLogger
}

export class FileQueueJournal implements QueueJournal {
  readonly queue: string
  private readonly dir: string
  private readonly encoded: string
  private readonly sync: SyncPolicy
  private readonly maxJournalSize: number
  private readonly logger: EventLogger

  private segments: Segment[]
  private readonly bySegno = new Map<number, Segment>()
  /** The segments holding original ADDs, in order (their seq ranges ascend). */
  private origSegs: Segment[]
  private readonly carried: CarriedItems
  /** Record sizes of the live items in the memory region (see liveIndex.ts). */
  private readonly known = new KnownSizes()
  /** Above every seq seen: the base seq of the next segment. */
  private nextSeq: number
  private rotationCount = 0
  private closed = false
  /** A write failed and none has succeeded since (log once per outage). */
  private writeFailing = false

  // The batch being built this event-loop turn.
  private batch: Buffer = NO_BUFFER
  private batchLen = 0
  private batchOps: number[] = []
  private batchSeqs: number[] = []
  private batchSizes: number[] = []
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

  // Read-behind: a forward cursor over the records (segment, offset), reading big chunks.
  private readingBehind = false
  /** readBehind never returns an item with a seq below this (the engine has those). */
  private readFrom = 0
  private cursorSeg: Segment | undefined
  private cursorOff = 0
  private readonly reader = new ChunkReader()
  // The record recordAt() found: recBuf[recAt, recAt + recSize).
  private recBuf: Buffer = Buffer.alloc(0)
  private recAt = 0
  private recSize = 0
  private warnedUnreadable = false

  constructor(settings: QueueJournalSettings, state: ReplayState) {
    this.queue = settings.queue
    this.dir = settings.dir
    this.encoded = settings.encoded
    this.sync = settings.sync
    this.maxJournalSize = settings.maxJournalSize
    this.logger = settings.logger
    this.segments = state.segments
    for (const s of this.segments) this.bySegno.set(s.segno, s)
    this.origSegs = this.segments.filter((s) => s.live.first >= 0)
    this.carried = state.carried
    this.nextSeq = state.nextSeq
    if (state.wholeFile) this.reader.seed(this.segments[0]!, 0, state.wholeFile)
  }

  /**
   * Right after replay: read the first live items, in order, up to `memoryBudgetBytes` of payload;
   * the rest stays on disk, where readBehind continues.
   */
  loadInitial(memoryBudgetBytes: number): { items: JournalItem[]; diskItems: number; diskBytes: number } {
    this.readingBehind = true
    this.readFrom = 0
    this.cursorSeg = this.segments[0]
    this.cursorOff = this.cursorSeg?.headerLength ?? 0
    const items: JournalItem[] = []
    let memBytes = 0
    for (;;) {
      const next = this.peekNext(Number.MAX_SAFE_INTEGER)
      if (next === undefined) break
      const dataLen = next.size - RECORD_PREFIX_BYTES - ADD_FIXED_LENGTH
      if (memBytes + dataLen > memoryBudgetBytes) break
      const item = this.takeNext(next)
      if (item === undefined) continue
      items.push(item)
      memBytes += dataLen
    }
    let count = 0
    let bytes = 0
    for (const s of this.segments) {
      count += s.liveCount
      bytes += s.liveBytes
    }
    const diskItems = Math.max(0, count - items.length)
    const diskBytes = diskItems === 0 ? 0 : Math.max(0, bytes - count * (RECORD_PREFIX_BYTES + ADD_FIXED_LENGTH) - memBytes)
    if (diskItems === 0) {
      this.readingBehind = false
      this.cursorSeg = undefined
      this.reader.release()
    }
    return { items, diskItems, diskBytes }
  }

  get sizeOnDisk(): number {
    let n = 0
    for (const s of this.segments) if (s.exists) n += s.size
    return n
  }

  get rotations(): number {
    return this.rotationCount
  }

  /** Live items the journal knows of (tests, diagnostics). */
  get liveItems(): number {
    let n = 0
    for (const s of this.segments) n += s.liveCount
    return n
  }

  /** Live items held as carried-forward copies (tests, diagnostics). */
  get carriedItems(): number {
    return this.carried.size
  }

  /** Bytes of memory the live index holds (tests, diagnostics): bitmaps, checkpoints, etc. */
  get indexMemoryBytes(): number {
    let n = this.carried.memoryBytes + this.known.memoryBytes
    for (const s of this.segments) n += s.live.memoryBytes
    return n
  }

  /** Segment numbers currently on disk (tests, diagnostics). */
  get segmentNumbers(): number[] {
    return this.segments.map((s) => s.segno)
  }

  persist(): void {
    if (!this.closed && !this.current.exists && !this.current.createNow()) this.logger.warn({ queue: this.queue }, 'journal file not created yet; the first write will')
  }

  private get current(): Segment {
    return this.segments[this.segments.length - 1]!
  }

  // -------------------------------------------------------------------------------------------
  // Appending

  private reserve(size: number): void {
    if (this.batchLen + size <= this.batch.length) return
    const bigger = takeBatchBuffer(Math.max(this.batch.length * 2, this.batchLen + size))
    this.batch.copy(bigger, 0, 0, this.batchLen)
    giveBatchBuffer(this.batch)
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
    if (item.seq < this.nextSeq) throw new RangeError(`journal add: seq ${item.seq} not above ${this.nextSeq - 1}`)
    const size = addRecordSize(item.data.length)
    this.reserve(size)
    const seg = this.current
    const off = seg.size + this.batchLen
    this.batchLen = encodeAdd(this.batch, this.batchLen, item)
    if (seg.live.first < 0) this.origSegs.push(seg)
    seg.live.append(item.seq, off, size)
    seg.liveCount++
    seg.liveBytes += size
    this.nextSeq = item.seq + 1
    // not reading behind: the engine keeps this item in memory
    if (!this.readingBehind) this.known.push(item.seq, size)
    this.batchOps.push(OP_ADD)
    this.batchSeqs.push(item.seq)
    this.batchSizes.push(size)
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

  /**
   * Take seq out of the live index and its segment's counts. The record size comes from the caller
   * (a failed batch), the memory region's sizes, the carried entry, or, for an item removed while
   * still on disk (rare: the engine removes items it holds), the segment's common/average size.
   */
  private forget(seq: number, exactSize = 0): void {
    const known = this.known.take(seq)
    const c = this.carried.get(seq)
    if (c !== undefined) {
      this.carried.delete(seq)
      const seg = this.bySegno.get(c.segno)
      if (seg) {
        seg.liveCount--
        seg.liveBytes = seg.liveCount === 0 ? 0 : Math.max(0, seg.liveBytes - c.size)
      }
      return
    }
    const seg = findOriginal(this.origSegs, seq)
    if (seg === undefined || !seg.live.kill(seq)) return
    const live = seg.live
    const size =
      exactSize > 0 ? exactSize : known > 0 ? known : live.uniform > 0 ? live.uniform : live.count > 0 ? Math.round(live.bytes / live.count) : 0
    seg.liveCount--
    seg.liveBytes = seg.liveCount === 0 ? 0 : Math.max(0, seg.liveBytes - size)
  }

  private encodeRemove(seq: number, onWritten: WriteCallback | undefined): void {
    this.reserve(REMOVE_RECORD_SIZE)
    this.batchLen = encodeRemove(this.batch, this.batchLen, seq)
    this.batchOps.push(OP_REMOVE)
    this.batchSeqs.push(seq)
    this.batchSizes.push(REMOVE_RECORD_SIZE)
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
    const sizes = this.batchSizes
    const written = this.batchWritten
    const durable = this.batchDurable
    this.batchLen = 0
    this.batchOps = []
    this.batchSeqs = []
    this.batchSizes = []
    this.batchWritten = []
    this.batchDurable = []
    const buf = this.batch
    this.batch = NO_BUFFER
    try {
      writeFully(seg.fd, buf, len, seg.size, seg.path)
    } catch (cause) {
      giveBatchBuffer(buf)
      this.failBatch(seg, cause, ops, seqs, sizes, written, durable)
      return
    }
    giveBatchBuffer(buf)
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
    sizes: number[],
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
      if (ops[k] === OP_ADD) {
        this.forget(seqs[k]!, sizes[k]!)
        seg.live.unappend(sizes[k]!)
      } else {
        this.retryRemoves.push(seqs[k]!)
      }
    }
    // the batch's bytes are gone: no checkpoint or cursor may point into them
    seg.live.cutCheckpoints(seg.size)
    if (this.cursorSeg === seg && this.cursorOff > seg.size) this.cursorOff = seg.size
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
    this.syncingFd = 0 // queued or in flight (the real fd once it starts)
    // Fsyncs of all journals share a few slots: each pins an fd, and thousands of queues syncing
    // at once (a shutdown, sync=always) must stay under the fd limit.
    fsyncSlot((release) => {
      let fd: number
      try {
        fd = openJournals.pin(seg)
      } catch (err) {
        this.syncingFd = -1
        release()
        return this.resolveSync(cbs, ioError(err, 'journal fsync failed'))
      }
      this.syncingFd = fd
      const dirUnsynced = seg.dirUnsynced
      fdatasyncAsync(fd, seg.path, (err) => {
        // a file created by its first write: its directory entry is durable before the reply
        if (err || !dirUnsynced) return this.afterSync(seg, cbs, records, err, release)
        syncDirAsync(this.dir, (dirErr) => {
          if (!dirErr) seg.dirUnsynced = false
          this.afterSync(seg, cbs, records, dirErr, release)
        })
      })
    })
  }

  private afterSync(seg: Segment, cbs: WriteCallback[], records: number, err: Error | null, release: () => void): void {
    this.syncingFd = -1
    openJournals.unpin(seg)
    release()
    counters.fsyncs++
    counters.recordsSynced += records
    this.resolveSync(cbs, err ? ioError(err, 'journal fsync failed') : null)
  }

  private resolveSync(cbs: WriteCallback[], e: Error | null): void {
    for (const cb of cbs) call(cb, e)
    if (this.sync === 'always') this.startSync()
    if (this.syncingFd < 0) {
      const waiters = this.syncIdleWaiters
      this.syncIdleWaiters = []
      for (const w of waiters) w()
    }
  }

  private whenSyncIdle(): Promise<void> {
    if (this.syncingFd < 0) return Promise.resolve()
    return new Promise((resolve) => this.syncIdleWaiters.push(resolve))
  }

  /** fsync now, on this thread (rotation, carry-forward, close). */
  private syncNow(seg: Segment): void {
    if (!seg.exists) return
    fdatasyncNow(seg.fd, seg.path)
    if (seg.dirUnsynced) {
      fsyncDir(this.dir)
      seg.dirUnsynced = false
    }
    counters.fsyncs++
    if (seg === this.current) {
      counters.recordsSynced += this.unsynced
      this.unsynced = 0
    }
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
    old.live.trim()
    this.rotationCount++
    failpoint('rotate:after-switch')
  }

  private dropOldest(fp: FailpointName): void {
    const seg = this.segments.shift()!
    this.bySegno.delete(seg.segno)
    if (this.origSegs[0] === seg) this.origSegs.shift()
    if (this.cursorSeg === seg) {
      // everything left in it was removed or carried forward (carried items are merged by seq)
      this.cursorSeg = this.segments[0]
      this.cursorOff = this.cursorSeg?.headerLength ?? 0
    }
    this.reader.invalidate()
    seg.close()
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
    // Read-behind has not read all of it yet: its live items are mostly about to be read and
    // removed, so copying them would be wasted (and carried items are read one by one).
    if (this.readingBehind && this.readFrom <= old.live.last) return
    if (this.segments.length < 3 && cur.size - cur.headerLength < this.maxJournalSize / 2) return
    this.carryForward(old)
  }

  private carryForward(old: Segment): void {
    const cur = this.current
    // The live items of `old`: its carried copies (known by offset) and its live original ADDs,
    // found by reading the segment once from the checkpoint before the first live one.
    const picked: Array<{ seq: number; off: number; size: number }> = this.carried.inSegment(old.segno)
    const live = old.live
    if (live.live > 0) {
      let found = 0
      let start = live.seek(live.firstLive())
      if (start < 0) start = old.headerLength
      forEachRecord(this.reader, old, start, old.size, (buf, at, off, size) => {
        if (buf[at + 8] !== OP_ADD) return true
        const seq = readU64(buf, at + 9)
        if (!live.has(seq)) return true
        picked.push({ seq, off, size })
        return ++found < live.live
      })
      if (found < live.live) throw new Error(`carry-forward: found ${found} of ${live.live} live items in ${old.path}`)
    }
    picked.sort((a, b) => a.seq - b.seq)
    let total = 0
    for (const p of picked) total += p.size
    const buf = Buffer.allocUnsafe(total)
    let pos = 0
    for (const p of picked) {
      const { buf: chunk, at } = this.reader.read(old, p.off, p.size, old.size)
      const length = chunk.readUInt32LE(at)
      if (length + RECORD_PREFIX_BYTES !== p.size || recordCrc(chunk, at + 8, length) !== chunk.readUInt32LE(at + 4)) {
        throw new Error(`carry-forward: record of seq ${p.seq} unreadable in ${old.path} at ${p.off}`)
      }
      chunk.copy(buf, pos, at, at + p.size)
      pos += p.size
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
    for (const p of picked) {
      this.carried.set(p.seq, { segno: cur.segno, off: pos, size: p.size })
      pos += p.size
      cur.liveCount++
      cur.liveBytes += p.size
    }
    old.liveCount = 0
    old.liveBytes = 0
    this.rotationCount++
    this.logger.info({ queue: this.queue, items: picked.length, bytes: total, segment: old.path }, 'journal: carried live items forward, deleting old segment')
    this.dropOldest('carry:after-unlink')
    if (!this.readingBehind) this.reader.release()
  }

  // -------------------------------------------------------------------------------------------
  // Read-behind

  startReadBehind(fromSeq: number): void {
    this.readingBehind = true
    this.readFrom = fromSeq
    // items from fromSeq on are back in the disk region
    this.known.dropFrom(fromSeq)
    // the first segment with an original ADD at or above fromSeq, from its nearest checkpoint
    for (const seg of this.origSegs) {
      if (seg.live.last < fromSeq) continue
      const off = seg.live.seek(fromSeq)
      this.cursorSeg = seg
      this.cursorOff = off < 0 ? seg.headerLength : off
      return
    }
    // nothing that new yet: it will be appended at the end
    this.cursorSeg = this.current
    this.cursorOff = this.current.size + this.batchLen
  }

  readBehind(maxBytes: number, maxSeq: number): JournalItem[] {
    const out: JournalItem[] = []
    if (!this.readingBehind) return out
    let bytes = 0
    for (;;) {
      const next = this.peekNext(maxSeq)
      if (next === undefined) break
      const item = this.takeNext(next)
      if (item === undefined) continue
      out.push(item)
      bytes += item.data.length
      if (bytes >= maxBytes) break
    }
    if (out.length === 0) {
      this.readingBehind = false
      this.cursorSeg = undefined
      this.reader.release()
    }
    return out
  }

  /**
   * The next live item for the reader, without reading its payload: the smaller of the next live
   * original ADD at the cursor and the next carried item (both at or above readFrom, at most
   * maxSeq).
   */
  private peekNext(maxSeq: number): { seq: number; size: number; carried: boolean } | undefined {
    const orig = this.peekOriginal(maxSeq)
    const c = this.carried.nextFrom(this.readFrom)
    if (c >= 0 && c <= maxSeq && (orig < 0 || c < orig)) return { seq: c, size: this.carried.get(c)!.size, carried: true }
    return orig < 0 ? undefined : { seq: orig, size: this.recSize, carried: false }
  }

  /** Read the item peekNext found (right after it: the record is still in recBuf) and move past it. */
  private takeNext(next: { seq: number; carried: boolean }): JournalItem | undefined {
    this.readFrom = next.seq + 1
    let item: JournalItem | undefined
    if (next.carried) {
      item = this.readCarried(next.seq)
    } else {
      item = decodeAddItem(this.recBuf, this.recAt)
      this.cursorOff += this.recSize
    }
    if (item !== undefined) this.known.push(item.seq, addRecordSize(item.data.length))
    return item
  }

  /**
   * Move the cursor to the next live original ADD with readFrom <= seq <= maxSeq and return its seq
   * (its record is left in recBuf), or -1 if there is none (yet). REMOVEs, removed ADDs, carried
   * copies (merged separately) and seqs below readFrom are stepped over.
   */
  private peekOriginal(maxSeq: number): number {
    for (;;) {
      const seg = this.cursorSeg
      if (seg === undefined) return -1
      const found = this.recordAt(seg, this.cursorOff)
      if (found === 0) {
        // end of this segment: on to the next one, if there is one
        const i = this.segments.indexOf(seg)
        if (i >= 0 && i + 1 >= this.segments.length) return -1
        this.cursorSeg = this.segments[i + 1]
        this.cursorOff = this.cursorSeg?.headerLength ?? 0
        continue
      }
      if (found === 2) {
        // damaged since replay (a bad disk): skip to the next checkpoint, or the segment's end
        if (!this.warnedUnreadable) {
          this.warnedUnreadable = true
          this.logger.warn({ queue: this.queue, file: seg.path, offset: this.cursorOff }, 'journal: record unreadable in read-behind; skipped')
        }
        const next = seg.live.checkpointAfter(this.cursorOff)
        this.cursorOff = next > 0 ? next : seg.size
        continue
      }
      const buf = this.recBuf
      const at = this.recAt
      if (buf[at + 8] === OP_ADD) {
        const seq = readU64(buf, at + 9)
        if (seq >= this.readFrom && seg.live.has(seq)) return seq <= maxSeq ? seq : -1
      }
      this.cursorOff += this.recSize
    }
  }

  /**
   * Find the record at `off` of `seg` (for the segment being appended to, past its written size:
   * in the batch not yet written). 1 = found (recBuf/recAt/recSize), 0 = end of the segment's
   * records, 2 = damaged.
   */
  private recordAt(seg: Segment, off: number): 0 | 1 | 2 {
    if (seg === this.current && off >= seg.size) {
      const p = off - seg.size
      if (p + RECORD_PREFIX_BYTES > this.batchLen) return 0
      this.recBuf = this.batch
      this.recAt = p
      this.recSize = RECORD_PREFIX_BYTES + this.batch.readUInt32LE(p)
      return 1
    }
    if (off + RECORD_PREFIX_BYTES > seg.size) return 0
    let v = this.reader.read(seg, off, RECORD_PREFIX_BYTES, seg.size)
    const length = v.buf.readUInt32LE(v.at)
    if (length < 1 || length > MAX_RECORD_LENGTH || off + RECORD_PREFIX_BYTES + length > seg.size) return 2
    v = this.reader.read(seg, off, RECORD_PREFIX_BYTES + length, seg.size)
    if (recordCrc(v.buf, v.at + 8, length) !== v.buf.readUInt32LE(v.at + 4)) return 2
    this.recBuf = v.buf
    this.recAt = v.at
    this.recSize = RECORD_PREFIX_BYTES + length
    return 1
  }

  /** A carried item, read on its own (one small read: they are few). */
  private readCarried(seq: number): JournalItem | undefined {
    const ref = this.carried.get(seq)
    const seg = ref && this.bySegno.get(ref.segno)
    if (ref === undefined || seg === undefined) return undefined
    const buf = Buffer.allocUnsafe(ref.size)
    let got = 0
    while (got < ref.size) {
      const n = fs.readSync(seg.fd, buf, got, ref.size - got, ref.off + got)
      if (n === 0) break
      got += n
    }
    const length = got >= RECORD_PREFIX_BYTES ? buf.readUInt32LE(0) : 0
    if (got < ref.size || length + RECORD_PREFIX_BYTES !== ref.size || recordCrc(buf, 8, length) !== buf.readUInt32LE(4) || readU64(buf, 9) !== seq) {
      this.logger.warn({ queue: this.queue, seq, file: seg.path, offset: ref.off }, 'journal: record unreadable in read-behind; skipped')
      return undefined
    }
    return decodeAddItem(buf, 0)
  }

  // -------------------------------------------------------------------------------------------
  // reset / destroy / close

  async reset(): Promise<void> {
    this.assertOpen()
    this.flushNow()
    const old = this.segments
    if (!old.some((seg) => seg.exists)) return // nothing on disk: nothing to reset
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
    this.origSegs = []
    this.carried.clear()
    this.known.clear()
    this.readingBehind = false
    this.cursorSeg = undefined
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
    const old = this.segments.filter((seg) => seg.exists)
    // Several files: a tombstone first (deleting them one by one is not atomic). One: unlinking it is.
    const tombstone =
      old.length > 1
        ? createSegment({ dir: this.dir, encoded: this.encoded, queue: this.queue, segno: this.current.segno + 1, baseSeq: this.nextSeq, flags: FLAG_DELETED })
        : undefined
    for (const seg of this.segments) seg.close()
    this.closed = true
    this.origSegs = []
    this.carried.clear()
    this.known.clear()
    this.readingBehind = false
    this.cursorSeg = undefined
    this.segments = []
    this.bySegno.clear()
    this.reader.invalidate()
    if (tombstone) failpoint('destroy:after-marker')
    if (!tombstone && old.length === 1) await unlinkAsync(old[0]!.path)
    else this.unlinkAll(old, tombstone && 'destroy:after-unlink-one')
    if (tombstone) this.unlinkAll([tombstone], undefined)
    // the unlinks are durable before DELETED (off the event loop; `never` leaves it to the OS)
    if (tombstone || (old.length > 0 && this.sync !== 'never')) {
      await new Promise<void>((resolve, reject) => syncDirAsync(this.dir, (err) => (err ? reject(err) : resolve())))
    }
    await this.whenSyncIdle()
    this.resolveWaiting(new StarlingError('IO', 'queue deleted'))
  }

  private unlinkAll(segs: Segment[], fp: FailpointName | undefined): void {
    let first = true
    for (const seg of segs) {
      seg.close()
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
    // On the thread pool (the server closes every journal at once); none for an idle journal.
    if (cur?.exists && (this.unsynced > 0 || this.waiting.length > 0 || cur.dirUnsynced)) {
      this.unsynced = Math.max(1, this.unsynced)
      this.waiting.push((e) => (err = e))
      this.startSync()
      await this.whenSyncIdle()
    }
    this.resolveWaiting(err)
    for (const seg of this.segments) seg.close()
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
