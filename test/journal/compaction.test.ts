import t from 'tap'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { FileQueueJournal } from '../../src/server/journal/index.js'
import type { QueueJournal } from '../../src/server/journal/types.js'
import { allItems, item, open, range, seqsOf, tempSpool } from '../helpers/journal.js'

const MiB = 1024 * 1024

function spoolBytes(dir: string): number {
  let n = 0
  for (const f of readdirSync(dir)) n += statSync(join(dir, f)).size
  return n
}

function segmentsOf(j: QueueJournal): number[] {
  return (j as FileQueueJournal).segmentNumbers
}

t.test('a queue that never empties stays bounded: 200k items through ~100 live', async (t) => {
  const dir = tempSpool(t)
  const max = 1 * MiB
  const { journal } = await open(dir, { maxJournalSize: max })
  const total = Number(process.env['STARLING_LONG_TESTS'] ? 2_000_000 : 200_000)
  const data = Buffer.alloc(100, 0x61)
  let head = 1
  let peak = 0
  for (let s = 1; s <= total; s++) {
    journal.add({ seq: s, flags: 0, expiresAt: 0, addedAt: 0, data }, () => {}, () => {})
    if (s - head >= 100) journal.remove(head++)
    if (s % 1000 === 0) {
      journal.flushNow()
      peak = Math.max(peak, spoolBytes(dir))
    }
  }
  journal.flushNow()
  t.ok(peak < 2.5 * max, `peak ${(peak / MiB).toFixed(2)} MiB on disk for ${((total * 154) / MiB).toFixed(0)} MiB written`)
  t.ok(journal.rotations >= 10, `${journal.rotations} rotations`)
  t.equal(journal.sizeOnDisk, spoolBytes(dir), 'sizeOnDisk is what is on disk')
  await journal.close()
  const { journal: j2, replay } = await open(dir, { maxJournalSize: max })
  t.same(seqsOf(replay.items), range(head, total))
  await j2.close()
})

t.test("Starling's rule: an empty queue's journal over the limit is reset", async (t) => {
  const dir = tempSpool(t)
  const max = 100_000
  const { journal } = await open(dir, { maxJournalSize: max })
  for (let s = 1; s <= 1000; s++) journal.add(item(s, 'x'.repeat(40)), () => {}, () => {})
  journal.flushNow()
  for (let s = 1; s <= 1000; s++) journal.remove(s)
  journal.flushNow()
  const size = journal.sizeOnDisk
  t.ok(size > 90_000 && size < max, `${size} bytes: empty but under the limit, kept`)
  let s = 1001
  while (journal.rotations === 0) {
    journal.add(item(s), () => {}, () => {})
    journal.remove(s++)
    journal.flushNow()
  }
  t.ok(journal.sizeOnDisk < 200, `${journal.sizeOnDisk} bytes after passing the limit while empty`)
  t.equal(segmentsOf(journal).length, 1)
  t.equal(readdirSync(dir).length, 1)
  journal.add(item(s), () => {}, () => {})
  await journal.close()
  const { journal: j2, replay } = await open(dir, { maxJournalSize: max })
  t.same(seqsOf(replay.items), [s])
  t.equal(replay.nextSeq, s + 1)
  await j2.close()
})

t.test('seqs are never reused after every segment holding them is gone', async (t) => {
  const dir = tempSpool(t)
  {
    const { journal } = await open(dir, { maxJournalSize: 1000 })
    for (let s = 1; s <= 50; s++) journal.add(item(s, 'y'.repeat(40)), () => {}, () => {})
    journal.flushNow()
    for (let s = 1; s <= 50; s++) journal.remove(s)
    await journal.close()
  }
  const { journal, replay } = await open(dir, { maxJournalSize: 1000 })
  t.same(replay.items, [])
  t.equal(replay.nextSeq, 51)
  await journal.close()
})

t.test('carry-forward: a few long-lived items no longer pin old segments', async (t) => {
  const dir = tempSpool(t)
  const max = 64 * 1024
  const { journal } = await open(dir, { maxJournalSize: max })
  const pinned = [1, 2, 3, 500, 1000]
  const data = Buffer.alloc(200, 0x62)
  let head = 1
  const N = 20_000
  let peak = 0
  const removed = new Set<number>()
  for (let s = 1; s <= N; s++) {
    journal.add({ seq: s, flags: s, expiresAt: 0, addedAt: 0, data }, () => {}, () => {})
    // consume FIFO, but the pinned items stay open (unconfirmed)
    while (s - head >= 20) {
      if (!pinned.includes(head)) {
        journal.remove(head)
        removed.add(head)
      }
      head++
    }
    if (s % 100 === 0) {
      journal.flushNow()
      peak = Math.max(peak, spoolBytes(dir))
    }
  }
  journal.flushNow()
  t.ok(peak < 3 * max, `peak ${peak} bytes (max journal ${max})`)
  t.ok(journal.rotations > 50)
  await journal.close()
  const { journal: j2, replay } = await open(dir, { maxJournalSize: max })
  const expected = [...pinned, ...range(head, N)]
  t.same(seqsOf(replay.items), expected, 'pinned items still there, once each, in seq order')
  t.ok(replay.items.every((i) => i.flags === i.seq && i.data.equals(data)))
  // confirm the pinned ones: then they're gone for good
  for (const s of pinned) j2.remove(s)
  await j2.close()
  const { journal: j3, replay: r3 } = await open(dir, { maxJournalSize: max })
  t.same(seqsOf(r3.items), range(head, N))
  await j3.close()
})

