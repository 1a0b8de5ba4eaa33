/**
 * Issue 13, empty polls under `sync: always` (engine/emptyPoll.ts), on a real queue and journal:
 * a poll of an empty queue is decided at the end of the turn it was read in, so a set read later
 * in the same turn (another connection's, in the same batch of input) reaches the poll instead of
 * it answering a miss; with nothing set, the miss comes after that turn (no fsync to wait for).
 */
import t from 'tap'
import { Consumer } from '../../src/server/engine/consumer.js'
import { add, get, openQueue } from '../helpers/engine.js'
import { tempSpool } from '../helpers/journal.js'

t.test('always: a set read after the poll in the same turn reaches the poll', async (t) => {
  const { queue } = await openQueue(t, tempSpool(t), { sync: 'always' })
  const c = new Consumer()
  const poll = get(queue, c) // the queue is empty and no fsync is in flight
  const stored = add(queue, 'same-turn') // same synchronous turn, as a set parsed just after it
  t.equal(await poll, 'same-turn', 'the poll took the item instead of a miss')
  await stored
  t.equal(queue.length, 0)
  t.equal(await get(queue, c), null, 'nothing set: the miss')
})

t.test('never: the same poll answers the miss at once, the item stays queued', async (t) => {
  const { queue } = await openQueue(t, tempSpool(t), { sync: 'never' })
  const c = new Consumer()
  const poll = get(queue, c)
  const stored = add(queue, 'same-turn')
  t.equal(await poll, null)
  await stored
  t.equal(queue.length, 1)
})
