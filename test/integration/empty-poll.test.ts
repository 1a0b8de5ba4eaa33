/**
 * Issue 13: under `sync: always`, a get that finds its queue empty while the queue's journal has an
 * fsync in flight waits for that fsync and takes an item set meanwhile, instead of answering END at
 * once (engine/emptyPoll.ts). Real server, real sockets, real fsyncs.
 *
 * To hold an fsync in flight for as long as a step needs, the server runs with one libuv thread
 * (UV_THREADPOOL_SIZE=1) and a few connections send wrong scrypt logins first: the hashes occupy
 * the thread, so an fsync started after them waits behind them (hundreds of ms, not a clock the
 * test relies on: each step sends its next command right after the previous one's reply). The
 * server syncs on the pool only (STARLING_FSYNC_POOL=1): the fsync at the end of the turn, on the
 * loop, cannot be held (test/integration/turn-sync.test.ts covers polls with that one).
 */
import t, { type Test } from 'tap'
import { randomBytes, scryptSync } from 'node:crypto'
import { serverFor, type RunningServer } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { BinaryClient, frame, get as binGet, op } from '../helpers/binary.js'

const salt = randomBytes(16)
const users = { alice: 's3cret', dave: `scrypt$${salt.toString('hex')}$${scryptSync('hunter2', salt, 64).toString('hex')}` }
/** Connections hashing at once: each holds the single pool thread for one scrypt. */
const GUESSERS = 8

function login(body: string): string {
  return `set auth 0 0 ${Buffer.byteLength(body)}\r\n${body}\r\n`
}

async function start(t: Test, sync: string | number, more: Record<string, unknown> = {}): Promise<RunningServer> {
  // STARLING_FSYNC_POOL: every fsync on the (held) pool, none at the end of the turn on the loop
  return serverFor(t, { config: { sync, ...more, auth: { users, max_login_failures: 1000 } }, env: { UV_THREADPOOL_SIZE: '1', STARLING_FSYNC_POOL: '1' } })
}

async function client(t: Test, s: RunningServer): Promise<RawClient> {
  const c = await RawClient.connect(s.port)
  t.teardown(() => c.close())
  t.equal(await c.set('auth', 'alice s3cret'), 'STORED')
  return c
}

/** Occupy the server's thread pool with scrypt hashes: fsyncs started from now on wait. */
async function holdThreadPool(t: Test, s: RunningServer): Promise<void> {
  for (let i = 0; i < GUESSERS; i++) {
    const g = await RawClient.connect(s.port)
    t.teardown(() => g.close())
    g.send(login(`dave wrong${i}`))
  }
  // The logins must reach the server before the set whose fsync they hold up.
  const probe = await client(t, s)
  t.same(await probe.request('version\r\n'), ['VERSION 1.0.0'])
}

/** Empty queue `a` that exists (its journal is open), with no fsync in flight. */
async function emptyQueue(t: Test, c: RawClient): Promise<void> {
  t.equal(await c.set('a', 'x'), 'STORED')
  t.equal(await c.get('a'), 'x')
}

/**
 * Queue `a` empty with an fsync in flight: `p` sets `y` while the pool is held (its STORED waits),
 * and `c` takes it, since an item is visible once written.
 */
async function takeWithFsyncHeld(t: Test, s: RunningServer, c: RawClient, p: RawClient): Promise<void> {
  await emptyQueue(t, c)
  await holdThreadPool(t, s)
  p.send('set a 0 0 1\r\ny\r\n')
  t.equal(await c.get('a'), 'y')
}

