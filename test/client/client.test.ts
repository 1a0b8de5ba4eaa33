/**
 * Every StarlingClient method against a real server process.
 */
import t from 'tap'
import { createServer, type Server } from 'node:net'
import { startClientServer } from '../helpers/clientServer.js'
import { startServer, removeDir, type RunningServer } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { StarlingClient, ConnectionError, ServerError, TimeoutError, StarlingClientError, SERIALIZER_FLAGS } from '../../src/index.js'

let server: RunningServer, client: StarlingClient, addr: string
t.before(async () => ({ server, client, addr } = await startClientServer(t)))

t.test('set then fetch is FIFO, fetch of an empty queue is undefined', async (t) => {
  await client.set('fifo', { n: 1 })
  await client.set('fifo', 'two')
  await client.set('fifo', [3])
  t.same(await client.fetch('fifo'), { n: 1 })
  t.equal(await client.fetch('fifo'), 'two')
  t.same(await client.fetch('fifo'), [3])
  t.equal(await client.fetch('fifo'), undefined)
})

t.test('pipelined sets and fetches keep order', async (t) => {
  await Promise.all(Array.from({ length: 500 }, (_, i) => client.set('pipe', i)))
  const got = await Promise.all(Array.from({ length: 501 }, () => client.fetch<number>('pipe')))
  t.same(got, [...Array.from({ length: 500 }, (_, i) => i), undefined])
})

t.test('peek leaves the item', async (t) => {
  t.equal(await client.peek('peeky'), undefined)
  await client.set('peeky', 'a')
  t.equal(await client.peek('peeky'), 'a')
  t.equal(await client.peek('peeky'), 'a')
  t.equal(await client.fetch('peeky'), 'a')
})

t.test('ttl: an expired item is never returned', async (t) => {
  await client.set('ttl', 'old', { ttl: -1 })
  await client.set('ttl', 'fresh', { ttl: 60 })
  t.equal(await client.fetch('ttl'), 'fresh')
})

t.test('get returns at once when an item is there, waits otherwise, undefined on timeout', async (t) => {
  await client.set('wait', 1)
  t.equal(await client.get('wait'), 1)
  const started = Date.now()
  t.equal(await client.get('wait', { timeoutMs: 150 }), undefined)
  const took = Date.now() - started
  t.ok(took >= 140 && took < 1500, `timed out after ${took} ms`)
  t.equal(await client.get('wait', { timeoutMs: 0 }), undefined)
})

t.test('a waiting get is woken by the set, not by the end of its wait', async (t) => {
  // One server-side wait covers the whole 5 s: a get woken only at a slice's end would take seconds.
  const waiter = new StarlingClient(addr, { waitSliceMs: 10_000 })
  const other = new StarlingClient(addr)
  t.teardown(() => Promise.all([waiter.close(), other.close()]))
  // warm up: connections made, queue created
  await other.set('wake', 'warm')
  t.equal(await waiter.get('wake'), 'warm')
  for (let round = 0; round < 3; round++) {
    let setAt = 0
    const waiting = waiter.get<number>('wake', { timeoutMs: 5000 }).then((v) => ({ v, at: Date.now() }))
    await new Promise((r) => setTimeout(r, 200))
    await other.set('wake', round)
    setAt = Date.now() // acknowledged (the server may fsync before it answers)
    const { v, at } = await waiting
    t.equal(v, round)
    t.ok(at - setAt < 2500, `woke ${at - setAt} ms after the set, long before the wait's end`)
  }
})

t.test('a get waiting longer than one slice still gets its item', async (t) => {
  const slicing = new StarlingClient(addr, { waitSliceMs: 100 })
  t.teardown(() => slicing.close())
  const waiting = slicing.get('slices', { timeoutMs: 5000 })
  await new Promise((r) => setTimeout(r, 350))
  await client.set('slices', 'late')
  t.equal(await waiting, 'late')
})

