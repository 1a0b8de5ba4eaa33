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
