import t from 'tap'
import { readdirSync, statSync } from 'node:fs'
import { startServer, removeDir, serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

t.test('FIFO across many queues, flags, delete, flush, restart', async (t) => {
  const server = await startServer()
  t.teardown(() => removeDir(server.spool))
  const c = await RawClient.connect(server.port)
  for (let i = 0; i < 20; i++) {
    for (let q = 0; q < 10; q++) t.equal(await c.set(`q${q}`, `item-${q}-${i}`, i * 7 + q), 'STORED')
  }
  for (let q = 0; q < 10; q++) {
    for (let i = 0; i < 10; i++) {
      const lines = await c.request(`get q${q}\r\n`)
      t.same(lines, [`VALUE q${q} ${i * 7 + q} ${`item-${q}-${i}`.length}`, `item-${q}-${i}`, 'END'])
    }
  }
  t.same(await c.request('delete q0\r\n'), ['DELETED'])
  t.same(await c.request('delete q0\r\n'), ['NOT_FOUND'])
  t.equal(await c.get('q0'), null)
  t.same(await c.request('flush q1\r\n'), ['OK'])
  t.equal(await c.get('q1'), null)
  t.same(await c.request('version\r\n'), [`VERSION 1.0.0`])
  c.close()
  t.equal(await server.stop(), 0, 'SIGTERM exits 0')

  // Clean restart keeps every remaining item in order.
  const again = await startServer({ spool: server.spool })
  t.teardown(() => void again.stop())
  const d = await RawClient.connect(again.port)
  for (let q = 2; q < 10; q++) {
    for (let i = 10; i < 20; i++) t.equal(await d.get(`q${q}`), `item-${q}-${i}`, `q${q} item ${i} after restart`)
    t.equal(await d.get(`q${q}`), null)
  }
  t.equal(await d.get('q1'), null, 'flushed queue stays empty after restart')
  t.equal(await d.get('q0'), null, 'deleted queue stays empty after restart')
  d.close()
})

t.test('expiry: relative, absolute, negative; expired items counted', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  const now = Math.floor(Date.now() / 1000)
  t.equal(await c.set('e', 'gone-now', 0, -1), 'STORED')
  t.equal(await c.set('e', 'gone-soon', 0, 1), 'STORED')
  t.equal(await c.set('e', 'absolute-past', 0, now - 10), 'STORED')
  t.equal(await c.set('e', 'absolute-future', 0, now + 3600), 'STORED')
  t.equal(await c.set('e', 'forever', 0, 0), 'STORED')
  await new Promise((r) => setTimeout(r, 1100))
  t.equal(await c.get('e'), 'absolute-future')
  t.equal(await c.get('e'), 'forever')
  t.equal(await c.get('e'), null)
  const stats = await c.request('stats\r\n')
  t.ok(stats.includes('STAT queue_e_expired_items 3'), 'three expired items counted')
  c.close()
})

t.test('stats: Starling fields in order, then per-queue fields, with real values', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  await c.set('alpha', 'x'.repeat(100))
  await c.set('alpha', 'y'.repeat(50))
  await new Promise((r) => setTimeout(r, 30))
  await c.get('alpha')
  await c.get('nothing')
  const lines = await c.request('stats\r\n')
  t.equal(lines.at(-1), 'END')
  const pairs = lines.slice(0, -1).map((l) => {
    const m = /^STAT (\S+) (.*)$/.exec(l)
    t.ok(m, `STAT line: ${l}`)
    return [m![1]!, m![2]!] as const
  })
  const names = pairs.map((p) => p[0])
  const starling = [
    'pid', 'uptime', 'time', 'version', 'rusage_user', 'rusage_system', 'curr_items', 'total_items', 'bytes',
    'curr_connections', 'total_connections', 'cmd_get', 'cmd_set', 'get_hits', 'get_misses', 'bytes_read',
    'bytes_written', 'limit_maxbytes',
  ]
  t.same(names.slice(0, starling.length), starling, 'server fields in Starling order')
  const v = Object.fromEntries(pairs)
  t.equal(v.pid, String(server.proc.pid))
  t.equal(v.version, '1.0.0')
  t.match(v.rusage_user, /^\d+\.\d{6}$/)
  t.ok(Math.abs(Number(v.time) - Date.now() / 1000) < 5)
  t.equal(v.curr_items, '1')
  t.equal(v.total_items, '2')
  t.equal(v.bytes, '50')
  t.equal(v.cmd_set, '2')
  t.equal(v.cmd_get, '2')
  t.equal(v.get_hits, '1')
  t.equal(v.get_misses, '1')
  t.equal(v.curr_connections, '1')
  t.ok(Number(v.bytes_read) > 150)
  t.ok(Number(v.bytes_written) > 10)
  const q = names.indexOf('queue_alpha_items')
  t.same(names.slice(q, q + 5), ['queue_alpha_items', 'queue_alpha_total_items', 'queue_alpha_logsize', 'queue_alpha_expired_items', 'queue_alpha_age'])
  t.equal(v.queue_alpha_items, '1')
  t.equal(v.queue_alpha_total_items, '2')
  t.ok(Number(v.queue_alpha_age) >= 25, `age ${v.queue_alpha_age} is the wait of the last dequeued item`)
  const onDisk = readdirSync(server.spool)
    .filter((f) => f.startsWith('alpha'))
    .reduce((n, f) => n + statSync(`${server.spool}/${f}`).size, 0)
  t.equal(v.queue_alpha_logsize, String(onDisk), 'logsize is the bytes of the journal on disk')
  t.ok(names.includes('queue_alpha_open_transactions'))
  t.ok(names.includes('queue_alpha_waiters'))
  c.close()
})

t.test('pipelined commands are answered in order', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  let batch = ''
  for (let i = 0; i < 200; i++) batch += `set p 0 0 ${String(i).length}\r\n${i}\r\nget p\r\n`
  c.send(batch)
  for (let i = 0; i < 200; i++) {
    t.equal(await c.line(), 'STORED')
    t.equal(await c.line(), `VALUE p 0 ${String(i).length}`)
    t.equal(await c.line(), String(i))
    t.equal(await c.line(), 'END')
  }
  c.close()
})

t.test('queue names cannot escape the spool or collide', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  const names = ['..', '...', '.hidden', 'A', 'a', '%41', 'x.y', 'CON', 'a+b', '~root', '%2e%2e']
  for (const n of names) t.equal(await c.set(n, `v-${n}`), 'STORED', n)
  for (const n of names) t.equal(await c.get(n), `v-${n}`, `${n} kept its own item`)
  for (const f of readdirSync(server.spool)) t.notOk(f.includes('/') || f === '..' || f === '.', f)
  c.close()
})

t.test('stats pipelined behind sets to a new queue counts them', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  c.send('set fresh 0 0 1\r\na\r\nset fresh 0 0 1\r\nb\r\nstats\r\n')
  t.equal(await c.line(), 'STORED')
  t.equal(await c.line(), 'STORED')
  const lines: string[] = []
  for (let l = await c.line(); l !== 'END'; l = await c.line()) lines.push(l)
  t.ok(lines.includes('STAT queue_fresh_items 2'), 'both sets are in the stats that followed them')
  c.close()
})
