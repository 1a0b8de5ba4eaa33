/**
 * Reliable reads: open/close/abort, process(), consume(), against a real server process.
 */
import t from 'tap'
import { startClientServer } from '../helpers/clientServer.js'
import { StarlingClient, type ReliableItem } from '../../src/index.js'

let client: StarlingClient, addr: string
t.before(async () => ({ client, addr } = await startClientServer(t)))

t.test('open then close removes the item; open then abort puts it back at the head', async (t) => {
  await client.set('rel', 'first')
  await client.set('rel', 'second')
  const a = await client.open<string>('rel')
  t.equal(a?.value, 'first')
  t.equal(a?.queue, 'rel')
  t.equal(a?.server, addr)
  // while open, others see the next item
  t.equal(await client.peek('rel'), 'second')
  await a!.abort()
  t.equal(await client.peek('rel'), 'first', 'aborted item is back at the head')
  const b = await client.open<string>('rel')
  t.equal(b?.value, 'first')
  await b!.close()
  await t.rejects(b!.abort(), { code: 'ALREADY_SETTLED' })
  await b!.close() // closing twice is the same close
  t.equal(await client.fetch('rel'), 'second')
  t.equal(await client.open('rel'), undefined, 'empty: undefined without waiting')
})

t.test('open waits with timeoutMs', async (t) => {
  const waiting = client.open<number>('rel_wait', { timeoutMs: 3000 })
  setTimeout(() => void client.set('rel_wait', 42), 100)
  const item = await waiting
  t.equal(item?.value, 42)
  await item!.close()
  t.equal(await client.open('rel_wait', { timeoutMs: 100 }), undefined)
})

t.test('an open read dies with its client: the item is redelivered', async (t) => {
  const c = new StarlingClient(addr)
  await client.set('rel_drop', 'precious')
  const item = await c.open('rel_drop')
  t.equal(item?.value, 'precious')
  t.equal(await client.fetch('rel_drop'), undefined, 'held by the open read')
  await c.close()
  t.equal(await client.get('rel_drop', { timeoutMs: 2000 }), 'precious')
})

t.test('several open reads on one queue at once each get their own item', async (t) => {
  for (let i = 0; i < 5; i++) await client.set('rel_many', i)
  const items = await Promise.all(Array.from({ length: 5 }, () => client.open<number>('rel_many')))
  t.same(items.map((i) => i!.value).sort(), [0, 1, 2, 3, 4])
  await Promise.all(items.map((i) => i!.close()))
  t.equal(await client.sizeof('rel_many'), 0)
})

t.test('process confirms on success and aborts on a throw, so the item is redelivered', async (t) => {
  for (const id of [1, 2, 3]) await client.set('jobs', { id })
  const attempts: number[] = []
  const done: number[] = []
  const errors: unknown[] = []
  const poller = client.process<{ id: number }>(
    'jobs',
    async ({ id }) => {
      attempts.push(id)
      if (id === 2 && attempts.filter((a) => a === 2).length === 1) throw new Error('first try of 2 fails')
      done.push(id)
    },
    { idleTimeoutMs: 200, stopWhenIdle: true, onError: (e) => errors.push(e) },
  )
  await poller.done
  t.same(done.sort(), [1, 2, 3])
  t.equal(attempts.filter((a) => a === 2).length, 2, 'item 2 came back after the throw')
  t.equal(poller.processed, 3)
  t.equal(poller.failed, 1)
  t.match(errors, [{ message: 'first try of 2 fails' }])
  t.equal(await client.sizeof('jobs'), 0)
})

t.test('process with concurrency runs handlers in parallel and stop() waits for them', async (t) => {
  for (let i = 0; i < 8; i++) await client.set('par', i)
  let running = 0
  let peak = 0
  let finished = 0
  const poller = client.process<number>(
    'par',
    async () => {
      running++
      peak = Math.max(peak, running)
      await new Promise((r) => setTimeout(r, 100))
      running--
      finished++
    },
    { concurrency: 4, idleTimeoutMs: 5000 },
  )
  await new Promise((r) => setTimeout(r, 50))
  const stopping = Date.now()
  await poller.stop()
  t.ok(Date.now() - stopping < 1000, 'stop does not wait for the idle wait')
  t.equal(peak, 4)
  t.equal(running, 0, 'in-flight handlers finished before stop resolved')
  t.equal(finished, 4)
  t.equal(await client.sizeof('par'), 4, 'the rest stayed in the queue')
  t.equal(await client.flush('par'), 4)
})

t.test('consume: for await over a queue, confirm on next, hand back on break', async (t) => {
  for (let i = 0; i < 4; i++) await client.set('stream', i)
  const seen: number[] = []
  for await (const v of client.consume<number>('stream')) {
    seen.push(v)
    if (v === 2) break
  }
  t.same(seen, [0, 1, 2])
  t.equal(await client.fetch('stream'), 2, 'the item in hand at break was handed back')
  t.equal(await client.fetch('stream'), 3)
  // a throw in the loop body hands the item back too
  await client.set('stream', 'boom')
  await t.rejects(
    (async () => {
      for await (const v of client.consume('stream')) throw new Error(`bad ${String(v)}`)
    })(),
    { message: 'bad boom' },
  )
  t.equal(await client.fetch('stream'), 'boom')
  // a signal ends the loop, confirming the last item
  const stop = new AbortController()
  const got: number[] = []
  setTimeout(() => void client.set('stream', 7), 50)
  for await (const v of client.consume<number>('stream', { signal: stop.signal })) {
    got.push(v)
    stop.abort()
  }
  t.same(got, [7])
  t.equal(await client.fetch('stream'), undefined, 'confirmed')
})

t.test('an item the handler settles itself is not settled twice', async (t) => {
  await client.set('self', 'x')
  let it: ReliableItem | undefined
  const poller = client.process('self', async (_v, item) => {
    it = item
    await item.abort()
  }, { idleTimeoutMs: 100, stopWhenIdle: false })
  await new Promise((r) => setTimeout(r, 100))
  await poller.stop()
  t.ok(it)
  t.ok(poller.processed >= 1)
  t.equal(await client.fetch('self'), 'x', 'aborted by the handler, still there')
})