t.test('a drain consuming the oldest segment carries nothing forward (its items are about to go)', async (t) => {
  const dir = tempSpool(t)
  const max = 64 * 1024
  const { journal } = await open(dir, { maxJournalSize: max })
  const data = Buffer.alloc(200, 0x63)
  const N = 5000
  for (let s = 1; s <= N; s++) {
    journal.add({ seq: s, flags: 0, expiresAt: 0, addedAt: 0, data }, () => {}, () => {})
    if (s % 100 === 0) journal.flushNow() // rotation happens between written batches
  }
  journal.flushNow()
  t.ok(segmentsOf(journal).length > 10, `${segmentsOf(journal).length} segments before the drain`)
  // FIFO removals in small batches, each written on its own: the head is always in the oldest segment
  const carried = (): number => (journal as FileQueueJournal).carriedItems
  let peakCarried = 0
  for (let s = 1; s <= N - 100; s++) {
    journal.remove(s)
    if (s % 10 === 0) {
      journal.flushNow()
      peakCarried = Math.max(peakCarried, carried())
    }
  }
  journal.flushNow()
  t.equal(peakCarried, 0, 'no item copied forward')
  t.ok(segmentsOf(journal).length <= 2, `consumed segments dropped (${segmentsOf(journal).length} left)`)
  // the head stalls (three open reads never confirmed) while producers and consumers go on: now
  // the oldest segment's few live items are carried forward, so it can go
  for (let s = N - 96; s <= N; s++) journal.remove(s)
  let s = N + 1
  for (let k = 0; k < 3000; k++, s++) {
    journal.add({ seq: s, flags: 0, expiresAt: 0, addedAt: 0, data }, () => {}, () => {})
    if (s - N > 20) journal.remove(s - 20)
    if (s % 10 === 0) journal.flushNow()
  }
  journal.flushNow()
  t.ok(carried() === 3, `the stalled head is carried forward (${carried()} items)`)
  t.ok(spoolBytes(dir) < 4 * max, `${spoolBytes(dir)} bytes on disk`)
  await journal.close()
  const { journal: j2, replay } = await open(dir, { maxJournalSize: max })
  t.same(seqsOf(replay.items), [N - 99, N - 98, N - 97, ...range(s - 20, s - 1)], 'every live item once, in order')
  await j2.close()
})

t.test('read-behind keeps working across rotation and carry-forward', async (t) => {
  const dir = tempSpool(t)
  const max = 32 * 1024
  const { journal } = await open(dir, { maxJournalSize: max, memoryBudgetBytes: 0 })
  journal.startReadBehind(1)
  const data = Buffer.alloc(100, 0x63)
  const got: number[] = []
  let next = 1
  for (let s = 1; s <= 5000; s++) {
    journal.add({ seq: s, flags: 0, expiresAt: 0, addedAt: 0, data }, () => {}, () => {})
    if (s % 10 === 0) {
      journal.flushNow()
      const batch = journal.readBehind(1500, s) // a little at a time, but faster than items arrive
      for (const it of batch) {
        got.push(it.seq)
        if (it.seq !== 7) journal.remove(it.seq) // 7 stays open: pinned
      }
      if (batch.length === 0) journal.startReadBehind(next)
      if (batch.length > 0) next = batch[batch.length - 1]!.seq + 1
    }
  }
  journal.flushNow()
  for (;;) {
    const batch = journal.readBehind(1e6, 5000)
    if (batch.length === 0) break
    for (const it of batch) {
      got.push(it.seq)
      journal.remove(it.seq)
    }
  }
  t.same(got, range(1, 5000), 'every item once, in order')
  t.ok(journal.sizeOnDisk < 3 * max, `${journal.sizeOnDisk} bytes on disk`)
  await journal.close()
  const { journal: j2, replay } = await open(dir, { memoryBudgetBytes: 0 })
  t.equal(replay.diskItems, 1 + 0, 'only the pinned item (and none read-but-unconfirmed) is live')
  t.same(seqsOf(allItems(j2, replay)), [7])
  await j2.close()
})
