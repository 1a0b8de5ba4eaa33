/**
 * Replay: read a queue's segments back, oldest first, and work out the live items.
 *
 * Speed: each segment is read in 4 MiB chunks and records are parsed out of the chunk (no syscall
 * per record). The first pass keeps only (seq, segment, offset, size) of each ADD and the seq of
 * each REMOVE, in typed arrays; live items are ADDs never REMOVEd. Payloads are read in a second,
 * sequential pass, only for the items that go to memory.
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
 *   seq can appear twice and out of order: items are put in seq order and the last copy wins.
 * - A segment flagged RESET makes every older segment obsolete (an interrupted flush): they are
 *   deleted. A DELETED tombstone (an interrupted delete) leaves the queue empty.
 */
import * as fs from 'node:fs'
import { join } from 'node:path'
import {
  ADD_FIXED_LENGTH,
  decodeAddItem,
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
import { fdatasyncNow, fsyncDir, ftruncateNow } from './faults.js'
import { LiveIndex } from './liveIndex.js'
import { CHUNK_BYTES, ChunkReader, createSegment, listSegments, type Segment } from './segment.js'
import type { JournalItem } from './types.js'

export interface JournalLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
}

export const silentLogger: JournalLogger = { info() {}, warn() {} }

export interface ReplayState {
  segments: Segment[]
  index: LiveIndex
  items: JournalItem[]
  diskItems: number
  diskBytes: number
  /** seq of the first item left on disk, or -1. */
  firstDiskSeq: number
  nextSeq: number
  records: number
  truncatedBytes: number
}

class GrowableF64 {
  a = new Float64Array(4096)
  n = 0
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2)
      b.set(this.a)
      this.a = b
    }
    this.a[this.n++] = v
  }
}

class GrowableU32 {
  a = new Uint32Array(4096)
  n = 0
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Uint32Array(this.a.length * 2)
      b.set(this.a)
      this.a = b
    }
    this.a[this.n++] = v
  }
}

interface ScanSink {
  addSeq: GrowableF64
  addSeg: GrowableU32
  addOff: GrowableF64
  addSize: GrowableU32
  removeSeq: GrowableF64
  records: number
  unknown: number
  maxSeq: number
  sorted: boolean
}

/**
 * Parse the records of one segment into the sink. Returns the offset of the first bad byte (the
 * file's size when the whole segment is good).
 */
function scanSegment(fd: number, fileSize: number, start: number, segIdx: number, sink: ScanSink, chunk: { buf: Buffer }): number {
  let buf = chunk.buf
  let pos = start // file offset of buf[0]
  let end = 0 // valid bytes in buf
  let p = 0 // parse position in buf
  const { addSeq, addSeg, addOff, addSize, removeSeq } = sink
  let lastSeq = addSeq.n > 0 ? addSeq.a[addSeq.n - 1]! : -1
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
        const seq = readU64(buf, p + 9)
        if (seq <= lastSeq) sink.sorted = false
        lastSeq = seq
        if (seq > sink.maxSeq) sink.maxSeq = seq
        addSeq.push(seq)
        addSeg.push(segIdx)
        addOff.push(pos + p)
        addSize.push(RECORD_PREFIX_BYTES + length)
      } else if (op === OP_REMOVE) {
        if (length !== REMOVE_LENGTH) return pos + p
        const seq = readU64(buf, p + 9)
        if (seq > sink.maxSeq) sink.maxSeq = seq
        removeSeq.push(seq)
      } else {
        sink.unknown++
      }
      sink.records++
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

function corruptName(path: string): string {
  return `${path}.corrupt-${Date.now()}`
}

