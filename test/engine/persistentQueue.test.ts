/**
 * PersistentQueue (one queue): FIFO, open reads, peek, limits, expiry, blocked readers,
 * read-behind past the memory budget, flush and destroy — over a real journal in a temp spool,
 * reopened where the point is what survives a restart.
 */
import { readdirSync } from 'node:fs'
import t from 'tap'
import { Consumer } from '../../src/server/engine/consumer.js'
import { add, addOutcome, drain, get, openQueue } from '../helpers/engine.js'
import { PLAIN_READ as PLAIN } from '../../src/server/engine/requests.js'
import { tempSpool } from '../helpers/journal.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('FIFO: items come out in the order they went in; length, bytes and hit/miss counts follow', async (t) => {
  const dir = tempSpool(t)
  const { queue, events } = await openQueue(t, dir)
  const c = new Consumer()
  t.equal(await get(queue, c), null)
  for (const v of ['one', 'two', 'three']) await add(queue, v)
  t.equal(queue.length, 3)
  t.equal(queue.bytes, 11)
  t.equal(queue.totalItems, 3)
  t.same(await drain(queue, c), ['one', 'two', 'three'])
  t.equal(queue.length, 0)
  t.equal(queue.bytes, 0)
  t.same({ hits: events.hits, misses: events.misses }, { hits: 3, misses: 2 })
})

t.test('what was acknowledged and not taken is there after a restart, seqs keep rising', async (t) => {
  const dir = tempSpool(t)
  const first = await openQueue(t, dir)
  const c = new Consumer()
  for (const v of ['a', 'b', 'c']) await add(first.queue, v)
  t.equal(await get(first.queue, c), 'a')
  await first.queue.close()
  const second = await openQueue(t, dir)
  t.equal(second.queue.length, 2)
  await add(second.queue, 'd')
  const seqs: number[] = []
  for (;;) {
    const item = await new Promise<{ seq: number } | null>((resolve) => second.queue.get(c, { timeoutMs: 0, open: false, close: false, abort: false, peek: false }, (_e, i) => resolve(i)))
    if (!item) break
    seqs.push(item.seq)
  }
  t.same(seqs, [2, 3, 4], 'b and c kept their seqs; d got the next one')
})

t.test('open reads: tentative until close; abort and restart put the item back at the head', async (t) => {
  const dir = tempSpool(t)
  const first = await openQueue(t, dir)
  const c = new Consumer()
  for (const v of ['a', 'b']) await add(first.queue, v)
  t.equal(await get(first.queue, c, { open: true }), 'a')
  t.equal(first.queue.length, 1, 'the open item is not counted as waiting')
  t.equal(await get(first.queue, c, { peek: true }), 'b', 'others see the next item meanwhile')
  t.equal(await get(first.queue, c, { abort: true }), null)
  t.equal(await get(first.queue, c, { peek: true }), 'a', 'aborted: back at the head')
  t.equal(await get(first.queue, c, { open: true }), 'a')
  await first.queue.close() // never confirmed
  const second = await openQueue(t, dir)
  t.same(await drain(second.queue, new Consumer()), ['a', 'b'], 'an unconfirmed open read survives a restart')
  await second.queue.close()
  const third = await openQueue(t, dir)
  t.equal(third.queue.length, 0, 'plain gets removed them for good')
  await add(third.queue, 'z')
  const d = new Consumer()
  t.equal(await get(third.queue, d, { open: true }), 'z')
  t.equal(await get(third.queue, d, { close: true }), null, 'close alone confirms and answers empty')
  await third.queue.close()
  const fourth = await openQueue(t, dir)
  t.equal(fourth.queue.length, 0, 'a confirmed open read is gone after a restart')
})

t.test('peek leaves the item in place', async (t) => {
  const { queue, events } = await openQueue(t, tempSpool(t))
  const c = new Consumer()
  t.equal(await get(queue, c, { peek: true }), null)
  await add(queue, 'p')
  t.equal(await get(queue, c, { peek: true }), 'p')
  t.equal(await get(queue, c, { peek: true }), 'p')
  t.equal(queue.length, 1)
  t.same({ hits: events.hits, misses: events.misses }, { hits: 2, misses: 1 })
})

