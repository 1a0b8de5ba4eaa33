/**
 * Consumer (what the engine knows of one connection): its open reads and blocked gets, and
 * release() when the connection goes away. Real queues over real journals in a temp spool.
 */
import t from 'tap'
import { Consumer } from '../../src/server/engine/consumer.js'
import { PLAIN_READ } from '../../src/server/engine/requests.js'
import { add, drain, get, openQueue } from '../helpers/engine.js'
import { tempSpool } from '../helpers/journal.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('release puts the open reads of every queue back at their heads', async (t) => {
  const dir = tempSpool(t)
  const { queue: a } = await openQueue(t, dir, {}, { name: 'a' })
  const { queue: b } = await openQueue(t, dir, {}, { name: 'b' })
  for (const v of ['a1', 'a2']) await add(a, v)
  for (const v of ['b1', 'b2']) await add(b, v)
  const gone = new Consumer()
  t.equal(await get(a, gone, { open: true }), 'a1')
  t.equal(await get(b, gone, { open: true }), 'b1')
  t.equal(gone.openReads.size, 2)
  t.equal(a.openCount, 1)
  gone.release()
  t.equal(gone.isReleased, true)
  t.equal(gone.openReads.size, 0)
  t.equal(a.openCount, 0)
  const other = new Consumer()
  t.same(await drain(a, other), ['a1', 'a2'], 'the aborted item is ahead of newer ones')
  t.same(await drain(b, other), ['b1', 'b2'])
})

t.test('release cancels blocked gets: no reply, and the next item stays in the queue', async (t) => {
  const dir = tempSpool(t)
  const { queue } = await openQueue(t, dir)
  const gone = new Consumer()
  let answered = false
  void get(queue, gone, { timeoutMs: 10_000 }).then(() => (answered = true))
  await sleep(20)
  t.equal(queue.waiterCount, 1)
  t.equal(gone.waits.size, 1)
  gone.release()
  t.equal(queue.waiterCount, 0)
  t.equal(gone.waits.size, 0)
  await add(queue, 'late')
  await sleep(50)
  t.equal(answered, false, 'a gone connection gets no reply')
  t.equal(await get(queue, new Consumer()), 'late', 'the item was not handed to the cancelled waiter')
})

t.test('a released consumer does not wait, and release twice is harmless', async (t) => {
  const dir = tempSpool(t)
  const { queue } = await openQueue(t, dir)
  const c = new Consumer()
  c.release()
  c.release()
  let answer: unknown = 'none yet'
  queue.get(c, { ...PLAIN_READ, timeoutMs: 60_000 }, (_err, item) => (answer = item))
  t.equal(answer, null, 'answered empty at once, not after the timeout')
  t.equal(queue.waiterCount, 0)
})

t.test('one open read per queue per consumer; other consumers take the next item', async (t) => {
  const dir = tempSpool(t)
  const { queue } = await openQueue(t, dir)
  for (const v of ['x', 'y']) await add(queue, v)
  const first = new Consumer()
  const second = new Consumer()
  t.equal(await get(queue, first, { open: true }), 'x')
  await t.rejects(get(queue, first, { open: true }), { code: 'OPEN_READ_PENDING' })
  t.equal(await get(queue, second, { open: true }), 'y')
  // close + open in one request confirms the first and takes the next (none left here)
  t.equal(await get(queue, first, { close: true, open: true }), null)
  t.equal(first.openReads.size, 0)
  t.equal(queue.openCount, 1)
})
