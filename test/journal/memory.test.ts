/**
 * The journal's memory per item on disk: millions of items beyond the memory budget cost a bit or
 * so each (liveIndex.ts), are read back in exact order by read-behind with out-of-order removals
 * skipped, and come back in order after a re-open. STARLING_LONG_TESTS=1 runs 10 M items.
 */
import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { FileQueueJournal } from '../../src/server/journal/index.js'
import type { JournalItem, QueueJournal } from '../../src/server/journal/types.js'
import { open, range, seqsOf, tempSpool } from '../helpers/journal.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const MiB = 1024 * 1024

/** Heap plus typed-array memory after a full GC (RSS moves with the allocator, this does not). */
function usedBytes(): number {
  gc()
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

function indexBytes(j: QueueJournal): number {
  return (j as FileQueueJournal).indexMemoryBytes
}

t.test('millions of items on disk cost about a bit each; read back in order, and again after re-open', async (t) => {
  const N = process.env['STARLING_LONG_TESTS'] ? 10_000_000 : 2_000_000
  const SIZE = 256
  const BUDGET = 1 * MiB
  const inMemory = BUDGET / SIZE // what an engine with a 1 MiB budget keeps before reading behind
  const dir = tempSpool(t)
  const { journal } = await open(dir, { memoryBudgetBytes: BUDGET })
  const data = Buffer.alloc(SIZE, 0x61)
  const noop = (): void => {}

  const rss0 = process.memoryUsage().rss
  const used0 = usedBytes()
  const started = performance.now()
  for (let s = 1; s <= N; s++) {
    if (s === inMemory + 1) journal.startReadBehind(s) // the engine's memory is full
    data.writeUInt32LE(s, 0)
    journal.add({ seq: s, flags: s % 1000, expiresAt: 0, addedAt: 0, data }, noop, noop)
    if (s % 2000 === 0) journal.flushNow() // one event-loop turn's batch
  }
  journal.flushNow()
  const addMs = performance.now() - started
  const grown = usedBytes() - used0
  const rssGrown = process.memoryUsage().rss - rss0
  const index = indexBytes(journal)
  t.comment(
    `${N} items added in ${addMs.toFixed(0)} ms; index ${index} bytes (${((index * 8) / N).toFixed(2)} bits/item), ` +
      `heap+buffers +${(grown / MiB).toFixed(1)} MiB, rss +${(rssGrown / MiB).toFixed(1)} MiB`,
  )
  // a bit per item, a checkpoint per 256, the memory region's sizes: ~0.2 bytes/item
  t.ok(index / N < 0.5, `index ${(index / N).toFixed(3)} bytes/item`)
  t.ok(grown < 8 * MiB, `memory grew ${(grown / MiB).toFixed(1)} MiB for ${N} items (old index: ~${((N * 25) / MiB).toFixed(0)} MiB)`)
  t.equal((journal as FileQueueJournal).liveItems, N)

  // The engine consumes its memory region; a few reads stay open and are confirmed later, out of
  // order. Some items still on disk are removed before they are read (discarded).
  const openReads: number[] = []
  for (let s = 1; s <= inMemory; s++) {
    if (s % 1000 === 7) openReads.push(s)
    else journal.remove(s)
  }
  const removedEarly = new Set([inMemory + 1, inMemory + 2, 123_457, 999_999, N - 3, N])
  for (const s of removedEarly) journal.remove(s)
  journal.flushNow()

  let next = inMemory + 1
  let misordered = 0
  let badPayload = 0
  let read = 0
  const half = Math.floor(N / 2)
  while (next <= half) {
    const batch = journal.readBehind(BUDGET / 4, N)
    if (batch.length === 0) break
    for (const it of batch) {
      while (removedEarly.has(next)) next++
      if (it.seq !== next) misordered++
      if (it.data.readUInt32LE(0) !== it.seq || it.flags !== it.seq % 1000 || it.data.length !== SIZE) badPayload++
      next = it.seq + 1
      read++
      if (it.seq % 50_000 === 11) openReads.push(it.seq)
      else journal.remove(it.seq)
    }
    // now and then confirm open reads, newest first
    if (openReads.length > 8) {
      for (let k = 0; k < 4; k++) journal.remove(openReads.splice(openReads.length - 2, 1)[0]!)
    }
    journal.flushNow()
  }
  t.equal(misordered, 0, `${read} items read back from disk in exact order, removed ones skipped`)
  t.equal(badPayload, 0, 'payloads and flags intact')
  // what is left: the unread ADDs, the REMOVEs written since (17 bytes each, in the newest
  // segments), a few segments' worth of slack; the consumed segments are gone
  const bound = (N - next + 1) * (SIZE + 37) + next * 17 + 3 * 16 * MiB
  t.ok(journal.sizeOnDisk < bound, `consumed segments dropped: ${(journal.sizeOnDisk / MiB).toFixed(0)} MiB on disk, bound ${(bound / MiB).toFixed(0)} MiB`)
  const stillOpen = [...openReads]
  t.ok(stillOpen.length >= 3, `${stillOpen.length} reads left open across the restart`)
  await journal.close()

  // After a restart: the open reads come back first, then everything after `next`, in order.
  const used1 = usedBytes()
  const t0 = performance.now()
  const { journal: j2, replay } = await open(dir, { memoryBudgetBytes: BUDGET })
  const replayMs = performance.now() - t0
  const grown2 = usedBytes() - used1
  const expectedTotal = stillOpen.length + (N - next + 1) - [...removedEarly].filter((s) => s >= next).length
  t.comment(`replay of ${replay.records} records: ${replayMs.toFixed(0)} ms, memory +${(grown2 / MiB).toFixed(1)} MiB (1 MiB of it items), index ${indexBytes(j2)} bytes`)
  t.equal(replay.items.length + replay.diskItems, expectedTotal, 'live count')
  t.equal(replay.diskBytes, replay.diskItems * SIZE, 'disk bytes exact')
  t.ok(grown2 < 8 * MiB, `replay memory ${(grown2 / MiB).toFixed(1)} MiB`)
  t.ok(indexBytes(j2) / expectedTotal < 0.5)
  t.same(seqsOf(replay.items.slice(0, stillOpen.length)), stillOpen.sort((a, b) => a - b), 'open reads first')

  let expect = next
  misordered = 0
  let count = 0
  const check = (it: JournalItem): void => {
    count++
    if (count <= stillOpen.length) return
    while (removedEarly.has(expect)) expect++
    if (it.seq !== expect || it.data.readUInt32LE(0) !== it.seq) misordered++
    expect = it.seq + 1
  }
  replay.items.forEach(check)
  for (;;) {
    const batch = j2.readBehind(BUDGET / 4, Number.MAX_SAFE_INTEGER)
    if (batch.length === 0) break
    for (const it of batch) {
      check(it)
      j2.remove(it.seq)
    }
    j2.flushNow()
  }
  t.equal(misordered, 0, 'the rest in exact order after replay')
  t.equal(count, expectedTotal, 'every live item once')
  await j2.close()
})

t.test('carry-forward of items not yet read: read-behind merges them back by seq', async (t) => {
  const dir = tempSpool(t)
  const max = 64 * 1024
  // not reading behind yet: carry-forward does not wait for the reader
  const { journal } = await open(dir, { maxJournalSize: max, memoryBudgetBytes: 0 })
  const data = Buffer.alloc(200, 0x65)
  const N = 3000
  // keep every 10th item of the first 1000, discard the rest of them unread: their segments become
  // mostly dead and are carried forward while their live items are still unread
  const kept: number[] = []
  for (let s = 1; s <= N; s++) {
    journal.add({ seq: s, flags: 0, expiresAt: 0, addedAt: 0, data }, () => {}, () => {})
    if (s % 50 === 0) journal.flushNow()
  }
  journal.flushNow()
  for (let s = 1; s <= 1000; s++) {
    if (s % 10 === 0) kept.push(s)
    else journal.remove(s)
  }
  journal.flushNow()
  // more appends: rotation, then carry-forward of the old, mostly removed segments
  for (let s = N + 1; s <= 2 * N; s++) {
    journal.add({ seq: s, flags: 0, expiresAt: 0, addedAt: 0, data }, () => {}, () => {})
    if (s % 50 === 0) journal.flushNow()
  }
  journal.flushNow()
  t.ok(journal.rotations > 10, `${journal.rotations} rotations/carries`)
  const carried = (journal as FileQueueJournal).carriedItems
  t.ok(carried >= 50, `${carried} unread items carried forward`)
  journal.startReadBehind(1)
  const expected = [...kept, ...range(1001, 2 * N)]
  const got: number[] = []
  for (;;) {
    const batch = journal.readBehind(10_000, 2 * N)
    if (batch.length === 0) break
    got.push(...seqsOf(batch))
  }
  t.same(got, expected, 'carried and original items interleaved in seq order, once each')
  await journal.close()
  const { journal: j2, replay } = await open(dir, { memoryBudgetBytes: 3000 })
  const all = [...seqsOf(replay.items)]
  for (;;) {
    const batch = j2.readBehind(10_000, Number.MAX_SAFE_INTEGER)
    if (batch.length === 0) break
    all.push(...seqsOf(batch))
  }
  t.same(all, expected, 'and the same after replay')
  t.equal(replay.diskBytes, (expected.length - replay.items.length) * 200)
  await j2.close()
})
