/**
 * Issue 13 (engine/pendingSets.ts): a plain get that finds nothing visible but sets not yet written
 * takes the oldest of them at once; its reply still waits for the write that carries the set's ADD
 * and the get's REMOVE. Real journal, real files; write failures injected.
 */
import t from 'tap'
import { Consumer } from '../../src/server/engine/consumer.js'
import { setFaultInjector } from '../../src/server/journal/index.js'
import { add, addOutcome, drain, get, openQueue } from '../helpers/engine.js'
import { tempSpool } from '../helpers/journal.js'

t.afterEach(() => setFaultInjector(undefined))

for (const sync of ['never', 'always'] as const) {
  t.test(`${sync}: gets take this turn's sets in order, with no write of their own`, async (t) => {
    const dir = tempSpool(t)
    const { queue, events } = await openQueue(t, dir, { sync })
    const c = new Consumer()
    await add(queue, 'first') // the journal file exists (its header was its own write)
    t.equal(await get(queue, c), 'first')
    let writes = 0
    setFaultInjector(({ op }) => {
      if (op === 'write') writes++
      return undefined
    })
    const events2: string[] = []
    const stored = ['a', 'b', 'c'].map((v) => add(queue, v).then(() => events2.push(`stored ${v}`)))
    const got = [get(queue, c), get(queue, c)].map((p) => p.then((v) => (events2.push(`got ${v}`), v)))
    t.same(events2, [], 'no reply before the write')
    t.same(await Promise.all(got), ['a', 'b'], 'the oldest sets, in order')
    await Promise.all(stored)
    t.equal(writes, 1, 'sets and gets went out in one write')
    t.equal(queue.length, 1)
    t.equal(queue.totalItems, 4)
    t.equal(events.hits, 3)
    t.same(await drain(queue, c), ['c'])
    await queue.close()
    const again = await openQueue(t, dir, { sync })
    t.equal(again.queue.length, 0, 'after a restart nothing taken comes back')
  })
}

t.test('a peek, an open read and a get behind a blocked reader do not take an unwritten set', async (t) => {
  const dir = tempSpool(t)
  const { queue } = await openQueue(t, dir, { sync: 'never' })
  const c = new Consumer()
  const blocked = get(queue, new Consumer(), { timeoutMs: 5000 })
  void add(queue, 'x')
  t.equal(await get(queue, c), null, 'the blocked reader was first: the write handed it x')
  t.equal(await blocked, 'x')
  void add(queue, 'y')
  t.equal(await get(queue, c, { peek: true }), 'y', 'a peek sees it (the batch was written)')
  t.equal(await get(queue, c, { open: true }), 'y')
  t.equal(await get(queue, c, { close: true }), null)
  t.equal(queue.length, 0)
})

t.test('the write fails: the set gets the error, the get that took it a miss, nothing comes back', async (t) => {
  const dir = tempSpool(t)
  const { queue } = await openQueue(t, dir, { sync: 'always' })
  const c = new Consumer()
  await add(queue, 'before')
  t.equal(await get(queue, c), 'before')
  setFaultInjector(({ op }) => (op === 'write' ? Object.assign(new Error('no space'), { code: 'ENOSPC' }) : undefined))
  const stored = addOutcome(queue, 'lost')
  const got = get(queue, c)
  t.match(await stored, { message: /ENOSPC/ }, 'the set failed')
  t.equal(await got, null, 'the get that took it misses: no item the journal does not have')
  setFaultInjector(undefined)
  await add(queue, 'after')
  t.equal(await get(queue, c), 'after', 'writes work again')
  t.equal(queue.length, 0)
  await queue.close()
  const again = await openQueue(t, dir, { sync: 'always' })
  t.equal(again.queue.length, 0, 'replay: the failed set is not there, and nothing else came back')
  t.same(await drain(again.queue, c), [])
})

t.test('an expired unwritten set is not handed out', async (t) => {
  const dir = tempSpool(t)
  const { queue } = await openQueue(t, dir, { sync: 'never' })
  const c = new Consumer()
  void add(queue, 'old', { expiresAt: 1 })
  void add(queue, 'new')
  t.equal(await get(queue, c), 'new')
  t.equal(queue.length, 0)
  t.equal(queue.expiredItems, 1, 'it expired instead')
})