t.test('AbortSignal ends a waiting get promptly and no item is lost', async (t) => {
  const controller = new AbortController()
  const started = Date.now()
  const waiting = client.get('aborted', { signal: controller.signal })
  setTimeout(() => controller.abort(), 100)
  await t.rejects(waiting, { name: 'AbortError' })
  t.ok(Date.now() - started < 400, 'ended promptly')
  // the server-side wait is still open for the rest of its slice: an item set now is handed back
  await client.set('aborted', 'kept')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(await client.fetch('aborted'), 'kept')
  await t.rejects(client.get('aborted', { signal: AbortSignal.abort() }), { name: 'AbortError' })
})

t.test('close() ends a waiting get', async (t) => {
  const c = new StarlingClient(addr)
  const waiting = c.get('closing')
  await new Promise((r) => setTimeout(r, 50))
  const started = Date.now()
  await c.close()
  await t.rejects(waiting, { code: 'CLOSED' })
  t.ok(Date.now() - started < 200)
  await t.rejects(c.set('closing', 1), { code: 'CLOSED' })
})

t.test('sizeof, sizeof(all), availableQueues', async (t) => {
  await client.set('size_a', 1)
  await client.set('size_a', 2)
  await client.set('size_b', 3)
  t.equal(await client.sizeof('size_a'), 2)
  t.equal(await client.sizeof('size_b'), 1)
  t.equal(await client.sizeof('never_seen'), 0)
  const all = await client.sizeof('all')
  t.equal(all.size_a, 2)
  t.equal(all.size_b, 1)
  const names = await client.availableQueues()
  t.ok(names.includes('size_a') && names.includes('size_b'))
  t.same(names, [...names].sort())
})

t.test('flush drains with a callback and returns the count', async (t) => {
  for (let i = 0; i < 100; i++) await client.set('drain', i)
  const seen: number[] = []
  t.equal(await client.flush<number>('drain', (v) => void seen.push(v)), 100)
  t.same(seen, Array.from({ length: 100 }, (_, i) => i))
  t.equal(await client.sizeof('drain'), 0)
  await client.set('drain', 'x')
  t.equal(await client.flush('drain'), 1)
  t.equal(await client.flush('drain'), 0)
})

t.test('flush: every item taken reaches onItem even when it throws', async (t) => {
  for (let i = 0; i < 10; i++) await client.set('drain_err', i)
  const seen: number[] = []
  await t.rejects(
    client.flush<number>('drain_err', (v) => {
      seen.push(v)
      if (v === 0) throw new Error('boom')
    }),
    { message: 'boom' },
  )
  const rest = (await client.sizeof('drain_err')) as number
  t.equal(seen.length + rest, 10, 'nothing lost')
  t.same(seen, Array.from({ length: seen.length }, (_, i) => i))
})

t.test('delete', async (t) => {
  await client.set('doomed', 1)
  t.ok((await client.availableQueues()).includes('doomed'))
  t.equal(await client.delete('doomed'), true)
  t.notOk((await client.availableQueues()).includes('doomed'))
  t.equal(await client.fetch('doomed'), undefined)
  t.equal(await client.delete('doomed_never'), false)
})

t.test('stats and version are keyed by server', async (t) => {
  const stats = await client.stats()
  t.same(Object.keys(stats), [addr])
  const s = stats[addr]!
  t.equal(s.pid, server.proc.pid)
  for (const f of ['uptime', 'curr_items', 'total_items', 'curr_connections', 'cmd_get', 'cmd_set']) t.type(s[f], 'number', f)
  const version = await client.version()
  t.match(version[addr], /^\d+\.\d+\.\d+/)
  t.equal(version[addr], s.version)
})

