/**
 * One server per spool (docs/architecture.md, "Durability rules"). Two servers appending to the
 * same journals interleave records and the next replay cuts the "torn" tail, losing acknowledged
 * items; a second server that merely replays can cut a live server's tail too. So the lock is taken
 * before anything in the spool is read, and a second server exits having changed nothing.
 *
 * Mechanism (argued in SECURITY.md): a lock file `<spool>/.starling.lock` holding {pid, start,
 * host}, created atomically (exclusiveFile.ts). Node has no flock(), and a lock file can be read by
 * an operator. A lock whose process is gone (kill(pid, 0) says ESRCH) or whose pid now belongs to a
 * process with another start time (/proc/<pid>/stat field 22, so pid reuse is caught) is stale and
 * taken over, with a warning. A lock from another host (a shared file system) cannot be judged and
 * is treated as live.
 */
import { readdirSync, rmSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from './errors.js'
import { claimFile, releaseFile } from './exclusiveFile.js'
import type { Logger } from './logger.js'
import { pidExists, processStartTicks } from './processInfo.js'

export const SPOOL_LOCK_FILE = '.starling.lock'

interface LockOwner {
  pid: number
  /** Process start time in clock ticks since boot; null off Linux. */
  start: string | null
  host: string
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>
    if (typeof o.pid === 'number' && typeof o.host === 'string') return { pid: o.pid, start: o.start ?? null, host: o.host }
  } catch {
    /* damaged: nothing wrote it through claimFile */
  }
  return null
}

/** Why a lock is stale, or null when its owner may still be running. */
function staleReason(text: string): string | null {
  const owner = parseOwner(text)
  if (owner === null) return 'unreadable lock file'
  if (owner.host !== hostname()) return null
  if (!pidExists(owner.pid)) return 'process gone'
  const start = processStartTicks(owner.pid)
  if (owner.start !== null && start !== null && start !== owner.start) return 'pid reused by another process'
  return null
}

/** Temp and aside files of lock attempts cut short by a crash (only dead processes' ones). */
const LEFTOVER = /^\.starling\.lock\.(?:(\d+)\.tmp|stale-(\d+))$/ // SPOOL_LOCK_FILE + exclusiveFile's suffixes

function removeLeftovers(spool: string): void {
  for (const name of readdirSync(spool)) {
    const m = LEFTOVER.exec(name)
    const pid = m ? Number(m[1] ?? m[2]) : 0
    if (m && pid !== process.pid && !pidExists(pid)) rmSync(join(spool, name), { force: true })
  }
}

export class SpoolLock {
  private constructor(
    readonly path: string,
    private readonly content: string,
  ) {}

  /** Take the lock on `spool` (an existing directory) or throw a ConfigError naming the holder. */
  static acquire(spool: string, log: Logger): SpoolLock {
    const path = join(spool, SPOOL_LOCK_FILE)
    const me = { pid: process.pid, start: processStartTicks(process.pid), host: hostname(), since: new Date().toISOString() }
    const content = JSON.stringify(me) + '\n'
    let result
    try {
      result = claimFile(path, content, staleReason)
    } catch (err) {
      throw new ConfigError(`cannot lock spool ${spool}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    if (!result.claimed) {
      const owner = parseOwner(result.holder)!
      const where = owner.host === me.host ? '' : ` on host ${owner.host} (remove ${path} if that server is gone)`
      throw new ConfigError(`spool ${spool} is in use by pid ${owner.pid}${where}`)
    }
    removeLeftovers(spool)
    for (const stale of result.tookOver) {
      const owner = parseOwner(stale.text)
      log.warn({ spool, stalePid: owner?.pid, staleHost: owner?.host, reason: stale.reason }, 'took over a stale spool lock')
    }
    return new SpoolLock(path, content)
  }

  /** Remove the lock if it is still ours (clean shutdown, failed start). */
  release(): void {
    releaseFile(this.path, this.content)
  }
}
