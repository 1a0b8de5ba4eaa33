/**
 * The journal's file operations (write, fsync, truncate, open, rename, unlink), with the hooks
 * that tests use to make them fail: injected I/O errors and Kestrel-style failpoints.
 *
 * - `setFaultInjector(fn)`: before each file operation the journal calls `fn({op, path})`; an
 *   Error returned is thrown (or passed to the callback) as if the OS had failed. A failed `write`
 *   first writes half of its bytes for real, to leave a torn record behind like a real ENOSPC.
 * - Failpoints: with `STARLING_FAILPOINT=<name>` in the environment, the process SIGKILLs itself
 *   when it reaches the named step of a rotation, compaction, reset, delete or import (see
 *   FAILPOINTS). Crash tests run a child to that point and replay what it left behind.
 * - `setFsyncObserver(fn)` (not a test hook: the metrics' fsync histogram): told how long each
 *   fdatasync took; while unset, nothing is timed.
 */
import * as fs from 'node:fs'

export type FaultOp = 'write' | 'fsync' | 'ftruncate' | 'open' | 'rename' | 'unlink'

export interface FaultContext {
  op: FaultOp
  /** The file concerned, when known. */
  path?: string
}

export type FaultInjector = (ctx: FaultContext) => Error | undefined

let injector: FaultInjector | undefined

/** Install (or with undefined, remove) the fault injector. Test-only. */
export function setFaultInjector(fn: FaultInjector | undefined): void {
  injector = fn
}

export function injectedFault(op: FaultOp, path?: string): Error | undefined {
  return injector === undefined ? undefined : injector({ op, path })
}

/** Every failpoint name, in the order they are reached within each operation. */
export const FAILPOINTS = [
  'rotate:after-tmp-write', // new segment written to .tmp, not yet fsynced/renamed
  'rotate:after-rename', // renamed into place, directory not yet fsynced
  'rotate:after-switch', // appends go to the new segment (after the first batch there)
  'carry:after-copy-write', // live records of the oldest segment re-appended, not yet fsynced
  'carry:after-fsync', // copies durable, old segment still there
  'carry:after-unlink', // old segment unlinked, directory not yet fsynced
  'drop:after-unlink', // a fully consumed segment unlinked, directory not yet fsynced
  'reset:after-marker', // RESET segment in place, older segments still there
  'reset:after-unlink-one', // one older segment deleted
  'destroy:after-marker', // DELETED tombstone in place, older segments still there
  'destroy:after-unlink-one', // one segment deleted
  'import:after-tmp-write', // converted journal written to .tmp
  'import:after-rename', // converted journal in place, Starling files not yet renamed
  'import:after-bak-one', // one Starling file renamed to .starling-bak
] as const

export type FailpointName = (typeof FAILPOINTS)[number]

/** Die here (SIGKILL, no cleanup) if STARLING_FAILPOINT names this step. */
export function failpoint(name: FailpointName): void {
  if (process.env['STARLING_FAILPOINT'] === name) process.kill(process.pid, 'SIGKILL')
}

// ---------------------------------------------------------------------------------------------
// File operations with fault injection. Synchronous: they run on rare paths or are the batch write.

function check(op: FaultOp, path?: string): void {
  const err = injectedFault(op, path)
  if (err) throw err
}

/** Write all of buf[0, length) at `position`, looping over short writes. */
export function writeFully(fd: number, buf: Buffer, length: number, position: number, path?: string): void {
  const err = injectedFault('write', path)
  if (err) {
    const half = length >> 1
    if (half > 0) fs.writeSync(fd, buf, 0, half, position)
    throw err
  }
  let done = 0
  while (done < length) {
    done += fs.writeSync(fd, buf, done, length - done, position + done)
  }
}

/** Told how long each journal fdatasync took, in seconds (the metrics histogram); none = no timing. */
let fsyncObserver: ((seconds: number) => void) | undefined

export function setFsyncObserver(fn: ((seconds: number) => void) | undefined): void {
  fsyncObserver = fn
}

export function fdatasyncNow(fd: number, path?: string): void {
  check('fsync', path)
  const started = fsyncObserver ? performance.now() : 0
  fs.fdatasyncSync(fd)
  fsyncObserver?.((performance.now() - started) / 1000)
}

export function fdatasyncAsync(fd: number, path: string | undefined, cb: (err: Error | null) => void): void {
  const err = injectedFault('fsync', path)
  if (err) {
    setImmediate(cb, err)
    return
  }
  const observer = fsyncObserver
  if (!observer) return fs.fdatasync(fd, cb)
  const started = performance.now()
  fs.fdatasync(fd, (e) => {
    observer((performance.now() - started) / 1000)
    cb(e)
  })
}

export function ftruncateNow(fd: number, length: number, path?: string): void {
  check('ftruncate', path)
  fs.ftruncateSync(fd, length)
}

/** Files the journal creates are private (0600), whatever the umask: they hold the payloads. */
export const JOURNAL_FILE_MODE = 0o600

export function openNow(path: string, flags: string): number {
  check('open', path)
  const fd = fs.openSync(path, flags, JOURNAL_FILE_MODE)
  // An exclusive create ('wx') made the file with 0600 & ~umask, never wider: no fchmod (a
  // syscall per new queue). A truncating open may have found an older file: narrow its mode.
  if (flags.startsWith('w') && !flags.includes('x')) fs.fchmodSync(fd, JOURNAL_FILE_MODE)
  return fd
}

export function renameNow(from: string, to: string): void {
  check('rename', to)
  fs.renameSync(from, to)
}

export function unlinkNow(path: string): void {
  check('unlink', path)
  fs.unlinkSync(path)
}

/** fsync a directory, so renames, creations and unlinks in it are durable. */
export function fsyncDir(dir: string): void {
  check('fsync', dir)
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}
