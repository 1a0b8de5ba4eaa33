/**
 * Bounded files and fds (issue 12 item 2, DESIGN §10), through the real server:
 * - 1,500 queues under `ulimit -n 256` keep serving, restart, and give every item back;
 * - reads of names that have no queue (text get/peek/stats/delete, a blocking get, meta, binary)
 *   create no file and leave no queue behind;
 * - `max_queues` refuses new queues with `SERVER_ERROR too many queues`.
 */
import t from 'tap'
import { readdirSync, readlinkSync } from 'node:fs'
import { BulkClient, isEnd, isReply } from '../helpers/bulk.js'
import { BinaryClient, get as binGet, frame, op, set as binSet } from '../helpers/binary.js'
import { serverFor, startServer, tempDir, removeDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

const QUEUES = 1500
const journalFiles = (spool: string): string[] => readdirSync(spool).filter((f) => f.endsWith('.sqj'))
/** fds of `pid` that point into `spool`. */
function spoolFds(pid: number, spool: string): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(spool)) n++
    } catch {
      /* closed meanwhile */
    }
  }
  return n
}

t.test('1,500 queues under ulimit -n 256: serve, restart, every item back', async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  let server = await startServer({ spool, fdLimit: 256 })
  t.teardown(async () => {
    if (server.proc.exitCode === null && server.proc.signalCode === null) await server.stop()
  })
  let c = await BulkClient.connect(server.port)
  const stored = await c.each(0, QUEUES, (i) => `set fd${i} 0 0 ${String(i).length}\r\n${i}\r\n`, isReply)
  t.equal(stored.filter((l) => l === 'STORED').length, QUEUES, 'every set stored')
  t.equal(journalFiles(spool).length, QUEUES, 'one journal file per queue')
  // default max_open_journals = min(256, 256 / 4) = 64; a few more while fsyncs are in flight
  t.ok(spoolFds(server.proc.pid!, spool) <= 64 + 8, `journal fds bounded (${spoolFds(server.proc.pid!, spool)} open)`)
  // a second round to each queue: every journal is reopened on demand
  const again = await c.each(0, QUEUES, (i) => `set fd${i} 0 0 1\r\nx\r\n`, isReply)
  t.equal(again.filter((l) => l === 'STORED').length, QUEUES, 'every queue still takes sets')
  c.close()
  t.equal(await server.stop(), 0, 'clean stop')

  server = await startServer({ spool, fdLimit: 256 })
  c = await BulkClient.connect(server.port)
  const lines = await c.each(0, QUEUES, (i) => `get fd${i}\r\nget fd${i}\r\n`, isEnd, 2)
  const values = lines.filter((l, k) => k > 0 && lines[k - 1]!.startsWith('VALUE '))
  t.equal(values.length, 2 * QUEUES, 'both items of every queue came back')
  t.ok(
    Array.from({ length: QUEUES }, (_, i) => values[2 * i] === String(i) && values[2 * i + 1] === 'x').every(Boolean),
    'in order, intact',
  )
  c.close()
  t.equal(await server.stop(), 0)
})

t.test('reads of names that have no queue create nothing', async (t) => {
  const server = await serverFor(t, { fdLimit: 256 })
  const raw = await RawClient.connect(server.port)
  t.teardown(() => raw.close())
  t.same(await raw.request('set real 0 0 1\r\nr\r\n'), ['STORED'])
  const before = journalFiles(server.spool)
  t.same(before.length, 1)
  const c = await BulkClient.connect(server.port)
  t.teardown(() => c.close())
  // far more names than fds: none may open a file
  const misses = await c.each(0, 2000, (i) => `get ghost${i}\r\nget ghost${i}/peek\r\nget ghost${i}/open\r\n`, isEnd, 3)
  t.equal(misses.filter((l) => l === 'END').length, 6000, 'every get and peek: empty')
  const deletes = await c.each(0, 500, (i) => `delete ghost${i}\r\n`, isReply)
  t.equal(deletes.filter((l) => l === 'NOT_FOUND').length, 500, 'delete: NOT_FOUND')
  t.same(await raw.request('stats ghost1\r\n'), ['END'], 'stats <name>: nothing')
  t.same(await raw.request('mg ghost2 v\r\n', /^(EN|HD|VA.*|NF|CLIENT_ERROR.*|SERVER_ERROR.*)$/), ['EN'], 'meta get: miss')
  t.same(await raw.request('md ghost3\r\n', /^(NF|HD|CLIENT_ERROR.*|SERVER_ERROR.*)$/), ['NF'], 'meta delete: not found')
  // a blocking get waits on a queue in memory only, and it goes when the wait ends
  t.same(await raw.request('get ghost4/t=200\r\n'), ['END'], 'blocking get: empty after the wait')
  const bin = await BinaryClient.connect(server.port)
  t.teardown(() => bin.close())
  t.equal((await bin.request(binGet('ghost5'))).status, 0x0001, 'binary GET: key not found')
  t.equal((await bin.request(frame({ opcode: op.DELETE, key: 'ghost6' }))).status, 0x0001, 'binary DELETE: key not found')
  t.same(journalFiles(server.spool), before, 'no journal file created')
  const stats = await raw.request('stats\r\n')
  t.same(
    stats.filter((l) => /^STAT queue_.*_items /.test(l) && !/_(total|expired|mem)_items /.test(l)).map((l) => l.split(' ')[1]),
    ['queue_real_items'],
    'no queue left in memory either',
  )
  // the real queue still works
  t.equal(await raw.get('real'), 'r')
})

