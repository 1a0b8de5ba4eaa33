/**
 * The pid file (-P): holds `<pid>\n` as every init script expects. It is claimed before the spool is
 * touched and never taken from a live process: a second daemon started with the same -P would
 * otherwise overwrite it, and stopping that daemon would delete it. A pid file is stale when its
 * process is gone, or when the process now holding that pid started after the file was written
 * (pid reuse after a crash or a reboot). On exit it is removed only if it still names us.
 */
import { statSync, readFileSync } from 'node:fs'
import { ConfigError } from './errors.js'
import { claimFile, releaseFile } from './exclusiveFile.js'
import type { Logger } from './logger.js'
import { pidExists, processStartMs } from './processInfo.js'

/** The clock ticks and mtime granularity between a process start and its pid file write. */
const START_SLACK_MS = 1000

function parsePid(text: string): number | null {
  const m = /^\s*(\d+)\s*$/.exec(text)
  return m ? Number(m[1]) : null
}

/** Why the pid file may be replaced, or null if the process it names may be a running server. */
function staleReason(text: string, mtimeMs: number): string | null {
  const pid = parsePid(text)
  if (pid === null) return 'not a pid'
  if (pid === process.pid) return 'names this very process (left by an earlier one with the same pid)'
  if (!pidExists(pid)) return 'process gone'
  const started = processStartMs(pid)
  if (started !== null && started > mtimeMs + START_SLACK_MS) return 'pid reused by a process started after the file was written'
  return null
}

function liveMessage(path: string, pid: number): string {
  return `pid file ${path} names running process ${pid}: is another starling running? (stop it, or use another -P)`
}

/** Read-only check, for the daemonizing parent: throw if the pid file names a live process. */
export function checkPidFile(path: string): void {
  let text: string
  let mtimeMs: number
  try {
    mtimeMs = statSync(path).mtimeMs
    text = readFileSync(path, 'utf8')
  } catch {
    return // absent or unreadable: the child's claim will say more
  }
  if (staleReason(text, mtimeMs) === null) throw new ConfigError(liveMessage(path, parsePid(text)!))
}

export class PidFile {
  private constructor(
    readonly path: string,
    private readonly content: string,
  ) {}

  /** Write our pid to `path` unless it names a live process (ConfigError). */
  static claim(path: string, log: Logger): PidFile {
    const content = `${process.pid}\n`
    let result
    try {
      result = claimFile(path, content, (text, st) => staleReason(text, st.mtimeMs))
    } catch (err) {
      throw new ConfigError(`cannot write pid file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    if (!result.claimed) throw new ConfigError(liveMessage(path, parsePid(result.holder)!))
    for (const stale of result.tookOver) log.warn({ pidFile: path, stale: stale.text.trim(), reason: stale.reason }, 'replaced a stale pid file')
    return new PidFile(path, content)
  }

  /** Remove the pid file if it still names this process. */
  release(): void {
    releaseFile(this.path, this.content)
  }
}
