import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { ItemDeque } from '../../src/server/engine/itemDeque.js'
import { COMPACT_HEADER_BYTES, FULL_HEADER_BYTES, ITEM_OVERHEAD_BYTES, ITEM_SLACK_BYTES, ItemStore } from '../../src/server/engine/itemStore.js'
import { NewItem, type QueueItem } from '../../src/server/engine/item.js'
import { prng } from '../helpers/prng.js'

function item(seq: number, len: number, expiresAt = seq % 3 === 0 ? 1e12 + seq : 0, addedAt = 1.7e12 + seq): QueueItem {
  return new NewItem(seq, (seq * 7919) >>> 0, expiresAt, addedAt, randomBytes(len))
}

t.test('FIFO against a model: every size (0 B to 700 KiB, across chunk ends), fields and bytes exact', (t) => {
  for (const seed of [1, 2, 3]) {
    const next = prng(seed)
    const store = new ItemStore()
    const model: QueueItem[] = []
    let seq = 1
    let payload = 0
    for (let step = 0; step < 6000; step++) {
      const r = next()
      if (r < 0.55) {
        // mostly small; now and then an item bigger than a chunk, or empty
        const k = next()
        const len = k < 0.02 ? Math.floor(next() * 700 * 1024) : k < 0.05 ? 0 : Math.floor(next() * 600)
        // seq gaps (some past 2^32), exptimes, and addedAt near and far from the first item's
        // (fractional too): both header forms, mixed
        const g = next()
        seq += g < 0.9 ? 1 : g < 0.97 ? Math.floor(next() * 1000) : 2 ** 32 + Math.floor(next() * 10)
        const e = next()
        const added = 1.7e12 + (e < 0.8 ? Math.floor(next() * 1e6) : e < 0.9 ? 3e9 * (next() - 0.5) : next() * 1e3)
        const it = item(seq, len, next() < 0.1 ? 1e12 + seq : 0, added)
        const src = Buffer.concat([randomBytes(5), it.data, randomBytes(3)]) // a payload inside a bigger buffer
        store.push(it.seq, it.flags, it.expiresAt, it.addedAt, src, 5, 5 + len)
        src.fill(0) // the store copied it
        model.push(it)
        payload += len
      } else if (model.length > 0) {
        const want = model[0]!
        if (store.headSeq !== want.seq || store.headExpiresAt !== want.expiresAt || store.headAddedAt !== want.addedAt || store.headLength !== want.data.length) {
          t.fail(`seed ${seed} step ${step}: head fields of seq ${store.headSeq}, want ${want.seq}`)
          return t.end()
        }
        const got = r < 0.6 ? store.peek() : store.shift()
        if (r >= 0.6) {
          model.shift()
          payload -= want.data.length
        }
        if (got.seq !== want.seq || got.flags !== want.flags || got.expiresAt !== want.expiresAt || got.addedAt !== want.addedAt || !got.data.equals(want.data)) {
          t.fail(`seed ${seed} step ${step}: got seq ${got.seq}, want ${want.seq}`)
          return t.end()
        }
      }
      if (store.count !== model.length || store.bytes !== payload) {
        t.fail(`seed ${seed} step ${step}: count ${store.count}/${model.length}, bytes ${store.bytes}/${payload}`)
        return t.end()
      }
    }
    let same = true
    while (model.length > 0) {
      const got = store.shift()
      const want = model.shift()!
      same &&= got.seq === want.seq && got.addedAt === want.addedAt && got.data.equals(want.data)
    }
    t.ok(same, `seed ${seed}: the rest comes out intact`)
    t.equal(store.count, 0)
    t.ok(store.chunkBytes <= 4096, `an empty store keeps at most one small chunk (${store.chunkBytes} B)`)
  }
  t.end()
})

t.test('chunks are released as the head passes them: memory follows what is queued', (t) => {
  const store = new ItemStore()
  const data = Buffer.alloc(1000, 7)
  for (let i = 0; i < 10_000; i++) store.push(i, 0, 0, 0, data, 0, data.length)
  const full = store.chunkBytes
  t.ok(full >= 10_000 * 1016 && full < 10_000 * 1032 * 1.3, `10k x 1000 B in ${full} B of chunks`)
  for (let i = 0; i < 9_000; i++) store.shift()
  t.ok(store.chunkBytes < full * 0.15, `after 90% drained: ${store.chunkBytes} B of chunks`)
  store.clear()
  t.equal(store.chunkBytes, 0)
  t.equal(store.count, 0)
  t.end()
})

