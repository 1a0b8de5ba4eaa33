/**
 * Open journal files, shared by every queue: an LRU of file descriptors with a cap
 * (`max_open_journals`), so an idle queue holds no fd and a spool with far more journals than the
 * fd limit still starts and serves (docs/architecture.md, "Where each limit lives"). A segment asks for its fd each time it needs one
 * (`acquire`); a closed one is reopened on demand. An fd with an fsync in flight on the thread pool
 * is pinned: it is never closed under the fsync (its number could be reused by another file).
 */
import * as fs from 'node:fs'

/** A file the cache can (re)open. */
export interface CachedFile {
  /** The open fd, or -1 while closed. Managed by the cache. */
  openFd: number
  /** fsyncs in flight on this fd (never closed while > 0). */
  pins: number
  /** Close as soon as the last pin goes (the file was released while pinned). */
  closeWhenUnpinned: boolean
  /** Open the file (create it, for a segment not yet on disk). Returns the fd. */
  openFile(): number
}

/** Never fewer: a journal may use two segments at once (carry-forward reads one, writes another). */
export const MIN_OPEN_JOURNALS = 4

/** The soft limit on open files, from /proc/self/limits when it can be read. */
export function fdSoftLimit(): number | undefined {
  try {
    const text = fs.readFileSync('/proc/self/limits', 'latin1')
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text)
    if (!m) return undefined
    return m[1] === 'unlimited' ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

/** Default `max_open_journals`: min(256, fd soft limit / 4), at least MIN_OPEN_JOURNALS. */
export function defaultMaxOpenJournals(): number {
  const soft = fdSoftLimit()
  const n = soft === undefined ? 256 : Math.min(256, Math.floor(soft / 4))
  return Math.max(MIN_OPEN_JOURNALS, n)
}

export class FdCache {
  /** Open files, least recently used first (a Map keeps insertion order). */
  private readonly lru = new Map<CachedFile, number>()
  private cap: number
  /** Files opened since start (stats, tests). */
  opens = 0

  constructor(capacity = defaultMaxOpenJournals()) {
    this.cap = Math.max(MIN_OPEN_JOURNALS, capacity)
  }

  get capacity(): number {
    return this.cap
  }

  set capacity(n: number) {
    this.cap = Math.max(MIN_OPEN_JOURNALS, n)
    this.evict()
  }

  /** How many journal fds are open now. */
  get size(): number {
    return this.lru.size
  }

  /** The file's fd, opened if needed; it becomes the most recently used. */
  acquire(file: CachedFile): number {
    if (file.openFd >= 0) {
      this.lru.delete(file)
      this.lru.set(file, file.openFd)
      return file.openFd
    }
    // Make room first, so a full fd table (EMFILE) is less likely; retry once after evicting more.
    this.evict(1)
    let fd: number
    try {
      fd = file.openFile()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EMFILE' && (err as NodeJS.ErrnoException).code !== 'ENFILE') throw err
      this.evict(Math.max(1, this.lru.size >> 1))
      fd = file.openFile()
    }
    this.opens++
    this.adopt(file, fd)
    return fd
  }

  /** Register an fd the file just opened itself (a newly created segment). */
  adopt(file: CachedFile, fd: number): void {
    file.openFd = fd
    file.closeWhenUnpinned = false
    this.lru.set(file, fd)
    this.evict(0, file)
  }

  /** An fsync is starting on the file's fd: keep it open until `unpin`. */
  pin(file: CachedFile): number {
    const fd = this.acquire(file)
    file.pins++
    return fd
  }

  unpin(file: CachedFile): void {
    file.pins--
    if (file.pins === 0 && file.closeWhenUnpinned) this.closeNow(file)
  }

  /** The file is done with (deleted, journal closed): close its fd now, or when unpinned. */
  release(file: CachedFile): void {
    if (file.openFd < 0) return
    this.lru.delete(file)
    if (file.pins > 0) file.closeWhenUnpinned = true
    else this.closeNow(file)
  }

  private closeNow(file: CachedFile): void {
    const fd = file.openFd
    file.openFd = -1
    file.closeWhenUnpinned = false
    this.lru.delete(file)
    try {
      fs.closeSync(fd)
    } catch {
      /* already closed: nothing to give back */
    }
  }

  /**
   * Close least recently used, unpinned files until `room` more fit under the cap; never `keep`
   * (the file being handed out: with every other one pinned, it would be the only candidate).
   */
  private evict(room = 0, keep?: CachedFile): void {
    if (this.lru.size + room <= this.cap) return
    for (const file of this.lru.keys()) {
      if (this.lru.size + room <= this.cap) return
      if (file.pins > 0 || file === keep) continue
      this.closeNow(file)
    }
  }
}

/** The process-wide cache every journal uses; the server sets its capacity from config. */
export const openJournals = new FdCache()
