/**
 * Replay: read a queue's segments back, oldest first, and work out the live items.
 *
 * Speed and memory: each segment is read once, in 4 MiB chunks, records parsed out of the chunk
 * (no syscall per record; scan.ts). For a big journal the reading and CRC checking, most of the
 * work, runs on replay threads (scanPool.ts), several segments at once, and only the records
 * (op, seq, offset, size) come back. They stream, in segment order, into the live index
 * (liveIndex.ts): one bit per original ADD, a checkpoint every 256 ADDs, an entry per carried
 * copy; nothing else per item, so replaying 10 M items needs a few MB. Live bytes per segment are known from the counts except for a segment that
 * is partly consumed and has items of mixed sizes: that one is read again. Payloads are not read
 * here: the journal reads the first live items, up to the memory budget, when it opens
 * (FileQueueJournal.loadInitial), with the same sequential reader as read-behind.
 *
 * Damage:
 * - A record that is torn (file ends inside it), too long, or fails its CRC ends its segment: the
 *   segment is cut there (`truncatedBytes`). In the last segment that is the normal tail of a
 *   crash. In an earlier segment it is corruption (a lost write after power loss with sync=never,
 *   a bad disk): the cut bytes are saved to `<segment>.corrupt-<ms>`, a warning is logged, and the
 *   later segments are still replayed — every item that can be read is served; a REMOVE lost in
 *   the cut part may bring a consumed item back (at-least-once rather than loss).
 * - A segment whose header is unreadable is renamed to `<segment>.corrupt-<ms>` and skipped; one
 *   from a newer format version stops the open with an error (never destroy what we can't read).
 * - Carry-forward (compaction) re-appends an ADD with its original seq into a later segment, so a
 *   seq can appear twice and out of order: such copies (seq below the segment's base seq) are kept
 *   apart (`carried`), the last copy wins, and readers merge them back in seq order.
 * - A segment flagged RESET makes every older segment obsolete (an interrupted flush): they are
 *   deleted. A DELETED tombstone (an interrupted delete) leaves the queue empty.
 */
import * as fs from 'node:fs'
import { join } from 'node:path'
import {
  decodeHeader,
  FLAG_DELETED,
  FLAG_RESET,
  OP_ADD,
  OP_REMOVE,
  readU64,
  segmentFileName,
  type SegmentHeader,
} from './format.js'
import { fdatasyncNow, fsyncDir, ftruncateNow } from './faults.js'
import { CarriedItems, SegmentLive } from './liveIndex.js'
import { scanRecords, type RecordSink, type ScannedRecords } from './scan.js'
import type { ScanPool } from './scanPool.js'
import { CHUNK_BYTES, ChunkReader, createSegment, forEachRecord, listSegments, type Segment } from './segment.js'

export interface JournalLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
}

export const silentLogger: JournalLogger = { info() {}, warn() {} }

export interface ReplayState {
  /** Every segment, oldest first, open, with its live counts, bytes and bitmap filled in. */
  segments: Segment[]
  /** ADDs that carry-forward re-appended (and any other out-of-order copy): where each sits. */
  carried: CarriedItems
  nextSeq: number
  records: number
  truncatedBytes: number
  /** Replay threads that scanned segments (0: all on the main thread). */
  threads: number
}

/**
 * The segment holding `seq` as an original ADD, if any. `origSegs` are the segments that have
 * original ADDs, in order: their seq ranges ascend and never overlap, so a binary search finds it.
 */
export function findOriginal(origSegs: readonly Segment[], seq: number): Segment | undefined {
  let lo = 0
  let hi = origSegs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (origSegs[mid]!.live.first <= seq) lo = mid + 1
    else hi = mid
  }
  if (lo === 0) return undefined
  const seg = origSegs[lo - 1]!
  return seq <= seg.live.last ? seg : undefined
}

/**
 * Builds the live state while records stream by, in log order: an ADD whose seq is at least its
 * segment's base seq and above every original before it is an ORIGINAL (one bit in its segment);
 * any other ADD is a copy (carry-forward re-appends with the old seq): the last copy wins, so an
 * older live copy of the seq is killed and the copy is remembered in `carried`. A REMOVE kills the
 * live copy of its seq, wherever it is.
 */
