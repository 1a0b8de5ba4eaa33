/**
 * GET /metrics, parsed by a strict Prometheus text-format parser (test/helpers/promText.ts), with
 * its values checked against the queue state the memcached `stats` command reports and against
 * what the test did: per-queue items, bytes, enqueued, dequeued, expired; connections by protocol;
 * journal bytes; the fsync histogram; command and HTTP request counters; process metrics.
 */
import t from 'tap'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { BinaryClient, op, frame } from '../helpers/binary.js'
import { connectSocket } from '../helpers/socketReader.js'
import { httpPortOf, keepAliveAgent, request, type HttpTarget } from '../helpers/http.js'
import { parsePrometheusText, sampleValue, type Family } from '../helpers/promText.js'

async function scrape(h: HttpTarget): Promise<Map<string, Family>> {
  const reply = await request(h, '/metrics')
  if (reply.status !== 200) throw new Error(`/metrics answered ${reply.status}`)
  return parsePrometheusText(reply.text)
}

async function memcachedStats(mc: RawClient): Promise<Map<string, string>> {
  const lines = await mc.request('stats\r\n')
  return new Map(lines.filter((l) => l.startsWith('STAT ')).map((l) => {
    const [, name, value] = l.split(' ')
    return [name!, value!]
  }))
}

