/**
 * HTTP and memcached clients share the same queues and the same waiters: an item POSTed is read
 * by a memcached get (with its flags) and the other way; an HTTP wait is satisfied by a memcached
 * set and the other way; mixed waiters are served first come, first served; an HTTP client that
 * leaves while waiting stops being a waiter, and loses nothing.
 */
import t from 'tap'
import { request as rawHttpRequest } from 'node:http'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { httpPortOf, request, type HttpTarget } from '../helpers/http.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waiters(h: HttpTarget, queue: string): Promise<number> {
  const rows = JSON.parse((await request(h, '/queues')).text) as Array<{ name: string; waiters: number }>
  return rows.find((r) => r.name === queue)?.waiters ?? 0
}

async function until(what: string, pred: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

t.test('items cross between HTTP and memcached, flags included', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 } } })
  const h: HttpTarget = { port: httpPortOf(s) }
  const mc = await RawClient.connect(s.port)
  t.teardown(() => mc.socket.destroy())

  t.equal((await request(h, '/queues/x', { method: 'POST', body: 'from http', headers: { 'X-Starling-Flags': '42' } })).status, 201)
  t.same(await mc.request('get x\r\n'), ['VALUE x 42 9', 'from http', 'END'])

  t.same(await mc.request('set y 7 0 13\r\nfrom memcache\r\n'), ['STORED'])
  const got = await request(h, '/queues/y')
  t.equal(got.text, 'from memcache')
  t.equal(got.headers['x-starling-flags'], '7')
})

t.test('waiters on either side are served by the other side', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 } } })
  const h: HttpTarget = { port: httpPortOf(s) }
  const mc = await RawClient.connect(s.port)
  t.teardown(() => mc.socket.destroy())

  const httpWait = request(h, '/queues/w1?wait=10000')
  await until('the HTTP waiter', async () => (await waiters(h, 'w1')) === 1)
  t.same(await mc.request('set w1 0 0 5\r\nhello\r\n'), ['STORED'])
  t.equal((await httpWait).text, 'hello', 'an HTTP wait satisfied by a memcached set')

  const mcWait = mc.request('get w2/t=10000\r\n')
  await until('the memcached waiter', async () => (await waiters(h, 'w2')) === 1)
  t.equal((await request(h, '/queues/w2', { method: 'POST', body: 'world' })).status, 201)
  t.same(await mcWait, ['VALUE w2/t=10000 0 5', 'world', 'END'], 'a memcached wait satisfied by an HTTP POST')

  // An HTTP open with wait, served by a memcached set; closed over HTTP.
  const httpOpen = request(h, '/queues/w3/open?wait=10000', { method: 'POST' })
  await until('the HTTP open waiter', async () => (await waiters(h, 'w3')) === 1)
  t.same(await mc.request('set w3 0 0 3\r\njob\r\n'), ['STORED'])
  const opened = await httpOpen
  t.equal(opened.text, 'job')
  t.equal((await request(h, `/queues/w3/close?receipt=${opened.headers['x-starling-receipt']}`, { method: 'POST' })).status, 204)
  t.same(await mc.request('get w3\r\n'), ['END'], 'closed: gone for good')
})

t.test('mixed HTTP and memcached waiters are served in arrival order', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 } } })
  const h: HttpTarget = { port: httpPortOf(s) }
  const mcA = await RawClient.connect(s.port)
  const mcB = await RawClient.connect(s.port)
  const producer = await RawClient.connect(s.port)
  t.teardown(() => [mcA, mcB, producer].forEach((c) => c.socket.destroy()))

  const order: Array<Promise<string>> = []
  order.push(mcA.request('get fifo/t=20000\r\n').then((l) => l[1] ?? 'none'))
  await until('waiter 1', async () => (await waiters(h, 'fifo')) === 1)
  order.push(request(h, '/queues/fifo?wait=20000').then((r) => r.text))
  await until('waiter 2', async () => (await waiters(h, 'fifo')) === 2)
  order.push(mcB.request('get fifo/t=20000\r\n').then((l) => l[1] ?? 'none'))
  await until('waiter 3', async () => (await waiters(h, 'fifo')) === 3)
  order.push(request(h, '/queues/fifo/open?wait=20000', { method: 'POST' }).then((r) => r.text))
  await until('waiter 4', async () => (await waiters(h, 'fifo')) === 4)

  // Producers alternate protocols too.
  t.same(await producer.request('set fifo 0 0 2\r\ni1\r\n'), ['STORED'])
  t.equal((await request(h, '/queues/fifo', { method: 'POST', body: 'i2' })).status, 201)
  t.same(await producer.request('set fifo 0 0 2\r\ni3\r\n'), ['STORED'])
  t.equal((await request(h, '/queues/fifo', { method: 'POST', body: 'i4' })).status, 201)
  t.same(await Promise.all(order), ['i1', 'i2', 'i3', 'i4'], 'first come, first served across protocols')
})

t.test('an HTTP client that leaves while waiting stops waiting, and loses nothing', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 } } })
  const h: HttpTarget = { port: httpPortOf(s) }
  const mc = await RawClient.connect(s.port)
  t.teardown(() => mc.socket.destroy())

  for (const path of ['/queues/gone?wait=20000', '/queues/gone/open?wait=20000']) {
    const req = rawHttpRequest({ host: '127.0.0.1', port: h.port, path, method: path.includes('open') ? 'POST' : 'GET', agent: false })
    req.on('error', () => {})
    req.end()
    await until('the waiter', async () => (await waiters(h, 'gone')) === 1)
    req.destroy()
    await until('the waiter to leave', async () => (await waiters(h, 'gone')) === 0)
  }
  t.same(await mc.request('set gone 0 0 4\r\nkept\r\n'), ['STORED'])
  t.same(await mc.request('get gone\r\n'), ['VALUE gone 0 4', 'kept', 'END'], 'the item went to a live reader')
})
