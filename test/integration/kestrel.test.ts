import t from 'tap'
import { startServer, removeDir, serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

t.test('blocking get wakes on set within a few ms, and times out at /t=', async (t) => {
  const s = await serverFor(t)
  const waiter = await RawClient.connect(s.port)
  const producer = await RawClient.connect(s.port)
  const started = Date.now()
  waiter.send('get work/t=5000\r\n')
  await new Promise((r) => setTimeout(r, 100))
  const setAt = Date.now()
  await producer.set('work', 'job-1')
  t.equal(await waiter.line(), 'VALUE work/t=5000 0 5')
  const wokeAfter = Date.now() - setAt
  t.equal(await waiter.line(), 'job-1')
  t.equal(await waiter.line(), 'END')
  t.ok(wokeAfter < 200, `woke ${wokeAfter} ms after the set`)
  t.ok(Date.now() - started < 1000)

  const before = Date.now()
  t.same(await waiter.request('get work/t=300\r\n'), ['END'])
  const waited = Date.now() - before
  t.ok(waited >= 280 && waited < 1500, `timed out after ${waited} ms`)
  waiter.close()
  producer.close()
})

t.test('1,000 concurrent waiters on one queue each get exactly one distinct item', async (t) => {
  const s = await serverFor(t)
  const clients = await Promise.all(Array.from({ length: 1000 }, () => RawClient.connect(s.port)))
  const results = clients.map(async (c) => {
    c.send('get many/t=20000\r\n')
    const head = await c.line(20000)
    const m = /^VALUE many\/t=20000 0 (\d+)$/.exec(head)
    if (!m) throw new Error(`unexpected ${head}`)
    const v = (await c.bytes(Number(m[1]) + 2, 20000)).subarray(0, -2).toString()
    t.equal(await c.line(), 'END')
    return v
  })
  await new Promise((r) => setTimeout(r, 300))
  const producer = await RawClient.connect(s.port)
  let batch = ''
  for (let i = 0; i < 1000; i++) batch += `set many 0 0 ${String(i).length} noreply\r\n${i}\r\n`
  producer.send(batch)
  const got = await Promise.all(results)
  t.equal(new Set(got).size, 1000, 'all distinct')
  t.same([...got].map(Number).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i))
  t.equal(await producer.get('many'), null, 'nothing left over')
  for (const c of clients) c.close()
  producer.close()
})

t.test('a waiter whose connection closes loses no item', async (t) => {
  const s = await serverFor(t)
  const gone = await RawClient.connect(s.port)
  gone.send('get w/t=5000\r\n')
  await new Promise((r) => setTimeout(r, 100))
  gone.close()
  await new Promise((r) => setTimeout(r, 100))
  const c = await RawClient.connect(s.port)
  await c.set('w', 'kept')
  t.equal(await c.get('w'), 'kept')
  c.close()
})

t.test('open / close / abort, and a dropped connection aborts', async (t) => {
  const s = await serverFor(t)
  const c = await RawClient.connect(s.port)
  for (const v of ['a', 'b', 'c']) await c.set('r', v)
  t.equal(await c.get('r/open'), 'a')
  t.match(await c.request('get r/open\r\n'), [/^CLIENT_ERROR/], 'second open without close')
  t.equal(await c.get('r/close/open'), 'b', 'close + open in one round trip')
  t.same(await c.request('get r/abort\r\n'), ['END'])
  t.equal(await c.get('r/open'), 'b', 'aborted item is back at the head')
  t.same(await c.request('get r/close\r\n'), ['END'])
  const stats1 = await c.request('stats\r\n')
  t.ok(stats1.includes('STAT queue_r_open_transactions 0'))

  const worker = await RawClient.connect(s.port)
  t.equal(await worker.get('r/open'), 'c')
  const stats2 = await c.request('stats\r\n')
  t.ok(stats2.includes('STAT queue_r_open_transactions 1'))
  t.ok(stats2.includes('STAT queue_r_items 0'))
  worker.close()
  await new Promise((r) => setTimeout(r, 100))
  t.equal(await c.get('r'), 'c', 'the dropped connection aborted its open read')
  t.equal(await c.get('r'), null)

  // abort puts the item ahead of newer ones
  await c.set('r2', 'first')
  t.equal(await c.get('r2/open'), 'first')
  await c.set('r2', 'second')
  await c.request('get r2/abort\r\n')
  t.equal(await c.get('r2'), 'first')
  t.equal(await c.get('r2'), 'second')

  // blocking open
  const blocked = await RawClient.connect(s.port)
  blocked.send('get r3/open/t=3000\r\n')
  await new Promise((r) => setTimeout(r, 100))
  await c.set('r3', 'later')
  t.equal(await blocked.line(), 'VALUE r3/open/t=3000 0 5')
  await blocked.line()
  await blocked.line()
  blocked.close()
  await new Promise((r) => setTimeout(r, 100))
  t.equal(await c.get('r3'), 'later', 'blocking open read aborted by the drop')
  c.close()
})

