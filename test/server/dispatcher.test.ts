/**
 * The dispatcher: a Session per connection over one QueueCollection (real journals in a temp
 * spool). Commands reach the engine with memcached's exptime converted; closing a session gives
 * its open reads back; flush_all and shutdown only when enabled; SASL PLAIN against plain and
 * scrypt passwords.
 */
import { randomBytes, scryptSync } from 'node:crypto'
import t from 'tap'
import type { AuthConfig } from '../../src/server/config.js'
import { Dispatcher, passwordMatches, type DeliveredItem, type DispatcherOptions, type Session } from '../../src/server/dispatcher.js'
import { PLAIN_READ, type QueueReadOptions } from '../../src/server/engine/requests.js'
import { journalFactory } from '../../src/server/journal/index.js'
import { openCollection } from '../helpers/engine.js'
import { tempSpool } from '../helpers/journal.js'

async function dispatcherFor(
  t: Parameters<typeof openCollection>[0],
  options: Partial<DispatcherOptions> = {},
): Promise<{ dispatcher: Dispatcher; options: DispatcherOptions; calls: { shutdown: number; verbosity: number[] } }> {
  const { collection } = await openCollection(t, tempSpool(t))
  const calls = { shutdown: 0, verbosity: [] as number[] }
  const full: DispatcherOptions = {
    collection,
    stats: {
      version: '9.9.9',
      server: { startedAt: Date.now(), currConnections: 0, totalConnections: 0, bytesRead: 0, bytesWritten: 0 },
      collection,
      journal: () => journalFactory.stats(),
    },
    version: '9.9.9',
    auth: null,
    enableFlushAll: false,
    enableShutdown: false,
    requestShutdown: () => calls.shutdown++,
    setVerbosity: (level) => calls.verbosity.push(level),
    ...options,
  }
  return { dispatcher: new Dispatcher(full), options: full, calls }
}

const set = (s: Session, q: string, v: string, exptime = 0) =>
  new Promise<void>((resolve, reject) => s.set(q, 0, exptime, Buffer.from(v), (err) => (err ? reject(err) : resolve())))

const get = (s: Session, q: string, o: Partial<QueueReadOptions> = {}) =>
  new Promise<DeliveredItem | null>((resolve, reject) => s.get(q, { ...PLAIN_READ, ...o }, (err, item) => (err ? reject(err) : resolve(item))))

const text = (item: DeliveredItem | null) => item?.data.toString() ?? null

t.test('set and get through a session: flags kept, cas is the seq, exptime converted', async (t) => {
  const { dispatcher } = await dispatcherFor(t)
  const s = dispatcher.createSession()
  await new Promise<void>((resolve, reject) => s.set('q', 0xdeadbeef, 0, Buffer.from('v'), (err) => (err ? reject(err) : resolve())))
  const item = await get(s, 'q')
  t.equal(text(item), 'v')
  t.equal(item?.flags, 0xdeadbeef)
  t.ok((item?.cas ?? 0) > 0, 'cas is never 0')
  t.equal(item?.expiresAt, 0)
  const before = Date.now()
  await set(s, 'q', 'relative', 100)
  const rel = await get(s, 'q')
  t.ok(rel!.expiresAt! >= before + 100_000 && rel!.expiresAt! <= Date.now() + 100_000, 'up to 30 days: seconds from now')
  await set(s, 'q', 'absolute', 4_000_000_000)
  t.equal((await get(s, 'q'))?.expiresAt, 4_000_000_000_000, 'beyond 30 days: a Unix time')
  await set(s, 'q', 'negative', -1)
  t.equal(await get(s, 'q'), null, 'negative: already expired, never returned')
})

t.test('closing a session gives its open reads back and ends it', async (t) => {
  const { dispatcher } = await dispatcherFor(t)
  const a = dispatcher.createSession()
  const b = dispatcher.createSession()
  await set(a, 'q', 'x')
  t.equal(text(await get(a, 'q', { open: true })), 'x')
  t.equal(await get(b, 'q'), null, 'held by a')
  a.close()
  a.close()
  t.equal(text(await get(b, 'q')), 'x', 'back in the queue')
  await t.rejects(set(a, 'q', 'after close'), { code: 'SHUTTING_DOWN' })
  t.equal(await get(a, 'q'), null)
})

