/**
 * Keeping one queue's journal bounded (Kestrel's JournalPacker): rotation to a new segment,
 * dropping the oldest once nothing in it is live, carrying a few live items forward out of a
 * mostly dead segment, and emptying the journal (reset, destroy) behind a marker segment. Why each
 * step is crash-safe is in README.md ("Invariants" 2 to 4, "Crash safety").
 */
import {
  FLAG_DELETED,
  FLAG_RESET,
  OP_ADD,
  readU64,
  RECORD_PREFIX_BYTES,
  recordCrc,
} from './format.js'
import type { EventLogger } from '../logger.js'
import { syncDirAsync, unlinkAsync } from './dirSync.js'
import { failpoint, fsyncDir, ftruncateNow, unlinkNow, writeFully, type FailpointName } from './fileOps.js'
import type { GroupCommit } from './groupCommit.js'
import { createSegment, forEachRecord, type Segment } from './segment.js'
import type { SegmentList } from './segmentList.js'
import type { SyncPolicy } from './types.js'

export interface CompactionSettings {
  dir: string
  queue: string
  /** The queue's name as it appears in file names (format.ts). */
  encoded: string
  maxJournalSize: number
  sync: SyncPolicy
  logger: EventLogger
}

/** The two ways to empty a journal: a marker segment first, its failpoints for the crash tests. */
const MARKERS = {
  reset: { flags: FLAG_RESET, afterMarker: 'reset:after-marker', afterUnlinkOne: 'reset:after-unlink-one' },
  destroy: { flags: FLAG_DELETED, afterMarker: 'destroy:after-marker', afterUnlinkOne: 'destroy:after-unlink-one' },
} as const satisfies Record<string, { flags: number; afterMarker: FailpointName; afterUnlinkOne: FailpointName }>

export class Compaction {
  private rotationCount = 0
  /** The oldest segment and its live count at the last maintain() (see maybeCarryForward). */
  private watchedSeg: Segment | undefined
  private watchedLive = 0

  constructor(
    private readonly settings: CompactionSettings,
    private readonly list: SegmentList,
    private readonly commit: GroupCommit,
  ) {}

  /** Segment rotations / compactions done so far (stats). */
  get rotations(): number {
    return this.rotationCount
  }

  /** After each written batch: rotate, drop and carry forward as needed. */
  maintain(): void {
    const list = this.list
    try {
      if (list.current.size >= this.settings.maxJournalSize) this.rotate()
      while (list.segments.length > 1 && list.segments[0]!.liveCount === 0) {
        this.dropOldest('drop:after-unlink')
      }
      this.maybeCarryForward()
    } catch (err) {
      // Out of space for a new segment, say: keep appending where we are and try again later.
      this.settings.logger.warn({ queue: this.settings.queue, err: String(err) }, 'journal maintenance failed; will retry')
    }
  }

  /** Empty the journal (flush): a RESET marker segment replaces every other one. */
  reset(): void {
    const segments = this.list.segments
    if (!segments.some((seg) => seg.exists)) return // nothing on disk: nothing to reset
    this.replaceWithMarker('reset', segments)
    this.rotationCount++
    fsyncDir(this.settings.dir)
  }

  /** Delete every file of the queue. */
  async destroy(): Promise<void> {
    const segments = this.list.segments
    const onDisk = segments.filter((seg) => seg.exists)
    for (const seg of segments) seg.close()
    // Several files: a DELETED tombstone first (deleting them one by one is not atomic), then the
    // tombstone itself. One: unlinking it is atomic (and done off the event loop).
    if (onDisk.length > 1) this.unlinkAll([this.replaceWithMarker('destroy', onDisk)], undefined)
    this.list.replaceAll([])
    this.list.behind?.stop()
    if (onDisk.length === 1) await unlinkAsync(onDisk[0]!.path)
    // the unlinks are durable before DELETED (off the event loop; `never` leaves it to the OS)
    if (onDisk.length > 1 || (onDisk.length === 1 && this.settings.sync !== 'never')) {
      await new Promise<void>((resolve, reject) => syncDirAsync(this.settings.dir, (err) => (err ? reject(err) : resolve())))
    }
  }

