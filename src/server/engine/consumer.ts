/**
 * What the engine knows of one client connection: its open (tentative) reads and its blocked gets.
 * It is not a socket: the dispatcher creates one per session and calls `release()` when the
 * connection goes away, which aborts the open reads and cancels the waits.
 */
import type { QueueItem } from './item.js'
import type { Waiter } from './waitQueue.js'

/** The part of a queue a consumer needs to undo its state there. */
export interface ConsumerHost {
  abortOpenRead(consumer: Consumer): void
  cancelWait(waiter: Waiter): void
}

export class Consumer {
  /** Open reads by queue: at most one per queue. */
  readonly openReads = new Map<ConsumerHost, QueueItem>()
  /** Queues where a blocking `/open` is waiting (so a second `/open` is refused meanwhile). */
  readonly opening = new Set<ConsumerHost>()
  /** Blocked gets, with the queue they wait on. */
  readonly waits = new Map<Waiter, ConsumerHost>()
  /** Empty polls waiting for an fsync (engine/emptyPoll.ts): each ends its wait with a miss. */
  readonly polls = new Set<() => void>()
  private released = false

  get isReleased(): boolean {
    return this.released
  }

  /**
   * The connection sent another command: its empty polls answer their miss now, so a pipelined
   * `get a` / `set a` / `get a` replies as if sent one at a time (no poll takes a later set's item).
   */
  endPolls(): void {
    if (this.polls.size === 0) return
    const ends = [...this.polls]
    this.polls.clear()
    for (const end of ends) end()
  }

  /** The connection closed: put open reads back, stop waiting. */
  release(): void {
    if (this.released) return
    this.released = true
    for (const [waiter, host] of [...this.waits]) host.cancelWait(waiter)
    this.waits.clear()
    this.polls.clear()
    for (const host of [...this.openReads.keys()]) host.abortOpenRead(this)
    this.openReads.clear()
    this.opening.clear()
  }
}