t.test('metrics agree with the queues', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 }, sync: 'always' } })
  const agent = keepAliveAgent()
  t.teardown(() => agent.destroy())
  const h: HttpTarget = { port: httpPortOf(s), agent }
  const mc = await RawClient.connect(s.port)
  const bin = await BinaryClient.connect(s.port)
  const idle = await connectSocket(s.port) // connected, no byte sent: protocol not known yet
  t.teardown(() => {
    mc.close()
    bin.close()
    idle.destroy()
  })
  await bin.request(frame({ opcode: op.NOOP }))

  for (const v of ['a', 'bb', 'ccc']) t.equal(await mc.set('orders', v), 'STORED')
  t.equal(await mc.get('orders'), 'a')
  for (let i = 0; i < 4; i++) t.equal((await request(h, '/queues/events', { method: 'POST', body: 'e'.repeat(10) })).status, 201)
  t.equal((await request(h, '/queues/events')).status, 200)
  t.equal(await mc.set('stale', 'x', 0, -1), 'STORED') // already expired
  t.equal(await mc.get('stale'), null)

  const stats = await memcachedStats(mc)
  const m = await scrape(h)

  t.equal(m.get('starling_queue_items')?.type, 'gauge')
  t.equal(m.get('starling_enqueued_total')?.type, 'counter')
  t.equal(m.get('starling_journal_fsync_seconds')?.type, 'histogram')
  for (const [queue, items, bytes, enq, deq, exp] of [
    ['orders', 2, 5, 3, 1, 0],
    ['events', 3, 30, 4, 1, 0],
    ['stale', 0, 0, 1, 0, 1],
  ] as const) {
    t.equal(sampleValue(m, 'starling_queue_items', { queue }), items, `${queue} items`)
    t.equal(sampleValue(m, 'starling_queue_items', { queue }), Number(stats.get(`queue_${queue}_items`)), `${queue} items = stats`)
    t.equal(sampleValue(m, 'starling_queue_bytes', { queue }), bytes, `${queue} bytes`)
    t.equal(sampleValue(m, 'starling_queue_bytes', { queue }), Number(stats.get(`queue_${queue}_bytes`)))
    t.equal(sampleValue(m, 'starling_enqueued_total', { queue }), enq, `${queue} enqueued`)
    t.equal(sampleValue(m, 'starling_enqueued_total', { queue }), Number(stats.get(`queue_${queue}_total_items`)))
    t.equal(sampleValue(m, 'starling_dequeued_total', { queue }), deq, `${queue} dequeued`)
    t.equal(sampleValue(m, 'starling_expired_total', { queue }), exp, `${queue} expired`)
    t.equal(sampleValue(m, 'starling_expired_total', { queue }), Number(stats.get(`queue_${queue}_expired_items`)))
    t.equal(sampleValue(m, 'starling_queue_age_seconds', { queue }), Number(stats.get(`queue_${queue}_age`)) / 1000)
  }
  let logsize = 0
  for (const [k, v] of stats) if (/^queue_.*_logsize$/.test(k)) logsize += Number(v)
  t.equal(sampleValue(m, 'starling_journal_bytes'), logsize, 'journal bytes = the sum of the logsize stats')
  t.ok(logsize > 0)

  t.equal(sampleValue(m, 'starling_connections', { protocol: 'text' }), 1)
  t.equal(sampleValue(m, 'starling_connections', { protocol: 'binary' }), 1)
  t.equal(sampleValue(m, 'starling_connections', { protocol: 'pending' }), 1)
  t.equal(sampleValue(m, 'starling_connections', { protocol: 'http' }), 1, 'the keep-alive scrape connection')

  t.equal(sampleValue(m, 'starling_commands_total', { command: 'set' }), Number(stats.get('cmd_set')))
  t.equal(sampleValue(m, 'starling_commands_total', { command: 'get' }), Number(stats.get('cmd_get')))
  t.equal(sampleValue(m, 'starling_commands_total', { command: 'set' }), 8)
  t.equal(sampleValue(m, 'starling_get_results_total', { result: 'hit' }), Number(stats.get('get_hits')))
  t.equal(sampleValue(m, 'starling_get_results_total', { result: 'miss' }), Number(stats.get('get_misses')))

  // sync: always: every set was fsynced before STORED / 201.
  const fsyncs = sampleValue(m, 'starling_journal_fsync_seconds_count')!
  t.ok(fsyncs >= 1, `fsyncs observed: ${fsyncs}`)
  // Every fsync the journal counts is observed (plus segment creation's, which it does not count).
  t.ok(fsyncs >= Number(stats.get('journal_fsyncs')), `${fsyncs} >= journal_fsyncs ${stats.get('journal_fsyncs')}`)
  t.ok(sampleValue(m, 'starling_journal_fsync_seconds_sum')! > 0)
  t.equal(sampleValue(m, 'starling_journal_fsync_seconds_bucket', { le: '+Inf' }), fsyncs)

  t.equal(sampleValue(m, 'starling_http_requests_total', { method: 'POST', route: '/queues/:q', code: '201' }), 4)
  t.equal(sampleValue(m, 'starling_http_requests_total', { method: 'GET', route: '/queues/:q', code: '200' }), 1)
  t.ok(m.has('process_cpu_user_seconds_total'), 'default process metrics')
  t.ok(m.has('nodejs_eventloop_lag_seconds'))

  // After more traffic, the next scrape moves with it; the counters never go down.
  t.equal(await mc.get('orders'), 'bb')
  const m2 = await scrape(h)
  t.equal(sampleValue(m2, 'starling_queue_items', { queue: 'orders' }), 1)
  t.equal(sampleValue(m2, 'starling_dequeued_total', { queue: 'orders' }), 2)
  t.equal(sampleValue(m2, 'starling_http_requests_total', { method: 'GET', route: '/metrics', code: '200' }), 1, 'the first scrape was counted')

  // A deleted queue disappears from the metrics.
  t.equal((await request(h, '/queues/events', { method: 'DELETE' })).status, 204)
  t.equal(sampleValue(await scrape(h), 'starling_queue_items', { queue: 'events' }), undefined)
})

t.test('label values are escaped: an odd queue name still parses', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 } } })
  const h: HttpTarget = { port: httpPortOf(s) }
  const name = 'we"ird\\name'
  t.equal((await request(h, `/queues/${encodeURIComponent(name)}`, { method: 'POST', body: 'x' })).status, 201)
  t.equal(sampleValue(await scrape(h), 'starling_queue_items', { queue: name }), 1)
})
