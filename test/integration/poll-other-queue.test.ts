/**
 * An empty poll parked on one queue (sync: always, an fsync in flight: engine/emptyPoll.ts) waits
 * on that queue only. Idle queues share one empty set of waiters (issue 17); a poll parked into
 * that shared set was seen by every idle queue, and a set on another queue was handed to it (the
 * poller of `a` got `b`'s item). Real server, real fsyncs held up as in empty-poll.test.ts: one
 * libuv thread, busy with wrong scrypt logins, and every fsync on that pool (STARLING_FSYNC_POOL=1).
 */
import t, { type Test } from 'tap'
import { randomBytes, scryptSync } from 'node:crypto'
import { serverFor, type RunningServer } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

const salt = randomBytes(16)
const users = { alice: 's3cret', dave: `scrypt$${salt.toString('hex')}$${scryptSync('hunter2', salt, 64).toString('hex')}` }

const login = (body: string): string => `set auth 0 0 ${Buffer.byteLength(body)}\r\n${body}\r\n`

async function client(t: Test, s: RunningServer): Promise<RawClient> {
  const c = await RawClient.connect(s.port)
  t.teardown(() => c.close())
  t.equal(await c.set('auth', 'alice s3cret'), 'STORED')
  return c
}

function statOf(lines: string[], name: string): string | undefined {
  return lines.find((x) => x.startsWith(`STAT ${name} `))?.slice(`STAT ${name} `.length)
}

t.test('a poll parked on queue a is not handed an item set on idle queue b', async (t) => {
  const s = await serverFor(t, { config: { sync: 'always', auth: { users, max_login_failures: 1000 } }, env: { UV_THREADPOOL_SIZE: '1', STARLING_FSYNC_POOL: '1' } })
  const c = await client(t, s)
  const p = await client(t, s)
  const q = await client(t, s)
  // a and b exist, empty, and have never had a waiter
  for (const name of ['a', 'b']) {
    t.equal(await c.set(name, 'x'), 'STORED')
    t.equal(await c.get(name), 'x')
  }
  // hold the pool thread: the fsync of p's set stays in flight
  for (let i = 0; i < 8; i++) {
    const g = await RawClient.connect(s.port)
    t.teardown(() => g.close())
    g.send(login(`dave wrong${i}`))
  }
  t.same(await q.request('version\r\n'), ['VERSION 1.0.0'])
  p.send('set a 0 0 1\r\ny\r\n')
  const pStored = p.line(60_000)
  t.equal(await c.get('a'), 'y', 'the item is visible once written')
  const gets = Number(statOf(await q.request('stats\r\n', /^END$/), 'cmd_get'))
  c.send('get a\r\n') // a is empty, its fsync in flight: the poll parks
  const deadline = Date.now() + 30_000
  let stats: string[] = []
  for (;;) {
    stats = await q.request('stats\r\n', /^END$/)
    if (statOf(stats, 'cmd_get') === String(gets + 1)) break
    if (Date.now() > deadline) throw new Error('the server never took the poll')
    await new Promise((r) => setTimeout(r, 20))
  }
  t.equal(statOf(stats, 'queue_a_waiters'), '1', 'the poll waits on a')
  t.equal(statOf(stats, 'queue_b_waiters'), '0', 'and not on b')
  q.send('set b 0 0 1\r\nz\r\n')
  t.equal(await c.line(60_000), 'END', "the poll on a ends with a miss, not with b's item")
  t.equal(await q.line(60_000), 'STORED')
  t.equal(await pStored, 'STORED')
  t.equal(await q.get('b'), 'z', "b's item is in b")
  t.equal(await q.get('a'), null)
})
