/**
 * Every HTTP route through real HTTP against a real server (auth off), and the replies for bad
 * input: 400 bad name / bad header / bad wait, 404, 405, 413 over max_item_size, 204 empty.
 */
import t from 'tap'
import { serverFor } from '../helpers/server.js'
import { httpPortOf, keepAliveAgent, request, type HttpTarget } from '../helpers/http.js'

t.test('the queue routes, in order', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 }, max_item_size: 4096 } })
  const agent = keepAliveAgent()
  t.teardown(() => agent.destroy())
  const h: HttpTarget = { port: httpPortOf(s), agent }

  const health = await request(h, '/healthz')
  t.equal(health.status, 200)
  t.equal(health.text, 'ok\n')

  // POST enqueues, with flags; bytes round-trip exactly (all 256 byte values).
  const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const posted = await request(h, '/queues/jobs', { method: 'POST', body: payload, headers: { 'X-Starling-Flags': '4294967295' } })
  t.equal(posted.status, 201)
  await request(h, '/queues/jobs', { method: 'POST', body: 'second' })

  const list = await request(h, '/queues')
  t.equal(list.status, 200)
  t.match(list.headers['content-type'], /application\/json/)
  const rows = JSON.parse(list.text) as Array<Record<string, unknown>>
  t.same(rows, [{ name: 'jobs', items: 2, bytes: 262, age_ms: 0, open: 0, waiters: 0, total_items: 2, dequeued_items: 0, expired_items: 0 }])

  const peek = await request(h, '/queues/jobs/peek')
  t.equal(peek.status, 200)
  t.same(peek.body, payload, 'peek shows the head')
  t.equal(peek.headers['x-starling-flags'], '4294967295')

  const got = await request(h, '/queues/jobs')
  t.equal(got.status, 200)
  t.equal(got.headers['content-type'], 'application/octet-stream')
  t.same(got.body, payload, 'GET takes the head')
  t.equal(got.headers['x-starling-flags'], '4294967295')
  t.equal((await request(h, '/queues/jobs')).text, 'second')
  t.equal((await request(h, '/queues/jobs')).status, 204, 'empty: 204')
  t.ok(got.reusedSocket || (await request(h, '/queues/jobs')).reusedSocket, 'keep-alive: the socket is reused')

  // A GET with wait returns 204 after the wait when nothing comes.
  const started = Date.now()
  const waited = await request(h, '/queues/jobs?wait=300')
  t.equal(waited.status, 204)
  t.ok(Date.now() - started >= 250, 'it waited')

  // Reliable read: open, then close confirms; open, then abort puts back at the head.
  await request(h, '/queues/work', { method: 'POST', body: 'a' })
  await request(h, '/queues/work', { method: 'POST', body: 'b' })
  const opened = await request(h, '/queues/work/open', { method: 'POST' })
  t.equal(opened.status, 200)
  t.equal(opened.text, 'a')
  const receipt = opened.headers['x-starling-receipt'] as string
  t.match(receipt, /^[0-9a-f]{32}$/)
  t.equal(JSON.parse((await request(h, '/queues')).text).find((q: { name: string }) => q.name === 'work').open, 1)
  t.equal((await request(h, `/queues/work/close?receipt=${receipt}`, { method: 'POST' })).status, 204)
  t.equal((await request(h, `/queues/work/close?receipt=${receipt}`, { method: 'POST' })).status, 404, 'a receipt works once')
  const again = await request(h, '/queues/work/open', { method: 'POST' })
  t.equal(again.text, 'b')
  const second = await request(h, '/queues/work/open', { method: 'POST' })
  t.equal(second.status, 204, 'nothing else to open')
  t.equal((await request(h, `/queues/work/abort?receipt=${again.headers['x-starling-receipt']}`, { method: 'POST' })).status, 204)
  t.equal((await request(h, '/queues/work')).text, 'b', 'aborted item is back at the head')
  t.equal((await request(h, `/queues/other/close?receipt=${receipt}`, { method: 'POST' })).status, 404)
  t.equal((await request(h, '/queues/work/close', { method: 'POST' })).status, 400, 'receipt is required')

  // Open with wait is served by a later POST.
  const waitingOpen = request(h, '/queues/later/open?wait=5000', { method: 'POST' })
  await new Promise((r) => setTimeout(r, 200))
  await request({ port: h.port }, '/queues/later', { method: 'POST', body: 'late' })
  const lateOpen = await waitingOpen
  t.equal(lateOpen.text, 'late')
  t.equal((await request(h, `/queues/later/close?receipt=${lateOpen.headers['x-starling-receipt']}`, { method: 'POST' })).status, 204)

  // DELETE: 204, then 404.
  t.equal((await request(h, '/queues/jobs', { method: 'DELETE' })).status, 204)
  t.equal((await request(h, '/queues/jobs', { method: 'DELETE' })).status, 404)
  t.notOk(JSON.parse((await request(h, '/queues')).text).some((q: { name: string }) => q.name === 'jobs'))

  // TTL: a negative TTL is already expired (memcached's exptime rules); a positive one is kept.
  await request(h, '/queues/ttl', { method: 'POST', body: 'gone', headers: { 'X-Starling-TTL': '-1' } })
  await request(h, '/queues/ttl', { method: 'POST', body: 'kept', headers: { 'X-Starling-TTL': '60' } })
  t.equal((await request(h, '/queues/ttl')).text, 'kept')

  // Percent-encoded names are the bytes a memcached client would send.
  t.equal((await request(h, '/queues/caf%C3%A9', { method: 'POST', body: 'x' })).status, 201)
  t.ok(JSON.parse((await request(h, '/queues')).text).some((q: { name: string }) => q.name === Buffer.from('café').toString('latin1')))

  const page = await request(h, '/')
  t.equal(page.status, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.text, /<title>Starling queues<\/title>/)
  t.notMatch(page.text, /https?:\/\//, 'the page loads nothing from elsewhere')
  const metrics = await request(h, '/metrics')
  t.equal(metrics.status, 200)
  t.match(metrics.headers['content-type'], /text\/plain; version=0\.0\.4/)
})

