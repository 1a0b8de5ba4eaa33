/**
 * The live index's small forms (issue 17: a queue of one item must not pay for typed arrays):
 * SegmentLive keeps its first 32 bits and first checkpoint inline, KnownSizes its first entry, and
 * both move to arrays past that. Checked against a plain model across those boundaries.
 */
import t from 'tap'
import { CHECKPOINT_EVERY, KnownSizes, SegmentLive } from '../../src/server/journal/liveIndex.js'
import { SortedNames } from '../../src/server/engine/sortedNames.js'
import { prng } from '../helpers/prng.js'

t.test('SegmentLive: inline bits and checkpoint, then arrays, agree with a model', async (t) => {
  for (const n of [1, 5, 31, 32, 33, 64, 300, 2 * CHECKPOINT_EVERY + 7]) {
    const r = prng(n)
    const live = new SegmentLive()
    const model = new Map<number, number>() // seq -> offset
    const checkpoints: Array<[number, number]> = []
    let seq = 1000
    let off = 64
    for (let i = 0; i < n; i++) {
      seq += r() < 0.2 ? 2 : 1 // a failed write leaves a gap
      if (i % CHECKPOINT_EVERY === 0) checkpoints.push([seq, off])
      live.append(seq, off, 100)
      model.set(seq, off)
      off += 100
    }
    const seqs = [...model.keys()]
    for (const s of seqs) if (r() < 0.5 && live.kill(s) !== model.delete(s)) t.fail(`n=${n}: kill ${s}`)
    t.equal(live.kill(seqs[0]! - 1), false, 'a seq below the range is not live')
    for (let s = seqs[0]! - 2; s <= seq + 2; s++) if (live.has(s) !== model.has(s)) t.fail(`n=${n}: has(${s})`)
    const firstLive = model.size === 0 ? -1 : Math.min(...model.keys())
    t.equal(live.firstLive(), firstLive, `n=${n}: first live`)
    t.equal(live.liveOriginals, model.size, `n=${n}: live count`)
    const seek = (s: number): number => {
      let best = -1
      for (const [cs, co] of checkpoints) if (cs <= s) best = co
      return best
    }
    for (const s of [seqs[0]! - 1, seqs[0]!, seqs[seqs.length >> 1]!, seq]) t.equal(live.seek(s), seek(s), `n=${n}: seek(${s})`)
    live.trim()
    for (let s = seqs[0]! - 2; s <= seq + 2; s++) if (live.has(s) !== model.has(s)) t.fail(`n=${n}: has(${s}) after trim`)
    for (const s of [seqs[0]!, seq]) t.equal(live.seek(s), seek(s), `n=${n}: seek(${s}) after trim`)
    if (seq - seqs[0]! < 32) t.equal(live.memoryBytes, 120, `n=${n}: no array (a span of ${seq - seqs[0]! + 1} seqs)`)
  }
})

t.test('SegmentLive: checkpoints cut back after a failed batch', async (t) => {
  const live = new SegmentLive()
  for (let i = 0; i < 3 * CHECKPOINT_EVERY; i++) live.append(i + 1, 100 + i * 10, 10)
  t.equal(live.checkpointAfter(100), 100 + CHECKPOINT_EVERY * 10)
  live.cutCheckpoints(100 + CHECKPOINT_EVERY * 10)
  t.equal(live.checkpointAfter(100), -1, 'only the first checkpoint is left')
  t.equal(live.seek(3 * CHECKPOINT_EVERY), 100)
  live.cutCheckpoints(100)
  t.equal(live.seek(3 * CHECKPOINT_EVERY), -1, 'none left')
})

t.test('KnownSizes: one entry inline, arrays from the second, same answers as a model', async (t) => {
  const r = prng(7)
  const k = new KnownSizes()
  const model = new Map<number, number>()
  let seq = 0
  for (let step = 0; step < 20_000; step++) {
    const x = r()
    if (x < 0.45) {
      seq += 1 + Math.floor(r() * 3)
      const size = 40 + Math.floor(r() * 100)
      k.push(seq, size)
      model.set(seq, size)
    } else if (x < 0.9) {
      // FIFO mostly, sometimes out of order, sometimes unknown
      const keys = [...model.keys()]
      const pick = keys.length === 0 || r() < 0.1 ? seq + 5 : r() < 0.8 ? keys[0]! : keys[Math.floor(r() * keys.length)]!
      const want = model.get(pick) ?? -1
      model.delete(pick)
      if (k.take(pick) !== want) {
        t.fail(`step ${step}: take(${pick}) is not ${want}`)
        break
      }
    } else if (x < 0.93) {
      const from = seq - Math.floor(r() * 4)
      k.dropFrom(from)
      for (const s of [...model.keys()]) if (s >= from) model.delete(s)
    }
    if (k.count !== model.size) {
      t.fail(`step ${step}: count ${k.count} vs ${model.size}`)
      break
    }
  }
  const one = new KnownSizes()
  one.push(5, 99)
  t.equal(one.memoryBytes, 0, 'one entry: no array')
  t.equal(one.lastSeq, 5)
  one.push(4, 1)
  t.equal(one.count, 1, 'a seq below the last is ignored')
  one.push(6, 98)
  t.ok(one.memoryBytes > 0, 'two entries: arrays')
  t.equal(one.take(5), 99)
  t.equal(one.take(6), 98)
  t.equal(one.memoryBytes, 0, 'emptied: arrays given back')
})

t.test('SortedNames: names created and deleted without a stats call do not pile up', async (t) => {
  const live = new Set<string>()
  const names = new SortedNames((n) => live.has(n))
  const held = (): number => {
    const s = names as unknown as { sorted: string[]; added: string[] }
    return s.sorted.length + s.added.length
  }
  let most = 0
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 1000; i++) {
      live.add(`r${round}_${i}`)
      names.add(`r${round}_${i}`)
    }
    for (let i = 0; i < 1000; i++) {
      live.delete(`r${round}_${i}`)
      names.remove()
    }
    most = Math.max(most, held())
  }
  t.ok(most <= 5000, `at most ${most} names held for 1000 live at a time (50,000 created and deleted)`)
  live.add('b')
  live.add('a')
  names.add('b')
  names.add('a')
  t.same(names.list(), ['a', 'b'], 'the list is still right')
})