t.test('open reads across kill -9: unconfirmed come back, confirmed do not', async (t) => {
  const s = await startServer()
  t.teardown(() => removeDir(s.spool))
  const c = await RawClient.connect(s.port)
  for (const v of ['one', 'two', 'three', 'four']) await c.set('tx', v)
  t.equal(await c.get('tx/open'), 'one')
  t.equal(await c.get('tx/close/open'), 'two') // one confirmed
  const other = await RawClient.connect(s.port)
  t.equal(await other.get('tx/open'), 'three')
  t.equal(await other.get('tx/close'), null) // three confirmed
  t.equal(await other.get('tx/open'), 'four') // open, unconfirmed
  await s.kill()
  const again = await startServer({ spool: s.spool })
  t.teardown(() => void again.stop())
  const d = await RawClient.connect(again.port)
  t.equal(await d.get('tx'), 'two')
  t.equal(await d.get('tx'), 'four')
  t.equal(await d.get('tx'), null)
  d.close()
})

t.test('peek returns the head without removing it', async (t) => {
  const s = await serverFor(t)
  const c = await RawClient.connect(s.port)
  t.equal(await c.get('pk/peek'), null)
  await c.set('pk', 'head')
  await c.set('pk', 'next')
  t.equal(await c.get('pk/peek'), 'head')
  t.equal(await c.get('pk/peek'), 'head')
  t.equal(await c.get('pk'), 'head')
  t.equal(await c.get('pk/peek'), 'next')
  c.close()
})

t.test('fanout: two children and a late child', async (t) => {
  const s = await serverFor(t)
  const c = await RawClient.connect(s.port)
  t.equal(await c.get('feed+a'), null) // creates child a
  t.equal(await c.get('feed+b'), null) // creates child b
  await c.set('feed', 'm1')
  t.equal(await c.get('feed+late'), null) // late child: from now on
  await c.set('feed', 'm2')
  t.equal(await c.get('feed'), 'm1')
  t.equal(await c.get('feed'), 'm2')
  t.equal(await c.get('feed+a'), 'm1')
  t.equal(await c.get('feed+a'), 'm2')
  t.equal(await c.get('feed+b'), 'm1')
  t.equal(await c.get('feed+b'), 'm2')
  t.equal(await c.get('feed+late'), 'm2')
  t.equal(await c.get('feed+late'), null)
  t.same(await c.request('delete feed+b\r\n'), ['DELETED'])
  await c.set('feed', 'm3')
  t.equal(await c.get('feed+a'), 'm3')
  const stats = await c.request('stats\r\n')
  t.notOk(stats.some((l) => l.startsWith('STAT queue_feed+b_')), 'deleted child gets no more copies')
  c.close()
})

t.test('per-queue limits: max_items, max_size, max_item_size, discard_old_when_full, max_age, expire_to', async (t) => {
  const queues = {
    small: { max_items: 2 },
    bytes: { max_size: 10 },
    tiny: { max_item_size: 4 },
    ring: { max_items: 2, discard_old_when_full: true },
    old: { max_age: 200, expire_to: 'dead' },
  }
  const s = await serverFor(t, { config: { queues } })
  const c = await RawClient.connect(s.port)
  t.equal(await c.set('small', '1'), 'STORED')
  t.equal(await c.set('small', '2'), 'STORED')
  t.equal(await c.set('small', '3'), 'SERVER_ERROR queue full')
  t.equal(await c.set('bytes', '12345678'), 'STORED')
  t.equal(await c.set('bytes', '123'), 'SERVER_ERROR queue full')
  t.equal(await c.set('tiny', '1234'), 'STORED')
  t.equal(await c.set('tiny', '12345'), 'SERVER_ERROR object too large for cache')
  for (const v of ['a', 'b', 'c']) t.equal(await c.set('ring', v), 'STORED')
  t.equal(await c.get('ring'), 'b', 'oldest dropped')
  t.equal(await c.get('ring'), 'c')
  await c.set('old', 'stale')
  await new Promise((r) => setTimeout(r, 300))
  t.equal(await c.get('old'), null, 'older than max_age')
  t.equal(await c.get('dead'), 'stale', 'moved by expire_to')
  c.close()
})

t.test('malformed options and options on set', async (t) => {
  const s = await serverFor(t)
  const c = await RawClient.connect(s.port)
  for (const key of ['q/t=abc', 'q/t=', 'q/bogus', 'q/open/open', 'q/peek/open', 'q/abort/open', 'q/', '/open']) {
    const lines = await c.request(`get ${key}\r\n`)
    t.match(lines.at(-1), /^CLIENT_ERROR /, key)
  }
  t.match(await c.set('q/open', 'x'), /^CLIENT_ERROR /)
  t.equal(await c.set('q', 'ok'), 'STORED', 'connection still in step')
  t.equal(await c.get('q'), 'ok')
  c.close()
})

t.test('flush_all is a no-op unless enabled; flush_all enabled clears everything', async (t) => {
  const off = await serverFor(t)
  const c = await RawClient.connect(off.port)
  await c.set('keep', 'x')
  t.same(await c.request('flush_all\r\n'), ['OK'])
  t.equal(await c.get('keep'), 'x')
  t.same(await c.request('shutdown\r\n'), ['ERROR'])
  c.close()
  const on = await serverFor(t, { config: { enable_flush_all: true } })
  const d = await RawClient.connect(on.port)
  await d.set('a', '1')
  await d.set('b', '2')
  t.same(await d.request('flush_all\r\n'), ['OK'])
  t.equal(await d.get('a'), null)
  t.equal(await d.get('b'), null)
  d.close()
})
