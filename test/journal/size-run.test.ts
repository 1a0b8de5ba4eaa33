/**
 * A REMOVE frees its record's bytes from its segment's live count: the journal knows the size of
 * an item in memory from its segment's leading run (every record so far one size) and keeps a
 * (seq, size) entry only for the others. Items all of one size cost no entry (12 bytes an item
 * before: 12 MB for 1M items in memory), and the live byte counts stay exact whatever the sizes,
 * the removal order, rotation, carry-forward and read-behind.
 */
import t from 'tap'
import { addRecordSize } from '../../src/server/journal/format.js'
import type { FileQueueJournal } from '../../src/server/journal/index.js'
import type { QueueJournal } from '../../src/server/journal/types.js'
import { item, open, tempSpool } from '../helpers/journal.js'

const noop = (): void => {}

function fj(j: QueueJournal): FileQueueJournal {
  return j as FileQueueJournal
}

function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 0x100000000
  }
}

t.test('items all of one size in memory: no size entry each; removals free exact bytes', async (t) => {
  const N = 200_000
  const dir = tempSpool(t)
  const { journal } = await open(dir, { memoryBudgetBytes: 0, maxJournalSize: 4 * 1024 * 1024 })
  const data = Buffer.alloc(16, 0x61)
  for (let s = 1; s <= N; s++) {
    journal.add(item(s, data), noop, noop)
    if (s % 1000 === 0) journal.flushNow()
  }
  journal.flushNow()
  const index = fj(journal).indexMemoryBytes
  // bitmaps (1 bit) and checkpoints (16 B / 256 items): ~0.2 B an item; a size entry each was 12+
  t.ok(index < N * 0.5, `index ${index} bytes for ${N} items (${(index / N).toFixed(3)} B/item)`)
  t.ok(fj(journal).segmentNumbers.length > 1, 'several segments (rotation)')
  const rec = addRecordSize(16)
  t.equal(fj(journal).liveBytes, N * rec)
  for (let s = 1; s <= N / 2; s++) journal.remove(s)
  journal.flushNow()
  t.equal(fj(journal).liveItems, N / 2)
  t.equal(fj(journal).liveBytes, (N / 2) * rec, 'half removed: exactly half the bytes live')
  await journal.close()
})

t.test('mixed sizes, removals in any order, rotation, carry-forward, read-behind: live bytes exact', async (t) => {
  const r = prng(13)
  const dir = tempSpool(t)
  const { journal } = await open(dir, { memoryBudgetBytes: 0, maxJournalSize: 64 * 1024 })
  const live = new Map<number, number>() // seq -> record size
  const held = new Set<number>() // live items in memory: the engine removes only these
  let liveBytes = 0
  let seq = 0
  let readingBehind = false
  let readBack = 0
  let carried = 0
  // runs of one size, then another: each segment's leading run, and items after it
  const sizes = [16, 16, 16, 300, 16, 7, 16, 16, 1000]
  for (let round = 0; round < 60; round++) {
    const size = sizes[Math.floor(r() * sizes.length)]!
    const count = 1 + Math.floor(r() * 200)
    for (let i = 0; i < count; i++) {
      seq++
      if (!readingBehind && r() < 0.01) {
        readingBehind = true
        journal.startReadBehind(seq)
      }
      journal.add(item(seq, Buffer.alloc(size, 0x62)), noop, noop)
      live.set(seq, addRecordSize(size))
      if (!readingBehind) held.add(seq)
      liveBytes += addRecordSize(size)
    }
    journal.flushNow()
    if (readingBehind && r() < 0.5) {
      // the engine reads items back into memory
      const read = journal.readBehind(8 * 1024, seq)
      for (const it of read) held.add(it.seq)
      readBack += read.length
      if (read.length === 0) readingBehind = false
    }
    // remove some: mostly from the head, some anywhere (open reads confirmed out of order)
    const keys = [...held]
    const removals = Math.floor(r() * count * 1.2)
    for (let i = 0; i < removals && keys.length > 0; i++) {
      const at = r() < 0.7 ? 0 : Math.floor(r() * keys.length)
      const s = keys.splice(at, 1)[0]!
      liveBytes -= live.get(s)!
      live.delete(s)
      held.delete(s)
      journal.remove(s)
    }
    journal.flushNow()
    carried = Math.max(carried, fj(journal).carriedItems)
    if (fj(journal).liveBytes !== liveBytes || fj(journal).liveItems !== live.size) {
      t.fail(`round ${round}: live ${fj(journal).liveItems} items / ${fj(journal).liveBytes} bytes, expected ${live.size} / ${liveBytes}`)
      break
    }
  }
  t.ok(fj(journal).rotations > 0, 'segments rotated')
  t.ok(readBack > 0, `${readBack} items read back by read-behind`)
  t.ok(carried > 0, `up to ${carried} items carried forward`)
  t.equal(fj(journal).liveBytes, liveBytes, 'live bytes exact at the end')
  t.equal(fj(journal).liveItems, live.size)
  await journal.close()
})
