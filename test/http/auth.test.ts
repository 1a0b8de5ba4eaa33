/**
 * HTTP Basic with auth.users: every route but /healthz answers 401 + WWW-Authenticate without
 * (or with wrong) credentials and works with them (plain and scrypt passwords); a receipt is bound
 * to the user who opened it.
 */
import t from 'tap'
import { randomBytes, scryptSync } from 'node:crypto'
import { serverFor } from '../helpers/server.js'
import { httpPortOf, request, type HttpTarget } from '../helpers/http.js'

const salt = randomBytes(8)
const scrypted = `scrypt$${salt.toString('hex')}$${scryptSync('hunter2', salt, 32).toString('hex')}`

const ROUTES: Array<{ method: string; path: string; body?: string; ok: number[] }> = [
  { method: 'POST', path: '/queues/locked', body: 'x', ok: [201] },
  { method: 'GET', path: '/queues', ok: [200] },
  { method: 'GET', path: '/queues/locked/peek', ok: [200] },
  { method: 'GET', path: '/queues/locked', ok: [200] },
  { method: 'GET', path: '/queues/locked?wait=10', ok: [204] },
  { method: 'POST', path: '/queues/locked/open', ok: [204] },
  { method: 'POST', path: '/queues/locked/close?receipt=00', ok: [404] },
  { method: 'POST', path: '/queues/locked/abort?receipt=00', ok: [404] },
  { method: 'DELETE', path: '/queues/locked', ok: [204] },
  { method: 'GET', path: '/metrics', ok: [200] },
  { method: 'GET', path: '/', ok: [200] },
]

t.test('every route needs credentials, except /healthz', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 }, auth: { users: { alice: 'wonderland', bob: scrypted } } } })
  const port = httpPortOf(s)
  const anonymous: HttpTarget = { port }
  const wrong: HttpTarget[] = [
    { port, auth: 'alice:wrong' },
    { port, auth: 'mallory:wonderland' },
    { port, auth: 'bob:hunter3' },
  ]
  const alice: HttpTarget = { port, auth: 'alice:wonderland' }

  t.equal((await request(anonymous, '/healthz')).status, 200, 'healthz needs no auth')
  for (const route of ROUTES) {
    const opts = { method: route.method, body: route.body }
    const none = await request(anonymous, route.path, opts)
    t.equal(none.status, 401, `${route.method} ${route.path} without credentials`)
    t.match(none.headers['www-authenticate'], /^Basic realm="starling"/)
    for (const w of wrong) t.equal((await request(w, route.path, opts)).status, 401, `${route.method} ${route.path} as ${w.auth}`)
    const garbled = await request(anonymous, route.path, { ...opts, headers: { Authorization: 'Basic !!!notbase64' } })
    t.equal(garbled.status, 401)
    t.ok(route.ok.includes((await request(alice, route.path, opts)).status), `${route.method} ${route.path} with credentials`)
  }
  t.equal((await request(anonymous, '/queues')).text, 'authentication required\n')

  // The scrypt user works too, and again (the verified header is remembered, the answer stays the same).
  const bob: HttpTarget = { port, auth: 'bob:hunter2' }
  t.equal((await request(bob, '/queues/b', { method: 'POST', body: 'for bob' })).status, 201)
  t.equal((await request(bob, '/queues/b')).text, 'for bob')
  t.equal((await request({ port, auth: 'bob:hunter3' }, '/queues/b')).status, 401, 'a wrong password is still refused after a right one')
})

t.test('a receipt is bound to the user who opened it', async (t) => {
  const s = await serverFor(t, { config: { http: { port: 0 }, auth: { users: { alice: 'a-pass', bob: 'b-pass' } } } })
  const port = httpPortOf(s)
  const alice: HttpTarget = { port, auth: 'alice:a-pass' }
  const bob: HttpTarget = { port, auth: 'bob:b-pass' }
  await request(alice, '/queues/jobs', { method: 'POST', body: 'job-1' })
  const opened = await request(alice, '/queues/jobs/open', { method: 'POST' })
  t.equal(opened.text, 'job-1')
  const receipt = opened.headers['x-starling-receipt'] as string
  t.equal((await request(bob, `/queues/jobs/close?receipt=${receipt}`, { method: 'POST' })).status, 404, "bob cannot close alice's receipt")
  t.equal((await request(bob, `/queues/jobs/abort?receipt=${receipt}`, { method: 'POST' })).status, 404, "nor abort it")
  t.equal((await request(bob, '/queues/jobs')).status, 204, 'the item is still open (not back in the queue)')
  t.equal((await request(alice, `/queues/jobs/close?receipt=${receipt}`, { method: 'POST' })).status, 204, 'alice closes it')
  const rows = JSON.parse((await request(alice, '/queues')).text) as Array<{ name: string; items: number; open: number }>
  t.same(rows.map((r) => [r.name, r.items, r.open]), [['jobs', 0, 0]])
})
