/**
 * The small operational items of issue 12 (item 12), each through the real server: `stats reset`,
 * a spool path that cannot be created, the config file in the listening line, one replay summary
 * line, SIGHUP naming the settings that need a restart, and fanout children made by a get.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SERVER_MAIN, removeDir, serverFor, startServer, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { BinaryClient, frame, op } from '../helpers/binary.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function statMap(lines: string[]): Map<string, string> {
  return new Map(lines.filter((l) => l.startsWith('STAT ')).map((l) => [l.split(' ')[1]!, l.split(' ').slice(2).join(' ')]))
}

t.test('stats reset answers RESET and zeroes the cumulative counters', async (t) => {
  const s = await serverFor(t)
  const c = await RawClient.connect(s.port)
  for (let i = 0; i < 3; i++) t.equal(await c.set('q', `v${i}`), 'STORED')
  t.equal(await c.get('q'), 'v0')
  t.equal(await c.get('empty'), null)
  const before = statMap(await c.request('stats\r\n'))
  t.equal(before.get('cmd_set'), '3')
  t.equal(before.get('get_misses'), '1')
  t.same(await c.request('stats reset\r\n', /^(RESET|END|ERROR)$/), ['RESET'])
  const after = statMap(await c.request('stats\r\n'))
  for (const k of ['cmd_get', 'cmd_set', 'get_hits', 'get_misses']) t.equal(after.get(k), '0', `${k} reset`)
  t.equal(after.get('total_connections'), after.get('curr_connections'), 'total_connections restarts from the open ones')
  t.ok(Number(after.get('bytes_read')) < 40, 'bytes_read restarted (only the stats line since)')
  t.equal(after.get('curr_items'), '2', 'current values stay')
  t.equal(after.get('queue_q_items'), '2')
  c.close()

  const b = await BinaryClient.connect(s.port)
  b.send(frame({ opcode: op.STAT, key: 'reset' }))
  const r = await b.response()
  t.match(r, { opcode: op.STAT, status: 0, key: '' }, 'binary STAT reset: the terminator')
  b.close()
})

t.test('a spool path that cannot be created is one line and exit 1, quickly', async (t) => {
  for (const spool of ['/proc/starling-spool/queues', '/proc/self/starling']) {
    const r = spawnSync(process.execPath, [SERVER_MAIN, '-p', '0', '-q', spool], { encoding: 'utf8', timeout: 20_000 })
    t.equal(r.signal, null, `${spool}: not hanging (used to spin in recursive mkdir)`)
    t.equal(r.status, 1, `${spool}: exit 1`)
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
    t.match(r.stderr, `cannot use spool directory ${spool}`)
  }
})

t.test('listening names the config file; replay is one summary line at info, per queue at debug', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const conf = join(dir, 'starling.yml')
  writeFileSync(conf, 'starling:\n  log_level: info\n')
  const spool = join(dir, 'spool')
  const first = await startServer({ spool, args: ['-f', conf] })
  t.match(first.logs.find((l) => l.msg === 'listening'), { config: conf, spool })
  const c = await RawClient.connect(first.port)
  for (const q of ['a', 'b', 'c']) for (let i = 0; i < 4; i++) await c.set(q, 'x')
  c.close()
  t.equal(await first.stop(), 0)

  const info = await startServer({ spool, args: ['-f', conf] })
  const summaries = info.logs.filter((l) => l.msg === 'replay complete')
  t.equal(summaries.length, 1, 'one summary line')
  t.match(summaries[0], { level: 30, queues: 3, items: 12 })
  t.equal(info.logs.filter((l) => l.msg === 'journal replayed').length, 0, 'no per-queue lines at info')
  t.equal(await info.stop(), 0)

  const debug = await startServer({ spool, args: ['-f', conf, '-v'] })
  const perQueue = debug.logs.filter((l) => l.msg === 'journal replayed')
  t.same(perQueue.map((l) => l.queue).sort(), ['a', 'b', 'c'], 'per-queue lines at debug')
  t.ok(perQueue.every((l) => l.level === 20))
  t.equal(await debug.stop(), 0)
})

t.test('SIGHUP says which changed settings need a restart', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const conf = join(dir, 'starling.yml')
  writeFileSync(conf, 'starling:\n  max_items: 5\n  enable_flush_all: false\n')
  const s = await serverFor(t, { args: ['-f', conf] })
  writeFileSync(conf, 'starling:\n  max_items: 1\n  enable_flush_all: true\n  max_connections: 50\n')
  s.proc.kill('SIGHUP')
  const deadline = Date.now() + 10_000
  while (!s.logs.some((l) => l.msg === 'configuration reloaded') && Date.now() < deadline) await sleep(50)
  const reloaded = s.logs.find((l) => l.msg === 'configuration reloaded')
  t.same([...(reloaded!.applied as string[])].sort(), ['max_connections', 'per-queue defaults'], 'applied at once')
  t.same(reloaded!.needRestart, ['enable_flush_all'], 'needs a restart')
  const warn = s.logs.find((l) => String(l.msg).startsWith('changed settings need a restart'))
  t.match(warn, { level: 40, settings: ['enable_flush_all'], msg: 'changed settings need a restart: enable_flush_all' })
  const c = await RawClient.connect(s.port)
  t.equal(await c.set('capped', '1'), 'STORED')
  t.equal(await c.set('capped', '2'), 'SERVER_ERROR queue full', 'max_items applied at once')
  c.close()
})

t.test("a get on parent+child makes a durable fanout child (Kestrel's rule); stats names its parent", async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  const s = await startServer({ spool })
  const c = await RawClient.connect(s.port)
  t.equal(await c.get('a+b/peek'), null, 'a peek on a child that does not exist yet...')
  t.equal(await c.get('a+b+c'), null, '...and a get on a+b+c')
  t.equal(await c.set('a', 'one'), 'STORED')
  t.equal(await c.set('a+b', 'only-b'), 'STORED')
  const stats = await c.request('stats\r\n')
  const names = stats.map((l) => l.split(' ')[1])
  const m = statMap(stats)
  t.equal(m.get('queue_a+b_items'), '2', 'a+b got the copy of a, and its own item')
  t.equal(m.get('queue_a+b+c_items'), '1', 'a+b+c is a child of a, not of a+b')
  t.equal(m.get('queue_a+b_fanout_parent'), 'a')
  t.equal(m.get('queue_a+b+c_fanout_parent'), 'a')
  t.notOk(m.has('queue_a_fanout_parent'), 'a plain queue has no fanout_parent')
  t.ok(names.indexOf('queue_a+b_fanout_parent') > names.indexOf('queue_a+b_age'), "after Starling's fields")
  c.close()
  t.equal(await s.stop(), 0)

  const again = await startServer({ spool })
  const d = await RawClient.connect(again.port)
  t.equal(await d.set('a', 'two'), 'STORED')
  t.equal(await d.get('a+b+c'), 'one')
  t.equal(await d.get('a+b+c'), 'two', 'the child made by a get is durable: still fed after a restart')
  d.close()
  t.equal(await again.stop(), 0)
})
