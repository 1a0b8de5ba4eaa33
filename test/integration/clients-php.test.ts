/**
 * php-memcached (libmemcached underneath) against the real server, in text and binary mode:
 * PHP values serialized by flags come back as PHP values; SASL in binary mode.
 */
import t from 'tap'
import { join } from 'node:path'
import { startServer, removeDir, type RunningServer } from '../helpers/server.js'
import { FIXTURES, requireTool, runJson } from '../helpers/clients.js'
import { BinaryClient, get, op } from '../helpers/binary.js'

const SCRIPT = join(FIXTURES, 'php-memcached.php')

t.before(() => requireTool('php', ['-r', 'exit(class_exists("Memcached") ? 0 : 1);'], 'php-cli php-memcached'))

let server: RunningServer
t.before(async () => {
  server = await startServer()
})
t.teardown(async () => {
  await server?.stop()
  if (server) removeDir(server.spool)
})

for (const mode of ['text', 'binary'] as const) {
  t.test(`php-memcached, ${mode} protocol`, async (t) => {
    const r = await runJson('php', [SCRIPT, 'queues'], { PORT: String(server.port), BINARY: mode === 'binary' ? '1' : '0' })
    t.same(r.set, [true, true, true, true, true], 'every set acknowledged')
    t.same(r.array, { a: 1, b: [true, null, 2.5] }, 'a PHP array comes back as an array')
    t.equal(r.string, 'hello')
    t.equal(r.int, 12345)
    t.equal(r.float, 1.5)
    t.equal(r.bool, false)
    t.equal(r.bool_code, true, 'false was a stored value, not a miss')
    t.equal(r.empty, false)
    t.equal(r.empty_notfound, true, 'empty queue is RES_NOTFOUND')
    t.same(r.multi, { php_m1: 'one', php_m2: 'two' }, 'getMulti')
    t.equal(r.blocking, false)
    t.ok((r.blocking_ms as number) >= 250, `the /t=300 get waited (${String(r.blocking_ms)} ms)`)
    t.equal(r.delete, true)
    t.equal(r.delete_missing, false)
    t.equal(r.delete_missing_notfound, true)
    t.equal(r.add, false, 'add is refused')
    t.equal(r.after_refusal, true, 'the connection stays usable after a refusal')
    // libmemcached parses the server version and gives up on a major version of 0.
    t.match(r.version, /^[1-9]\d*\.\d+\.\d+/, 'getVersion (libmemcached needs a major version >= 1)')
    t.equal(r.stats_pid, String(server.proc.pid), 'getStats (libmemcached parses the version stat too)')

    const c = await BinaryClient.connect(server.port)
    t.teardown(() => c.close())
    const item = await c.request(get('php_flags', op.GET))
    t.equal(item.status, 0)
    t.equal(item.extras.readUInt32BE(0) & 0xf, 4, "php-memcached's serialized-value type (4) kept in the flags")
    t.match(item.value.toString(), /^a:1:\{s:1:"k";s:1:"v";\}$/, 'a PHP serialize() payload')
  })
}

t.test('php-memcached with SASL (binary protocol)', async (t) => {
  const authed = await startServer({ config: { auth: { users: { alice: 'secret' } } } })
  t.teardown(async () => {
    await authed.stop()
    removeDir(authed.spool)
  })
  const env = { PORT: String(authed.port), BINARY: '1', PHP_TEST_USER: 'alice' }
  t.same(await runJson('php', [SCRIPT, 'auth'], { ...env, PHP_TEST_PASSWORD: 'secret' }), {
    set: true,
    get: { secret: true },
    code: 0,
  })
  const bad = await runJson('php', [SCRIPT, 'auth'], { ...env, PHP_TEST_PASSWORD: 'wrong' })
  t.equal(bad.set, false, 'wrong password: set fails')
  t.equal(bad.get, false, 'wrong password: get fails')
  t.not(bad.code, 0)
})