t.test('serializers: per client, per call, interop through flags', async (t) => {
  const yamlClient = new StarlingClient(addr, { serializer: 'yaml' })
  const rawClient = new StarlingClient(addr, { serializer: 'raw' })
  t.teardown(async () => {
    await yamlClient.close()
    await rawClient.close()
  })
  await yamlClient.set('ser', { lang: 'yaml', list: [1, 2] })
  await client.set('ser', { lang: 'json' })
  await rawClient.set('ser', 'plain bytes')
  await client.set('ser', Buffer.from([0, 1, 2]), { serializer: 'raw' })
  // any client decodes by flags
  t.same(await rawClient.fetch('ser'), { lang: 'yaml', list: [1, 2] })
  t.same(await yamlClient.fetch('ser'), { lang: 'json' })
  t.same(await client.fetch('ser'), Buffer.from('plain bytes'))
  t.same(await client.fetch('ser'), Buffer.from([0, 1, 2]))
  // yaml set, raw get: the YAML text
  await yamlClient.set('ser', { a: 1 })
  t.equal((await client.fetch<Buffer>('ser', { serializer: 'raw' }))!.toString(), 'a: 1\n')
  // the flags are on the wire for other clients to see
  const rc = await RawClient.connect(server.port)
  t.teardown(() => rc.close())
  await client.set('ser', 1)
  t.same(await rc.request('get ser\r\n', /^VALUE/), [`VALUE ser ${SERIALIZER_FLAGS.json} 1`])
  t.equal(await rc.line(), '1')
  t.equal(await rc.line(), 'END')
  // a plain memcached client's item (flags 0) reads as raw
  t.equal(await rc.set('ser', 'hello'), 'STORED')
  t.same(await client.fetch('ser'), Buffer.from('hello'))
  // explicit flags
  await client.set('ser', 'x', { serializer: 'raw', flags: 7 })
  t.same(await rc.request('get ser\r\n', /^VALUE/), ['VALUE ser 7 1'])
})

t.test('errors are typed', async (t) => {
  await t.rejects(client.set('bad key', 1), { code: 'BAD_KEY' })
  await t.rejects(client.fetch('a/b'), { code: 'BAD_KEY' })
  const dead = new StarlingClient('127.0.0.1:1', { connectTimeoutMs: 500 })
  const err = await dead.set('x', 1).catch((e: unknown) => e)
  t.ok(err instanceof ConnectionError, 'ConnectionError')
  t.equal((err as ConnectionError).sent, false)
  t.ok(err instanceof StarlingClientError)
  await t.rejects(dead.fetch('x'), ConnectionError)
  await dead.close()
  // a server that never answers
  const silent: Server = createServer(() => {})
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const port = (silent.address() as { port: number }).port
  const slow = new StarlingClient(`127.0.0.1:${port}`, { timeoutMs: 200 })
  const started = Date.now()
  await t.rejects(slow.fetch('x'), TimeoutError)
  t.ok(Date.now() - started < 1000)
  await slow.close()
  silent.close()
  // a server error reply
  const big = Buffer.alloc(2 * 1024 * 1024, 1)
  const e = await client.set('too_big', big, { serializer: 'raw' }).catch((x: unknown) => x)
  t.ok(e instanceof ServerError, 'ServerError')
  t.equal((e as ServerError).kind, 'SERVER_ERROR')
  // the connection is still in step afterwards
  await client.set('after_error', 'ok')
  t.equal(await client.fetch('after_error'), 'ok')
})

t.test('a connection the server drops is replaced automatically', async (t) => {
  // this server disconnects clients idle for a second
  const strict = await startServer({ args: ['-t', '1'] })
  const c = new StarlingClient(`127.0.0.1:${strict.port}`)
  t.teardown(async () => {
    await c.close()
    await strict.stop()
    removeDir(strict.spool)
  })
  await c.set('reconnect', 1)
  await new Promise((r) => setTimeout(r, 2500))
  const before = (await c.stats())[`127.0.0.1:${strict.port}`]!.total_connections as number
  t.equal(await c.fetch('reconnect'), 1)
  await c.set('reconnect', 2)
  t.equal(await c.fetch('reconnect'), 2)
  t.ok(before >= 2, `reconnected (${before} connections made)`)
})

t.test('a server that ignores /t= is not hammered by a waiting get', async (t) => {
  let gets = 0
  const fake: Server = createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      for (const line of d.toString('latin1').split('\r\n')) {
        if (line.startsWith('get ')) {
          gets++
          sock.write('END\r\n')
        }
      }
    })
  })
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r))
  const c = new StarlingClient(`127.0.0.1:${(fake.address() as { port: number }).port}`)
  const started = Date.now()
  t.equal(await c.get('nothing', { timeoutMs: 500 }), undefined)
  t.ok(Date.now() - started >= 490)
  t.ok(gets <= 15, `${gets} gets in 500 ms`)
  await c.close()
  fake.close()
})
