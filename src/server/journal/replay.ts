/**
 * Replay: read a queue's segments back, oldest first, and work out the live items.
 *
 * Speed and memory: each segment is read once, in 4 MiB chunks, records parsed out of the chunk
 * (no syscall per record), streaming into the live index (liveIndex.ts): one bit per original ADD,
 * a checkpoint every 256 ADDs, an entry per carried copy; nothing else per item, so replaying 10 M
 * items needs a few MB. Live bytes per segment are known from the counts except for a segment that
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
  ADD_FIXED_LENGTH,
  decodeHeader,
  FLAG_DELETED,
  FLAG_RESET,
  MAX_RECORD_LENGTH,
  OP_ADD,
  OP_REMOVE,
  readU64,
  RECORD_PREFIX_BYTES,
  recordCrc,
  REMOVE_LENGTH,
  segmentFileName,
  type SegmentHeader,
} from './format.js'
import type { EventLogger } from '../logger.js'
import { fdatasyncNow, fsyncDir, ftruncateNow } from './fileOps.js'
import { CarriedItems } from './liveIndex.js'
import { CHUNK_BYTES, ChunkReader, forEachRecord, listSegments, pendingSegment, Segment } from './segment.js'

/** For callers that want no journal logs (tests, tools). */
export const silentLogger: EventLogger = { debug() {}, info() {}, warn() {}, error() {} }

/** Old name, kept only for journal/index.ts until it becomes a plain barrel (issue 14 item 6). */
export type JournalLogger = EventLogger

export interface ReplayState {
  /** Every segment, oldest first, open, with its live counts, bytes and bitmap filled in. */
  segments: Segment[]
  /** ADDs that carry-forward re-appended (and any other out-of-order copy): where each sits. */
  carried: CarriedItems
  nextSeq: number
  records: number
  truncatedBytes: number
  /**
   * A one-segment journal read whole by replay: its bytes, so the first read-back needs no read.
   * Valid only until the next replay (loadInitial, right after, lets go of it).
   */
  wholeFile?: Buffer
}

/**
 * The segment holding `seq` as an original ADD, if any. `originalSegments` are the segments that
 * hold original ADDs, in order: their seq ranges ascend and never overlap, so a binary search
 * finds it.
 */
export function findOriginal(originalSegments: readonly Segment[], seq: number): Segment | undefined {
  let lo = 0
  let hi = originalSegments.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (originalSegments[mid]!.live.first <= seq) lo = mid + 1
    else hi = mid
  }
  if (lo === 0) return undefined
  const seg = originalSegments[lo - 1]!
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
  readonly originalSegments: Segment[] = []
  readonly bySegno = new Map<number, Segment>()
  lastOrig = -1
  maxSeq = 0
  records = 0
  unknown = 0

  add(seg: Segment, baseSeq: number, seq: number, off: number, size: number): void {
    if (seq > this.maxSeq) this.maxSeq = seq
    if (seq >= baseSeq && seq > this.lastOrig) {
      if (seg.live.first < 0) this.originalSegments.push(seg)
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
    const s = findOriginal(this.originalSegments, seq)
    // original bytes are summed at the end (liveBytes holds carried bytes until then)
    if (s && s.live.kill(seq)) s.liveCount--
  }
}

/**
 * Parse the records of one segment into the builder. Returns the offset of the first bad byte
 * (the file's size when the whole segment is good).
 */
function scanSegment(fd: number, fileSize: number, start: number, seg: Segment, b: Builder, chunk: { buf: Buffer }, filled = 0): number {
  let buf = chunk.buf
  let pos = start // file offset of buf[0]
  let end = 0 // valid bytes in buf
  let p = 0 // parse position in buf
  if (filled > 0) {
    // chunk.buf already holds the file's first `filled` bytes
    pos = 0
    end = filled
    p = start
  }
  const baseSeq = seg.baseSeq
  for (;;) {
    // parse every complete record in buf[p, end)
    while (end - p >= RECORD_PREFIX_BYTES) {
      const length = buf.readUInt32LE(p)
      if (length < 1 || length > MAX_RECORD_LENGTH) return pos + p
      if (p + RECORD_PREFIX_BYTES + length > end) break
      if (recordCrc(buf, p + 8, length) !== buf.readUInt32LE(p + 4)) return pos + p
      const op = buf[p + 8]
      if (op === OP_ADD) {
        if (length < ADD_FIXED_LENGTH) return pos + p
        b.add(seg, baseSeq, readU64(buf, p + 9), pos + p, RECORD_PREFIX_BYTES + length)
      } else if (op === OP_REMOVE) {
        if (length !== REMOVE_LENGTH) return pos + p
        b.kill(readU64(buf, p + 9))
      } else {
        b.unknown++
      }
      b.records++
      p += RECORD_PREFIX_BYTES + length
    }
    if (pos + end >= fileSize) return pos + p // the file ends inside a record (or exactly here)
    // keep the partial record, read more behind it
    const keep = end - p
    if (keep > 0) {
      const need = keep >= RECORD_PREFIX_BYTES ? RECORD_PREFIX_BYTES + buf.readUInt32LE(p) : 0
      if (need > buf.length) {
        const bigger = Buffer.allocUnsafe(need)
        buf.copy(bigger, 0, p, end)
        buf = chunk.buf = bigger
      } else {
        buf.copy(buf, 0, p, end)
      }
    }
    pos += p
    p = 0
    end = keep
    const want = Math.min(buf.length - end, fileSize - (pos + end))
    const n = fs.readSync(fd, buf, end, want, pos + end)
    if (n <= 0) return pos // file shrank under us: treat as end
    end += n
  }
}

