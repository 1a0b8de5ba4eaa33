import t from 'tap'
import { Outbox, type ReplySink } from '../../src/server/protocol/outbox.js'

/** A sink that records what reached the socket, as one string per socket write. */
function sink(): ReplySink & { written: string[] } {
  const written: string[] = []
  return {
    written,
    writableLength: 0,
    write(chunk: Buffer) {
      written.push(chunk.toString())
      return true
    },
    cork() {},
    uncork() {},
  }
}

const tick = (): Promise<void> => new Promise((r) => process.nextTick(r))

t.test('replies leave in command order whatever order they complete in, one write per tick', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  const a = out.reserve()
  const b = out.reserve()
  out.push(Buffer.from('c'))
  out.fill(b, Buffer.from('b'))
  await tick()
  t.same(s.written, [])
  out.fill(a, Buffer.from('a'))
  out.push(Buffer.from('d'))
  await tick()
  t.same(s.written, ['abcd'], 'one socket write for the tick')
  out.push(Buffer.from('e'))
  out.flush()
  t.same(s.written, ['abcd', 'e'], 'flush sends at once')
})

t.test('a large batch goes out corked, chunk by chunk, in order', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 1 << 22, maxPendingSlots: 100 })
  const big = Buffer.alloc(70 * 1024, 0x62)
  out.push(Buffer.from('a'), big, Buffer.from('z'))
  await tick()
  t.equal(s.written.join(''), 'a' + big.toString() + 'z')
})

t.test('a fill from inside the progress callback neither repeats nor skips a reply', async (t) => {
  let late: ReturnType<Outbox['reserve']> | null = null
  const s = sink()
  const out: Outbox = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 }, () => {
    // Releasing reply 1 completes reply 3 re-entrantly (a journal callback in the same call chain).
    if (late) {
      const slot = late
      late = null
      out.fill(slot, Buffer.from('3'))
    }
  })
  const first = out.reserve()
  const second = out.reserve()
  late = out.reserve()
  out.fill(second, Buffer.from('2'))
  out.fill(first, Buffer.from('1'))
  await tick()
  t.same(s.written, ['123'])
})

t.test('empty fills (noreply) send nothing and do not block later replies', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  const a = out.reserve()
  out.push(Buffer.from('x'))
  out.fill(a)
  await tick()
  t.same(s.written, ['x'])
  t.equal(out.pendingSlots, 0)
})

t.test('full: by pending slots and by unread bytes', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 10, maxPendingSlots: 2 })
  out.reserve()
  t.notOk(out.full)
  out.reserve()
  t.ok(out.full, 'two replies in progress')
  const s2 = { ...sink(), writableLength: 10 }
  t.ok(new Outbox(s2, { maxPendingBytes: 10, maxPendingSlots: 2 }).full, 'unread bytes at the limit')
})

t.test('pushWhenReady computes its reply only when every earlier reply is done', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  let state = 'before'
  const a = out.reserve()
  out.pushWhenReady(() => [Buffer.from(`stats:${state}`)])
  state = 'after'
  out.fill(a, Buffer.from('STORED '))
  out.pushWhenReady(() => [Buffer.from(` now:${state}`)])
  state = 'later'
  await tick()
  t.same(s.written, ['STORED stats:after now:after'], 'nothing pending: computed at once')
})

t.test('fillOne: one-buffer replies keep command order, only the first fill of a slot counts', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  const a = out.reserve()
  const b = out.reserve()
  const c = out.reserve()
  out.fillOne(c, Buffer.from('c'))
  out.fillOne(b, null) // noreply
  out.fillOne(b, Buffer.from('late')) // ignored: b is already settled
  t.equal(out.pendingSlots, 3, 'nothing leaves before the head is filled')
  out.fillOne(a, Buffer.from('a'))
  out.fill(a, Buffer.from('again')) // ignored too
  await tick()
  t.same(s.written, ['ac'])
  t.equal(out.pendingSlots, 0)
})

t.test('a turn: replies made during a read leave in one write at its end, no tick needed', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  out.beginTurn()
  out.push(Buffer.from('x'))
  out.fillOne(out.reserve(), Buffer.from('y'))
  t.same(s.written, [], 'held during the turn')
  out.endTurn()
  t.same(s.written, ['xy'], 'written at its end, together')
  const later = out.reserve()
  out.fillOne(later, Buffer.from('z')) // outside a turn: at the end of the tick
  t.same(s.written, ['xy'])
  await tick()
  t.same(s.written, ['xy', 'z'])
})

t.test('outboxes completed in the same tick each write once, at its end (one shared nextTick)', async (t) => {
  const sinks = [sink(), sink(), sink()]
  const boxes = sinks.map((s) => new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 }))
  const slots = boxes.map((b) => [b.reserve(), b.reserve()])
  // As a group commit does: the sets of several connections complete in one callback.
  boxes.forEach((b, i) => b.fillOne(slots[i]![0]!, Buffer.from(`${i}a`)))
  boxes.forEach((b, i) => b.fillOne(slots[i]![1]!, Buffer.from(`${i}b`)))
  t.same(sinks.map((s) => s.written), [[], [], []], 'nothing before the tick ends')
  await tick()
  t.same(sinks.map((s) => s.written), [['0a0b'], ['1a1b'], ['2a2b']], 'one write each')
  boxes[1]!.push(Buffer.from('again'))
  await tick()
  t.same(sinks.map((s) => s.written), [['0a0b'], ['1a1b', 'again'], ['2a2b']], 'a later tick schedules anew')
})
