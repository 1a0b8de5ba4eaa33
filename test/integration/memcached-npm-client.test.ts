/**
 * The npm `memcached` client against the REAL server: set/get as a FIFO, its flag-based
 * serialization (strings, numbers, JSON, Buffers) round-trips, multi-get, Kestrel options in keys,
 * delete, stats, version, and refused commands reported as errors without breaking the connection.
 */
import t from 'tap'
import Memcached from 'memcached'
import { startServer, removeDir, type RunningServer } from '../helpers/server.js'

function call<T>(fn: (cb: (err: unknown, result: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result))))
}

let server: RunningServer
let mc: Memcached

t.before(async () => {
  server = await startServer()
  mc = new Memcached(`${server.host}:${server.port}`, { retries: 0, timeout: 5000, reconnect: 1000, poolSize: 1 })
})

t.teardown(async () => {
  mc.end()
  await server.stop()
  removeDir(server.spool)
})

t.test('set/get is a FIFO queue; an empty queue reads as undefined', async (t) => {
  t.equal(await call<boolean>((cb) => mc.set('fifo', 'first', 0, cb)), true)
  t.equal(await call<boolean>((cb) => mc.set('fifo', 'second', 0, cb)), true)
  t.equal(await call<unknown>((cb) => mc.get('fifo', cb)), 'first')
  t.equal(await call<unknown>((cb) => mc.get('fifo', cb)), 'second')
  t.equal(await call<unknown>((cb) => mc.get('fifo', cb)), undefined)
})

t.test('the client serializes by flags; the flags come back with the item', async (t) => {
  const object = { job: 'resize', sizes: [1, 2, 3], nested: { ok: true } }
  await call((cb) => mc.set('typed', object, 0, cb))
  await call((cb) => mc.set('typed', 12345, 0, cb))
  const bytes = Buffer.from([0, 1, 2, 13, 10, 255])
  await call((cb) => mc.set('typed', bytes, 0, cb))
  await call((cb) => mc.set('typed', 'caf\u00e9 \u2603', 0, cb))
  t.same(await call((cb) => mc.get('typed', cb)), object, 'JSON object (flag 2)')
  t.equal(await call((cb) => mc.get('typed', cb)), 12345, 'number (flag 8)')
  const got = await call<Buffer>((cb) => mc.get('typed', cb))
  t.ok(Buffer.isBuffer(got), 'Buffer (flag 4)')
  t.same([...got], [...bytes])
  t.equal(await call((cb) => mc.get('typed', cb)), 'caf\u00e9 \u2603', 'UTF-8 string')
})

t.test('getMulti takes one item from each queue', async (t) => {
  await call((cb) => mc.set('m1', 'x', 0, cb))
  await call((cb) => mc.set('m2', 'y', 0, cb))
  await call((cb) => mc.set('m2', 'z', 0, cb))
  t.same(await call((cb) => mc.getMulti(['m1', 'm2', 'none'], cb)), { m1: 'x', m2: 'y' })
  t.same(await call((cb) => mc.getMulti(['m1', 'm2'], cb)), { m2: 'z' })
})

t.test('Kestrel options in the key: blocking get and peek', async (t) => {
  const started = Date.now()
  t.equal(await call((cb) => mc.get('wait/t=200', cb)), undefined)
  t.ok(Date.now() - started >= 190, 'waited for the timeout')
  await call((cb) => mc.set('wait', 'here', 0, cb))
  t.equal(await call((cb) => mc.get('wait/peek', cb)), 'here')
  t.equal(await call((cb) => mc.get('wait/t=200', cb)), 'here')
})

t.test('delete drops the queue', async (t) => {
  await call((cb) => mc.set('gone', 'x', 0, cb))
  t.equal(await call((cb) => mc.del('gone', cb)), true)
  t.equal(await call((cb) => mc.get('gone', cb)), undefined)
})

t.test('stats and version', async (t) => {
  await call((cb) => mc.set('counted', 'a', 0, cb))
  await call((cb) => mc.set('counted', 'b', 0, cb))
  const stats = await call<Array<Record<string, unknown>>>((cb) => mc.stats(cb))
  t.equal(stats.length, 1)
  const s = stats[0]!
  t.equal(s.server, `${server.host}:${server.port}`)
  t.equal(s.pid, server.proc.pid)
  for (const field of ['uptime', 'curr_items', 'total_items', 'cmd_get', 'cmd_set', 'get_hits', 'get_misses']) {
    t.ok(field in s, `has ${field}`)
  }
  t.equal(s.queue_counted_items, 2)
  const versions = await call<Array<Record<string, unknown>>>((cb) => mc.version(cb))
  t.match(versions[0]!.version, /^\d+\.\d+\.\d+/)
})

t.test('refused commands are errors for that call only', async (t) => {
  await t.rejects(call((cb) => mc.add('q', 'x', 0, cb)), 'add refused')
  await t.rejects(call((cb) => mc.incr('q', 1, cb)), 'incr refused')
  t.equal(await call((cb) => mc.set('after', 'still fine', 0, cb)), true)
  t.equal(await call((cb) => mc.get('after', cb)), 'still fine')
})
