/**
 * The on-disk format of a queue journal: file names, segment headers and records. Pure functions
 * over buffers; no file I/O here.
 *
 * ## Files
 *
 * One journal per queue, as numbered SEGMENTS in the spool directory:
 *
 *     <encoded-name>.<segno>.sqj          a segment (segno: decimal, 1, 2, ...; only the last one
 *                                         is appended to)
 *     <encoded-name>.<segno>.sqj.tmp      a segment being created (write, fsync, rename, fsync dir);
 *                                         a leftover one is deleted on open
 *     <file>.corrupt-<ms>                 bytes cut from the middle of a journal, kept for forensics
 *     <starling-name>.starling-bak        an imported Starling journal (see starlingImport.ts)
 *
 * The encoded name keeps `[a-z0-9_-]` and writes every other byte as `%XX` (uppercase hex), so no
 * name can contain `/`, `.` or `..`, and two names can never map to the same file, even on a
 * case-insensitive filesystem (a letter kept as-is is always lower case, an upper-case letter only
 * ever appears as a hex digit right after `%`). An encoded name longer than 180 characters (file
 * names are limited to 255 bytes) is shortened to its first 120 characters, `~`, and 32 hex digits
 * of the SHA-256 of the name; `~` never occurs in a plain encoding, so the two forms can't collide,
 * and the real name is read back from the segment header.
 *
 * ## Segment header (little-endian)
 *
 *     0  u32  magic 'SQJL'
 *     4  u16  format version (1)
 *     6  u16  flags: 1 = RESET (every lower-numbered segment is obsolete: an interrupted flush),
 *                    2 = DELETED (tombstone: the queue is being deleted),
 *                    4 = IMPORTED (converted from a Starling journal; fingerprint below)
 *     8  u32  segment number (equals the number in the file name)
 *    12  u32  reserved (0)
 *    16  f64  base seq: the next seq to assign when the segment was created (seqs are never reused,
 *             even after every older segment is gone)
 *    24  u32  import fingerprint (CRC32 of the imported Starling file), 0 otherwise
 *    28  u32  import source size, 0 otherwise
 *    32  u16  length N of the queue name (latin1)
 *    34  6    reserved (0)
 *    40  N    the queue name, latin1 bytes
 *  40+N  u32  CRC32 of bytes [0, 40+N)
 *
 * ## Records (little-endian), right after the header, back to back
 *
 *     0  u32  length L of opcode + body (record size is 8 + L)
 *     4  u32  CRC32 of the length field followed by opcode + body
 *     8  u8   opcode: 1 = ADD, 2 = REMOVE; 0 and 3..255 reserved (0 also catches zeroed space)
 *     ADD    body: u64 seq, u32 flags, f64 expiresAt (ms, 0 = never), f64 addedAt (ms), data...
 *     REMOVE body: u64 seq
 *
 * A u64 is written as two u32 (low, high); seqs are JS integers below 2^53.
 */
import { crc32 } from 'node:zlib'
import { createHash } from 'node:crypto'
import type { JournalItem } from './types.js'

export const SEGMENT_SUFFIX = '.sqj'
export const TMP_SUFFIX = '.tmp'
export const MAGIC = 0x4c4a5153 // 'SQJL' read as a little-endian u32
export const FORMAT_VERSION = 1
export const FLAG_RESET = 1
export const FLAG_DELETED = 2
export const FLAG_IMPORTED = 4
export const HEADER_FIXED_BYTES = 40

export const RECORD_PREFIX_BYTES = 8
export const OP_ADD = 1
export const OP_REMOVE = 2
/** opcode + seq + flags + expiresAt + addedAt */
export const ADD_FIXED_LENGTH = 1 + 8 + 4 + 8 + 8
export const REMOVE_LENGTH = 1 + 8
/** Largest `length` accepted on replay; anything larger is garbage (items are capped far lower). */
export const MAX_RECORD_LENGTH = 256 * 1024 * 1024

const TWO_32 = 0x1_0000_0000

export function writeU64(buf: Buffer, off: number, value: number): void {
  buf.writeUInt32LE(value >>> 0, off)
  buf.writeUInt32LE(Math.floor(value / TWO_32), off + 4)
}