export function replaySegments(
  dir: string,
  encoded: string,
  queue: string,
  memoryBudgetBytes: number,
  logger: JournalLogger,
): ReplayState {
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

  const sink: ScanSink = {
    addSeq: new GrowableF64(),
    addSeg: new GrowableU32(),
    addOff: new GrowableF64(),
    addSize: new GrowableU32(),
    removeSeq: new GrowableF64(),
    records: 0,
    unknown: 0,
    maxSeq: 0,
    sorted: true,
  }
  const segments: Segment[] = []
  const chunk = { buf: Buffer.allocUnsafe(CHUNK_BYTES) }
  let truncatedBytes = 0
  for (let i = 0; i < segnos.length; i++) {
    const segno = segnos[i]!
    const h = headers.get(segno)!
    baseSeq = Math.max(baseSeq, h.baseSeq)
    const path = join(dir, segmentFileName(encoded, segno))
    const fd = fs.openSync(path, 'r+')
    const fileSize = fs.fstatSync(fd).size
    const good = scanSegment(fd, fileSize, h.length, i, sink, chunk)
    if (good < fileSize) {
      const cut = fileSize - good
      truncatedBytes += cut
      const last = i === segnos.length - 1
      if (!last) {
        const copy = Buffer.allocUnsafe(cut)
        fs.readSync(fd, copy, 0, cut, good)
        const to = corruptName(path)
        fs.writeFileSync(to, copy)
        logger.warn({ queue, file: path, offset: good, bytes: cut, savedTo: to }, 'journal corrupt in the middle: segment cut at the first bad record, later segments still replayed')
      } else {
        logger.warn({ queue, file: path, offset: good, bytes: cut }, 'journal torn/corrupt tail cut off at the last good record')
      }
      ftruncateNow(fd, good, path)
      fdatasyncNow(fd, path)
    }
    segments.push({ segno, path, fd, header: h, headerLength: h.length, size: good, liveCount: 0, liveBytes: 0 })
  }
  if (sink.unknown > 0) logger.warn({ queue, records: sink.unknown }, 'journal records with unknown opcodes skipped')

  // Order ADDs by seq (the log order unless carry-forward re-appended some); the last copy of a seq
  // wins. `order` lists ADD indexes in seq order.
  const nAdds = sink.addSeq.n
  const seqs = sink.addSeq.a
  let order: Uint32Array | undefined
  if (!sink.sorted) {
    const idx = Array.from({ length: nAdds }, (_, k) => k)
    idx.sort((a, b) => seqs[a]! - seqs[b]! || a - b)
    order = Uint32Array.from(idx)
  }
  const at = (k: number): number => (order ? order[k]! : k)
  const dead = new Uint8Array(nAdds)
  if (order) {
    for (let k = 0; k + 1 < nAdds; k++) if (seqs[at(k)] === seqs[at(k + 1)]) dead[at(k)] = 1
  }
  // REMOVEs: mostly ascending, so try where the last one matched before binary searching.
  let hint = 0
  const removes = sink.removeSeq
  for (let r = 0; r < removes.n; r++) {
    const seq = removes.a[r]!
    let k = -1
    if (hint < nAdds && seqs[at(hint)] === seq) k = hint
    else if (hint + 1 < nAdds && seqs[at(hint + 1)] === seq) k = hint + 1
    else {
      let lo = 0
      let hi = nAdds
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (seqs[at(mid)]! < seq) lo = mid + 1
        else hi = mid
      }
      // with duplicates, the live copy is the last of the run
      while (lo + 1 < nAdds && seqs[at(lo + 1)] === seq) lo++
      if (lo < nAdds && seqs[at(lo)] === seq) k = lo
    }
    if (k >= 0) {
      dead[at(k)] = 1
      hint = k + 1
    }
  }

  const index = new LiveIndex(Math.max(1024, nAdds - removes.n))
  for (let k = 0; k < nAdds; k++) {
    const a = at(k)
    if (dead[a]) continue
    const seg = segments[sink.addSeg.a[a]!]!
    const size = sink.addSize.a[a]!
    index.push(seqs[a]!, seg.segno, sink.addOff.a[a]!, size)
    seg.liveCount++
    seg.liveBytes += size
  }

  // Payloads of the first live items, up to the memory budget, in big sequential reads.
  const items: JournalItem[] = []
  const reader = new ChunkReader()
  const bySegno = new Map(segments.map((s) => [s.segno, s]))
  let memBytes = 0
  let i = index.start
  for (; i < index.end; i++) {
    const dataLen = index.sizeAt(i) - RECORD_PREFIX_BYTES - ADD_FIXED_LENGTH
    if (memBytes + dataLen > memoryBudgetBytes) break
    const seg = bySegno.get(index.segAt(i))!
    const { buf, at: o } = reader.read(seg.fd, index.offAt(i), index.sizeAt(i), seg.size)
    items.push(decodeAddItem(buf, o))
    memBytes += dataLen
  }
  let diskBytes = 0
  const firstDiskSeq = i < index.end ? index.seqAt(i) : -1
  for (let j = i; j < index.end; j++) diskBytes += index.sizeAt(j) - RECORD_PREFIX_BYTES - ADD_FIXED_LENGTH

  return {
    segments,
    index,
    items,
    diskItems: index.end - i,
    diskBytes,
    firstDiskSeq,
    nextSeq: Math.max(sink.maxSeq + 1, baseSeq, 1),
    records: sink.records,
    truncatedBytes,
  }
}

function emptyState(segments: Segment[], nextSeq: number): ReplayState {
  return {
    segments,
    index: new LiveIndex(),
    items: [],
    diskItems: 0,
    diskBytes: 0,
    firstDiskSeq: -1,
    nextSeq,
    records: 0,
    truncatedBytes: 0,
  }
}