t.test('bad requests get clear 4xx replies', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 }, max_item_size: 4096, queues: { small: { max_item_size: 16 } } } })
  const h: HttpTarget = { port: httpPortOf(s) }
  const cases: Array<[string, string, number, Record<string, string>?, string?]> = [
    ['POST', '/queues/bad%20name', 400],
    ['POST', '/queues/bad%0Aname', 400],
    ['POST', '/queues/%2Fslash', 400],
    ['POST', '/queues/%ZZ', 400],
    ['POST', `/queues/${'k'.repeat(251)}`, 400],
    ['POST', '/queues//open', 400],
    ['POST', '/queues/q', 400, { 'X-Starling-Flags': 'abc' }],
    ['POST', '/queues/q', 400, { 'X-Starling-Flags': '4294967296' }],
    ['POST', '/queues/q', 400, { 'X-Starling-TTL': '1.5' }],
    ['GET', '/queues/q?wait=-1', 400],
    ['GET', '/queues/q?wait=soon', 400],
    ['PUT', '/queues/q', 405],
    ['GET', '/queues/q/open', 405],
    ['GET', '/queues/q/close', 405],
    ['POST', '/queues/q/peek', 405],
    ['POST', '/queues', 405],
    ['POST', '/metrics', 405],
    ['POST', '/nothing', 404],
    ['GET', '/queues/q/nope', 404],
    ['GET', '/queues/q/open/extra', 404],
    ['GET', '/nothing', 404],
  ]
  for (const [method, path, status, headers] of cases) {
    const reply = await request(h, path, { method, headers, body: method === 'POST' ? 'x' : undefined })
    t.equal(reply.status, status, `${method} ${path} ${JSON.stringify(headers ?? {})}`)
  }
  t.equal((await request(h, '/queues/q', { method: 'PUT' })).headers.allow, 'POST, GET, DELETE')

  // Body limit: max_item_size (the largest any queue accepts), then the queue's own limit.
  const big = await request(h, '/queues/q', { method: 'POST', body: Buffer.alloc(4097) })
  t.equal(big.status, 413, 'over max_item_size: 413')
  t.equal((await request(h, '/queues/q', { method: 'POST', body: Buffer.alloc(4096) })).status, 201, 'at the limit: stored')
  t.equal((await request(h, '/queues/small', { method: 'POST', body: Buffer.alloc(17) })).status, 413, "over the queue's own limit")
  t.equal((await request(h, '/queues/q')).body.length, 4096)
  t.equal((await request(h, '/queues/q')).status, 204, 'nothing of the refused bodies was stored')
})
