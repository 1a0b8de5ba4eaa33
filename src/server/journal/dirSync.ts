/**
 * Journal fsyncs off the event loop: a few slots shared by every queue, and directory fsyncs
 * shared: every caller that asks while one is in flight is
 * served by the next one (a creation after an fsync started is not covered by it). A queue created
 * by its first write (segment.ts) makes its directory entry durable this way, joined to the group
 * commit, instead of a synchronous fsync per new file.
 */
import * as fs from 'node:fs'
import { injectedFault } from './fileOps.js'

interface DirState {
  running: boolean
  /** Served by the fsync about to start. */
  next: Array<(err: Error | null) => void>
}

const dirs = new Map<string, DirState>()

export function syncDirAsync(dir: string, cb: (err: Error | null) => void): void {
  let st = dirs.get(dir)
  if (!st) dirs.set(dir, (st = { running: false, next: [] }))
  st.next.push(cb)
  if (!st.running) run(dir, st)
}

function run(dir: string, st: DirState): void {
  const cbs = st.next
  st.next = []
  st.running = true
  const finish = (err: Error | null): void => {
    st.running = false
    for (const cb of cbs) cb(err)
    if (st.next.length > 0) run(dir, st)
    else dirs.delete(dir)
  }
  const injected = injectedFault('fsync', dir)
  if (injected) return void setImmediate(finish, injected)
  fs.open(dir, 'r', (err, fd) => {
    if (err) return finish(err)
    fs.fsync(fd, (syncErr) => {
      fs.close(fd, () => finish(syncErr))
    })
  })
}

/** Unlink off the event loop (a queue's delete); a file already gone is fine. */
export async function unlinkAsync(path: string): Promise<void> {
  const injected = injectedFault('unlink', path)
  if (injected) throw injected
  try {
    await fs.promises.unlink(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

/** Journal fsyncs in flight at once, all queues together (libuv runs 4 at a time anyway). */
const MAX_FSYNCS = 16
let fsyncsRunning = 0
const fsyncsQueued: Array<() => void> = []

/** Run `start` when one of the fsync slots is free; it calls `release` when its fsync is done. */
export function fsyncSlot(start: (release: () => void) => void): void {
  if (fsyncsRunning < MAX_FSYNCS) {
    fsyncsRunning++
    start(releaseSlot)
  } else {
    fsyncsQueued.push(() => start(releaseSlot))
  }
}

function releaseSlot(): void {
  const next = fsyncsQueued.shift()
  if (next) setImmediate(next)
  else fsyncsRunning--
}