/**
 * Record bytes of a segment's live original ADDs. Known without reading when they are all live or
 * all the same size; otherwise (mixed sizes, partly consumed: usually just the head segment) the
 * segment is read once more.
 */
function originalLiveBytes(seg: Segment, reader: ChunkReader): number {
  const live = seg.live
  if (live.liveOriginals === 0) return 0
  if (live.liveOriginals === live.count) return live.bytes
  if (live.uniform > 0) return live.liveOriginals * live.uniform
  let bytes = 0
  let off = live.seek(live.firstLive())
  if (off < 0) off = seg.headerLength
  forEachRecord(reader, seg, off, seg.size, (buf, at, _off, size) => {
    if (buf[at + 8] === OP_ADD && live.has(readU64(buf, at + 9))) bytes += size
  })
  return bytes
}

function corruptName(path: string): string {
  return `${path}.corrupt-${Date.now()}`
}

/** How often a long replay logs its progress. */
const PROGRESS_LOG_MS = Number(process.env.STARLING_REPLAY_PROGRESS_MS ?? 1000)

// Replay runs synchronously, one queue at a time: one set of read buffers serves every queue (a
// queue must not cost a 4 MiB chunk to replay, nor keep one).
const headBuf = Buffer.allocUnsafe(64 * 1024 + 64)

/**
 * Replay one queue. `listedSegnos` is its segment numbers when the caller listed the spool already (the
 * spool index: no directory scan per queue); otherwise the directory is read.
 */