t.test('flush_all is a no-op unless enabled', async (t) => {
  for (const enableFlushAll of [false, true]) {
    const { dispatcher } = await dispatcherFor(t, { enableFlushAll })
    const s = dispatcher.createSession()
    await set(s, 'q', 'x')
    await new Promise<void>((resolve) => s.flushAll(() => resolve()))
    t.equal(text(await get(s, 'q')), enableFlushAll ? null : 'x', `enableFlushAll: ${enableFlushAll}`)
  }
})

t.test('shutdown only when enabled; verbosity and byte counts reach the server', async (t) => {
  const off = await dispatcherFor(t)
  t.equal(off.dispatcher.createSession().shutdown(), false)
  const on = await dispatcherFor(t, { enableShutdown: true })
  const s = on.dispatcher.createSession()
  t.equal(s.shutdown(), true)
  await new Promise((r) => setImmediate(r))
  t.equal(on.calls.shutdown, 1, 'requested after the reply')
  s.verbosity(2)
  t.same(on.calls.verbosity, [2])
  s.countBytes(10, 20)
  t.match(on.options.stats.server, { bytesRead: 10, bytesWritten: 20 })
  t.equal(s.version(), '9.9.9')
})

/** authenticate() as a promise: `ok`, and whether the connection must now be closed. */
const login = (s: Session, mechanism: string, payload: Buffer) =>
  new Promise<{ ok: boolean; close: boolean }>((resolve) => s.authenticate(mechanism, payload, (ok, close) => resolve({ ok, close })))

const matches = (stored: string, given: string) => new Promise<boolean>((resolve) => passwordMatches(stored, given, resolve))

t.test('SASL PLAIN: plain and scrypt passwords, one session at a time', async (t) => {
  const salt = randomBytes(16)
  const hash = scryptSync('s3cret', salt, 32)
  const auth: AuthConfig = {
    users: { alice: 'plain-pw', bob: `scrypt$${salt.toString('hex')}$${hash.toString('hex')}` },
    allowTextUnauthenticated: false,
    maxLoginFailures: 10,
  }
  const { dispatcher } = await dispatcherFor(t, { auth })
  const plain = (user: string, pw: string) => Buffer.from(`\0${user}\0${pw}`)
  const s = dispatcher.createSession()
  t.equal(s.authRequired, true)
  t.equal(s.authenticated, false)
  t.equal(s.textAllowedUnauthenticated, false)
  t.same(s.saslMechanisms(), ['PLAIN'])
  t.same(await login(s, 'PLAIN', plain('alice', 'wrong')), { ok: false, close: false })
  t.equal((await login(s, 'CRAM-MD5', plain('alice', 'plain-pw'))).ok, false, 'only PLAIN')
  t.equal((await login(s, 'PLAIN', Buffer.from('alice plain-pw'))).ok, false, 'malformed payload')
  t.equal((await login(s, 'PLAIN', plain('nobody', 'x'))).ok, false)
  t.equal((await login(s, 'PLAIN', plain('toString', 'x'))).ok, false, 'no inherited property is a user')
  t.same(await login(s, 'plain', plain('alice', 'plain-pw')), { ok: true, close: false })
  t.equal(s.authenticated, true)
  const other = dispatcher.createSession()
  t.equal(other.authenticated, false, 'authentication belongs to one session')
  t.equal((await login(other, 'PLAIN', plain('bob', 's3cret'))).ok, true, 'scrypt hash')
  t.equal((await login(other, 'PLAIN', plain('bob', 's3cre'))).ok, false, 'a later failure signs the session out')
  t.equal(other.authenticated, false)

  const open = (await dispatcherFor(t)).dispatcher.createSession()
  t.equal(open.authRequired, false)
  t.equal(open.authenticated, true, 'no auth configured: every session is in')
})

t.test('auth.max_login_failures: the failure that reaches it says close the connection', async (t) => {
  const auth: AuthConfig = { users: { alice: 'pw' }, allowTextUnauthenticated: false, maxLoginFailures: 2 }
  const { dispatcher } = await dispatcherFor(t, { auth })
  const s = dispatcher.createSession()
  const wrong = Buffer.from('\0alice\0nope')
  t.same(await login(s, 'PLAIN', wrong), { ok: false, close: false })
  t.same(await login(s, 'PLAIN', wrong), { ok: false, close: true })
})

t.test('passwordMatches', async (t) => {
  t.equal(await matches('pw', 'pw'), true)
  t.equal(await matches('pw', 'pw2'), false)
  t.equal(await matches('pw', ''), false)
  t.equal(await matches('scrypt$00$', 'x'), false, 'an empty hash never matches')
})