t.test('a queue of one small item holds one chunk sized for it; an emptied store keeps only that small chunk', (t) => {
  const store = new ItemStore()
  t.equal(store.chunkBytes, 0, 'a new store holds no chunk')
  const data = Buffer.alloc(64, 1)
  store.push(1, 0, 0, 1.7e12, data, 0, 64)
  t.equal(store.chunkBytes, FULL_HEADER_BYTES + 64, 'the first chunk fits the first item (room for either header form)')
  store.push(2, 0, 0, 1.7e12, data, 0, 64)
  store.push(3, 0, 0, 1.7e12, data, 0, 64)
  t.equal(store.chunkBytes, FULL_HEADER_BYTES + 64 + 256, 'later chunks are at least 256 B')
  for (let s = 1; s <= 3; s++) t.equal(store.shift().seq, s)
  t.equal(store.chunkBytes, 256, 'emptied by reads: the last (small) chunk is kept, the first given back')
  store.push(4, 0, 0, 1.7e12, data, 0, 10)
  t.equal(store.chunkBytes, 256, 'refilled: the kept chunk is reused')
  t.equal(store.peek().data.toString(), data.subarray(0, 10).toString())
  store.clear()
  t.equal(store.chunkBytes, 0, 'cleared (the queue deleted): no chunk held')
  const big = Buffer.alloc(300 * 1024, 2)
  const s2 = new ItemStore()
  s2.push(1, 0, 0, 0, big, 0, big.length)
  t.ok(s2.chunkBytes >= big.length + FULL_HEADER_BYTES, 'a first item bigger than a chunk spans chunks')
  t.ok(s2.shift().data.equals(big))
  t.equal(s2.chunkBytes, 0, 'a chunk bigger than 4 KiB is not kept')
  t.end()
})

t.test('small first chunks of many stores share slabs: interleaved, none overwrites another', (t) => {
  // 300 stores (slabs of 8 KiB hold ~80 first chunks of 96 B): pushes, reads, empties, refills and
  // clears interleaved at random; every item read back intact, in order, from its own store
  const next = prng(17)
  const stores = Array.from({ length: 300 }, () => new ItemStore())
  const models: QueueItem[][] = stores.map(() => [])
  let seq = 1
  let checked = 0
  for (let step = 0; step < 30_000; step++) {
    const i = Math.floor(next() * stores.length)
    const store = stores[i]!
    const model = models[i]!
    const r = next()
    if (r < 0.5) {
      // mostly first-chunk sizes (up to 480 B fits a slab region), now and then bigger
      const len = next() < 0.9 ? Math.floor(next() * 481) : 481 + Math.floor(next() * 5000)
      const it = item(seq++, len)
      store.push(it.seq, it.flags, it.expiresAt, it.addedAt, it.data, 0, len)
      model.push(it)
    } else if (r < 0.97 && model.length > 0) {
      const got = store.shift()
      const want = model.shift()!
      checked++
      if (got.seq !== want.seq || got.flags !== want.flags || got.addedAt !== want.addedAt || !got.data.equals(want.data)) {
        t.fail(`step ${step}: store ${i} gave seq ${got.seq}, want ${want.seq}`)
        return t.end()
      }
    } else if (r >= 0.97) {
      store.clear()
      model.length = 0
    }
  }
  for (let i = 0; i < stores.length; i++) {
    for (const want of models[i]!) {
      const got = stores[i]!.shift()
      checked++
      if (got.seq !== want.seq || !got.data.equals(want.data)) return t.fail(`store ${i}: seq ${got.seq}, want ${want.seq}`), t.end()
    }
  }
  t.ok(checked > 10_000, `${checked} items read back intact from 300 interleaved stores`)
  const one = new ItemStore()
  one.push(1, 0, 0, 1.7e12, Buffer.alloc(64, 1), 0, 64)
  t.equal(one.chunkBytes, FULL_HEADER_BYTES + 64, 'a slab region is sized to its first item')
  t.end()
})

