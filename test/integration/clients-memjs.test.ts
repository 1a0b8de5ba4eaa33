/**
 * memjs (binary protocol) against the real server process: queues through a stock memcached client,
 * Kestrel's `/t=` blocking get in the key, and SASL PLAIN.
 */
import t from 'tap'
import memjs from 'memjs'
import { startServer, removeDir, type RunningServer } from '../helpers/server.js'

const quiet = { log: () => {} }

/** The rejection of `p` as text (memjs rejects with a plain string on authentication failure). */
async function failure(p: Promise<unknown>): Promise<string> {
  return p.then(
    (value) => `resolved with ${JSON.stringify(value)}`,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  )
}

function client(server: RunningServer, options: memjs.ClientOptions & memjs.ServerOptions = {}): memjs.Client {
  const c = memjs.Client.create(`${server.host}:${server.port}`, { retries: 0, timeout: 3, logger: quiet, ...options })
  t.teardown(() => c.close())
  return c
}

t.test('without auth', async (t) => {
  const server = await startServer()
  t.teardown(async () => {
    await server.stop()
    removeDir(server.spool)
  })
  const mc = client(server)

  t.test('strings and Buffers round-trip, FIFO', async (t) => {
    t.equal(await mc.set('memjs_fifo', 'one'), true)
    t.equal(await mc.set('memjs_fifo', 'two'), true)
    const bytes = Buffer.from([0, 1, 2, 0x80, 0xff, 13, 10])
    t.equal(await mc.set('memjs_fifo', bytes), true)
    t.equal((await mc.get('memjs_fifo')).value?.toString(), 'one')
    t.equal((await mc.get('memjs_fifo')).value?.toString(), 'two')
    t.same((await mc.get('memjs_fifo')).value, bytes)
    t.same(await mc.get('memjs_fifo'), { value: null, flags: null }, 'empty queue is a miss')
  })

  t.test('an empty queue answers null', async (t) => {
    t.same(await mc.get('memjs_never_set'), { value: null, flags: null })
  })

  t.test('large values and many queues', async (t) => {
    const big = Buffer.alloc(512 * 1024, 0x5a)
    await mc.set('memjs_big', big)
    t.same((await mc.get('memjs_big')).value, big)
    const queues = Array.from({ length: 30 }, (_, i) => `memjs_many_${i}`)
    await Promise.all(queues.flatMap((q) => [mc.set(q, `${q}-a`), mc.set(q, `${q}-b`)]))
    for (const q of queues) {
      t.equal((await mc.get(q)).value?.toString(), `${q}-a`)
      t.equal((await mc.get(q)).value?.toString(), `${q}-b`)
      t.equal((await mc.get(q)).value, null)
    }
  })

  t.test('flags travel with the item (through a memjs serializer)', async (t) => {
    const flagged = client(server, {
      serializer: {
        serialize: (_op: number, value: string | Buffer, extras: Buffer) => {
          const e = Buffer.from(extras)
          e.writeUInt32BE(0x2a, 0)
          return { value, extras: e }
        },
        deserialize: (_op: number, value: Buffer | null, extras: Buffer) => ({ value, extras }),
      },
    })
    await flagged.set('memjs_flags', 'with flags')
    const got = await flagged.get('memjs_flags')
    t.equal(got.value?.toString(), 'with flags')
    t.equal(got.flags?.readUInt32BE(0), 0x2a)
  })

  t.test('a /t= get waits for an item set meanwhile', async (t) => {
    const producer = client(server)
    const started = Date.now()
    const pending = mc.get('memjs_wait/t=2000')
    setTimeout(() => void producer.set('memjs_wait', 'arrived'), 200)
    const got = await pending
    t.equal(got.value?.toString(), 'arrived')
    t.ok(Date.now() - started >= 150, 'it waited for the set')
  })

  t.test('a /t= get on an empty queue answers null after the timeout', async (t) => {
    const started = Date.now()
    t.same(await mc.get('memjs_idle/t=500'), { value: null, flags: null })
    const waited = Date.now() - started
    t.ok(waited >= 450 && waited < 2500, `waited ${waited} ms`)
  })

  t.test('reliable read through key options', async (t) => {
    await mc.set('memjs_rel', 'job1')
    await mc.set('memjs_rel', 'job2')
    t.equal((await mc.get('memjs_rel/open')).value?.toString(), 'job1')
    t.equal((await mc.get('memjs_rel/abort')).value, null, 'abort answers nothing')
    t.equal((await mc.get('memjs_rel/peek')).value?.toString(), 'job1', 'aborted item is back at the head')
    t.equal((await mc.get('memjs_rel/open')).value?.toString(), 'job1')
    t.equal((await mc.get('memjs_rel/close/open')).value?.toString(), 'job2')
    t.equal((await mc.get('memjs_rel/close')).value, null)
    t.equal((await mc.get('memjs_rel')).value, null)
  })

  t.test('delete and stats', async (t) => {
    await mc.set('memjs_del', 'x')
    t.equal(await mc.delete('memjs_del'), true)
    t.equal(await mc.delete('memjs_del'), false, 'deleting a missing queue answers false')
    const versions = await new Promise<Record<string, string> | null>((resolve, reject) =>
      mc.stats((err, _server, stats) => (err ? reject(err) : resolve(stats))),
    )
    t.ok(versions, 'stats answered')
    t.match(versions, { pid: String(server.proc.pid), curr_connections: /^\d+$/ })
    await mc.set('memjs_stat', 'x')
    const queueStats = await new Promise<Record<string, string> | null>((resolve, reject) =>
      mc.statsWithKey('memjs_stat', (err, _server, stats) => (err ? reject(err) : resolve(stats))),
    )
    t.match(queueStats, { queue_memjs_stat_items: '1' })
  })

  t.test('operations memcached has and a queue does not are refused', async (t) => {
    t.match(await failure(mc.add('memjs_add', 'x')), /Not supported/)
    t.match(await failure(mc.increment('memjs_n', 1)), /Not supported/)
    t.equal(await mc.set('memjs_after', 'still fine'), true, 'the connection stays usable')
    t.equal((await mc.get('memjs_after')).value?.toString(), 'still fine')
  })
})

t.test('SASL PLAIN', async (t) => {
  const server = await startServer({ config: { auth: { users: { alice: 'secret' } } } })
  t.teardown(async () => {
    await server.stop()
    removeDir(server.spool)
  })

  t.test('the right password works', async (t) => {
    const mc = client(server, { username: 'alice', password: 'secret' })
    t.equal(await mc.set('memjs_auth', 'private'), true)
    t.equal((await mc.get('memjs_auth')).value?.toString(), 'private')
  })

  t.test('a wrong password fails', async (t) => {
    const mc = client(server, { username: 'alice', password: 'wrong' })
    t.match(await failure(mc.set('memjs_auth', 'intruder')), /authentication failed/i)
    t.match(await failure(mc.get('memjs_auth')), /authentication failed/i)
  })

  t.test('no credentials fails', async (t) => {
    const mc = client(server)
    t.match(await failure(mc.set('memjs_auth', 'anonymous')), /authentication failed/i)
  })

  t.test('nothing was stored by the failed clients', async (t) => {
    const mc = client(server, { username: 'alice', password: 'secret' })
    t.equal((await mc.get('memjs_auth')).value, null)
  })
})
