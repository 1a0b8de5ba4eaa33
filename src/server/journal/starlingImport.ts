/**
 * Reading an existing Starling spool, so Starling users can switch without losing their queues
 * (docs/architecture.md, "Durability rules"; crash safety in ./README.md).
 *
 * Starling's journal (lib/starling/persistent_queue.rb) is one file per queue, named exactly as the
 * queue, appended with:
 *   0x00, u32 size (native order: little-endian on every machine Starling ran on), then `size`
 *         bytes: the value, which the handler packs as u32 expiry (absolute Unix seconds, 0 =
 *         never) followed by the data              -- push
 *   0x01                                          -- pop: removes the oldest item
 * Replay pushes and pops in order; a pop on an empty queue is ignored, a push cut short at the end
 * of the file is dropped (Starling did the same). When the log passes 16 MiB while the queue is
 * empty Starling renames it `<queue>.<unix time>`, opens a new one and deletes the old one; a
 * crash in between leaves `<queue>.<time>` behind, which is read before `<queue>`.
 *
 * Which files are Starling's: every regular file in the spool directory that is not ours (see
 * format.ts), not a dotfile, and not already a `.starling-bak`. A file that contains a byte other
 * than 0x00/0x01 where an opcode should be is not a Starling journal: it is left alone, with a
 * warning.
 *
 * Conversion, crash-safely: the live items become ADD records of a new segment of our journal
 * (after any segments the queue already has), created with tmp + fsync + rename + fsync dir; its
 * header is flagged IMPORTED and carries the CRC32 and size of the Starling file that anchors the
 * import (`<queue>`, or the newest `<queue>.<time>` if there is no `<queue>`). Only then are the
 * Starling files renamed to `*.starling-bak`, the anchor last. If a crash comes in between, the
 * next start finds the anchor still there with a segment that already carries its fingerprint,
 * and only finishes the renames — so items are never imported twice.
 */
import * as fs from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { addRecordSize, encodeAdd, encodeQueueName, FLAG_IMPORTED, isJournalFile, segmentFileName } from './format.js'
import { failpoint, fsyncDir, renameNow } from './fileOps.js'
import type { EventLogger } from '../logger.js'
import { replaySegments, silentLogger } from './replay.js'
import { createSegment, listSegments, readSegmentHeader } from './segment.js'

export const STARLING_BAK_SUFFIX = '.starling-bak'

export interface StarlingItem {
  expiry: number
  data: Buffer
}

export interface StarlingImportResult {
  /** Queues converted (or whose interrupted conversion was finished). */
  queues: number
  /** Live items converted. */
  items: number
}

/**
 * Replay Starling journal bytes: the live items in order, or undefined if the bytes are not a
 * Starling journal.
 */
export function parseStarlingJournal(buf: Buffer): { items: StarlingItem[]; tornBytes: number } | undefined {
  const pushed: StarlingItem[] = []
  let head = 0
  let p = 0
  while (p < buf.length) {
    const op = buf[p]
    if (op === 0x00) {
      if (buf.length - p < 5) break
      const size = buf.readUInt32LE(p + 1)
      if (buf.length - p - 5 < size) break
      const value = buf.subarray(p + 5, p + 5 + size)
      if (size >= 4) pushed.push({ expiry: value.readUInt32LE(0), data: Buffer.from(value.subarray(4)) })
      else pushed.push({ expiry: 0, data: Buffer.from(value) })
      p += 5 + size
    } else if (op === 0x01) {
      if (head < pushed.length) head++
      p += 1
    } else {
      return undefined
    }
  }
  return { items: pushed.slice(head), tornBytes: buf.length - p }
}

function isCandidate(name: string): boolean {
  return !name.startsWith('.') && !isJournalFile(name) && !/\.starling-bak(\.[0-9]+)?$/.test(name)
}

/** Rename a Starling file out of the way, never over an earlier backup. */
function backUp(dir: string, name: string): void {
  let to = join(dir, name + STARLING_BAK_SUFFIX)
  if (fs.existsSync(to)) to = `${to}.${Date.now()}`
  renameNow(join(dir, name), to)
}