t.test('limits: max_item_size, max_items, max_size refuse; discard_old_when_full drops the oldest', async (t) => {
  const dir = tempSpool(t)
  const sized = await openQueue(t, dir, { maxItemSize: 4 }, { name: 'sized' })
  t.equal((await addOutcome(sized.queue, '12345'))?.code, 'TOO_LARGE')
  t.equal(await addOutcome(sized.queue, '1234'), null)

  const counted = await openQueue(t, dir, { maxItems: 2 }, { name: 'counted' })
  await add(counted.queue, 'a')
  await add(counted.queue, 'b')
  t.equal((await addOutcome(counted.queue, 'c'))?.code, 'QUEUE_FULL')
  // an open read still counts against max_items
  const c = new Consumer()
  t.equal(await get(counted.queue, c, { open: true }), 'a')
  t.equal((await addOutcome(counted.queue, 'c'))?.code, 'QUEUE_FULL')

  const bytes = await openQueue(t, dir, { maxSize: 10 }, { name: 'bytes' })
  await add(bytes.queue, '123456')
  t.equal((await addOutcome(bytes.queue, '12345'))?.code, 'QUEUE_FULL')
  t.equal(await addOutcome(bytes.queue, '1234'), null)

  const rolling = await openQueue(t, dir, { maxItems: 3, discardOldWhenFull: true }, { name: 'rolling' })
  for (const v of ['1', '2', '3', '4', '5']) await add(rolling.queue, v)
  t.equal(rolling.queue.discardedItems, 2)
  t.same(await drain(rolling.queue, new Consumer()), ['3', '4', '5'])
})

t.test('expiry: an expired item is never returned, is counted, and is reported upward', async (t) => {
  const dir = tempSpool(t)
  const { queue, events } = await openQueue(t, dir)
  const now = Date.now()
  await add(queue, 'stale', { expiresAt: now - 1 })
  await add(queue, 'fresh', { expiresAt: now + 60_000 })
  await add(queue, 'forever')
  t.same(await drain(queue, new Consumer()), ['fresh', 'forever'])
  t.equal(queue.expiredItems, 1)
  t.same(events.expired.map((i) => i.data.toString()), ['stale'])

  const aged = await openQueue(t, dir, { maxAgeMs: 1000 }, { name: 'aged' })
  await add(aged.queue, 'old', { addedAt: Date.now() - 5000 })
  await add(aged.queue, 'new')
  t.same(await drain(aged.queue, new Consumer()), ['new'], 'max_age expires by the time an item was added')
  t.equal(aged.queue.expiredItems, 1)
})

t.test('blocked readers: served first come first served; a timeout answers empty', async (t) => {
  const { queue } = await openQueue(t, tempSpool(t))
  const got: string[] = []
  const first = get(queue, new Consumer(), { timeoutMs: 30_000 }).then((v) => got.push(`first:${v}`))
  const second = get(queue, new Consumer(), { timeoutMs: 30_000 }).then((v) => got.push(`second:${v}`))
  await sleep(20)
  t.equal(queue.waiterCount, 2)
  await add(queue, 'x')
  await add(queue, 'y')
  await Promise.all([first, second])
  t.same(got, ['first:x', 'second:y'])
  t.equal(queue.waiterCount, 0)
  t.equal(await get(queue, new Consumer(), { timeoutMs: 30 }), null, 'nothing came: empty after the wait')
  t.equal(queue.waiterCount, 0)
})

t.test('a blocking open read is held like any open read', async (t) => {
  const { queue } = await openQueue(t, tempSpool(t))
  const c = new Consumer()
  const waiting = get(queue, c, { open: true, timeoutMs: 30_000 })
  await sleep(20)
  await t.rejects(get(queue, c, { open: true }), { code: 'OPEN_READ_PENDING' }, 'a second open while one waits is refused')
  await add(queue, 'w')
  t.equal(await waiting, 'w')
  t.equal(queue.openCount, 1)
  c.release()
  t.equal(await get(queue, new Consumer()), 'w', 'released: back in the queue')
})

t.test('past the memory budget items stay on disk and still come out in order, across a restart', async (t) => {
  const dir = tempSpool(t)
  const budget = 4096
  const first = await openQueue(t, dir, { maxMemorySize: budget })
  const values = Array.from({ length: 200 }, (_, i) => `item-${String(i).padStart(3, '0')}-${'x'.repeat(90)}`)
  for (const v of values) await add(first.queue, v)
  t.equal(first.queue.length, 200)
  t.ok(first.queue.memoryBytes <= budget, `memory held ${first.queue.memoryBytes} bytes, budget ${budget}`)
  t.ok(first.queue.memoryItems < 200, 'some items are on disk only')
  const c = new Consumer()
  const firstHalf: string[] = []
  for (let i = 0; i < 100; i++) firstHalf.push((await get(first.queue, c))!)
  t.same(firstHalf, values.slice(0, 100))
  await first.queue.close()
  const second = await openQueue(t, dir, { maxMemorySize: budget })
  t.equal(second.queue.length, 100)
  t.ok(second.queue.memoryBytes <= budget)
  t.same(await drain(second.queue, c), values.slice(100))
})

