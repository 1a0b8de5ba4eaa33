/**
 * Each HTTP limit of starling.http is enforced: open_timeout puts an unconfirmed item back,
 * max_open_receipts caps a user's open reads (429), header_timeout and max_body_wait stop slow
 * clients (408 and close), keep_alive_timeout closes idle connections, oversized headers get 431.
 */
import t from 'tap'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { httpPortOf, request, type HttpTarget } from '../helpers/http.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('open_timeout: an unconfirmed open read goes back to the head', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0, open_timeout: 1 } } })
  const h: HttpTarget = { port: httpPortOf(s) }
  await request(h, '/queues/q', { method: 'POST', body: 'first' })
  await request(h, '/queues/q', { method: 'POST', body: 'second' })
  const opened = await request(h, '/queues/q/open', { method: 'POST' })
  t.equal(opened.text, 'first')
  const started = Date.now()
  const back = await request(h, '/queues/q/peek?wait=0')
  t.equal(back.text, 'second', 'while open, the head is the next item')
  // Wait for the timeout: the item comes back ahead of `second`.
  let head = ''
  while (Date.now() - started < 15_000) {
    head = (await request(h, '/queues/q/peek')).text
    if (head === 'first') break
    await sleep(100)
  }
  t.equal(head, 'first', 'the open read timed out and its item is back at the head')
  t.ok(Date.now() - started >= 900, 'not before open_timeout')
  const late = await request(h, `/queues/q/close?receipt=${opened.headers['x-starling-receipt']}`, { method: 'POST' })
  t.equal(late.status, 404, 'an expired receipt cannot close')
})

t.test('max_open_receipts caps open reads per user, waiting opens included', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0, max_open_receipts: 2 }, auth: { users: { a: 'pa', b: 'pb' } } } })
  const port = httpPortOf(s)
  const a: HttpTarget = { port, auth: 'a:pa' }
  const b: HttpTarget = { port, auth: 'b:pb' }
  for (let i = 0; i < 5; i++) await request(a, '/queues/q', { method: 'POST', body: `i${i}` })
  const r1 = await request(a, '/queues/q/open', { method: 'POST' })
  const r2 = await request(a, '/queues/q/open', { method: 'POST' })
  t.equal(r1.status, 200)
  t.equal(r2.status, 200)
  const third = await request(a, '/queues/q/open', { method: 'POST' })
  t.equal(third.status, 429, 'a third open read is refused')
  t.equal((await request(a, '/queues/empty/open?wait=10000', { method: 'POST' })).status, 429, 'a waiting open too, at once')
  t.equal((await request(b, '/queues/q/open', { method: 'POST' })).status, 200, 'another user has its own allowance')
  t.equal((await request(a, `/queues/q/close?receipt=${r1.headers['x-starling-receipt']}`, { method: 'POST' })).status, 204)
  t.equal((await request(a, '/queues/q/open', { method: 'POST' })).status, 200, 'a closed receipt frees its slot')
})

t.test('header_timeout and max_body_wait: slow clients get 408 and are closed', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0, header_timeout: 1, max_body_wait: 2 } } })
  const port = httpPortOf(s)

  const slowHeaders = await RawClient.connect(port)
  const started = Date.now()
  slowHeaders.send('GET /healthz HTTP/1.1\r\nHost: x\r\n') // and never the blank line
  t.match(await slowHeaders.line(15_000), /^HTTP\/1\.1 408/)
  await slowHeaders.waitClosed(15_000)
  t.ok(Date.now() - started >= 900, 'not before header_timeout')

  const slowBody = await RawClient.connect(port)
  const bodyStarted = Date.now()
  slowBody.send('POST /queues/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789')
  t.match(await slowBody.line(15_000), /^HTTP\/1\.1 408/)
  await slowBody.waitClosed(15_000)
  t.ok(Date.now() - bodyStarted >= 1900, 'not before max_body_wait')
  t.equal((await request({ port }, '/queues/slow')).status, 204, 'nothing of the partial body was stored')
})

t.test('keep_alive_timeout closes an idle keep-alive connection', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0, keep_alive_timeout: 1 } } })
  const client = await RawClient.connect(httpPortOf(s))
  const started = Date.now()
  client.send('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(await client.line(), 'HTTP/1.1 200 OK')
  await client.waitClosed(15_000)
  t.ok(Date.now() - started >= 900, 'kept open for keep_alive_timeout')
})

t.test('oversized headers get 431; an abandoned upload stores nothing and harms nothing', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 } } })
  const port = httpPortOf(s)
  const huge = await RawClient.connect(port)
  huge.send(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`)
  t.match(await huge.line(15_000), /^HTTP\/1\.1 431/)
  await huge.waitClosed(15_000)

  const quitter = await RawClient.connect(port)
  quitter.send('POST /queues/abandoned HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly part of it')
  await sleep(200)
  quitter.close()
  await sleep(200)
  t.equal((await request({ port }, '/healthz')).status, 200, 'the server is fine')
  t.equal((await request({ port }, '/queues/abandoned')).status, 204, 'nothing was stored')
  t.notOk(s.logs.some((l) => l.level === 50), 'no error logged for a client that went away')
})
