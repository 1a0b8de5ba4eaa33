/**
 * Open reads over HTTP. The engine allows one open read per queue per consumer, and HTTP has no
 * connection to hang state on, so each receipt owns a Session of its own: `/open` dequeues through
 * it, `/close` and `/abort` finish through it, and closing the session (timeout, shutdown) puts an
 * unconfirmed item back at the head, exactly as a dropped memcached connection does.
 *
 * A receipt is bound to the user who opened it, and each user holds at most `maxPerUser` of them,
 * counting opens still waiting for an item, so a client cannot pile up sessions without bound.
 */
import { randomBytes } from 'node:crypto'
import type { Session } from '../dispatcher.js'

export interface Receipt {
  readonly id: string
  readonly user: string
  readonly queue: string
  readonly session: Session
  timer: NodeJS.Timeout | null
}

export class ReceiptBook {
  private readonly byId = new Map<string, Receipt>()
  /** Receipts held plus opens in progress, per user. */
  private readonly held = new Map<string, number>()

  constructor(
    private readonly openTimeoutMs: number,
    private readonly maxPerUser: number,
  ) {}

  /** Receipts currently held (metrics). */
  get size(): number {
    return this.byId.size
  }

  /** Claim a slot for an open read; false when the user is at the cap. */
  reserve(user: string): boolean {
    const n = this.held.get(user) ?? 0
    if (n >= this.maxPerUser) return false
    this.held.set(user, n + 1)
    return true
  }

  /** Give a slot back (the open found nothing, failed, or its receipt ended). */
  release(user: string): void {
    const n = (this.held.get(user) ?? 1) - 1
    if (n <= 0) this.held.delete(user)
    else this.held.set(user, n)
  }

  /** An open read succeeded on `session` (its slot was reserved): issue its receipt. */
  issue(user: string, queue: string, session: Session): string {
    const id = randomBytes(16).toString('hex')
    const receipt: Receipt = { id, user, queue, session, timer: null }
    // Not confirmed in time: closing the session aborts the open read (the item goes back).
    receipt.timer = setTimeout(() => this.end(receipt), this.openTimeoutMs)
    receipt.timer.unref()
    this.byId.set(id, receipt)
    return id
  }

  /**
   * Take the receipt out of the book to close or abort it. Null unless it exists, belongs to this
   * user and is for this queue: another user's receipt looks exactly like a missing one.
   */
  take(id: string, user: string, queue: string): Receipt | null {
    const receipt = this.byId.get(id)
    if (!receipt || receipt.user !== user || receipt.queue !== queue) return null
    this.forget(receipt)
    return receipt
  }

  /** Finish a taken receipt: close its session (a no-op for the engine after close/abort). */
  finish(receipt: Receipt): void {
    receipt.session.close()
  }

  /** Shutdown: every unconfirmed item goes back to its queue. */
  closeAll(): void {
    for (const receipt of [...this.byId.values()]) this.end(receipt)
  }

  private end(receipt: Receipt): void {
    if (!this.byId.has(receipt.id)) return
    this.forget(receipt)
    receipt.session.close()
  }

  private forget(receipt: Receipt): void {
    if (receipt.timer) clearTimeout(receipt.timer)
    receipt.timer = null
    this.byId.delete(receipt.id)
    this.release(receipt.user)
  }
}