export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 4) * TWO_32 + buf.readUInt32LE(off)
}

// ---------------------------------------------------------------------------------------------
// File names

const KEEP = new Uint8Array(256)
for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789_-') KEEP[c.charCodeAt(0)] = 1
const HEX = '0123456789ABCDEF'
const MAX_PLAIN_NAME = 180
const HASHED_PREFIX = 120

/** The file-name-safe form of a queue name (latin1 chars; a char above 0xff is rejected). */
export function encodeQueueName(queue: string): string {
  let out = ''
  for (let i = 0; i < queue.length; i++) {
    const c = queue.charCodeAt(i)
    if (c > 0xff) throw new RangeError('queue name is not latin1')
    if (KEEP[c] === 1) out += queue[i]
    else out += '%' + HEX[c >> 4] + HEX[c & 15]
  }
  if (out.length <= MAX_PLAIN_NAME) return out
  let cut = HASHED_PREFIX
  // never cut an escape in half
  const pct = out.lastIndexOf('%', cut - 1)
  if (pct >= 0 && pct > cut - 3) cut = pct
  const digest = createHash('sha256').update(Buffer.from(queue, 'latin1')).digest('hex').slice(0, 32)
  return out.slice(0, cut) + '~' + digest
}

/** Inverse of encodeQueueName for plain (unhashed) names; undefined if not a valid encoding. */
export function decodeQueueName(encoded: string): string | undefined {
  let out = ''
  for (let i = 0; i < encoded.length; i++) {
    const ch = encoded[i]!
    const c = encoded.charCodeAt(i)
    if (ch === '%') {
      const hex = encoded.slice(i + 1, i + 3)
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined
      const v = parseInt(hex, 16)
      if (KEEP[v] === 1) return undefined // not canonical: would have been kept as-is
      out += String.fromCharCode(v)
      i += 2
    } else if (KEEP[c] === 1) {
      out += ch
    } else {
      return undefined
    }
  }
  return out
}

export function isHashedName(encoded: string): boolean {
  return encoded.includes('~')
}

export function segmentFileName(encoded: string, segno: number): string {
  return `${encoded}.${segno}${SEGMENT_SUFFIX}`
}

/** The first segment's file name of a queue (for tests and tools). */
export function queueFileName(queue: string, segno = 1): string {
  return segmentFileName(encodeQueueName(queue), segno)
}

const SEGMENT_RE = /^([a-z0-9A-F_%~-]*)\.([0-9]{1,10})\.sqj$/
const TMP_RE = /^([a-z0-9A-F_%~-]*)\.([0-9]{1,10})\.sqj\.tmp$/

export function parseSegmentFileName(file: string): { encoded: string; segno: number } | undefined {
  const m = SEGMENT_RE.exec(file)
  if (!m) return undefined
  return { encoded: m[1]!, segno: Number(m[2]) }
}

export function parseTmpFileName(file: string): { encoded: string; segno: number } | undefined {
  const m = TMP_RE.exec(file)
  if (!m) return undefined
  return { encoded: m[1]!, segno: Number(m[2]) }
}

/** True for every file name this module owns (segments, temp files, forensic copies). */
export function isJournalFile(file: string): boolean {
  return SEGMENT_RE.test(file) || TMP_RE.test(file) || /\.sqj\.corrupt-[0-9]+$/.test(file)
}

// ---------------------------------------------------------------------------------------------
// Segment header

export interface SegmentHeader {
  version: number
  flags: number
  segno: number
  baseSeq: number
  importFingerprint: number
  importSize: number
  queue: string
  /** Total header bytes: where the first record starts. */
  length: number
}

export function headerLength(queue: string): number {
  return HEADER_FIXED_BYTES + queue.length + 4
}