  /**
   * Reset and destroy, crash-safely: write a marker segment (replay treats segments older than a
   * RESET as obsolete, and a DELETED tombstone as an empty queue), make it the only segment, then
   * delete `old`. Returns the marker.
   */
  private replaceWithMarker(kind: keyof typeof MARKERS, old: Segment[]): Segment {
    const { dir, encoded, queue } = this.settings
    const m = MARKERS[kind]
    const marker = createSegment({ dir, encoded, queue, segno: this.list.current.segno + 1, baseSeq: this.list.nextSeq, flags: m.flags })
    this.list.replaceAll([marker])
    this.list.behind?.stop()
    failpoint(m.afterMarker)
    this.unlinkAll(old, m.afterUnlinkOne)
    return marker
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

  private rotate(): void {
    const old = this.list.current
    // Records in the old segment waiting for an fsync: the next fsync goes to the new segment's fd.
    if (this.commit.owesSync) this.commit.syncNow(old)
    const { dir, encoded, queue } = this.settings
    const seg = createSegment({
      dir,
      encoded,
      queue,
      segno: old.segno + 1,
      baseSeq: this.list.nextSeq,
      flags: 0,
      failpoints: ['rotate:after-tmp-write', 'rotate:after-rename'],
    })
    this.list.pushSegment(seg)
    old.live.trim()
    this.rotationCount++
    failpoint('rotate:after-switch')
  }

  private dropOldest(fp: FailpointName): void {
    const seg = this.list.shiftOldest()
    this.list.behind?.segmentDropped(seg)
    seg.close()
    try {
      unlinkNow(seg.path)
    } catch (err) {
      // Harmless if it stays: all its ADDs are REMOVEd (or copied forward) in later segments.
      this.settings.logger.warn({ queue: this.settings.queue, file: seg.path, err: String(err) }, 'journal: could not delete a consumed segment')
      return
    }
    failpoint(fp)
    fsyncDir(this.settings.dir)
  }

  private maybeCarryForward(): void {
    const segments = this.list.segments
    if (segments.length < 2) return
    const old = segments[0]!
    const cur = this.list.current
    const max = this.settings.maxJournalSize
    const bytes = old.size - old.headerLength
    if (old.liveCount === 0 || old.liveBytes * 8 > bytes || old.liveBytes > max / 4) return
    // Read-behind has not read all of it yet: its live items are mostly about to be read and
    // removed, so copying them would be wasted (and carried items are read one by one).
    if (this.list.behind?.yetToRead(old) === true) return
    if (segments.length < 3 && cur.size - cur.headerLength < max / 2) return
    // Its live items are being consumed (a drain: the queue's head is in it): they are about to be
    // removed, so copying them (and the fsync) would be wasted. Carry only once that stalls.
    const consuming = this.watchedSeg !== old || old.liveCount < this.watchedLive
    this.watchedSeg = old
    this.watchedLive = old.liveCount
    if (consuming) return
    this.carryForward(old)
  }

  private carryForward(old: Segment): void {
    const cur = this.list.current
    const { carried, reader } = this.list
    // The live items of `old`: its carried copies (known by offset) and its live original ADDs,
    // found by reading the segment once from the checkpoint before the first live one.
    const picked: Array<{ seq: number; off: number; size: number }> = carried.inSegment(old.segno)
    const live = old.live
    if (live.liveOriginals > 0) {
      let found = 0
      let start = live.seek(live.firstLive())
      if (start < 0) start = old.headerLength
      forEachRecord(reader, old, start, old.size, (buf, at, off, size) => {
        if (buf[at + 8] !== OP_ADD) return true
        const seq = readU64(buf, at + 9)
        if (!live.has(seq)) return true
        picked.push({ seq, off, size })
        return ++found < live.liveOriginals
      })
      if (found < live.liveOriginals) throw new Error(`carry-forward: found ${found} of ${live.liveOriginals} live items in ${old.path}`)
    }
    picked.sort((a, b) => a.seq - b.seq)
    let total = 0
    for (const p of picked) total += p.size
    const buf = Buffer.allocUnsafe(total)
    let pos = 0
    for (const p of picked) {
      const { buf: chunk, at } = reader.read(old, p.off, p.size, old.size)
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
      reader.invalidate()
      throw err
    }
    failpoint('carry:after-copy-write')
    this.commit.syncNow(cur)
    failpoint('carry:after-fsync')
    pos = cur.size
    cur.size += total
    for (const p of picked) {
      this.list.carry(p.seq, { segno: cur.segno, off: pos, size: p.size })
      pos += p.size
      cur.liveCount++
      cur.liveBytes += p.size
    }
    old.liveCount = 0
    old.liveBytes = 0
    this.rotationCount++
    this.settings.logger.info(
      { queue: this.settings.queue, items: picked.length, bytes: total, segment: old.path },
      'journal: carried live items forward, deleting old segment',
    )
    this.dropOldest('carry:after-unlink')
    if (this.list.behind?.isActive !== true) this.list.releaseReader()
  }
}
