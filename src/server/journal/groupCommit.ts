/**
 * The fsync policy of one queue's journal (Kestrel's PeriodicSyncFile): when written records are
 * made durable, and when the engine hears of it (README.md, invariant 6, "Crash safety").
 * - `always`: a record's onDurable waits for an fsync. Group commit: one fsync is in flight at a
 *   time, and every record written meanwhile shares the next one.
 * - `<ms>`: onDurable runs once the write returned; an fsync follows within that many ms.
 * - `never`: onDurable runs once the write returned; the OS decides when the disk sees it.
 * fsyncs run on the libuv thread pool, so the event loop keeps taking commands meanwhile.
 */
import * as fs from 'node:fs'
import { ioError, runCallback } from './callbacks.js'
import { countFsync } from './counters.js'
import { fdatasyncAsync, fdatasyncNow } from './fileOps.js'
import type { Segment } from './segment.js'
import type { SyncPolicy, WriteCallback } from './types.js'
import type { BatchRecord } from './writeBatch.js'

export class GroupCommit {
  /** onDurable callbacks of records written under `always`, waiting for the next fsync. */
  private waiting: WriteCallback[] = []
  /** Records written since the last fsync started. */
  private unsynced = 0
  private syncingFd = -1
  private idleWaiters: Array<() => void> = []
  private timer: NodeJS.Timeout | undefined
  /** fds of deleted segments, closed once the fsync in flight on them is done. */
  private closeAfterSync: number[] = []

  /** `current` is the segment being appended to: the one an fsync goes to. */
  constructor(
    private readonly policy: SyncPolicy,
    private readonly current: () => Segment,
  ) {}

  /**
   * A batch was written to the current segment (the OS has it). Count it now: rotation, which runs
   * before the callbacks, must know there is something to fsync.
   */
  written(records: BatchRecord[]): void {
    this.unsynced += records.length
  }

  /** Run a written batch's callbacks, in record order, as the policy says. */
  deliver(records: BatchRecord[]): void {
    if (this.policy === 'always') {
      for (const r of records) {
        runCallback(r.onWritten, null)
        if (r.onDurable) this.waiting.push(r.onDurable)
      }
      this.start()
      return
    }
    for (const r of records) {
      runCallback(r.onWritten, null)
      runCallback(r.onDurable, null)
    }
    if (typeof this.policy === 'number' && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.start()
      }, this.policy)
      this.timer.unref()
    }
  }

  /** Records in the current segment are owed an fsync: sync them before appending elsewhere. */
  get owesSync(): boolean {
    return this.policy !== 'never' && (this.unsynced > 0 || this.waiting.length > 0 || this.syncingFd >= 0)
  }

  private start(): void {
    if (this.syncingFd >= 0 || (this.unsynced === 0 && this.waiting.length === 0)) return
    const cbs = this.waiting
    const records = this.unsynced
    this.waiting = []
    this.unsynced = 0
    const seg = this.current()
    this.syncingFd = seg.fd
    fdatasyncAsync(seg.fd, seg.path, (err) => {
      this.syncingFd = -1
      countFsync(records)
      for (const fd of this.closeAfterSync) fs.closeSync(fd)
      this.closeAfterSync = []
      const e = err ? ioError(err, 'journal fsync failed') : null
      for (const cb of cbs) runCallback(cb, e)
      if (this.policy === 'always') this.start()
      if (this.syncingFd < 0) {
        const waiters = this.idleWaiters
        this.idleWaiters = []
        for (const w of waiters) w()
      }
    })
  }

  /** Resolves once no fsync is in flight. */
  whenIdle(): Promise<void> {
    if (this.syncingFd < 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** fsync now, on this thread (rotation, carry-forward, close). */
  syncNow(seg: Segment): void {
    fdatasyncNow(seg.fd, seg.path)
    if (seg === this.current()) {
      countFsync(this.unsynced)
      this.unsynced = 0
    } else {
      countFsync(0)
    }
  }

  /** Close a segment's fd, or, if an fsync is in flight on it, once that is done. */
  closeFd(fd: number): void {
    if (fd === this.syncingFd) this.closeAfterSync.push(fd)
    else fs.closeSync(fd)
  }

  /** Give every record waiting for durability its outcome (close, destroy). */
  settleWaiting(err: Error | null): void {
    const cbs = this.waiting
    this.waiting = []
    for (const cb of cbs) runCallback(cb, err)
  }

  stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}