export function encodeHeader(h: Omit<SegmentHeader, 'version' | 'length'>): Buffer {
  const len = headerLength(h.queue)
  const buf = Buffer.alloc(len)
  buf.writeUInt32LE(MAGIC, 0)
  buf.writeUInt16LE(FORMAT_VERSION, 4)
  buf.writeUInt16LE(h.flags, 6)
  buf.writeUInt32LE(h.segno, 8)
  buf.writeDoubleLE(h.baseSeq, 16)
  buf.writeUInt32LE(h.importFingerprint >>> 0, 24)
  buf.writeUInt32LE(h.importSize >>> 0, 28)
  buf.writeUInt16LE(h.queue.length, 32)
  buf.write(h.queue, HEADER_FIXED_BYTES, 'latin1')
  buf.writeUInt32LE(crc32(buf.subarray(0, len - 4)), len - 4)
  return buf
}

export type HeaderProblem = 'short' | 'magic' | 'version' | 'crc'

/** Decode a header from the start of `buf` (which may hold more bytes). */
export function decodeHeader(buf: Buffer): SegmentHeader | HeaderProblem {
  if (buf.length < HEADER_FIXED_BYTES) return 'short'
  if (buf.readUInt32LE(0) !== MAGIC) return 'magic'
  const version = buf.readUInt16LE(4)
  if (version !== FORMAT_VERSION) return 'version'
  const nameLen = buf.readUInt16LE(32)
  const len = HEADER_FIXED_BYTES + nameLen + 4
  if (buf.length < len) return 'short'
  if (crc32(buf.subarray(0, len - 4)) !== buf.readUInt32LE(len - 4)) return 'crc'
  return {
    version,
    flags: buf.readUInt16LE(6),
    segno: buf.readUInt32LE(8),
    baseSeq: buf.readDoubleLE(16),
    importFingerprint: buf.readUInt32LE(24),
    importSize: buf.readUInt32LE(28),
    queue: buf.toString('latin1', HEADER_FIXED_BYTES, HEADER_FIXED_BYTES + nameLen),
    length: len,
  }
}

// ---------------------------------------------------------------------------------------------
// Records

// CRC-32 (IEEE, reflected 0xEDB88320), the same function as zlib.crc32. zlib.crc32 takes no offset
// and costs a few hundred ns per call in its JS binding (argument checks, a Buffer view), which is
// most of replay's time for small records. So small spans are done here in JS (slicing-by-8
// tables), large ones by zlib; the result is identical.
const CRC_TABLES = new Int32Array(256 * 8)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  CRC_TABLES[n] = c
}
for (let n = 0; n < 256; n++) {
  let c = CRC_TABLES[n]!
  for (let k = 1; k < 8; k++) {
    c = CRC_TABLES[c & 0xff]! ^ (c >>> 8)
    CRC_TABLES[k * 256 + n] = c
  }
}
const JS_CRC_MAX_BYTES = 256

