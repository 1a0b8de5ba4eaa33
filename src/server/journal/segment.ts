/**
 * One segment file of a queue journal: creating one crash-safely, listing a queue's segments, and
 * reading big chunks of them.
 */
import * as fs from 'node:fs'
import { join } from 'node:path'
import {
  decodeHeader,
  encodeHeader,
  HEADER_FIXED_BYTES,
  MAX_RECORD_LENGTH,
  RECORD_PREFIX_BYTES,
  parseSegmentFileName,
  parseTmpFileName,
  segmentFileName,
  TMP_SUFFIX,
} from './format.js'
import { failpoint, fdatasyncNow, fsyncDir, openNow, renameNow, writeFully, type FailpointName } from './fileOps.js'
import { openJournals, type CachedFile } from './fdCache.js'
import { SegmentLive } from './liveIndex.js'

/**
 * A segment file. Its fd comes from the shared LRU of open journals (fdCache.ts): `seg.fd` reopens
 * it when it was closed to make room. A segment made by `pendingSegment` is not on disk yet: the
 * file is created (header written) when its fd is first needed, i.e. by the first write, so a queue
 * that is only read, or never written, has no file at all.
 */
export class Segment extends SegmentLive implements CachedFile {
  openFd = -1
  pins = 0
  closeWhenUnpinned = false
  /** Header bytes still to write: the file does not exist yet. */
  pendingHeader: Buffer | null = null
  /** Created without a directory fsync: the next fsync of this file must also fsync the dir. */
  dirUnsynced = false
  /** Live ADD records in this segment (original and carried), and their record bytes. */
  liveCount = 0
  liveBytes = 0
  constructor(
    readonly segno: number,
    readonly path: string,
    /** The header's base seq (a plain field: a header object per segment cost ~400 bytes a queue). */
    public baseSeq: number,
    /** Where records start. */
    public headerLength: number,
    /** Bytes written and good: where the next batch goes. */
    public size: number,
  ) {
    super()
  }

  /**
   * Which of the segment's original ADDs are live (liveIndex.ts): the segment itself, which extends
   * SegmentLive rather than holding one (issue 17: an object less a queue, ~32 B).
   */
  get live(): SegmentLive {
    return this
  }

  /** The open fd (opened, or created, if needed). */
  get fd(): number {
    return openJournals.acquire(this)
  }

  /** Is the file on disk? */
  get exists(): boolean {
    return this.pendingHeader === null
  }

  openFile(): number {
    if (this.pendingHeader === null) return openNow(this.path, 'r+')
    // First write: create it in place ('wx+': never over a file we did not know of). Crash-safe
    // without tmp+rename: a file cut short before its header is complete holds nothing
    // acknowledged, and replay deletes it (an unfinished creation).
    const fd = openNow(this.path, 'wx+')
    try {
      writeFully(fd, this.pendingHeader, this.pendingHeader.length, 0, this.path)
    } catch (err) {
      fs.closeSync(fd)
      try {
        fs.unlinkSync(this.path)
      } catch {
        /* not there */
      }
      throw err
    }
    this.pendingHeader = null
    this.dirUnsynced = true
    return fd
  }

  /** Create the file now if it is not on disk yet; false if that failed (the first write retries). */
  createNow(): boolean {
    try {
      void this.fd
      return true
    } catch {
      return false
    }
  }

  /** Done with the file (journal closed, segment deleted): give its fd back. */
  close(): void {
    openJournals.release(this)
  }
}

/** A segment that will be created on disk by its first write (see Segment). */
export function pendingSegment(o: { dir: string; encoded: string; queue: string; segno: number; baseSeq: number }): Segment {
  const bytes = encodeHeader({ flags: 0, segno: o.segno, baseSeq: o.baseSeq, importFingerprint: 0, importSize: 0, queue: o.queue })
  const seg = new Segment(o.segno, join(o.dir, segmentFileName(o.encoded, o.segno)), o.baseSeq, bytes.length, bytes.length)
  seg.pendingHeader = bytes
  return seg
}

/** Every segment number of a queue found in `dir`, ascending; leftover .tmp files are deleted. */
export function listSegments(dir: string, encoded: string, files?: string[]): number[] {
  const out: number[] = []
  for (const file of files ?? fs.readdirSync(dir)) {
    const seg = parseSegmentFileName(file)
    if (seg && seg.encoded === encoded) {
      out.push(seg.segno)
      continue
    }
    const tmp = parseTmpFileName(file)
    if (tmp && tmp.encoded === encoded) {
      // a segment whose creation never completed: it was never part of the journal
      try {
        fs.unlinkSync(join(dir, file))
      } catch {
        /* gone already */
      }
    }
  }
  return out.sort((a, b) => a - b)
}

export interface NewSegmentOptions {
  dir: string
  encoded: string
  queue: string
  segno: number
  baseSeq: number
  flags: number
  importFingerprint?: number
  importSize?: number
  /** Records to put in the segment right after the header (Starling import). */
  body?: Buffer
  /** Failpoints to pass: after the tmp write, after the rename. */
  failpoints?: [FailpointName, FailpointName]
}

/**
 * Create a segment crash-safely: write header (+ body) to `<name>.tmp`, fsync it, rename it into
 * place, fsync the directory. Returns the open (read/write) segment.
 */
