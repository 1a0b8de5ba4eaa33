/**
 * One queue's sets handed to the journal and not yet written, oldest first. The queue extends it
 * (as ItemDeque extends ItemStore: no object more a queue, issue 17).
 *
 * A get that finds nothing visible but sets of this turn in the batch takes the oldest of them
 * at once, instead of writing the batch early to make them visible (issue 13: under mixed load
 * that was a write a get). Its REMOVE then follows the ADD in the same write, and its reply, which
 * waits for the REMOVE's write, comes after that write: a get still never returns an item the
 * journal could lose to `kill -9`. If the write fails, the set gets the error and the get a miss.
 */
import { isExpired, PendingItem } from './item.js'

export class PendingSets {
  /** Sets handed to the journal, not yet written, and their payload bytes. */
  protected pendingAdds = 0
  protected pendingBytes = 0
  private pendingLast: PendingItem | null = null
  /** The oldest pending set no get took (the taken ones are always the oldest). */
  private pendingFirst: PendingItem | null = null

  protected pushPending(item: PendingItem): void {
    if (this.pendingLast !== null) this.pendingLast.next = item
    this.pendingLast = item
    this.pendingFirst ??= item
    this.pendingAdds++
    this.pendingBytes += item.data.length
  }

  /** Its ADD was written, or failed: sets are written in seq order, so none pending is older. */
  protected pendingWritten(item: PendingItem, failed: boolean): void {
    this.pendingAdds--
    this.pendingBytes -= item.data.length
    if (this.pendingFirst === item) this.pendingFirst = item.next
    if (this.pendingLast === item) this.pendingLast = null
    item.next = null
    if (failed && item.taken === 1) item.taken = 2
  }

  /** The oldest set not taken yet, if it has not expired, now taken (its ADD is not written). */
  protected takePending(maxAgeMs: number): PendingItem | null {
    const item = this.pendingFirst
    if (item === null || isExpired(item, Date.now(), maxAgeMs)) return null
    this.pendingFirst = item.next
    item.taken = 1
    return item
  }
}
