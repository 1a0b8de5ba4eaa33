/**
 * Server-wide limits, each enforced: a slow reader cannot make the server buffer without bound
 * (max_output_bytes / max_pending_replies), max_connections, the idle timeout (-t), and item size.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m![1]) * 1024
}

t.test('a client that never reads makes the server stop reading it, not buffer', async (t) => {
  const s = await serverFor(t, { config: { max_output_bytes: '1MB' } })
  const producer = await RawClient.connect(s.port)
  const item = Buffer.alloc(64 * 1024, 0x61)
  const count = 1500 // ~96 MiB queued
  const header = Buffer.from(`set big 0 0 ${item.length} noreply\r\n`)
  for (let i = 0; i < count; i++) producer.send(Buffer.concat([header, item, Buffer.from('\r\n')]))
  t.same(await producer.request('version\r\n'), ['VERSION 1.0.0'])
  const before = rssBytes(s.proc.pid!)

  const slow = await RawClient.connect(s.port)
  slow.socket.pause() // never reads
  slow.send('get big\r\n'.repeat(count))
  await new Promise((r) => setTimeout(r, 1500))
  const during = rssBytes(s.proc.pid!)
  // Without backpressure all ~96 MiB of replies would sit in the server's socket buffer.
  t.ok(during - before < 40 * 1024 * 1024, `RSS grew ${((during - before) / 1048576).toFixed(1)} MiB while the client did not read`)
  const stats = await producer.request('stats\r\n')
  const left = Number(/STAT queue_big_items (\d+)/.exec(stats.join('\n'))![1])
  t.ok(left > count / 2, `the server stopped dequeuing for the slow reader (${left} items still queued)`)

  // Once the client reads, it gets every item.
  slow.socket.resume()
  let got = 0
  for (let i = 0; i < count; i++) {
    const head = await slow.line(20000)
    if (head === 'END') continue
    await slow.bytes(item.length + 2, 20000)
    t.equal(await slow.line(20000), 'END')
    got++
  }
  t.equal(got, count, 'every item delivered once the client reads')
  producer.close()
  slow.close()
})

t.test('max_connections refuses connections over the limit', async (t) => {
  const s = await serverFor(t, { config: { max_connections: 3 } })
  const clients = await Promise.all([1, 2, 3].map(() => RawClient.connect(s.port)))
  for (const c of clients) t.same(await c.request('version\r\n'), ['VERSION 1.0.0'])
  const extra = await RawClient.connect(s.port)
  await extra.waitClosed()
  t.ok(extra.closed, 'the fourth connection was closed')
  clients[0]!.close()
  await new Promise((r) => setTimeout(r, 100))
  const next = await RawClient.connect(s.port)
  t.same(await next.request('version\r\n'), ['VERSION 1.0.0'], 'a freed slot is usable')
  for (const c of [...clients, next]) c.close()
})

t.test('-t disconnects idle clients but not blocked readers', async (t) => {
  const s = await serverFor(t, { args: ['-t', '1'] })
  const idle = await RawClient.connect(s.port)
  const blocked = await RawClient.connect(s.port)
  blocked.send('get slowq/t=2500\r\n')
  await idle.waitClosed(4000)
  t.ok(idle.closed, 'idle client disconnected')
  t.equal(await blocked.line(4000), 'END', 'the blocked reader got its answer')
})

t.test('max_item_size: the protocol limit follows the config', async (t) => {
  const s = await serverFor(t, { config: { max_item_size: 1000 } })
  const c = await RawClient.connect(s.port)
  t.equal(await c.set('q', 'x'.repeat(1000)), 'STORED')
  t.equal(await c.set('q', 'x'.repeat(1001)), 'SERVER_ERROR object too large for cache')
  t.equal(await c.set('q', 'ok'), 'STORED', 'the refused data block was discarded; stream in step')
  t.equal((await c.get('q'))!.length, 1000)
  t.equal(await c.get('q'), 'ok')
  c.close()
})