t.test('the deque: aborted reads go back in front, by seq; cost counts the per-item overhead', (t) => {
  const d = new ItemDeque()
  for (let s = 10; s < 15; s++) d.pushItem(item(s, 10, s === 12 ? 5e12 : 0))
  const compact = COMPACT_HEADER_BYTES + ITEM_SLACK_BYTES
  const full = FULL_HEADER_BYTES + ITEM_SLACK_BYTES
  t.equal(d.cost, 5 * 10 + 4 * compact + full, 'an item with an exptime has the full header')
  d.insert(item(7, 3))
  d.insert(item(3, 4))
  d.insert(item(5, 5))
  t.equal(d.length, 8)
  t.equal(d.bytes, 50 + 12)
  t.equal(d.cost, 62 + 4 * compact + full + 3 * ITEM_OVERHEAD_BYTES, 'returned items are charged the most')
  const order: number[] = []
  while (d.length > 0) order.push(d.shift().seq)
  t.same(order, [3, 5, 7, 10, 11, 12, 13, 14])
  t.equal(d.bytes, 0)
  t.equal(d.cost, 0)
  t.end()
})

t.test('the deque: expiry of the head, returned or packed', (t) => {
  const d = new ItemDeque()
  d.pushItem(new NewItem(2, 0, 0, 1000, Buffer.from('b')))
  t.notOk(d.headExpired(5000, 0), 'no exptime, no max age')
  t.ok(d.headExpired(5000, 4000), 'older than max age')
  d.insert(new NewItem(1, 0, 3000, 4000, Buffer.from('a')))
  t.notOk(d.headExpired(2999, 0))
  t.ok(d.headExpired(3000, 0), 'its exptime has come')
  t.equal(d.peek().data.toString(), 'a')
  t.end()
})

t.test('the deque against a model (fast-check): pushes, reads, aborted reads put back, emptied and refilled; chunks follow', (t) => {
  type Op = { kind: 'push'; len: number } | { kind: 'shift' } | { kind: 'abort' } | { kind: 'peek' } | { kind: 'clear' }
  const op = fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 700 }).map((len): Op => ({ kind: 'push', len })) },
    { weight: 4, arbitrary: fc.constant<Op>({ kind: 'shift' }) },
    { weight: 2, arbitrary: fc.constant<Op>({ kind: 'abort' }) },
    { weight: 1, arbitrary: fc.constant<Op>({ kind: 'peek' }) },
    { weight: 1, arbitrary: fc.constant<Op>({ kind: 'clear' }) },
  )
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const d = new ItemDeque()
      const model: QueueItem[] = [] // in seq order
      const taken: QueueItem[] = [] // open reads that may be put back
      let seq = 1
      for (const o of ops) {
        if (o.kind === 'push') {
          const it = item(seq++, o.len)
          d.pushItem(it)
          model.push(it)
        } else if (o.kind === 'shift' && model.length > 0) {
          const got = d.shift()
          const want = model.shift()!
          if (got.seq !== want.seq || !got.data.equals(want.data) || got.addedAt !== want.addedAt) return false
          taken.push(got)
        } else if (o.kind === 'abort' && taken.length > 0) {
          const back = taken.splice(taken.length >> 1, 1)[0]!
          d.insert(back)
          const at = model.findIndex((m) => m.seq > back.seq)
          model.splice(at < 0 ? model.length : at, 0, back)
        } else if (o.kind === 'peek' && model.length > 0) {
          if (d.peek().seq !== model[0]!.seq) return false
        } else if (o.kind === 'clear') {
          d.clear()
          model.length = 0
          taken.length = 0
        }
        if (d.length !== model.length || d.bytes !== model.reduce((b, m) => b + m.data.length, 0)) return false
        if (d.count === 0 && d.chunkBytes > 4096) return false // an emptied store keeps at most a small chunk
      }
      return true
    }),
    { numRuns: process.env.STARLING_FUZZ === '1' ? 5000 : 200 },
  )
  t.pass('the deque matched the model')
  t.end()
})
