/**
 * SegmentList's two lists (issue 17): `originalSegments` is the very `segments` array while every
 * segment holds original ADDs, and a separate one otherwise. Through rotations, drops,
 * carry-forward, reset and a re-open, it always lists exactly the segments with original ADDs, in
 * order, and the journal keeps exactly the live items.
 */
import t, { type Test } from 'tap'
import type { FileQueueJournal } from '../../src/server/journal/index.js'
import type { Segment } from '../../src/server/journal/segment.js'
import type { SegmentList } from '../../src/server/journal/segmentList.js'
import { addDurable, allItems, item, open, seqsOf, tempSpool } from '../helpers/journal.js'

function listOf(j: unknown): SegmentList {
  return (j as { list: SegmentList }).list
}

const segnos = (segs: Segment[]): number[] => segs.map((s) => s.segno)

function checkLists(t: Test, j: FileQueueJournal, what: string): void {
  const list = listOf(j)
  const expected = list.segments.filter((s) => s.live.first >= 0)
  t.same(segnos(list.originalSegments), segnos(expected), `${what}: the originals are the segments with original ADDs`)
  const shared = list.originalSegments === list.segments
  t.equal(shared, expected.length === list.segments.length, `${what}: the same array exactly when they list the same segments`)
}

t.test('through rotations, drops, carry-forward, reset and re-open the originals list stays exact', async (t) => {
  const dir = tempSpool(t)
  const { journal } = await open(dir, { maxJournalSize: 2048 })
  const j = journal as FileQueueJournal
  checkLists(t, j, 'new journal')
  const live = new Set<number>()
  let seq = 1
  let checks = 0
  // a deterministic mix: FIFO consumption with some items left behind (they get carried forward)
  for (let round = 0; round < 60; round++) {
    for (let k = 0; k < 6; k++) {
      await addDurable(j, item(seq, Buffer.alloc(100, 0x61 + (seq % 26))))
      live.add(seq++)
    }
    const sorted = [...live].sort((a, b) => a - b)
    for (const s of sorted.slice(0, 5)) {
      if (s % 17 === 0) continue // left behind
      j.remove(s)
      live.delete(s)
    }
    j.flushNow()
    checkLists(t, j, `round ${round}`)
    checks++
  }
  t.ok(j.rotations > 3, `it rotated (${j.rotations} rotations / carry-forwards)`)
  t.ok(j.carriedItems > 0 || j.segmentNumbers.length > 2, 'items left behind were carried forward or kept old segments')
  t.equal(j.liveItems, live.size, 'the journal counts exactly the live items')
  await j.close()

  const again = await open(dir, { maxJournalSize: 2048 })
  const j2 = again.journal as FileQueueJournal
  checkLists(t, j2, 'after re-open')
  t.same(seqsOf(allItems(j2, again.replay)), [...live].sort((a, b) => a - b), 'exactly the live items come back, in order')
  await j2.reset()
  checkLists(t, j2, 'after reset')
  await addDurable(j2, item(seq, 'after reset'))
  checkLists(t, j2, 'first add after reset')
  t.equal(listOf(j2).originalSegments, listOf(j2).segments, 'one segment with an ADD: one array')
  await j2.close()
  t.ok(checks === 60)
})

interface Parts {
  list: SegmentList & { chunkReader: unknown }
  compaction: unknown
  shared: unknown
}
const partsOf = (j: unknown): Parts => j as Parts

t.test('an idle journal holds no read-behind, compaction, chunk reader or carried map of its own (issue 17)', async (t) => {
  const dir = tempSpool(t)
  const a = (await open(dir, { queue: 'a' })).journal as FileQueueJournal
  const b = (await open(dir, { queue: 'b' })).journal as FileQueueJournal
  await addDurable(a, item(1, 'one'))
  await addDurable(b, item(1, 'one'))
  for (const [name, j] of [['a', a], ['b', b]] as const) {
    const p = partsOf(j)
    t.equal(p.list.behind, undefined, `${name}: no read-behind`)
    t.equal(p.compaction, undefined, `${name}: no compaction`)
    t.equal(p.list.chunkReader, undefined, `${name}: no chunk reader`)
  }
  t.equal(partsOf(a).list.carried, partsOf(b).list.carried, 'the empty carried map is shared')
  t.equal(partsOf(a).shared, partsOf(b).shared, 'one settings object for the spool and policy')
  // read-behind made on first use, and it reads the item back
  a.startReadBehind(1)
  t.not(partsOf(a).list.behind, undefined, 'read-behind made when started')
  t.same(seqsOf(a.readBehind(1 << 20, 10)), [1], 'and it reads the item back')
  await a.close()
  await b.close()
  // re-opened with everything within the memory budget: replay leaves no read-behind behind
  const again = await open(dir, { queue: 'a' })
  t.same(seqsOf(again.replay.items), [1])
  t.equal(partsOf(again.journal).list.behind, undefined, 'caught up at load: no read-behind kept')
  t.equal(partsOf(again.journal).list.chunkReader, undefined, 'nor the chunk replay read')
  await again.journal.close()
  // re-opened with a budget smaller than the item: read-behind kept, and it reads it back
  const small = await open(dir, { queue: 'a', memoryBudgetBytes: 1 })
  t.equal(small.replay.items.length, 0)
  t.not(partsOf(small.journal).list.behind, undefined, 'items left on disk: read-behind kept')
  t.same(seqsOf(small.journal.readBehind(1 << 20, 10)), [1])
  await small.journal.close()
})
