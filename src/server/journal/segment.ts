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
  FORMAT_VERSION,
  MAX_RECORD_LENGTH,
  RECORD_PREFIX_BYTES,
  parseSegmentFileName,
  parseTmpFileName,
  segmentFileName,
  TMP_SUFFIX,
  type SegmentHeader,
} from './format.js'
import { failpoint, fdatasyncNow, fsyncDir, openNow, renameNow, writeFully, type FailpointName } from './fileOps.js'
import { SegmentLive } from './liveIndex.js'

export interface Segment {
  segno: number
  path: string
  fd: number
  header: SegmentHeader | undefined
  /** Where records start. */
  headerLength: number
  /** Bytes written and good: where the next batch goes. */
  size: number
  /** Live ADD records in this segment (original and carried), and their record bytes. */
  liveCount: number
  liveBytes: number
  /** Which of the segment's original ADDs are live (liveIndex.ts). */
  live: SegmentLive
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
  const header = encodeHeader({
    flags: o.flags,
    segno: o.segno,
    baseSeq: o.baseSeq,
    importFingerprint: o.importFingerprint ?? 0,
    importSize: o.importSize ?? 0,
    queue: o.queue,
  })
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
    return {
      segno: o.segno,
      path,
      fd,
      header: {
        version: FORMAT_VERSION,
        flags: o.flags,
        segno: o.segno,
        baseSeq: o.baseSeq,
        importFingerprint: o.importFingerprint ?? 0,
        importSize: o.importSize ?? 0,
        queue: o.queue,
        length: header.length,
      },
      headerLength: header.length,
      size,
      liveCount: 0,
      liveBytes: 0,
      live: new SegmentLive(),
    }
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

/**
 * Reads records back from segments in big chunks: the last chunk is kept, so reading records
 * that lie next to each other costs one syscall per chunk, not per record.
 */
export class ChunkReader {
  private buf = Buffer.allocUnsafe(CHUNK_BYTES)
  private fd = -1
  private start = 0
  private length = 0

  /** Forget the cached chunk (the file changed or was closed). */
  invalidate(): void {
    this.fd = -1
    this.length = 0
  }

  /**
   * The bytes [off, off+size) of the file, as a view into the chunk buffer (valid until the next
   * call). `limit` is how far the file may be read (its good size).
   */
  read(fd: number, off: number, size: number, limit: number): { buf: Buffer; at: number } {
    if (fd !== this.fd || off < this.start || off + size > this.start + this.length) {
      if (size > this.buf.length) this.buf = Buffer.allocUnsafe(size)
      const want = Math.min(this.buf.length, limit - off)
      let got = 0
      while (got < want) {
        const n = fs.readSync(fd, this.buf, got, want - got, off + got)
        if (n === 0) break
        got += n
      }
      this.fd = fd
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
  fd: number,
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
