/**
 * Create a small file only if no live owner holds it: the spool lock and the pid file. The content
 * is written to a private temp file and link()ed to the name — link fails with EEXIST if the name
 * exists, so the file is never seen half-written and only one process can create it. An existing
 * file judged stale by the caller is renamed aside and removed only if the renamed file is the very
 * inode that was judged (else it is linked back), so two processes racing for a stale file cannot
 * both win.
 */
import * as fs from 'node:fs'

const FILE_MODE = 0o600
const MAX_ATTEMPTS = 10

export type ClaimResult =
  | { claimed: true; tookOver: Array<{ text: string; reason: string }> }
  | { claimed: false; holder: string }

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code
}

/**
 * Create `path` holding `content`. `staleReason(text, stat)` says why an existing file may be taken
 * over, or null when its owner may still be alive. Throws on I/O errors other than EEXIST/ENOENT.
 */
export function claimFile(
  path: string,
  content: string,
  staleReason: (text: string, stat: fs.Stats) => string | null,
): ClaimResult {
  const tmp = `${path}.${process.pid}.tmp`
  writePrivate(tmp, content)
  const tookOver: Array<{ text: string; reason: string }> = []
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        fs.linkSync(tmp, path)
        return { claimed: true, tookOver }
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err
      }
      let seen: fs.Stats
      let text: string
      try {
        seen = fs.statSync(path)
        text = fs.readFileSync(path, 'utf8')
      } catch (err) {
        if (errno(err) === 'ENOENT') continue // released meanwhile: try again
        throw err
      }
      const reason = staleReason(text, seen)
      if (reason === null) return { claimed: false, holder: text }
      if (removeIfSame(path, seen.ino)) tookOver.push({ text, reason })
    }
    throw Object.assign(new Error(`${path}: contended`), { code: 'EBUSY' })
  } finally {
    fs.rmSync(tmp, { force: true })
  }
}

/** Remove `path` if its content is still exactly `content` (our own claim). */
export function releaseFile(path: string, content: string): void {
  try {
    if (fs.readFileSync(path, 'utf8') === content) fs.unlinkSync(path)
  } catch {
    /* already gone: nothing to release */
  }
}

/** Remove the file if it is still the inode judged stale; true if it was. */
function removeIfSame(path: string, staleIno: number): boolean {
  const aside = `${path}.stale-${process.pid}`
  try {
    fs.renameSync(path, aside)
  } catch (err) {
    if (errno(err) === 'ENOENT') return false
    throw err
  }
  if (fs.statSync(aside).ino === staleIno) {
    fs.unlinkSync(aside)
    return true
  }
  // Another process replaced the stale file between our read and our rename: give it back.
  try {
    fs.linkSync(aside, path)
  } catch {
    /* a third process got there: its file stands */
  }
  fs.unlinkSync(aside)
  return false
}

/** Write a file readable by its owner only, whatever the umask. */
export function writePrivate(path: string, content: string): void {
  const fd = fs.openSync(path, 'w', FILE_MODE)
  try {
    fs.fchmodSync(fd, FILE_MODE)
    fs.writeSync(fd, content)
  } finally {
    fs.closeSync(fd)
  }
}
