/**
 * Blocked readers of one queue (Kestrel's DeadlineWaitQueue): served first come, first served.
 * A Set keeps insertion order and removes in O(1), so a waiter whose connection closes leaves
 * without a scan. Each waiter has one timer for its own deadline; nothing polls.
 */

export class Waiter<T = unknown> {
  timer: NodeJS.Timeout | null = null
  /** What the queue hands over, set just before `wake(true)`. */
  value: T | null = null
  constructor(
    /** Called with true when an item is ready for this waiter, false on timeout/cancel. */
    readonly wake: (served: boolean) => void,
    /** Identity of the connection, so it can cancel its waiters when it goes away. */
    readonly owner: object,
  ) {}
}

/** Never written: a WaitQueue makes its own Set on its first waiter (most queues never have one). */
const NO_WAITERS = new Set<Waiter<never>>()

export class WaitQueue<T = unknown> {
  private waiters: Set<Waiter<T>> = NO_WAITERS

  get size(): number {
    return this.waiters.size
  }

  /** Wait up to timeoutMs; `onTimeout` runs if nothing arrives in time. */
  add(waiter: Waiter<T>, timeoutMs: number, onTimeout: () => void): void {
    this.park(waiter)
    waiter.timer = setTimeout(() => {
      waiter.timer = null
      if (this.waiters.delete(waiter)) onTimeout()
    }, timeoutMs)
  }

  /** Wait with no timer: whoever parks it ends the wait with `remove` (engine/emptyPoll.ts). */
  park(waiter: Waiter<T>): void {
    // never into the shared empty set: every other idle queue would see this waiter
    if (this.waiters === (NO_WAITERS as Set<Waiter<T>>)) this.waiters = new Set()
    this.waiters.add(waiter)
  }

  /** The oldest waiter, removed from the queue (its timer cleared), or undefined. */
  shift(): Waiter<T> | undefined {
    for (const waiter of this.waiters) {
      this.remove(waiter)
      return waiter
    }
    return undefined
  }

  /** Remove a waiter without waking it. Returns false if it was not waiting. */
  remove(waiter: Waiter<T>): boolean {
    if (waiter.timer) {
      clearTimeout(waiter.timer)
      waiter.timer = null
    }
    return this.waiters.delete(waiter)
  }

  /** Remove every waiter; returns them in order. */
  drain(): Waiter<T>[] {
    const all = [...this.waiters]
    for (const w of all) this.remove(w)
    return all
  }
}
