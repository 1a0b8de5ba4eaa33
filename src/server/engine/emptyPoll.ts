/**
 * Empty polls under `sync: always` (issue 13). A non-blocking get that finds its queue empty while
 * the queue's journal has an fsync in flight does not answer the miss at once: it waits as a
 * blocked reader (FIFO with the others) until the fsyncs in flight at the time of the get have
 * completed, and takes an item if one is written meanwhile. Consumers that poll an empty queue so
 * go at the fsync rate, as Redis's do (it answers a turn's replies after that turn's fsync),
 * instead of spinning on `END` and taking the CPU the producers' sets need.
 * The wait ends early, with the miss, when the same connection sends another command (see
 * Consumer.endPolls): replies stay those of the commands sent one at a time.
 * Under `never` or a periodic sync nothing waits (QueueJournal.afterInFlight says no).
 */
import type { QueueJournal } from '../journal/types.js'
import type { Consumer } from './consumer.js'
import type { Waiter, WaitQueue } from './waitQueue.js'

/** Should this empty non-blocking get wait for the journal's fsyncs in flight? */
export function pollMayWait(journal: QueueJournal, consumer: Consumer): boolean {
  return journal.syncing && !consumer.isReleased
}

/**
 * Park `waiter` until the fsyncs in flight now have completed (then it wakes with the miss),
 * unless an item reaches it first or its connection sends another command.
 */
export function parkPoll<T>(waiters: WaitQueue<T>, waiter: Waiter<T>, consumer: Consumer, journal: QueueJournal): void {
  waiters.park(waiter)
  const end = (): void => {
    consumer.polls.delete(end)
    if (waiters.remove(waiter)) waiter.wake(false)
  }
  consumer.polls.add(end)
  if (!journal.afterInFlight(end)) end()
}