t.test('read-behind refills in batches of at most 2 MiB, whatever the budget (a batch holds every connection)', async (t) => {
  const dir = tempSpool(t)
  const MiB = 1024 * 1024
  const budget = 16 * MiB // a quarter of it (the batch before) would be 4 MiB
  const { queue } = await openQueue(t, dir, { maxMemorySize: budget })
  const item = (i: number): Buffer => Buffer.alloc(8192, i % 251)
  const N = 3000 // 24 MiB: a third of it on disk
  for (let i = 0; i < N; i++) await add(queue, item(i))
  t.ok(queue.memoryItems < N, `${N - queue.memoryItems} items on disk`)
  const c = new Consumer()
  let before = queue.memoryBytes
  let biggestRefill = 0
  let refills = 0
  for (let i = 0; i < N; i++) {
    const got = await new Promise<Buffer | null>((resolve) => queue.get(c, PLAIN, (_e, it) => resolve(it ? it.data : null)))
    if (!got || !got.equals(item(i))) return t.fail(`item ${i} out of order or missing`)
    const grew = queue.memoryBytes - before
    if (grew > 0) {
      refills++
      biggestRefill = Math.max(biggestRefill, grew)
    }
    before = queue.memoryBytes
  }
  t.ok(refills >= 3, `${refills} refills`)
  t.ok(biggestRefill <= 2 * MiB + 8192, `largest refill ${(biggestRefill / MiB).toFixed(2)} MiB`)
  t.equal(queue.length, 0)
})

t.test('the shared memory gate: one queue over the global cap keeps its new items on disk', async (t) => {
  const dir = tempSpool(t)
  const memory = { used: 0, limit: 1000 }
  const { queue } = await openQueue(t, dir, {}, { memory })
  for (let i = 0; i < 50; i++) await add(queue, `${i}`.padEnd(100, '.'))
  t.ok(memory.used <= 1000, `gate used ${memory.used}`)
  t.equal(memory.used, queue.memoryBytes, 'the queue accounts its memory in the gate')
  t.equal((await drain(queue, new Consumer())).length, 50)
  t.equal(memory.used, 0, 'all given back once drained')
})

t.test('flush empties the queue for good; waiting readers keep waiting', async (t) => {
  const dir = tempSpool(t)
  const first = await openQueue(t, dir)
  for (const v of ['a', 'b', 'c']) await add(first.queue, v)
  const holder = new Consumer()
  t.equal(await get(first.queue, holder, { open: true }), 'a')
  await first.queue.flush()
  t.equal(first.queue.length, 0)
  t.equal(first.queue.openCount, 0, 'open reads are dropped too')
  t.equal(holder.openReads.size, 0)
  // an empty queue with a reader waiting: the flush leaves the reader waiting
  const waiting = get(first.queue, new Consumer(), { timeoutMs: 30_000 })
  await sleep(20)
  await first.queue.flush()
  t.equal(first.queue.waiterCount, 1)
  await add(first.queue, 'after')
  t.equal(await waiting, 'after', 'the reader waiting across the flush gets the next item')
  await add(first.queue, 'kept')
  await first.queue.close()
  const second = await openQueue(t, dir)
  t.same(await drain(second.queue, new Consumer()), ['kept'], 'nothing flushed comes back after a restart')
})

t.test('destroy wakes waiters empty-handed and deletes the journal files', async (t) => {
  const dir = tempSpool(t)
  const { queue } = await openQueue(t, dir)
  await add(queue, 'a')
  t.ok(readdirSync(dir).some((f) => f.endsWith('.sqj')))
  await get(queue, new Consumer()) // empty it, then wait
  const waiter = get(queue, new Consumer(), { timeoutMs: 30_000 })
  await sleep(20)
  await queue.destroy()
  t.equal(await waiter, null)
  t.same(readdirSync(dir).filter((f) => f.startsWith('q.')), [], 'no journal file left')
  t.equal((await addOutcome(queue, 'late'))?.code, 'SHUTTING_DOWN', 'a destroyed queue takes no more items')
})