class Builder {
  readonly carried = new CarriedItems()
  readonly origSegs: Segment[] = []
  readonly bySegno = new Map<number, Segment>()
  lastOrig = -1
  maxSeq = 0
  records = 0
  unknown = 0

  add(seg: Segment, baseSeq: number, seq: number, off: number, size: number): void {
    if (seq > this.maxSeq) this.maxSeq = seq
    if (seq >= baseSeq && seq > this.lastOrig) {
      if (seg.live.first < 0) this.origSegs.push(seg)
      seg.live.append(seq, off, size)
      seg.liveCount++
      this.lastOrig = seq
    } else {
      this.kill(seq)
      this.carried.set(seq, { segno: seg.segno, off, size })
      seg.liveCount++
      seg.liveBytes += size
    }
  }

  kill(seq: number): void {
    if (seq > this.maxSeq) this.maxSeq = seq
    const c = this.carried.get(seq)
    if (c) {
      this.carried.delete(seq)
      const s = this.bySegno.get(c.segno)!
      s.liveCount--
      s.liveBytes -= c.size
      return
    }
    const s = findOriginal(this.origSegs, seq)
    // original bytes are summed at the end (liveBytes holds carried bytes until then)
    if (s && s.live.kill(seq)) s.liveCount--
  }
}

/**
 * Record bytes of a segment's live original ADDs. Known without reading when they are all live or
 * all the same size; otherwise (mixed sizes, partly consumed: usually just the head segment) the
 * segment is read once more.
 */
function originalLiveBytes(seg: Segment, reader: ChunkReader): number {
  const live = seg.live
  if (live.live === 0) return 0
  if (live.live === live.count) return live.bytes
  if (live.uniform > 0) return live.live * live.uniform
  let bytes = 0
  let off = live.seek(live.firstLive())
  if (off < 0) off = seg.headerLength
  forEachRecord(reader, seg.fd, off, seg.size, (buf, at, _off, size) => {
    if (buf[at + 8] === OP_ADD && live.has(readU64(buf, at + 9))) bytes += size
  })
  return bytes
}

function corruptName(path: string): string {
  return `${path}.corrupt-${Date.now()}`
}

/** How often a long replay logs its progress. */
const PROGRESS_LOG_MS = Number(process.env.STARLING_REPLAY_PROGRESS_MS ?? 1000)
/** Journals smaller than this are scanned on the main thread (starting threads costs more). */
const PARALLEL_MIN_BYTES = Number(process.env.STARLING_REPLAY_PARALLEL_MIN_BYTES ?? 64 * 1024 * 1024)

/** Replay a queue's journal on the main thread. */
export function replaySegments(dir: string, encoded: string, queue: string, logger: JournalLogger): ReplayState {
  const plan = planReplay(dir, encoded, queue, logger)
  if (!(plan instanceof Replayer)) return plan
  const chunk = { buf: Buffer.allocUnsafe(CHUNK_BYTES) }
  for (const seg of plan.segments) plan.finishSegment(seg, scanRecords(seg.fd, seg.size, seg.headerLength, chunk, plan.sinkFor(seg)))
  return plan.result()
}

/**
 * Replay a queue's journal, scanning its segments (the reads and CRCs, most of the work) on the
 * replay threads when the journal is big and there are threads; the live index is still built on
 * this thread, segment by segment in order. A scan that fails on a thread is redone here.
 */
