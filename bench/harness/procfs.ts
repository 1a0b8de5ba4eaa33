/** Process CPU time and memory from /proc (Linux), for the peers the benchmark starts. */
import { readFileSync } from 'node:fs'

const CLOCK_TICKS_PER_SECOND = 100

/** User + system CPU seconds of `pid`, or NaN if it cannot be read. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return (utime + stime) / CLOCK_TICKS_PER_SECOND
  } catch {
    return NaN
  }
}

/** VmRSS and VmHWM (peak) of `pid` in MiB, NaN if unavailable. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1')
    const kib = (name: string): number => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)
      return m ? Number(m[1]) : NaN
    }
    return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 }
  } catch {
    return { rss: NaN, peak: NaN }
  }
}