/** CRC-32 of buf[start, end) continuing from `crc` (as zlib.crc32(buf.subarray(start, end), crc)). */
export function crc32Span(buf: Buffer, start: number, end: number, crc: number): number {
  if (end - start > JS_CRC_MAX_BYTES) return crc32(buf.subarray(start, end), crc)
  const T = CRC_TABLES
  let c = ~crc
  let i = start
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24))
    c =
      T[1792 + (a & 0xff)]! ^
      T[1536 + ((a >>> 8) & 0xff)]! ^
      T[1280 + ((a >>> 16) & 0xff)]! ^
      T[1024 + (a >>> 24)]! ^
      T[768 + buf[i + 4]!]! ^
      T[512 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

function crcOfLength(length: number): number {
  const T = CRC_TABLES
  let c = -1
  c = T[(c ^ length) & 0xff]! ^ (c >>> 8)
  c = T[(c ^ (length >>> 8)) & 0xff]! ^ (c >>> 8)
  c = T[(c ^ (length >>> 16)) & 0xff]! ^ (c >>> 8)
  c = T[(c ^ (length >>> 24)) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

/** CRC of a record whose length field is `length` and whose opcode+body is buf[bodyStart, +length). */
export function recordCrc(buf: Buffer, bodyStart: number, length: number): number {
  return crc32Span(buf, bodyStart, bodyStart + length, crcOfLength(length))
}

export function addRecordSize(dataLength: number): number {
  return RECORD_PREFIX_BYTES + ADD_FIXED_LENGTH + dataLength
}

export const REMOVE_RECORD_SIZE = RECORD_PREFIX_BYTES + REMOVE_LENGTH

/** Encode an ADD record at buf[off]; the caller made room (addRecordSize). Returns the end offset. */
export function encodeAdd(buf: Buffer, off: number, item: JournalItem): number {
  const length = ADD_FIXED_LENGTH + item.data.length
  buf.writeUInt32LE(length, off)
  buf[off + 8] = OP_ADD
  writeU64(buf, off + 9, item.seq)
  buf.writeUInt32LE(item.flags >>> 0, off + 17)
  buf.writeDoubleLE(item.expiresAt, off + 21)
  buf.writeDoubleLE(item.addedAt, off + 29)
  const data = item.data
  data.copy(buf, off + 37)
  // the fixed fields' crc here, then on over the payload in the item's own Buffer: zlib.crc32
  // takes no offset, and a view of the batch for it was an allocation per set (issue 13)
  const head = crc32Span(buf, off + 8, off + 37, crcOfLength(length))
  const crc = data.length > JS_CRC_MAX_BYTES ? crc32(data, head) : crc32Span(data, 0, data.length, head)
  buf.writeUInt32LE(crc, off + 4)
  return off + 8 + length
}

/** Encode a REMOVE record at buf[off]. Returns the end offset. */
export function encodeRemove(buf: Buffer, off: number, seq: number): number {
  buf.writeUInt32LE(REMOVE_LENGTH, off)
  buf[off + 8] = OP_REMOVE
  writeU64(buf, off + 9, seq)
  buf.writeUInt32LE(recordCrc(buf, off + 8, REMOVE_LENGTH), off + 4)
  return off + 8 + REMOVE_LENGTH
}

export type DecodedRecord =
  | { op: 'add'; item: JournalItem; size: number }
  | { op: 'remove'; seq: number; size: number }
  | { op: 'unknown'; opcode: number; size: number }

export type RecordProblem = 'incomplete' | 'length' | 'crc'

/**
 * Validate the record at buf[off, end): returns its total size, or why it is bad. 'incomplete'
 * means the buffer ends inside the record (at the end of a file: a torn tail).
 */
export function checkRecord(buf: Buffer, off: number, end: number): number | RecordProblem {
  if (end - off < RECORD_PREFIX_BYTES) return 'incomplete'
  const length = buf.readUInt32LE(off)
  if (length < 1 || length > MAX_RECORD_LENGTH) return 'length'
  const op = buf[off + 8]
  if (end - off < RECORD_PREFIX_BYTES + length) {
    // Reject obviously impossible lengths early, so a garbage tail is a 'length' problem
    if (op === OP_REMOVE && length !== REMOVE_LENGTH) return 'length'
    return 'incomplete'
  }
  if (recordCrc(buf, off + 8, length) !== buf.readUInt32LE(off + 4)) return 'crc'
  if (op === OP_ADD && length < ADD_FIXED_LENGTH) return 'length'
  if (op === OP_REMOVE && length !== REMOVE_LENGTH) return 'length'
  return RECORD_PREFIX_BYTES + length
}

/** Decode one valid record (checkRecord said so). The item's data is a copy. */
export function decodeRecord(buf: Buffer, off: number): DecodedRecord {
  const length = buf.readUInt32LE(off)
  const op = buf[off + 8]!
  const size = RECORD_PREFIX_BYTES + length
  if (op === OP_ADD) return { op: 'add', item: decodeAddItem(buf, off), size }
  if (op === OP_REMOVE) return { op: 'remove', seq: readU64(buf, off + 9), size }
  return { op: 'unknown', opcode: op, size }
}

/** The item of a valid ADD record at buf[off]; data is copied out of `buf`. */
export function decodeAddItem(buf: Buffer, off: number): JournalItem {
  const length = buf.readUInt32LE(off)
  const dataStart = off + 37
  const dataLen = length - ADD_FIXED_LENGTH
  const data = Buffer.allocUnsafe(dataLen)
  buf.copy(data, 0, dataStart, dataStart + dataLen)
  return {
    seq: readU64(buf, off + 9),
    flags: buf.readUInt32LE(off + 17),
    expiresAt: buf.readDoubleLE(off + 21),
    addedAt: buf.readDoubleLE(off + 29),
    data,
  }
}
