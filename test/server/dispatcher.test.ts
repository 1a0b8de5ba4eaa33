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

t.test('SASL PLAIN: plain and scrypt passwords, one session at a time', async (t) => {
  const salt = randomBytes(16)
  const hash = scryptSync('s3cret', salt, 32)
  const auth: AuthConfig = { users: { alice: 'plain-pw', bob: `scrypt$${salt.toString('hex')}$${hash.toString('hex')}` }, allowTextUnauthenticated: false }
  const { dispatcher } = await dispatcherFor(t, { auth })
  const plain = (user: string, pw: string) => Buffer.from(`\0${user}\0${pw}`)
  const s = dispatcher.createSession()
  t.equal(s.authRequired, true)
  t.equal(s.authenticated, false)
  t.equal(s.textAllowedUnauthenticated, false)
  t.same(s.saslMechanisms(), ['PLAIN'])
  t.equal(s.authenticate('PLAIN', plain('alice', 'wrong')), false)
  t.equal(s.authenticate('CRAM-MD5', plain('alice', 'plain-pw')), false, 'only PLAIN')
  t.equal(s.authenticate('PLAIN', Buffer.from('alice plain-pw')), false, 'malformed payload')
  t.equal(s.authenticate('PLAIN', plain('nobody', 'x')), false)
  t.equal(s.authenticate('PLAIN', plain('toString', 'x')), false, 'no inherited property is a user')
  t.equal(s.authenticate('plain', plain('alice', 'plain-pw')), true)
  t.equal(s.authenticated, true)
  const other = dispatcher.createSession()
  t.equal(other.authenticated, false, 'authentication belongs to one session')
  t.equal(other.authenticate('PLAIN', plain('bob', 's3cret')), true, 'scrypt hash')
  t.equal(other.authenticate('PLAIN', plain('bob', 's3cre')), false, 'a later failure signs the session out')
  t.equal(other.authenticated, false)

  const open = (await dispatcherFor(t)).dispatcher.createSession()
  t.equal(open.authRequired, false)
  t.equal(open.authenticated, true, 'no auth configured: every session is in')
})

t.test('passwordMatches', async (t) => {
  t.equal(passwordMatches('pw', 'pw'), true)
  t.equal(passwordMatches('pw', 'pw2'), false)
  t.equal(passwordMatches('pw', ''), false)
  t.equal(passwordMatches('scrypt$00$', 'x'), false, 'an empty hash never matches')
})