/** Poll `stats` (from `q`) until `name` reads `value`: the server has taken the other client's command. */
async function statReaches(q: RawClient, name: string, value: string): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const lines = await q.request('stats\r\n', /^END$/)
    if (lines.includes(`STAT ${name} ${value}`)) return
    if (Date.now() > deadline) throw new Error(`stat ${name} never reached ${value}: ${lines.join(' | ')}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function statOf(lines: string[], name: string): string {
  const l = lines.find((x) => x.startsWith(`STAT ${name} `))
  if (!l) throw new Error(`no stat ${name}`)
  return l.slice(`STAT ${name} `.length)
}

/** The reply to `get a` when the item is 1 byte: the item, or null for END. */
async function pollReply(t: Test, c: RawClient): Promise<string | null> {
  const first = await c.line(60_000)
  if (first === 'END') return null
  t.equal(first, 'VALUE a 0 1')
  const item = await c.line()
  t.equal(await c.line(), 'END')
  return item
}

/**
 * The scenario: producer P sets `y` while the pool is held (its fsync is in flight), consumer C
 * takes it, then polls the empty queue; once the server has taken that get, producer Q sets `z`.
 * Returns what C's poll answered and the `waiters` stat seen before Q's set.
 */
async function pollDuringFsync(t: Test, s: RunningServer): Promise<{ poll: string | null; waiters: string }> {
  const c = await client(t, s)
  const p = await client(t, s)
  const q = await client(t, s)
  await emptyQueue(t, c)
  await holdThreadPool(t, s)
  p.send('set a 0 0 1\r\ny\r\n')
  const pStored = p.line(60_000)
  t.equal(await c.get('a'), 'y', 'an item is visible once written, before its fsync')
  const gets = Number(statOf(await q.request('stats\r\n', /^END$/), 'cmd_get'))
  c.send('get a\r\n')
  await statReaches(q, 'cmd_get', String(gets + 1))
  const waiters = statOf(await q.request('stats\r\n', /^END$/), 'queue_a_waiters')
  q.send('set a 0 0 1\r\nz\r\n')
  const poll = await pollReply(t, c)
  t.equal(await q.line(60_000), 'STORED')
  t.equal(await pStored, 'STORED')
  return { poll, waiters }
}

t.test('always: an empty poll during an fsync gets the item set meanwhile, not END', async (t) => {
  const s = await start(t, 'always')
  const { poll, waiters } = await pollDuringFsync(t, s)
  t.equal(waiters, '1', 'the poll waits as a blocked reader while the fsync is in flight')
  t.equal(poll, 'z', 'and takes the item set during the fsync')
})

t.test('always: with nothing arriving, the poll gets END once the fsync is done', async (t) => {
  const s = await start(t, 'always')
  const c = await client(t, s)
  const p = await client(t, s)
  await emptyQueue(t, c)
  await holdThreadPool(t, s)
  p.send('set a 0 0 1\r\ny\r\n')
  let stored = false
  const pStored = p.line(60_000).then((l) => ((stored = true), l))
  t.equal(await c.get('a'), 'y')
  t.notOk(stored, 'the set is not durable yet: its fsync is held')
  c.send('get a\r\n')
  t.equal(await c.line(60_000), 'END')
  t.equal(await pStored, 'STORED')
  t.equal(await c.get('a'), null, 'with no fsync in flight, END at once')
})

/**
 * Consumers C1 and C2 poll the empty queue during fsync A (P's set); more hashes then hold the
 * pool, and Q's set (fsync B, queued behind them) goes to C1. When A ends, C2 has no item but B is
 * still in flight; then R sets `w`. Returns C2's reply: `w` if it waited on for B, else null (END).
 */
async function pollAcrossFsyncs(t: Test, s: RunningServer): Promise<string | null> {
  const [c1, c2, p, q, r] = [await client(t, s), await client(t, s), await client(t, s), await client(t, s), await client(t, s)]
  await takeWithFsyncHeld(t, s, c1, p)
  const pStored = p.line(60_000)
  c1.send('get a\r\n')
  await statReaches(q, 'queue_a_waiters', '1')
  c2.send('get a\r\n')
  await statReaches(q, 'queue_a_waiters', '2')
  await holdThreadPool(t, s)
  q.send('set a 0 0 1\r\nz\r\n')
  t.same([await c1.line(60_000), await c1.line(), await c1.line()], ['VALUE a 0 1', 'z', 'END'], 'the first poll takes z')
  t.equal(await pStored, 'STORED', 'fsync A is done')
  r.send('set a 0 0 1\r\nw\r\n')
  const got = await pollReply(t, c2)
  t.same([await q.line(60_000), await r.line(60_000)], ['STORED', 'STORED'])
  return got
}

t.test('always: a poll whose fsyncs ended waits on while a later fsync is in flight', async (t) => {
  const s = await start(t, 'always', { max_poll_wait: 60_000 })
  t.equal(await pollAcrossFsyncs(t, s), 'w', 'the second poll takes the item set during fsync B')
})

t.test('always: max_poll_wait bounds that (0: the miss once the first fsyncs end)', async (t) => {
  for (const wait of [0, 1]) {
    await t.test(`max_poll_wait: ${wait}`, async (t) => {
      const s = await start(t, 'always', { max_poll_wait: wait })
      t.equal(await pollAcrossFsyncs(t, s), null, 'END when fsync A ends; w stays queued')
    })
  }
})

t.test('always: pipelined get / set / get gives the replies of one at a time', async (t) => {
  const s = await start(t, 'always')
  const c = await client(t, s)
  const p = await client(t, s)
  await takeWithFsyncHeld(t, s, c, p)
  // a is empty with an fsync in flight: one write, then the same commands one at a time.
  c.send('get a\r\nset a 0 0 1\r\nw\r\nget a\r\nget a\r\n')
  const replies: string[] = []
  for (let i = 0; i < 6; i++) replies.push(await c.line(60_000))
  t.same(replies, ['END', 'STORED', 'VALUE a 0 1', 'w', 'END', 'END'])
  t.equal(await p.line(60_000), 'STORED')
})

t.test('always: meta mg and binary GETQ polls wait too, served in arrival order', async (t) => {
  const s = await start(t, 'always')
  const c = await client(t, s)
  const p = await client(t, s)
  const q = await client(t, s)
  const bin = await BinaryClient.connect(s.port)
  t.teardown(() => bin.close())
  t.equal((await bin.request(frame({ opcode: op.SASL_AUTH, key: 'PLAIN', value: Buffer.from('\0alice\0s3cret') }))).status, 0)
  await takeWithFsyncHeld(t, s, c, p)
  c.send('mg a v\r\n')
  await statReaches(q, 'queue_a_waiters', '1')
  bin.send(binGet('a', op.GETQ, 7))
  await statReaches(q, 'queue_a_waiters', '2')
  q.send('set a 0 0 2\r\nm1\r\nset a 0 0 2\r\nm2\r\n')
  t.same([await c.line(60_000), await c.line()], ['VA 2', 'm1'], 'the first poll gets the first item')
  const r = await bin.response(60_000)
  t.same([r.opcode, r.status, r.opaque, r.value.toString()], [op.GETQ, 0, 7, 'm2'], 'the second poll the second')
  t.same([await q.line(60_000), await q.line(60_000), await p.line(60_000)], ['STORED', 'STORED', 'STORED'])
  // Nothing arriving: a quiet miss stays silent, the NOOP after it comes once the fsync is done.
  p.send('set a 0 0 1\r\ny\r\n')
  t.equal(await c.get('a'), 'y')
  bin.send(Buffer.concat([binGet('a', op.GETQ, 9), frame({ opcode: op.NOOP, opaque: 10 })]))
  const rs = await bin.responsesUntil(op.NOOP, 60_000)
  t.same(rs.map((x) => x.opcode), [op.NOOP], 'the quiet miss sends nothing')
  t.equal(await p.line(60_000), 'STORED')
})

t.test('always: a Kestrel /open poll waits too, and its item is an open read', async (t) => {
  const s = await start(t, 'always')
  const c = await client(t, s)
  const p = await client(t, s)
  const q = await client(t, s)
  await takeWithFsyncHeld(t, s, c, p)
  c.send('get a/open\r\n')
  await statReaches(q, 'queue_a_waiters', '1')
  q.send('set a 0 0 1\r\nz\r\n')
  t.same([await c.line(60_000), await c.line(), await c.line()], ['VALUE a/open 0 1', 'z', 'END'])
  t.same([await p.line(60_000), await q.line(60_000)], ['STORED', 'STORED'])
  await statReaches(q, 'queue_a_open_transactions', '1')
  c.send('get a/close\r\n')
  t.equal(await c.line(60_000), 'END', 'closing the open read')
  await statReaches(q, 'queue_a_open_transactions', '0')
})

t.test('never and periodic sync: an empty get is answered at once', async (t) => {
  for (const sync of ['never', 50]) {
    await t.test(`sync: ${sync}`, async (t) => {
      const s = await start(t, sync)
      const { poll, waiters } = await pollDuringFsync(t, s)
      t.equal(waiters, '0', 'nobody waits')
      t.equal(poll, null, 'END at once; the item set later stays queued')
    })
  }
})