export async function replaySegmentsParallel(
  dir: string,
  encoded: string,
  queue: string,
  logger: JournalLogger,
  pool: ScanPool | null,
  minBytes = PARALLEL_MIN_BYTES,
): Promise<ReplayState> {
  const plan = planReplay(dir, encoded, queue, logger)
  if (!(plan instanceof Replayer)) return plan
  const segments = plan.segments
  const chunk = { buf: Buffer.allocUnsafe(0) }
  const scanHere = (seg: Segment): number => {
    if (chunk.buf.length === 0) chunk.buf = Buffer.allocUnsafe(CHUNK_BYTES)
    return scanRecords(seg.fd, seg.size, seg.headerLength, chunk, plan.sinkFor(seg))
  }
  const total = segments.reduce((a, seg) => a + seg.size, 0)
  if (pool === null || segments.length < 2 || total < minBytes) {
    for (const seg of segments) plan.finishSegment(seg, scanHere(seg))
    return plan.result()
  }
  // Keep every thread busy with the next segments, but hold few results at a time.
  const window = pool.size * 2
  const scans: Promise<ScannedRecords | Error>[] = []
  const startScan = (i: number): void => {
    const seg = segments[i]!
    scans[i] = pool.scan(seg.path, seg.headerLength, seg.size).catch((err: Error) => err)
  }
  let threadFailure = false
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!
    if (threadFailure) {
      plan.finishSegment(seg, scanHere(seg))
      continue
    }
    for (let j = scans.length; j < Math.min(segments.length, i + window); j++) startScan(j)
    const scanned = await scans[i]!
    delete scans[i]
    if (scanned instanceof Error) {
      if (!threadFailure) logger.warn({ queue, err: scanned.message }, 'replay thread failed; scanning on the main thread')
      threadFailure = true
      plan.finishSegment(seg, scanHere(seg))
      continue
    }
    plan.applyScanned(seg, scanned)
    pool.recycle(scanned)
    plan.finishSegment(seg, scanned.good)
  }
  return { ...plan.result(), threads: threadFailure ? 0 : pool.size }
}

/**
 * Read every segment's header, finish an interrupted reset/delete, and open the segments that
 * hold the queue (a Replayer), or return the state of a queue that starts empty.
 */
function planReplay(dir: string, encoded: string, queue: string, logger: JournalLogger): Replayer | ReplayState {
  let segnos = listSegments(dir, encoded)
  // headers first: completes an interrupted reset/delete before reading any record
  const headers = new Map<number, SegmentHeader>()
  const headBuf = Buffer.allocUnsafe(64 * 1024 + 64)
  for (const segno of [...segnos]) {
    const path = join(dir, segmentFileName(encoded, segno))
    const fd = fs.openSync(path, 'r')
    let n: number
    try {
      n = fs.readSync(fd, headBuf, 0, headBuf.length, 0)
    } finally {
      fs.closeSync(fd)
    }
    const h = decodeHeader(headBuf.subarray(0, n))
    if (h === 'version') {
      throw new Error(`journal ${path} has an unsupported format version (written by a newer server?)`)
    }
    if (typeof h === 'string' || h.queue !== queue || h.segno !== segno) {
      const to = corruptName(path)
      fs.renameSync(path, to)
      logger.warn({ queue, file: path, movedTo: to, problem: typeof h === 'string' ? h : 'mismatch' }, 'journal segment header unreadable; segment set aside')
      segnos = segnos.filter((s) => s !== segno)
      continue
    }
    headers.set(segno, h)
  }
  let baseSeq = 1
  for (let i = segnos.length - 1; i >= 0; i--) {
    const h = headers.get(segnos[i]!)!
    if ((h.flags & (FLAG_RESET | FLAG_DELETED)) === 0) continue
    const drop = (h.flags & FLAG_DELETED) !== 0 ? segnos.slice(0, i + 1) : segnos.slice(0, i)
    for (const segno of drop) fs.unlinkSync(join(dir, segmentFileName(encoded, segno)))
    if (drop.length > 0) {
      fsyncDir(dir)
      logger.info({ queue, segments: drop.length }, 'completed an interrupted journal reset/delete')
    }
    baseSeq = Math.max(baseSeq, h.baseSeq)
    segnos = segnos.slice(drop.length)
    if (segnos.length === 0) {
      // a tombstone: the queue was being deleted; start afresh after it
      const seg = createSegment({ dir, encoded, queue, segno: h.segno + 1, baseSeq, flags: 0 })
      return emptyState([seg], baseSeq)
    }
    break
  }

  if (segnos.length === 0) {
    const seg = createSegment({ dir, encoded, queue, segno: 1, baseSeq: 1, flags: 0 })
    return emptyState([seg], 1)
  }

  const segments: Segment[] = []
  try {
    for (const segno of segnos) {
      const h = headers.get(segno)!
      const path = join(dir, segmentFileName(encoded, segno))
      const fd = fs.openSync(path, 'r+')
      segments.push({ segno, path, fd, header: h, headerLength: h.length, size: fs.fstatSync(fd).size, liveCount: 0, liveBytes: 0, live: new SegmentLive() })
    }
  } catch (err) {
    for (const seg of segments) fs.closeSync(seg.fd)
    throw err
  }
  return new Replayer(queue, logger, segments, baseSeq)
}

