/**
 * A clean shutdown with HTTP clients: a waiting GET is answered (204), keep-alive connections do
 * not hold the exit, the server exits 0, and an item held by an unconfirmed receipt is back after
 * the restart.
 */
import t from 'tap'
import { startServer, removeDir } from '../helpers/server.js'
import { httpPortOf, keepAliveAgent, request } from '../helpers/http.js'

t.test('SIGTERM with waiting and idle HTTP clients', async (t) => {
  const s = await startServer({ config: { http: { port: 0 } } })
  t.teardown(() => removeDir(s.spool))
  const agent = keepAliveAgent(2)
  t.teardown(() => agent.destroy())
  const h = { port: httpPortOf(s), agent }
  t.equal((await request(h, '/queues/held', { method: 'POST', body: 'precious' })).status, 201)
  const opened = await request(h, '/queues/held/open', { method: 'POST' })
  t.equal(opened.text, 'precious')
  t.ok((await request(h, '/healthz')).reusedSocket, 'an idle keep-alive connection is open')

  const waiting = request({ port: h.port }, '/queues/empty?wait=30000')
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const rows = JSON.parse((await request({ port: h.port }, '/queues')).text) as Array<{ name: string; waiters: number }>
    if (rows.find((r) => r.name === 'empty')?.waiters === 1) break
    await new Promise((r) => setTimeout(r, 20))
  }
  const started = Date.now()
  t.equal(await s.stop(), 0, 'exit status 0')
  t.ok(Date.now() - started < 20_000, 'the HTTP clients did not hold the shutdown')
  t.equal((await waiting).status, 204, 'the waiting GET was answered empty')

  const again = await startServer({ config: { http: { port: 0 } }, spool: s.spool })
  t.teardown(() => again.stop())
  const back = await request({ port: httpPortOf(again) }, '/queues/held')
  t.equal(back.text, 'precious', 'the unconfirmed open read is back after the restart')
})
