/**
 * dalli (Ruby, binary protocol) against the real server: Marshal-serialized values keep their
 * flags and come back as Ruby objects; SASL PLAIN with username/password options.
 */
import t from 'tap'
import { join } from 'node:path'
import { startServer, removeDir } from '../helpers/server.js'
import { FIXTURES, requireTool, runJson } from '../helpers/clients.js'
import { BinaryClient, get, op } from '../helpers/binary.js'

const SCRIPT = join(FIXTURES, 'dalli.rb')

t.before(() => requireTool('ruby', ['-e', 'require "dalli"; require "json"'], 'ruby ruby-dalli'))

t.test('dalli without auth', async (t) => {
  const server = await startServer()
  t.teardown(async () => {
    await server.stop()
    removeDir(server.spool)
  })
  const r = await runJson('ruby', [SCRIPT, 'queues'], { PORT: String(server.port) })
  t.same(r.set, [true, true, true, true], 'every set acknowledged')
  t.same(r.hash, { name: 'job', n: 3, list: [1, 2.5, null] })
  t.equal(r.hash_is_hash, true, 'a Ruby hash comes back as a hash')
  t.equal(r.string, 'plain string')
  t.equal(r.integer, 42)
  t.same(r.array, ['sym', 'x'])
  t.equal(r.empty, null, 'empty queue is nil')
  t.same(r.raw, [...Buffer.from('raw\0bytes')], 'raw bytes untouched')
  t.equal(r.big, true, 'a compressed value round-trips')
  t.same(r.multi, { dalli_m1: 'a', dalli_m2: 'b' }, 'get_multi (GETKQ + NOOP)')
  t.equal(r.blocking_empty, null)
  t.ok((r.blocking_ms as number) >= 250, `the /t=300 get waited (${String(r.blocking_ms)} ms)`)
  t.match(r.version, /^\d+\.\d+\.\d+/)
  t.equal(r.stats_has_pid, true)
  t.equal(r.delete, true)
  t.equal(r.delete_missing, false)
  t.match(r.add, /Not supported/)
  t.match(r.incr, /Not supported/)
  t.equal(r.after_refusal, true, 'the connection stays usable after a refusal')

  // The item dalli left behind carries dalli's "serialized" flag (bit 0) to any client.
  const c = await BinaryClient.connect(server.port)
  t.teardown(() => c.close())
  const item = await c.request(get('dalli_flags', op.GET))
  t.equal(item.status, 0)
  t.equal(item.extras.readUInt32BE(0) & 1, 1, 'flags preserved')
  t.equal(item.value.subarray(0, 2).toString('hex'), '0408', 'a Ruby Marshal payload')
})

t.test('dalli with SASL', async (t) => {
  const server = await startServer({ config: { auth: { users: { alice: 'secret' } } } })
  t.teardown(async () => {
    await server.stop()
    removeDir(server.spool)
  })
  const port = String(server.port)
  const good = await runJson('ruby', [SCRIPT, 'auth'], { PORT: port, DALLI_TEST_USER: 'alice', DALLI_TEST_PASSWORD: 'secret' })
  t.same(good, { set: true, get: { secret: true } }, 'right password: set and get work')
  const bad = await runJson('ruby', [SCRIPT, 'auth'], { PORT: port, DALLI_TEST_USER: 'alice', DALLI_TEST_PASSWORD: 'wrong' })
  t.match(bad.set, /Error authenticating: 0x20/, 'wrong password: set refused')
  t.match(bad.get, /Error authenticating|Authentication required/, 'wrong password: get refused')
  const none = await runJson('ruby', [SCRIPT, 'auth'], { PORT: port })
  t.match(none.set, /Authentication required|Response error 32/, 'no credentials: refused')
})
