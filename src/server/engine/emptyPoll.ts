/**
 * Empty polls under `sync: always` (issue 13). A non-blocking get that finds its queue empty while
 * the queue's journal has an fsync in flight (or due at the end of this turn, with records waiting
 * for it: journal/groupCommit.ts) does not answer the miss at once: it waits as a blocked reader
 * (FIFO with the others) until those fsyncs have completed, and takes an item if one is written
 * meanwhile. With fsyncs on the loop, gets' replies go after the turn's fsync anyway, so few polls
 * find the queue empty (groupCommit.ts, heldGets). Consumers that poll an empty queue so
 * go at the fsync rate, as Redis's do (it answers a turn's replies after that turn's fsync),
 * instead of spinning on `END` and taking the CPU the producers' sets need.
 * When those fsyncs end with no item for it but the queue's journal is still syncing (pipelined
 * fsyncs of later sets), the poll waits on for the newest one, for up to `max_poll_wait` ms from
 * its start: a miss comes once the producers' writes stop, or the time is up. Under mixed load
 * fsyncs are nearly always in flight, so a poll that answered after one fsync missed again and
 * again (41k misses in 8 s, each a whole request of CPU the producers needed); waiting on makes
 * a poll end with an item far more often (misses about 10x fewer, issue 13).
 * The wait ends early, with the miss, when the same connection sends another command (see
 * Consumer.endPolls): replies stay those of the commands sent one at a time.
 * Under `never` or a periodic sync nothing waits (QueueJournal.afterInFlight says no).
 */
import type { QueueJournal } from '../journal/types.js'
import type { Consumer } from './consumer.js'
import type { Waiter, WaitQueue } from './waitQueue.js'

/**
 * Should this empty non-blocking get wait for the journal's fsyncs in flight or due? Only if the
 * connection's next command can end the wait: not when `deferred` (run once its queue loaded, with
 * the connection's later commands queued behind it, their own order check long done).
 */
export function pollMayWait(journal: QueueJournal, consumer: Consumer, timeoutMs: number, deferred: boolean): boolean {
  return timeoutMs <= 0 && !deferred && journal.syncing && !consumer.isReleased
}

/**
 * Park `waiter` until the fsyncs in flight now have completed, and on while later ones are in
 * flight for up to `maxWaitMs` (then it wakes with the miss), unless an item reaches it first or
 * its connection sends another command.
 */
export function parkPoll<T>(
  waiters: WaitQueue<T>,
  waiter: Waiter<T>,
  consumer: Consumer,
  journal: QueueJournal,
  maxWaitMs: number,
): void {
  waiters.park(waiter)
  const end = (): void => {
    consumer.polls.delete(end)
    if (waiters.remove(waiter)) waiter.wake(false)
  }
  const deadline = maxWaitMs > 0 ? performance.now() + maxWaitMs : 0
  const decide = (): void => {
    if (!consumer.polls.has(end)) return // served, or ended by the connection's next command
    if (performance.now() < deadline && journal.afterInFlight(synced)) return
    end()
  }
  // Decided after the fsync callback has returned: the group commit starts the next fsync (for
  // what was written meanwhile) only after running the callbacks of the one that ended.
  const synced = (): void => queueMicrotask(decide)
  consumer.polls.add(end)
  if (!journal.afterInFlight(maxWaitMs > 0 ? synced : end)) end()
}
