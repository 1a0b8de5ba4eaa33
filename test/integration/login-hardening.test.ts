/**
 * Issue 12 items 4 and 5: logins hash off the event loop, a connection is closed after
 * auth.max_login_failures failed logins, each failure is logged (user and peer, never the password),
 * and a text login's password is everything after the first space. Real server, real sockets.
 */
import t from 'tap'
import { randomBytes, scryptSync } from 'node:crypto'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { BinaryClient, frame, op } from '../helpers/binary.js'

const salt = randomBytes(16)
const hashed = `scrypt$${salt.toString('hex')}$${scryptSync('hunter2', salt, 64).toString('hex')}`
const users = { alice: 's3cret', carol: 'correct horse battery', dave: hashed }
const FAILED = 'CLIENT_ERROR authentication failure'

function login(body: string): string {
  return `set auth 0 0 ${Buffer.byteLength(body)}\r\n${body}\r\n`
}

t.test('60 pipelined wrong scrypt logins do not stall another client', async (t) => {
  const s = await serverFor(t, { config: { auth: { users, max_login_failures: 1000 } } })
  const other = await RawClient.connect(s.port)
  t.teardown(() => other.close())
  t.equal(await other.set('auth', 'alice s3cret'), 'STORED')
  t.equal(await other.set('work', 'item'), 'STORED')

  const guesser = await RawClient.connect(s.port)
  t.teardown(() => guesser.close())
  guesser.send(Array.from({ length: 60 }, (_, i) => login(`dave wrong${i}`)).join(''))
  t.equal(await guesser.line(30_000), FAILED, 'the first wrong login is answered')

  // While the guesser's logins are still being hashed, the other client is served.
  t.equal(await other.get('work'), 'item')
  t.same(await other.request('version\r\n'), ['VERSION 1.0.0'])
  let answered = 1
  const pending = (guesser as unknown as { buf: Buffer }).buf.toString('latin1')
  answered += pending.split('\r\n').length - 1
  t.ok(answered < 60, `the other client was answered while logins were still being checked (${answered}/60 answered)`)
  t.equal(await guesser.line(30_000), FAILED, 'and the logins go on being answered')
})

t.test('commands after a login wait for its result', async (t) => {
  const s = await serverFor(t, { config: { auth: { users } } })
  const c = await RawClient.connect(s.port)
  t.teardown(() => c.close())
  // A scrypt login, then a command that needs it, in one write.
  c.send(login('dave hunter2') + 'set q 0 0 1\r\nA\r\nget q\r\n')
  t.same([await c.line(10_000), await c.line(), await c.line(), await c.line(), await c.line()], ['STORED', 'STORED', 'VALUE q 0 1', 'A', 'END'])
  const d = await RawClient.connect(s.port)
  t.teardown(() => d.close())
  d.send(login('dave nope') + 'get q\r\n')
  t.same([await d.line(10_000), await d.line()], [FAILED, 'CLIENT_ERROR unauthenticated'])
})

t.test('a connection is closed after max_login_failures failed logins', async (t) => {
  const s = await serverFor(t, { config: { auth: { users } } })
  const c = await RawClient.connect(s.port)
  t.equal(await c.set('auth', 'alice no1'), FAILED)
  t.equal(await c.set('auth', 'alice no2'), FAILED)
  t.equal(await c.set('auth', 'alice no3'), FAILED, 'the third failure is answered...')
  await c.waitClosed()
  t.ok(c.closed, '...then the connection is closed (default 3)')

  // Pipelined: the commands after the limit are not run.
  const p = await RawClient.connect(s.port)
  p.send(login('dave a') + login('dave b') + login('dave c') + login('alice s3cret') + 'version\r\n')
  t.same([await p.line(10_000), await p.line(10_000), await p.line(10_000)], [FAILED, FAILED, FAILED])
  await p.waitClosed(10_000)
  t.equal((p as unknown as { buf: Buffer }).buf.length, 0, 'nothing after the third failure')

  // Binary SASL counts the same way.
  const b = await BinaryClient.connect(s.port)
  for (let i = 0; i < 3; i++) {
    const r = await b.request(frame({ opcode: op.SASL_AUTH, key: 'PLAIN', value: Buffer.from(`\0alice\0bad${i}`) }))
    t.equal(r.status, 0x20, `SASL failure ${i + 1}`)
  }
  await b.waitClosed()
  t.ok(b.closed, 'binary connection closed after 3 failures')

  const limit1 = await serverFor(t, { config: { auth: { users, max_login_failures: 1 } } })
  const one = await RawClient.connect(limit1.port)
  t.equal(await one.set('auth', 'alice x'), FAILED)
  await one.waitClosed()
  t.ok(one.closed, 'auth.max_login_failures: 1 closes after the first failure')
})

t.test('failed logins are logged with user and peer, never the password', async (t) => {
  const s = await serverFor(t, { config: { auth: { users } } })
  const c = await RawClient.connect(s.port)
  t.teardown(() => c.close())
  const local = `${c.socket.localAddress}:${c.socket.localPort}`
  t.equal(await c.set('auth', 'alice Pa55-w0rd-not-in-logs'), FAILED)
  let entry: Record<string, unknown> | undefined
  for (let i = 0; i < 100 && !entry; i++) {
    await new Promise((r) => setTimeout(r, 50))
    entry = s.logs.find((e) => e.msg === 'login failed')
  }
  t.ok(entry, 'a log line for the failed login')
  t.equal(entry?.user, 'alice')
  t.equal(entry?.peer, local, 'the client address and port')
  t.equal(entry?.level, 40, 'at warn level')
  t.notOk(JSON.stringify(s.logs).includes('Pa55-w0rd-not-in-logs'), 'the password is nowhere in the log')
})

t.test('the text login password is everything after the first space', async (t) => {
  const s = await serverFor(t, { config: { auth: { users } } })
  const carol = await RawClient.connect(s.port)
  t.teardown(() => carol.close())
  t.equal(await carol.set('auth', 'carol correct horse battery'), 'STORED', 'a password with spaces')
  t.equal(await carol.set('q', 'x'), 'STORED')

  const alice = await RawClient.connect(s.port)
  t.teardown(() => alice.close())
  t.equal(await alice.set('auth', 'alice s3cret EXTRA'), FAILED, 'extra words are part of the password')
  t.equal(await alice.set('auth', 'alice  s3cret'), FAILED, 'so is a second space')
  t.equal(await alice.set('auth', 'alice s3cret'), 'STORED')
})