export function replaySegments(dir: string, encoded: string, queue: string, logger: EventLogger, listedSegnos?: number[]): ReplayState {
  let segnos = listedSegnos ?? listSegments(dir, encoded)
  // headers first: completes an interrupted reset/delete before reading any record
  const headers = new Map<number, SegmentHeader>()
  const opened = new Map<number, Segment>()
  /** The segment whose whole file is still in headBuf (read with its header), or -1. */
  let wholeInHeadBuf = -1
  for (const segno of [...segnos]) {
    const path = join(dir, segmentFileName(encoded, segno))
    const seg = new Segment(segno, path, 0, 0, 0)
    const n = fs.readSync(seg.fd, headBuf, 0, headBuf.length, 0)
    wholeInHeadBuf = -1
    const h = decodeHeader(headBuf.subarray(0, n))
    if (h === 'version') {
      seg.close()
      throw new Error(`journal ${path} has an unsupported format version (written by a newer server?)`)
    }
    if (h === 'short' && n < headBuf.length) {
      // a segment created by its first write, cut short before its header was complete: it never
      // held a record (records follow the header)
      seg.close()
      fs.unlinkSync(path)
      logger.info({ queue, file: path }, 'unfinished journal segment creation removed')
      segnos = segnos.filter((s) => s !== segno)
      continue
    }
    if (typeof h === 'string' || h.queue !== queue || h.segno !== segno) {
      seg.close()
      const to = corruptName(path)
      fs.renameSync(path, to)
      logger.warn({ queue, file: path, movedTo: to, problem: typeof h === 'string' ? h : 'mismatch' }, 'journal segment header unreadable; segment set aside')
      segnos = segnos.filter((s) => s !== segno)
      continue
    }
    seg.baseSeq = h.baseSeq
    seg.headerLength = h.length
    // a short read is the whole file: no fstat needed
    seg.size = n < headBuf.length ? n : fs.fstatSync(seg.fd).size
    headers.set(segno, h)
    opened.set(segno, seg)
    wholeInHeadBuf = n < headBuf.length ? segno : -1
  }
  let baseSeq = 1
  for (let i = segnos.length - 1; i >= 0; i--) {
    const h = headers.get(segnos[i]!)!
    if ((h.flags & (FLAG_RESET | FLAG_DELETED)) === 0) continue
    const drop = (h.flags & FLAG_DELETED) !== 0 ? segnos.slice(0, i + 1) : segnos.slice(0, i)
    for (const segno of drop) {
      opened.get(segno)?.close()
      fs.unlinkSync(join(dir, segmentFileName(encoded, segno)))
    }
    if (drop.length > 0) {
      fsyncDir(dir)
      logger.info({ queue, segments: drop.length }, 'completed an interrupted journal reset/delete')
    }
    baseSeq = Math.max(baseSeq, h.baseSeq)
    segnos = segnos.slice(drop.length)
    if (segnos.length === 0) {
      // a tombstone: the queue was being deleted; start afresh after it
      return emptyState([pendingSegment({ dir, encoded, queue, segno: h.segno + 1, baseSeq })], baseSeq)
    }
    break
  }

  if (segnos.length === 0) {
    // no journal yet: nothing is created on disk until the first write
    return emptyState([pendingSegment({ dir, encoded, queue, segno: 1, baseSeq: 1 })], 1)
  }

  const b = new Builder()
  const segments: Segment[] = []
  // for files too big for headBuf, and only for the time of this replay
  const chunk = { buf: headBuf.subarray(0, 0) }
  let truncatedBytes = 0
  let lastProgressLog = Date.now()
  for (let i = 0; i < segnos.length; i++) {
    const segno = segnos[i]!
    const h = headers.get(segno)!
    baseSeq = Math.max(baseSeq, h.baseSeq)
    const seg = opened.get(segno)!
    const path = seg.path
    const fd = seg.fd
    const fileSize = seg.size
    b.bySegno.set(segno, seg)
    const good =
      segno === wholeInHeadBuf
        ? scanSegment(fd, fileSize, h.length, seg, b, { buf: headBuf }, fileSize)
        : scanSegment(fd, fileSize, h.length, seg, b, chunk.buf.length > 0 ? chunk : (chunk.buf = Buffer.allocUnsafe(CHUNK_BYTES), chunk))
    // A long replay says how far it has got, about once a second (segments are read in order).
    const now = Date.now()
    if (now - lastProgressLog >= PROGRESS_LOG_MS) {
      lastProgressLog = now
      logger.info({ queue, segment: i + 1, segments: segnos.length, records: b.records }, 'replaying journal')
    }
    if (good < fileSize) {
      const cut = fileSize - good
      truncatedBytes += cut
      const last = i === segnos.length - 1
      if (!last) {
        const copy = Buffer.allocUnsafe(cut)
        fs.readSync(fd, copy, 0, cut, good)
        const to = corruptName(path)
        fs.writeFileSync(to, copy, { mode: 0o600 })
        logger.warn({ queue, file: path, offset: good, bytes: cut, savedTo: to }, 'journal corrupt in the middle: segment cut at the first bad record, later segments still replayed')
      } else {
        logger.warn({ queue, file: path, offset: good, bytes: cut }, 'journal torn/corrupt tail cut off at the last good record')
      }
      ftruncateNow(fd, good, path)
      fdatasyncNow(fd, path)
      seg.size = good
    }
    segments.push(seg)
  }
  if (b.unknown > 0) logger.warn({ queue, records: b.unknown }, 'journal records with unknown opcodes skipped')

  // the scan chunk is free again: a re-read of a partly consumed segment reads into it
  const reader = new ChunkReader()
  if (chunk.buf.length > 0) reader.adopt(chunk.buf)
  for (const seg of segments) {
    seg.liveBytes += originalLiveBytes(seg, reader)
    seg.live.trim()
  }

  const only = segments.length === 1 ? segments[0]! : undefined
  return {
    segments,
    carried: b.carried,
    nextSeq: Math.max(b.maxSeq + 1, baseSeq, 1),
    records: b.records,
    truncatedBytes,
    // a view, not a copy: the journal reads its first items from it and releases it before the
    // next replay reuses headBuf (a copy per queue fragmented the buffer pool the items live in)
    wholeFile: only && only.segno === wholeInHeadBuf ? headBuf.subarray(0, only.size) : undefined,
  }
}

function emptyState(segments: Segment[], nextSeq: number): ReplayState {
  return {
    segments,
    carried: new CarriedItems(),
    nextSeq,
    records: 0,
    truncatedBytes: 0,
  }
}