export function createSegment(o: NewSegmentOptions): Segment {
  const name = segmentFileName(o.encoded, o.segno)
  const path = join(o.dir, name)
  const tmp = path + TMP_SUFFIX
  const fields = {
    flags: o.flags,
    segno: o.segno,
    baseSeq: o.baseSeq,
    importFingerprint: o.importFingerprint ?? 0,
    importSize: o.importSize ?? 0,
    queue: o.queue,
  }
  const header = encodeHeader(fields)
  const fd = openNow(tmp, 'w+')
  try {
    writeFully(fd, header, header.length, 0, tmp)
    let size = header.length
    if (o.body && o.body.length > 0) {
      writeFully(fd, o.body, o.body.length, size, tmp)
      size += o.body.length
    }
    if (o.failpoints) failpoint(o.failpoints[0])
    fdatasyncNow(fd, tmp)
    renameNow(tmp, path)
    if (o.failpoints) failpoint(o.failpoints[1])
    fsyncDir(o.dir)
    const seg = new Segment(o.segno, path, o.baseSeq, header.length, size)
    openJournals.adopt(seg, fd)
    return seg
  } catch (err) {
    fs.closeSync(fd)
    try {
      fs.unlinkSync(tmp)
    } catch {
      /* not there */
    }
    throw err
  }
}

/** Read and decode the header at the start of a segment file. */
export function readSegmentHeader(path: string): ReturnType<typeof decodeHeader> {
  const buf = Buffer.allocUnsafe(HEADER_FIXED_BYTES + 0xffff + 4)
  const fd = fs.openSync(path, 'r')
  try {
    const n = fs.readSync(fd, buf, 0, buf.length, 0)
    return decodeHeader(buf.subarray(0, n))
  } finally {
    fs.closeSync(fd)
  }
}

export const CHUNK_BYTES = 4 * 1024 * 1024
const EMPTY = Buffer.alloc(0)

/** Anything with an fd to read from (a Segment: its fd may be reopened between reads). */
export interface Readable {
  readonly fd: number
}

/**
 * Reads records back from segments in big chunks: the last chunk is kept, so reading records
 * that lie next to each other costs one syscall per chunk, not per record. The buffer is allocated
 * on first use, no bigger than the file needs, and given back with `release` (an idle queue holds
 * none). The chunk belongs to a file object, not an fd number: fd numbers are reused once the LRU
 * closes them.
 */
export class ChunkReader {
  private buf: Buffer = EMPTY
  private file: Readable | undefined
  private start = 0
  private length = 0

  /** Forget the cached chunk (the file changed or was closed). */
  invalidate(): void {
    this.file = undefined
    this.length = 0
  }

  /** Start with bytes already read: [start, start + buf.length) of `file`. */
  seed(file: Readable, start: number, buf: Buffer): void {
    this.buf = buf
    this.file = file
    this.start = start
    this.length = buf.length
  }

  /** Read into `buf` from now on (a buffer its owner is done with); nothing cached yet. */
  adopt(buf: Buffer): void {
    this.invalidate()
    this.buf = buf
  }

  /** Forget the chunk and give its memory back. */
  release(): void {
    this.invalidate()
    this.buf = EMPTY
  }

  /**
   * The bytes [off, off+size) of the file, as a view into the chunk buffer (valid until the next
   * call). `limit` is how far the file may be read (its good size).
   */
  read(file: Readable, off: number, size: number, limit: number): { buf: Buffer; at: number } {
    if (file !== this.file || off < this.start || off + size > this.start + this.length) {
      if (size > this.buf.length || (this.buf.length < CHUNK_BYTES && limit - off > this.buf.length)) {
        const want = Math.max(size, Math.min(CHUNK_BYTES, limit - off))
        // small files get a small buffer (one 64-byte item must not cost a 4 MiB chunk)
        let cap = 4096
        while (cap < want) cap *= 2
        this.buf = Buffer.allocUnsafe(Math.max(size, Math.min(cap, CHUNK_BYTES)))
      }
      const want = Math.min(this.buf.length, limit - off)
      const fd = file.fd
      let got = 0
      while (got < want) {
        const n = fs.readSync(fd, this.buf, got, want - got, off + got)
        if (n === 0) break
        got += n
      }
      this.file = file
      this.start = off
      this.length = got
      if (got < size) throw new Error(`journal segment shorter than expected (${off}+${size})`)
    }
    return { buf: this.buf, at: off - this.start }
  }
}

/**
 * Walk the records of a segment file from `off` up to `end`, through `reader` (big chunks, no
 * syscall per record): `fn` gets each record as buf[at, at + size) and its file offset; returning
 * false stops the walk. Returns where the walk stopped: the offset of the record `fn` refused or of
 * one whose length is impossible, else `end`. CRCs are the caller's business.
 */
export function forEachRecord(
  reader: ChunkReader,
  fd: Readable,
  off: number,
  end: number,
  fn: (buf: Buffer, at: number, off: number, size: number) => boolean | void,
): number {
  while (off + RECORD_PREFIX_BYTES <= end) {
    let v = reader.read(fd, off, RECORD_PREFIX_BYTES, end)
    const length = v.buf.readUInt32LE(v.at)
    if (length < 1 || length > MAX_RECORD_LENGTH || off + RECORD_PREFIX_BYTES + length > end) return off
    v = reader.read(fd, off, RECORD_PREFIX_BYTES + length, end)
    if (fn(v.buf, v.at, off, RECORD_PREFIX_BYTES + length) === false) return off
    off += RECORD_PREFIX_BYTES + length
  }
  return off
}