/** The records of a queue's segments, applied in order, become its ReplayState. */
class Replayer {
  private readonly b = new Builder()
  private truncatedBytes = 0
  private done = 0
  private lastProgressLog = Date.now()

  constructor(
    private readonly queue: string,
    private readonly logger: JournalLogger,
    readonly segments: Segment[],
    private baseSeq: number,
  ) {
    for (const seg of segments) this.b.bySegno.set(seg.segno, seg)
  }

  /** Where the main-thread scan of `seg` puts its records. */
  sinkFor(seg: Segment): RecordSink {
    const b = this.b
    const baseSeq = seg.header!.baseSeq
    return {
      record(op, seq, off, size) {
        if (op === OP_ADD) b.add(seg, baseSeq, seq, off, size)
        else if (op === OP_REMOVE) b.kill(seq)
        else b.unknown++
        b.records++
      },
    }
  }

  /** Apply the records a replay thread scanned from `seg`. */
  applyScanned(seg: Segment, r: ScannedRecords): void {
    const sink = this.sinkFor(seg)
    const { ops, seqs, offs, sizes } = r
    for (let i = 0; i < r.count; i++) sink.record(ops[i]!, seqs[i]!, offs[i]!, sizes[i]!)
  }

  /** The segment's records are in; `good` is where its first bad byte is (its size if none). */
  finishSegment(seg: Segment, good: number): void {
    const { queue, logger } = this
    this.baseSeq = Math.max(this.baseSeq, seg.header!.baseSeq)
    const index = this.done++
    const last = index === this.segments.length - 1
    // A long replay says how far it has got, about once a second (segments are read in order).
    const now = Date.now()
    if (now - this.lastProgressLog >= PROGRESS_LOG_MS) {
      this.lastProgressLog = now
      logger.info({ queue, segment: index + 1, segments: this.segments.length, records: this.b.records }, 'replaying journal')
    }
    const fileSize = seg.size
    if (good >= fileSize) return
    const cut = fileSize - good
    this.truncatedBytes += cut
    if (!last) {
      const copy = Buffer.allocUnsafe(cut)
      fs.readSync(seg.fd, copy, 0, cut, good)
      const to = corruptName(seg.path)
      fs.writeFileSync(to, copy)
      logger.warn({ queue, file: seg.path, offset: good, bytes: cut, savedTo: to }, 'journal corrupt in the middle: segment cut at the first bad record, later segments still replayed')
    } else {
      logger.warn({ queue, file: seg.path, offset: good, bytes: cut }, 'journal torn/corrupt tail cut off at the last good record')
    }
    ftruncateNow(seg.fd, good, seg.path)
    fdatasyncNow(seg.fd, seg.path)
    seg.size = good
  }

  result(): ReplayState {
    const b = this.b
    if (b.unknown > 0) this.logger.warn({ queue: this.queue, records: b.unknown }, 'journal records with unknown opcodes skipped')
    const reader = new ChunkReader()
    for (const seg of this.segments) {
      seg.liveBytes += originalLiveBytes(seg, reader)
      seg.live.trim()
    }
    return {
      segments: this.segments,
      carried: b.carried,
      nextSeq: Math.max(b.maxSeq + 1, this.baseSeq, 1),
      records: b.records,
      truncatedBytes: this.truncatedBytes,
      threads: 0,
    }
  }
}

function emptyState(segments: Segment[], nextSeq: number): ReplayState {
  return {
    segments,
    carried: new CarriedItems(),
    nextSeq,
    records: 0,
    truncatedBytes: 0,
    threads: 0,
  }
}
