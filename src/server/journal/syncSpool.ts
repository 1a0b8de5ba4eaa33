/**
 * One syncfs(2) of the spool's file system at shutdown, instead of an fsync per journal.
 *
 * A clean stop must leave every acknowledged record on disk. Under `sync: never` (and between the
 * fsyncs of a periodic policy) every journal written since its last fsync owes one at close: with
 * 100k queues that was 100k reopen + fdatasync + close, 20 s of shutdown on this machine. syncfs
 * hands the whole file system's dirty data to the disk in one pass, which the kernel batches far
 * better. Node has no binding for it, so it runs coreutils' `sync --file-system` (Linux; the tool
 * is in every Debian base system) once, synchronously: the event loop has nothing else to do then.
 * If it cannot (another OS, no tool, an error, a test's injected fsync fault), the journals fall
 * back to their own fsyncs, as before.
 */
import { spawnSync } from 'node:child_process'
import { injectedFault } from './fileOps.js'

/** Journals owing a sync below which one fsync each is cheap enough (and touches only the spool). */
export const SYNCFS_MIN_JOURNALS = 64

/** How long the tool may take before the fallback is used. */
const SYNCFS_TIMEOUT_MS = 120_000

/** syncfs(2) of the file system holding `dir`; true on success. */
export function syncFileSystem(dir: string): boolean {
  if (process.platform !== 'linux' || injectedFault('fsync', dir)) return false
  const r = spawnSync('sync', ['--file-system', dir], { stdio: 'ignore', timeout: SYNCFS_TIMEOUT_MS })
  return r.error === undefined && r.status === 0
}