t.test('max_queues refuses new queues with SERVER_ERROR too many queues', async (t) => {
  const server = await serverFor(t, { config: { max_queues: 3 } })
  const raw = await RawClient.connect(server.port)
  t.teardown(() => raw.close())
  for (const q of ['a', 'b', 'c']) t.same(await raw.request(`set ${q} 0 0 1\r\n${q}\r\n`), ['STORED'])
  t.same(await raw.request('set d 0 0 1\r\nd\r\n'), ['SERVER_ERROR too many queues'], 'a fourth queue is refused')
  t.same(await raw.request('set a 0 0 1\r\nA\r\n'), ['STORED'], 'existing queues still take sets')
  t.same(await raw.request('get d/t=50\r\n'), ['END'], 'a blocking get cannot make a fourth queue either')
  t.same(await raw.request('delete b\r\n'), ['DELETED'])
  t.same(await raw.request('set d 0 0 1\r\nd\r\n'), ['STORED'], 'room again after a delete')
  const bin = await BinaryClient.connect(server.port)
  t.teardown(() => bin.close())
  const refused = await bin.request(binSet('e', 'e'))
  t.equal(refused.status, 0x0086, 'binary SET: temporary failure')
  t.equal(journalFiles(server.spool).length, 3)
})

t.test('sync: always: sets creating queues are acknowledged after the file and its directory entry are fsynced; kill -9 loses none', async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  const server = await startServer({ spool, config: { sync: 'always' }, fdLimit: 256 })
  const c = await BulkClient.connect(server.port)
  const stored = await c.each(0, 400, (i) => `set dur${i} 0 0 ${String(i).length}\r\n${i}\r\n`, isReply)
  t.equal(stored.filter((l) => l === 'STORED').length, 400)
  c.close()
  await server.kill()
  const again = await startServer({ spool, fdLimit: 256 })
  t.teardown(async () => void (await again.stop()))
  const c2 = await BulkClient.connect(again.port)
  t.teardown(() => c2.close())
  const lines = await c2.each(0, 400, (i) => `get dur${i}\r\n`, isEnd)
  const values = lines.filter((l, k) => k > 0 && lines[k - 1]!.startsWith('VALUE '))
  t.same(values, Array.from({ length: 400 }, (_, i) => String(i)), 'every acknowledged item back')
})

t.test('max_open_journals caps the journal files held open', async (t) => {
  const server = await serverFor(t, { config: { max_open_journals: 8 } })
  const c = await BulkClient.connect(server.port)
  t.teardown(() => c.close())
  const stored = await c.each(0, 300, (i) => `set cap${i} 0 0 1\r\nx\r\n`, isReply)
  t.equal(stored.filter((l) => l === 'STORED').length, 300)
  t.equal(journalFiles(server.spool).length, 300)
  const open = spoolFds(server.proc.pid!, server.spool)
  t.ok(open <= 8, `${open} journal files open (cap 8)`)
  const got = await c.each(0, 300, (i) => `get cap${i}\r\n`, isEnd)
  t.equal(got.filter((l) => l.startsWith('VALUE ')).length, 300, 'every queue reopened on demand')
})
