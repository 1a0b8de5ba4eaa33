/**
 * Auth on the text port: with `auth:` users, text commands are refused until the client
 * authenticates with memcached's convention (`set <any> 0 0 <n>` + "user password"), unless
 * `allow_text_unauthenticated` is set. Passwords may be stored as salted scrypt hashes.
 */
import t from 'tap'
import { randomBytes, scryptSync } from 'node:crypto'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

const salt = randomBytes(16)
const hashed = `scrypt$${salt.toString('hex')}$${scryptSync('hunter2', salt, 32).toString('hex')}`

t.test('text commands need the set-convention login; plain and scrypt passwords', async (t) => {
  const s = await serverFor(t, { config: { auth: { users: { alice: 'secret', bob: hashed } } } })
  const c = await RawClient.connect(s.port)
  t.same(await c.request('get q\r\n'), ['CLIENT_ERROR unauthenticated'])
  t.equal(await c.set('auth', 'alice wrong'), 'CLIENT_ERROR authentication failure')
  t.same(await c.request('stats\r\n'), ['CLIENT_ERROR unauthenticated'], 'a failed login does not unlock')
  t.equal(await c.set('auth', 'alice secret'), 'STORED')
  t.equal(await c.set('q', 'payload'), 'STORED')
  t.equal(await c.get('q'), 'payload')
  c.close()

  const b = await RawClient.connect(s.port)
  t.equal(await b.set('auth', 'bob hunter3'), 'CLIENT_ERROR authentication failure')
  t.equal(await b.set('auth', 'bob hunter2'), 'STORED', 'scrypt-hashed password')
  t.equal(await b.set('q', 'x'), 'STORED')
  b.close()

  const nobody = await RawClient.connect(s.port)
  t.equal(await nobody.set('auth', 'mallory secret'), 'CLIENT_ERROR authentication failure', 'unknown user')
  t.equal(await nobody.set('auth', 'garbage'), 'CLIENT_ERROR authentication failure', 'malformed login')
  nobody.close()
})

t.test('allow_text_unauthenticated lets text through', async (t) => {
  const s = await serverFor(t, { config: { auth: { users: { alice: 'secret' }, allow_text_unauthenticated: true } } })
  const c = await RawClient.connect(s.port)
  t.equal(await c.set('open', 'door'), 'STORED')
  t.equal(await c.get('open'), 'door')
  c.close()
})
