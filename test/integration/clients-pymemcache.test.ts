/**
 * pymemcache (Python, text protocol) against the real server, and a meta-protocol exchange over a
 * raw Python socket, checked byte for byte.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, removeDir, type RunningServer } from '../helpers/server.js'
import { FIXTURES, requireTool, runJson } from '../helpers/clients.js'

const SCRIPT = join(FIXTURES, 'pymemcache_client.py')
// Debian's python3-pymemcache installs for the system interpreter, which a version manager's
// `python3` on PATH may not be.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'

t.before(() => requireTool(PYTHON, ['-c', 'import pymemcache'], 'python3 python3-pymemcache'))

let server: RunningServer
t.before(async () => {
  server = await startServer()
})
t.teardown(async () => {
  await server?.stop()
  if (server) removeDir(server.spool)
})

t.test('pymemcache set/get with its pickle serde', async (t) => {
  const r = await runJson(PYTHON, [SCRIPT, 'queues'], { PORT: String(server.port) })
  t.same(r.set, [true, true, true, true, true])
  t.same(r.dict, { name: 'job', n: 3, list: [1, 2.5, null] }, 'a dict comes back as a dict')
  t.equal(r.str, 'text value')
  t.equal(r.int, 12345)
  t.same(r.bytes, [0, 1, ...Buffer.from('raw'), 0xff])
  t.equal(r.noreply, 'noreply set', 'a noreply set is stored, in order')
  t.equal(r.empty, null, 'empty queue is None')
  t.same(r.multi, { py_m1: 'a', py_m2: 'b' }, 'get_many')
  t.equal(r.blocking, null)
  t.ok((r.blocking_ms as number) >= 250, `the /t=300 get waited (${String(r.blocking_ms)} ms)`)
  t.equal(r.delete, true)
  t.equal(r.delete_missing, false)
  t.match(r.add, /MemcacheClientError|CLIENT_ERROR/, 'add is refused with CLIENT_ERROR')
  t.equal(r.after_refusal, true)
  t.match(r.version, /^\d+\.\d+\.\d+/)
  t.equal(r.stats_pid, server.proc.pid, 'stats parsed by pymemcache')
})

t.test('meta protocol over a raw socket', async (t) => {
  const r = (await runJson(PYTHON, [SCRIPT, 'meta'], { PORT: String(server.port) })) as unknown as Array<[string, string]>
  t.same(r, [
    ['ms py_meta 5 T0 F3\r\nhello\r\n', 'HD\r\n'],
    ['ms py_meta 5 F9\r\nworld\r\n', 'HD\r\n'],
    ['mg py_meta v f\r\n', 'VA 5 f3\r\nhello\r\n'],
    ['mg py_meta v\r\n', 'VA 5\r\nworld\r\n'],
    ['mg py_meta v\r\n', 'EN\r\n'],
    ['ms py_meta 2 q\r\nhi\r\nmn\r\n', 'MN\r\n'],
    ['mg py_meta k v\r\n', 'VA 2 kpy_meta\r\nhi\r\n'],
    ['md py_meta\r\n', 'HD\r\n'],
    ['md py_meta\r\n', 'NF\r\n'],
    ['mn\r\n', 'MN\r\n'],
  ])
})
