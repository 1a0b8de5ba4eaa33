/**
 * Read-behind keeps one batch ahead of the consumers, not half the memory budget: the items it
 * reads back are served within a few MiB of being read (from the CPU's cache), FIFO and content
 * exact, and every item read back is served.
 */
import t from 'tap'
import { Consumer } from '../../src/server/engine/consumer.js'
import { PLAIN_READ as PLAIN } from '../../src/server/engine/requests.js'
import { readBehindBatchBytes, readBehindRefillBelow } from '../../src/server/engine/readBehindBatch.js'
import { add, openQueue } from '../helpers/engine.js'
import { tempSpool } from '../helpers/journal.js'

const MiB = 1024 * 1024

t.test('while reading behind, memory holds at most about two batches; the drain is exact', async (t) => {
  const dir = tempSpool(t)
  const budget = 16 * MiB
  const { queue } = await openQueue(t, dir, { maxMemorySize: budget })
  const item = (i: number): Buffer => Buffer.alloc(8192, i % 251)
  const N = 3000 // 24 MiB: 16 in memory, 8 on disk
  for (let i = 0; i < N; i++) await add(queue, item(i))
  t.ok(queue.memoryItems < N, `${N - queue.memoryItems} items on disk`)
  const batch = readBehindBatchBytes(budget)
  const c = new Consumer()
  let before = queue.memoryBytes
  let refills = 0
  let mostAfterRefill = 0
  for (let i = 0; i < N; i++) {
    const got = await new Promise<Buffer | null>((resolve) => queue.get(c, PLAIN, (_e, it) => resolve(it ? it.data : null)))
    if (!got || !got.equals(item(i))) return t.fail(`item ${i} out of order or missing`)
    if (queue.memoryBytes > before) refills++
    // from the first refill on, memory is what read-behind brought back
    if (refills > 0) mostAfterRefill = Math.max(mostAfterRefill, queue.memoryBytes)
    before = queue.memoryBytes
  }
  t.equal(queue.length, 0)
  t.ok(refills >= 3, `${refills} refills`)
  // half the budget ahead (8 MiB) plus a batch would reach ~10 MiB
  t.ok(mostAfterRefill <= 2 * batch + 8192, `most held while reading behind ${(mostAfterRefill / MiB).toFixed(2)} MiB (batch ${(batch / MiB).toFixed(0)} MiB)`)
})

t.test('the refill threshold: one batch, never above half a small budget', async (t) => {
  t.equal(readBehindRefillBelow(64 * MiB), 2 * MiB)
  t.equal(readBehindRefillBelow(4096), 2048, 'a 4 KiB budget refills below 2 KiB, as before')
  t.equal(readBehindRefillBelow(4 * MiB), MiB)
})
