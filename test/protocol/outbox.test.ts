import t from 'tap'
import { Outbox, type ReplySink } from '../../src/server/protocol/outbox.js'

/** A sink that records writes and can run a hook inside write (as a socket callback chain can). */
function sink(onWrite: (chunk: Buffer) => void = () => {}): ReplySink & { written: string[] } {
  const written: string[] = []
  return {
    written,
    writableLength: 0,
    write(chunk: Buffer) {
      written.push(chunk.toString())
      onWrite(chunk)
      return true
    },
    cork() {},
    uncork() {},
  }
}

t.test('replies leave in command order whatever order they complete in', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  const a = out.reserve()
  const b = out.reserve()
  out.push(Buffer.from('c'))
  out.fill(b, Buffer.from('b'))
  t.same(s.written, [])
  out.fill(a, Buffer.from('a'))
  t.same(s.written, ['a', 'b', 'c'])
  out.push(Buffer.from('d'))
  t.same(s.written, ['a', 'b', 'c', 'd'])
})

t.test('a fill from inside a write neither repeats nor skips a reply', async (t) => {
  let late: ReturnType<Outbox['reserve']> | null = null
  let out: Outbox
  const s = sink((chunk) => {
    // Writing reply 1 completes reply 3 re-entrantly (a journal callback in the same call chain).
    if (chunk.toString() === '1' && late) out.fill(late, Buffer.from('3'))
  })
  out = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  const first = out.reserve()
  const second = out.reserve()
  late = out.reserve()
  out.fill(second, Buffer.from('2'))
  out.fill(first, Buffer.from('1'))
  t.same(s.written, ['1', '2', '3'])
})

t.test('empty fills (noreply) send nothing and do not block later replies', async (t) => {
  const s = sink()
  const out = new Outbox(s, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  const a = out.reserve()
  out.push(Buffer.from('x'))
  out.fill(a)
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
  out.fill(a, Buffer.from('STORED'))
  t.same(s.written, ['STORED', 'stats:after'])
  out.pushWhenReady(() => [Buffer.from('now')])
  t.same(s.written, ['STORED', 'stats:after', 'now'], 'nothing pending: computed at once')
})
