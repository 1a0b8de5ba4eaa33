/**
 * Is the process that wrote a lock or pid file still the one running under that pid? A pid alone
 * is not enough: after a crash and a reboot (or just many forks) the pid may belong to another
 * process. Linux gives each process a start time (/proc/<pid>/stat, field 22, in clock ticks since
 * boot) that, together with the pid, names it uniquely until the next reboot.
 */
import { readFileSync } from 'node:fs'

/** Linux's USER_HZ: 100 on every architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100

/** Field 22 of /proc/<pid>/stat, as a string (it can exceed 2^53 in theory); null if unknown. */
export function processStartTicks(pid: number): string | null {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return null
  }
  // The command name (field 2) is in parentheses and may contain spaces or ')': split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state), so field 22 is fields[19].
  return fields[19] ?? null
}

let bootTimeMs: number | null | undefined

/** When the process started, in ms since the epoch (whole clock ticks); null off Linux. */
export function processStartMs(pid: number): number | null {
  const ticks = processStartTicks(pid)
  if (ticks === null) return null
  if (bootTimeMs === undefined) {
    try {
      const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))
      bootTimeMs = btime ? Number(btime[1]) * 1000 : null
    } catch {
      bootTimeMs = null
    }
  }
  return bootTimeMs === null ? null : bootTimeMs + (Number(ticks) * 1000) / CLOCK_TICKS_PER_SECOND
}

/** kill(pid, 0): true if a process with that pid exists (EPERM: it exists but is not ours). */
export function pidExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
