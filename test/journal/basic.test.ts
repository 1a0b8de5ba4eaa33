import t from 'tap'
import { readdirSync } from 'node:fs'
import { addDurable, item, open, range, seqsOf, tempSpool } from '../helpers/journal.js'
import { journalFactory } from '../../src/server/journal/index.js'

for (const sync of ['never', 'always', 5] as const) {
  t.test(`append, remove, replay (sync=${sync})`, async (t) => {
    const dir = tempSpool(t)
    {
      const { journal, replay } = await open(dir, { sync })
      t.same(replay.items, [])
      t.equal(replay.nextSeq, 1)
      const done: Promise<void>[] = []
      for (let s = 1; s <= 100; s++) done.push(addDurable(journal, item(s, `data ${s}`, s * 7)))
      await Promise.all(done)
      for (let s = 1; s <= 100; s += 3) journal.remove(s)
      journal.flushNow()
      t.ok(journal.sizeOnDisk > 100 * 37)
      await journal.close()
    }
    const { journal, replay } = await open(dir, { sync })
    const expected = range(1, 100).filter((s) => (s - 1) % 3 !== 0)
    t.same(seqsOf(replay.items), expected)
    t.equal(replay.nextSeq, 101)
    t.equal(replay.truncatedBytes, 0)
    t.equal(replay.diskItems, 0)
    const it5 = replay.items.find((i) => i.seq === 5)!
    t.equal(it5.data.toString(), 'data 5')
    t.equal(it5.flags, 35)
    t.equal(it5.addedAt, 1_700_000_000_005)
    await journal.close()
  })
}

t.test('onWritten runs after the write, in record order, before onDurable', async (t) => {
  const dir = tempSpool(t)
  const { journal } = await open(dir, { sync: 'always' })
  const events: string[] = []
  const done = new Promise<void>((resolve) => {
    for (let s = 1; s <= 3; s++) {
      journal.add(
        item(s),
        (err) => events.push(`w${s}:${err}`),
        (err) => {
          events.push(`d${s}:${err}`)
          if (s === 3) resolve()
        },
      )
    }
  })
  t.same(events, [], 'nothing before the batch is written')
  journal.flushNow()
  t.same(events, ['w1:null', 'w2:null', 'w3:null'], 'written synchronously by flushNow')
  await done
  t.same(events.slice(3), ['d1:null', 'd2:null', 'd3:null'])
  await journal.close()
})

t.test('batch written once per turn', async (t) => {
  const dir = tempSpool(t)
  const { journal } = await open(dir)
  const before = journal.sizeOnDisk
  let written = 0
  for (let s = 1; s <= 10; s++) journal.add(item(s), () => written++, () => {})
  t.equal(journal.sizeOnDisk, before, 'not written yet')
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setImmediate(r))
  t.equal(written, 10)
  t.ok(journal.sizeOnDisk > before)
  await journal.close()
})

t.test('listQueues', async (t) => {
  const dir = tempSpool(t)
  for (const q of ['a', 'B', 'x/y', 'parent+child']) {
    const { journal } = await open(dir, { queue: q })
    await addDurable(journal, item(1))
    await journal.close()
  }
  // opened, read, closed, never written: no file (DESIGN §10)
  const { journal: unwritten } = await open(dir, { queue: 'never-written' })
  t.same(unwritten.readBehind(1 << 20, 100), [])
  await unwritten.close()
  t.same(await journalFactory.listQueues(dir), ['B', 'a', 'parent+child', 'x/y'].sort())
  t.ok(readdirSync(dir).every((f) => !f.includes('/')))
})

t.test('reset empties the queue, destroy deletes its files', async (t) => {
  const dir = tempSpool(t)
  {
    const { journal } = await open(dir, { queue: 'r' })
    for (let s = 1; s <= 10; s++) await addDurable(journal, item(s))
    await journal.reset()
    await addDurable(journal, item(11))
    await journal.close()
  }
  {
    const { journal, replay } = await open(dir, { queue: 'r' })
    t.same(seqsOf(replay.items), [11])
    t.equal(replay.nextSeq, 12)
    await journal.destroy()
  }
  t.same(await journalFactory.listQueues(dir), [])
  t.same(readdirSync(dir), [])
  {
    const { journal, replay } = await open(dir, { queue: 'r' })
    t.same(replay.items, [])
    await journal.close()
  }
})
