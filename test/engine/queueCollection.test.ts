/**
 * QueueCollection (the set of queues): creation on first use, per-queue settings, fanout,
 * expire_to, delete and flush, counters, and load() replaying the spool — over real journals in a
 * temp spool.
 */
import { readdirSync } from 'node:fs'
import t from 'tap'
import { Consumer } from '../../src/server/engine/consumer.js'
import { cget, cset, openCollection } from '../helpers/engine.js'
import { tempSpool } from '../helpers/journal.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function deleteQueue(collection: { delete(n: string, done: (err: Error | null, existed: boolean) => void): void }, name: string): Promise<boolean> {
  return new Promise((resolve, reject) => collection.delete(name, (err, existed) => (err ? reject(err) : resolve(existed))))
}

t.test('a queue is created on first use; set/get are FIFO and counted', async (t) => {
  const { collection } = await openCollection(t, tempSpool(t))
  const c = new Consumer()
  t.same(collection.queueNames, [])
  t.equal(await cget(collection, 'jobs', c), null)
  await cset(collection, 'jobs', 'one')
  await cset(collection, 'jobs', 'two')
  t.same(collection.queueNames, ['jobs'])
  t.equal(collection.peekQueue('jobs')?.length, 2)
  t.equal(collection.peekQueue('nothing'), null, 'peekQueue creates nothing')
  t.equal(await cget(collection, 'jobs', c), 'one')
  t.equal(await cget(collection, 'jobs', c), 'two')
  t.same(collection.counters, { cmdGet: 3, cmdSet: 2, getHits: 2, getMisses: 1 })
})

t.test('load() replays every queue found in the spool before serving', async (t) => {
  const dir = tempSpool(t)
  const first = await openCollection(t, dir)
  for (const [q, v] of [['a', '1'], ['b', '2'], ['b', '3'], ['with space', '4']] as const) await cset(first.collection, q, v)
  await first.collection.close()
  const second = await openCollection(t, dir)
  t.same(second.collection.queueNames, ['a', 'b', 'with space'])
  t.equal(second.collection.peekQueue('b')?.length, 2, 'loaded before any command')
  t.equal(await cget(second.collection, 'with space', new Consumer()), '4')
})

t.test('per-queue settings apply to their queue only, and reconfigure() changes them live', async (t) => {
  const { collection, config } = await openCollection(t, tempSpool(t), (config) => {
    config.queues['small'] = { maxItems: 1 }
  })
  await cset(collection, 'small', 'a')
  await t.rejects(cset(collection, 'small', 'b'), { code: 'QUEUE_FULL' })
  await cset(collection, 'other', 'a')
  await cset(collection, 'other', 'b')
  collection.reconfigure({ ...config, queues: { small: { maxItems: 2 } } })
  await cset(collection, 'small', 'b')
  await t.rejects(cset(collection, 'small', 'c'), { code: 'QUEUE_FULL' })
})

t.test('fanout: a set on the parent is copied to every child that exists', async (t) => {
  const { collection } = await openCollection(t, tempSpool(t))
  const c = new Consumer()
  await cset(collection, 'news', 'before any child')
  t.equal(await cget(collection, 'news+mobile', c), null, 'first use creates the child, empty')
  t.equal(await cget(collection, 'news+web', c), null)
  await cset(collection, 'news', 'hello')
  await sleep(20) // copies are written after the parent's set is acknowledged
  t.equal(await cget(collection, 'news+mobile', c), 'hello')
  t.equal(await cget(collection, 'news+web', c), 'hello')
  t.equal(await cget(collection, 'news', c), 'before any child')
  t.equal(await cget(collection, 'news', c), 'hello', 'the parent keeps its own copy')
  t.ok(await deleteQueue(collection, 'news+web'))
  await cset(collection, 'news', 'after delete')
  await sleep(20)
  t.equal(collection.peekQueue('news+web'), null, 'a deleted child gets no more copies')
  t.equal(await cget(collection, 'news+mobile', c), 'after delete')
})

t.test('expire_to: an expired item moves to the named queue instead of vanishing', async (t) => {
  const { collection } = await openCollection(t, tempSpool(t), (config) => {
    config.queues['work'] = { expireTo: 'dead' }
  })
  const c = new Consumer()
  await cset(collection, 'work', 'late', Date.now() - 1)
  await cset(collection, 'work', 'on time')
  t.equal(await cget(collection, 'work', c), 'on time')
  await sleep(20)
  t.equal(await cget(collection, 'dead', c), 'late')
})

t.test('delete removes items and files; flush empties but keeps the queue', async (t) => {
  const dir = tempSpool(t)
  const { collection } = await openCollection(t, dir)
  const c = new Consumer()
  t.equal(await deleteQueue(collection, 'never'), false, 'NOT_FOUND for a queue that does not exist')
  t.same(readdirSync(dir), [], 'and nothing was created on disk')
  await cset(collection, 'gone', 'x')
  t.equal(await deleteQueue(collection, 'gone'), true)
  t.same(collection.queueNames, [])
  t.same(readdirSync(dir).filter((f) => f.startsWith('gone.')), [])
  t.equal(await cget(collection, 'gone', c), null, 'read again: empty')
  t.same(collection.queueNames, [], 'and a read of a name with no queue creates none (DESIGN §10)')

  await cset(collection, 'kept', 'x')
  await new Promise<void>((resolve, reject) => collection.flush('kept', (err) => (err ? reject(err) : resolve())))
  t.same(collection.queueNames, ['kept'])
  t.equal(collection.peekQueue('kept')?.length, 0)
})

t.test('operations sent while a queue is flushed wait for it, in order', async (t) => {
  const { collection } = await openCollection(t, tempSpool(t))
  const c = new Consumer()
  await cset(collection, 'q', 'old')
  const order: string[] = []
  collection.flush('q', () => order.push('flushed'))
  const set = cset(collection, 'q', 'new').then(() => order.push('set'))
  const got = cget(collection, 'q', c).then((v) => order.push(`got ${v}`))
  await Promise.all([set, got])
  t.same(order, ['flushed', 'set', 'got new'])
})

t.test('flushAll empties every queue', async (t) => {
  const { collection } = await openCollection(t, tempSpool(t))
  for (const q of ['a', 'b', 'c']) await cset(collection, q, q)
  await new Promise<void>((resolve, reject) => collection.flushAll((err) => (err ? reject(err) : resolve())))
  t.same(['a', 'b', 'c'].map((q) => collection.peekQueue(q)?.length), [0, 0, 0])
})