/**
 * Convert every Starling journal in `dir` to our format (call before listQueues). Idempotent and
 * crash-safe; see the module comment.
 */
export async function importStarlingSpool(dir: string, logger: EventLogger = silentLogger): Promise<StarlingImportResult> {
  const result: StarlingImportResult = { queues: 0, items: 0 }
  let entries: fs.Dirent[]
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return result
    throw err
  }
  const names = new Set(entries.filter((e) => e.isFile() && isCandidate(e.name)).map((e) => e.name))
  // group rotated leftovers `<queue>.<time>` with `<queue>`
  const groups = new Map<string, { backups: Array<{ name: string; time: number }>; main: boolean }>()
  const group = (q: string) => {
    let g = groups.get(q)
    if (!g) groups.set(q, (g = { backups: [], main: false }))
    return g
  }
  for (const name of names) {
    const m = /^(.*)\.([0-9]+)$/.exec(name)
    if (m && (names.has(m[1]!) || fs.existsSync(join(dir, m[1]! + STARLING_BAK_SUFFIX)))) {
      group(m[1]!).backups.push({ name, time: Number(m[2]) })
    } else {
      group(name).main = true
    }
  }
  for (const [queue, g] of groups) {
    if (/[^\x00-\xff]/.test(queue)) {
      logger.warn({ dir, file: queue }, 'not a Starling journal (name is not latin1); left alone')
      continue
    }
    g.backups.sort((a, b) => a.time - b.time)
    const files = [...g.backups.map((b) => b.name), ...(g.main ? [queue] : [])]
    const contents = files.map((f) => fs.readFileSync(join(dir, f)))
    const parsed = parseStarlingJournal(Buffer.concat(contents))
    if (parsed === undefined) {
      logger.warn({ dir, files }, 'not a Starling journal (unknown opcode); left alone')
      continue
    }
    const anchor = contents[contents.length - 1]!
    const fingerprint = crc32(anchor)
    const encoded = encodeQueueName(queue)
    const segnos = listSegments(dir, encoded)
    const done = segnos.some((segno) => {
      const h = readSegmentHeader(join(dir, segmentFileName(encoded, segno)))
      return typeof h !== 'string' && (h.flags & FLAG_IMPORTED) !== 0 && h.importFingerprint === fingerprint && h.importSize === anchor.length >>> 0
    })
    if (!done) {
      let baseSeq = 1
      if (segnos.length > 0) {
        // the queue already has a journal of ours: the Starling items go after it
        const state = replaySegments(dir, encoded, queue, logger)
        baseSeq = state.nextSeq
        for (const s of state.segments) s.close()
      }
      const after = listSegments(dir, encoded)
      const segno = (after.length > 0 ? after[after.length - 1]! : 0) + 1
      let size = 0
      for (const it of parsed.items) size += addRecordSize(it.data.length)
      const body = Buffer.allocUnsafe(size)
      let off = 0
      const now = Date.now()
      parsed.items.forEach((it, k) => {
        off = encodeAdd(body, off, { seq: baseSeq + k, flags: 0, expiresAt: it.expiry * 1000, addedAt: now, data: it.data })
      })
      const seg = createSegment({
        dir,
        encoded,
        queue,
        segno,
        baseSeq,
        flags: FLAG_IMPORTED,
        importFingerprint: fingerprint,
        importSize: anchor.length,
        body,
        failpoints: ['import:after-tmp-write', 'import:after-rename'],
      })
      seg.close()
      result.items += parsed.items.length
      logger.info({ queue, items: parsed.items.length, files, tornBytes: parsed.tornBytes }, 'imported a Starling journal')
    }
    // the anchor is renamed last: while it is there, a restart knows to only finish the renames
    files.forEach((f, k) => {
      backUp(dir, f)
      if (k === 0) failpoint('import:after-bak-one')
    })
    fsyncDir(dir)
    result.queues++
  }
  return result
}
