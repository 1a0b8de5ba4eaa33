/**
 * Replay threads (scanWorker.ts) for big journals: `scan` hands a segment file to the least busy
 * thread. Threads start on first use and stop after a second without work; they never keep the
 * process alive. If the thread script is missing (running from TypeScript sources) there is no
 * pool and replay scans on the main thread.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { columnBuffers, type ScannedRecords } from './scan.js'

export interface ScanRequest {
  type: 'scan'
  id: number
  path: string
  start: number
  fileSize: number
}

/** Give a scan's column arrays back to a thread for its next scans. */
export interface RecycleRequest {
  type: 'recycle'
  records: ScannedRecords
}

export type ToScanThread = ScanRequest | RecycleRequest

export type ScanReply = { id: number; records: ScannedRecords } | { id: number; error: string }

const IDLE_STOP_MS = 1000

interface Thread {
  worker: Worker
  busy: number
}

interface Pending {
  thread: Thread
  resolve(r: ScannedRecords): void
  reject(err: Error): void
}

export class ScanPool {
  private threads: Thread[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private idleTimer: NodeJS.Timeout | null = null
  /** Set when a thread failed (its script would not load or it crashed): no more threads. */
  private broken: Error | null = null

  constructor(
    private readonly script: URL,
    readonly size: number,
  ) {}

  /** Scan the records of `path` in [start, fileSize) on a replay thread. */
  scan(path: string, start: number, fileSize: number): Promise<ScannedRecords> {
    if (this.broken) return Promise.reject(this.broken)
    if (this.idleTimer) {
      clearTimeout(this.idleTimer)
      this.idleTimer = null
    }
    if (this.threads.length < this.size) this.threads.push(this.startThread())
    const thread = this.threads.reduce((a, b) => (b.busy < a.busy ? b : a))
    const id = this.nextId++
    thread.busy++
    return new Promise<ScannedRecords>((resolve, reject) => {
      this.pending.set(id, { thread, resolve, reject })
      thread.worker.postMessage({ type: 'scan', id, path, start, fileSize } satisfies ScanRequest)
    })
  }

  /** Hand the arrays of an applied scan back to a thread (they must not be used afterwards). */
  recycle(records: ScannedRecords): void {
    const thread = this.threads[0]
    if (!thread) return
    thread.worker.postMessage({ type: 'recycle', records } satisfies RecycleRequest, columnBuffers(records))
  }

  /** Stop every thread now (pending scans fail). */
  async close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer)
    this.idleTimer = null
    const threads = this.threads
    this.threads = []
    for (const p of this.pending.values()) p.reject(new Error('replay threads stopped'))
    this.pending.clear()
    await Promise.all(threads.map((t) => t.worker.terminate()))
  }

  private startThread(): Thread {
    // A replay thread holds a read buffer and one segment's records: keep its heap small.
    const worker = new Worker(this.script, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 } })
    worker.unref()
    const thread: Thread = { worker, busy: 0 }
    worker.on('message', (reply: ScanReply) => {
      const p = this.pending.get(reply.id)
      if (!p) return
      this.pending.delete(reply.id)
      thread.busy--
      if ('error' in reply) p.reject(new Error(reply.error))
      else p.resolve(reply.records)
      this.maybeIdle()
    })
    const fail = (err: Error): void => {
      this.broken = err
      this.threads = this.threads.filter((t) => t !== thread)
      for (const [id, p] of this.pending) {
        if (p.thread !== thread) continue
        this.pending.delete(id)
        p.reject(err)
      }
    }
    worker.on('error', fail)
    worker.on('exit', (code) => {
      if (!this.threads.includes(thread)) return // stopped by close(), or already failed
      fail(new Error(`replay thread exited (code ${code})`))
    })
    return thread
  }

  private maybeIdle(): void {
    if (this.pending.size > 0 || this.idleTimer) return
    this.idleTimer = setTimeout(() => void this.close(), IDLE_STOP_MS)
    this.idleTimer.unref()
  }
}

const pools = new Map<number, ScanPool | null>()

/**
 * The process's pool of `threads` replay threads, or null for 0 threads or when the thread script
 * is not there.
 */
export function replayPool(threads: number): ScanPool | null {
  let pool = pools.get(threads)
  if (pool === undefined) {
    const script = new URL('./scanWorker.js', import.meta.url)
    pool = threads > 0 && existsSync(fileURLToPath(script)) ? new ScanPool(script, threads) : null
    pools.set(threads, pool)
  }
  return pool
}
