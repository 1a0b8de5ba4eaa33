/**
 * TextHandler over a real loopback socket, with an in-memory Session below it (test/helpers/
 * textSession.ts): every text command's reply byte for byte, ordering of delayed replies, noreply,
 * key options, errors from the layer below, framing errors and resync, auth.
 */
import t, { type Test } from 'tap'
import type { RawClient } from '../helpers/textClient.js'
import { CollectingSink, DEFAULT_LIMITS, MemorySession, MemoryStore, textServerWithClient } from '../helpers/textSession.js'
import { Outbox } from '../../src/server/protocol/outbox.js'
import { TextHandler } from '../../src/server/protocol/text/handler.js'

/** Read `n` reply lines. */
async function lines(c: RawClient, n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(await c.line())
  return out
}

/** Nothing more arrives within `ms`. */
async function silent(t: Test, c: RawClient, ms = 80): Promise<void> {
  c.send('version\r\n')
  t.equal(await c.line(), 'VERSION 9.9.9', `nothing before the probe`)
  await new Promise((r) => setTimeout(r, ms))
}

t.test('set then get: byte-exact replies, flags and data round trip', async (t) => {
  const { client } = await textServerWithClient(t)
  t.equal(await client.set('jobs', 'hello', 42), 'STORED')
  client.send('get jobs\r\n')
  const reply = 'VALUE jobs 42 5\r\nhello\r\nEND\r\n'
  t.equal((await client.bytes(reply.length)).toString('latin1'), reply)
  client.send('get jobs\r\n')
  t.equal(await client.line(), 'END', 'FIFO: empty now')
  // binary data with CR/LF inside
  const payload = Buffer.from([0, 13, 10, 255, 13, 10])
  t.equal(await client.set('bin', payload, 4294967295), 'STORED')
  client.send('get bin\r\n')
  t.equal(await client.line(), 'VALUE bin 4294967295 6')
  t.same([...(await client.bytes(8))], [...payload, 13, 10])
  t.equal(await client.line(), 'END')
})

t.test('gets includes the cas id', async (t) => {
  const { client } = await textServerWithClient(t)
  await client.set('a', '1')
  client.send('gets a\r\n')
  t.match(await client.line(), /^VALUE a 0 1 [1-9]\d*$/)
  t.equal(await client.line(), '1')
  t.equal(await client.line(), 'END')
})

t.test('multi-get reply is exactly the hits then END', async (t) => {
  const { client } = await textServerWithClient(t)
  await client.set('a', 'x')
  await client.set('b', 'yy')
  client.send('get a missing b/t=10 a\r\nversion\r\n')
  const expected = 'VALUE a 0 1\r\nx\r\nVALUE b/t=10 0 2\r\nyy\r\nEND\r\nVERSION 9.9.9\r\n'
  t.equal((await client.bytes(expected.length)).toString('latin1'), expected)
})

t.test('blocking get waits for an item set on another connection; later replies stay behind it', async (t) => {
  const { client, connect } = await textServerWithClient(t)
  const producer = await connect()
  client.send('get work/t=2000\r\nversion\r\n')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(await producer.set('work', 'job1'), 'STORED')
  const expected = 'VALUE work/t=2000 0 4\r\njob1\r\nEND\r\nVERSION 9.9.9\r\n'
  t.equal((await client.bytes(expected.length)).toString('latin1'), expected)
  // timeout expiry: END after roughly the wait
  const started = Date.now()
  client.send('get work/t=150\r\n')
  t.equal(await client.line(), 'END')
  t.ok(Date.now() - started >= 140, 'waited for the timeout')
})

t.test('multi-get keys are served one after another, each with its own wait', async (t) => {
  const { client, connect } = await textServerWithClient(t)
  const producer = await connect()
  const started = Date.now()
  client.send('get a/t=100 b/t=100\r\n')
  await new Promise((r) => setTimeout(r, 150))
  // a has already timed out; b is now waiting and gets this item
  await producer.set('b', 'late')
  t.same(await lines(client, 3), ['VALUE b/t=100 0 4', 'late', 'END'])
  t.ok(Date.now() - started >= 140)
})

t.test('slow set (journal) then pipelined get: replies stay in command order', async (t) => {
  const { client } = await textServerWithClient(t)
  await client.set('other', 'o')
  client.send('set slow1 0 0 1\r\nx\r\nget other\r\nversion\r\n')
  t.same(await lines(client, 5), ['STORED', 'VALUE other 0 1', 'o', 'END', 'VERSION 9.9.9'])
  t.equal(await client.get('slow1'), 'x')
})

t.test('noreply: nothing back for set/delete/flush/flush_all/verbosity, errors from below suppressed too', async (t) => {
  const { client, server } = await textServerWithClient(t)
  client.send('set q 0 0 1 noreply\r\na\r\nset full 0 0 1 noreply\r\nb\r\ndelete none noreply\r\nflush_all noreply\r\nverbosity 3 noreply\r\nflush x noreply\r\n')
  await silent(t, client)
  t.equal(await client.get('q'), 'a', 'the noreply set was stored')
  t.equal(server.store.verbosity, 3)
  t.equal(server.store.flushAllCalls, 1)
})

t.test('delete, flush, flush_all, stats, version, verbosity, shutdown', async (t) => {
  const { client, server } = await textServerWithClient(t)
  await client.set('q', '1')
  await client.set('q', '2')
  t.same(await client.request('stats\r\n'), ['STAT pid 1234', 'STAT version 9.9.9', 'STAT queue_q_items 2', 'END'])
  t.same(await client.request('stats q\r\n'), ['STAT queue_q_items 2', 'END'])
  t.same(await client.request('stats nope\r\n'), ['END'])
  t.same(await client.request('flush q\r\n'), ['OK'])
  t.equal(await client.get('q'), null)
  t.same(await client.request('delete q\r\n'), ['DELETED'])
  t.same(await client.request('delete q\r\n'), ['NOT_FOUND'])
  t.same(await client.request('delete q 0\r\n'), ['NOT_FOUND'])
  t.same(await client.request('delete q 10\r\n'), ['CLIENT_ERROR bad command line format'])
  t.same(await client.request('flush_all\r\n'), ['OK'])
  t.same(await client.request('flush_all 30\r\n'), ['OK'])
  t.same(await client.request('version\r\n'), ['VERSION 9.9.9'])
  t.same(await client.request('verbosity 2\r\n'), ['OK'])
  t.equal(server.store.verbosity, 2)
  t.same(await client.request('shutdown\r\n'), ['ERROR'], 'refused unless enabled')
  server.store.shutdownEnabled = true
  t.same(await client.request('shutdown\r\n'), ['OK'])
  t.equal(server.store.shutdownCalls, 2)
})

t.test('quit closes the connection after earlier replies', async (t) => {
  const { client } = await textServerWithClient(t)
  client.send('version\r\nquit\r\nversion\r\n')
  t.equal(await client.line(), 'VERSION 9.9.9')
  await client.waitClosed()
  t.ok(client.closed)
})

t.test('refused storage commands read their data block first; the stream stays in step', async (t) => {
  const { client } = await textServerWithClient(t)
  for (const cmd of ['add q 0 0 5\r\nhello\r\n', 'replace q 0 0 5\r\nhello\r\n', 'append q 0 0 5\r\nhello\r\n', 'prepend q 0 0 5\r\nhello\r\n', 'cas q 0 0 5 12\r\nhello\r\n']) {
    const name = cmd.split(' ')[0]
    t.same(await client.request(cmd + 'version\r\n'), [`CLIENT_ERROR ${name} is not supported by a queue server`])
    t.equal(await client.line(), 'VERSION 9.9.9')
  }
  for (const cmd of ['incr q 1', 'decr q 1', 'touch q 10', 'gat 10 q', 'gats 10 q']) {
    t.same(await client.request(cmd + '\r\n'), [`CLIENT_ERROR ${cmd.split(' ')[0]} is not supported by a queue server`])
  }
  client.send('add q 0 0 5 noreply\r\nhello\r\nincr q 1 noreply\r\n')
  await silent(t, client)
  t.equal(await client.get('q'), null, 'nothing was stored')
})

t.test('unknown commands and empty lines get ERROR', async (t) => {
  const { client } = await textServerWithClient(t)
  t.same(await client.request('bogus\r\n'), ['ERROR'])
  t.same(await client.request('\r\n'), ['ERROR'])
  t.same(await client.request('\n'), ['ERROR'])
  t.same(await client.request('SET q 0 0 1\r\n'), ['ERROR'], 'command names are case-sensitive')
  t.same(await client.request('get q\n'), ['END'], 'a bare LF ends a line')
})

t.test('errors from the layer below map to memcached error lines', async (t) => {
  const { client } = await textServerWithClient(t)
  t.equal(await client.set('full', 'x'), 'SERVER_ERROR queue full')
  t.equal(await client.set('broken', 'x'), 'SERVER_ERROR disk on fire')
  t.same(await client.request('get broken\r\n'), ['SERVER_ERROR disk on fire'])
  t.same(await client.request('flush broken\r\n'), ['SERVER_ERROR disk on fire'])
  t.equal(await client.set('throws', 'x'), 'SERVER_ERROR engine bug', 'a throw below is answered, not fatal')
  t.equal(await client.set('ok', 'fine'), 'STORED')
  t.equal(await client.get('ok'), 'fine')
})

t.test('a multi-get that hits an error sends the items already taken, then the error', async (t) => {
  const { client } = await textServerWithClient(t)
  await client.set('a', 'x')
  client.send('get a broken a\r\n')
  t.same(await lines(client, 3), ['VALUE a 0 1', 'x', 'SERVER_ERROR disk on fire'])
  t.equal(await client.get('a'), null, 'no later key was served')
})

t.test('Kestrel key options: open/close/abort/peek, and a second open is refused', async (t) => {
  const { client, connect } = await textServerWithClient(t)
  await client.set('r', 'one')
  await client.set('r', 'two')
  client.send('get r/peek\r\n')
  t.same(await lines(client, 3), ['VALUE r/peek 0 3', 'one', 'END'])
  client.send('get r/open\r\n')
  t.same(await lines(client, 3), ['VALUE r/open 0 3', 'one', 'END'])
  t.same(await client.request('get r/open\r\n'), ['CLIENT_ERROR open read already pending'])
  t.same(await client.request('get r/abort\r\n'), ['END'])
  client.send('get r/close/open\r\n')
  t.same(await lines(client, 3), ['VALUE r/close/open 0 3', 'one', 'END'])
  t.same(await client.request('get r/close\r\n'), ['END'])
  client.close()
  const other = await connect()
  t.equal(await other.get('r'), 'two', 'the closed read is gone for good')
  t.same(await other.request('get r/t=abc\r\n'), ['CLIENT_ERROR bad timeout t=abc'])
  t.same(await other.request('get r/bogus\r\n'), ['CLIENT_ERROR unknown option bogus'])
  t.same(await other.request('get r/peek/open\r\n'), ['CLIENT_ERROR peek cannot be combined with open, close or abort'])
  t.same(await other.request('get ok r/bogus\r\n'), ['CLIENT_ERROR unknown option bogus'], 'keys checked before any is served')
})

t.test('a dropped connection aborts its open read', async (t) => {
  const { client, connect } = await textServerWithClient(t)
  await client.set('d', 'item')
  client.send('get d/open\r\n')
  t.same(await lines(client, 3), ['VALUE d/open 0 4', 'item', 'END'])
  client.close()
  await new Promise((r) => setTimeout(r, 50))
  const other = await connect()
  t.equal(await other.get('d'), 'item')
})

t.test('keys: too long, control characters, options on set/delete/flush', async (t) => {
  const { client } = await textServerWithClient(t)
  t.equal(await client.set('k'.repeat(250), 'x'), 'STORED', '250 bytes is fine')
  t.equal(await client.set('k'.repeat(251), 'x'), 'CLIENT_ERROR key too long')
  t.same(await client.request(`get ${'k'.repeat(251)}\r\n`), ['CLIENT_ERROR key too long'])
  t.equal(await client.set('a\x01b', 'x'), 'CLIENT_ERROR bad character in key')
  t.equal(await client.set('a\x7fb', 'x'), 'CLIENT_ERROR bad character in key')
  t.equal(await client.set('a\tb', 'x'), 'CLIENT_ERROR bad character in key')
  t.equal(await client.set('q/open', 'x'), 'CLIENT_ERROR options are not allowed on set')
  t.same(await client.request('delete q/open\r\n'), ['CLIENT_ERROR options are not allowed on delete'])
  t.same(await client.request('flush q/t=1\r\n'), ['CLIENT_ERROR options are not allowed on flush'])
  t.equal(await client.get('k'.repeat(250)), 'x')
})

t.test('too large: SERVER_ERROR, data discarded, next command answered', async (t) => {
  const { client, server } = await textServerWithClient(t, { limits: { maxItemSize: 1000 } })
  const big = Buffer.alloc(5000, 0x41)
  client.send(Buffer.concat([Buffer.from('set q 0 0 5000\r\n'), big, Buffer.from('\r\nget q\r\n')]))
  t.same(await lines(client, 2), ['SERVER_ERROR object too large for cache', 'END'])
  t.equal(server.store.queues.get('q'), undefined, 'nothing stored')
  t.equal(await client.set('q', Buffer.alloc(1000, 0x42)), 'STORED', 'exactly the limit is accepted')
})

t.test('bad data chunk: error, resync through the next newline, next command answered', async (t) => {
  const { client } = await textServerWithClient(t)
  client.send('set q 0 0 3\r\nabcdef\r\nget q\r\n')
  t.same(await lines(client, 2), ['CLIENT_ERROR bad data chunk', 'END'])
  client.send('set q 0 0 6\r\nabc\r\nget q\r\nversion\r\n')
  t.same(await lines(client, 2), ['CLIENT_ERROR bad data chunk', 'VERSION 9.9.9'])
  t.equal(await client.get('q'), null)
})

t.test('line too long without a newline: error, then the connection is closed', async (t) => {
  const { client, connect } = await textServerWithClient(t, { limits: { maxLineLength: 100 } })
  client.send('x'.repeat(150))
  t.equal(await client.line(), 'CLIENT_ERROR line too long')
  await client.waitClosed()
  const other = await connect()
  t.equal(await other.set('alive', 'yes'), 'STORED')
})

t.test('auth: the memcached set convention, everything else refused before it', async (t) => {
  const { client, server } = await textServerWithClient(t, { session: { authRequired: true } })
  t.same(await client.request('get q\r\n'), ['CLIENT_ERROR unauthenticated'])
  t.same(await client.request('version\r\n'), ['CLIENT_ERROR unauthenticated'])
  t.same(await client.request('add q 0 0 1\r\nx\r\n'), ['CLIENT_ERROR unauthenticated'], 'data block still read')
  t.same(await client.request('mn\r\n'), ['CLIENT_ERROR unauthenticated'])
  t.equal(await client.set('auth', 'alice wrong'), 'CLIENT_ERROR authentication failure')
  t.equal(await client.set('auth', 'alice'), 'CLIENT_ERROR authentication failure')
  t.equal(await client.set('auth', 'alice secret'), 'STORED')
  t.same(server.store.authPayloads.at(-1), Buffer.from('\0alice\0secret'))
  t.equal(server.store.queues.get('auth'), undefined, 'the credentials were not enqueued')
  t.equal(await client.set('q', 'v'), 'STORED')
  t.equal(await client.get('q'), 'v')
})

t.test('auth: text allowed unauthenticated when configured; quit always works', async (t) => {
  const open = await textServerWithClient(t, { session: { authRequired: true, textAllowedUnauthenticated: true } })
  t.equal(await open.client.set('q', 'v'), 'STORED')
  const locked = await textServerWithClient(t, { session: { authRequired: true } })
  locked.client.send('quit\r\n')
  await locked.client.waitClosed()
  t.ok(locked.client.closed)
})

t.test('fed one byte at a time, a pipeline gives exactly the replies it gives in one piece', async (t) => {
  const pipeline = Buffer.from(
    'set a 5 0 3\r\nabc\r\nget a\r\nset b 0 0 2\r\nxx\r\nadd b 0 0 1\r\nz\r\nset c 0 0 2\r\nxyz\r\n' +
      'get b a\r\ndelete b\r\nstats b\r\nms m 2 O1 k\r\nhi\r\nmg m v f k\r\nmn\r\nbogus\r\n\r\nversion\r\n',
    'latin1',
  )
  const run = (chunkSize: number): string => {
    const store = new MemoryStore()
    const sink = new CollectingSink()
    const outbox = new Outbox(sink, { maxPendingBytes: 1 << 20, maxPendingSlots: 1000 })
    const handler: TextHandler = new TextHandler(new MemorySession(store), outbox, DEFAULT_LIMITS, {
      end: () => {},
      resume: () => setImmediate(() => handler.pump()),
    })
    for (let i = 0; i < pipeline.length; i += chunkSize) handler.feed(pipeline.subarray(i, i + chunkSize))
    outbox.flush() // replies leave once per tick; take them now
    return sink.text()
  }
  const whole = run(pipeline.length)
  t.equal(
    whole,
    'STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\nSTORED\r\nCLIENT_ERROR add is not supported by a queue server\r\n' +
      'CLIENT_ERROR bad data chunk\r\nVALUE b 0 2\r\nxx\r\nEND\r\nDELETED\r\nEND\r\nHD O1 km\r\nVA 2 f0 km\r\nhi\r\nMN\r\nERROR\r\nERROR\r\nVERSION 9.9.9\r\n',
  )
  for (const size of [1, 2, 3, 7, 13]) t.equal(run(size), whole, `chunks of ${size}`)
})

t.test('a reply written while parsing may call back into pump (connection resuming): no corruption', async (t) => {
  // The real Connection resumes reading from the Outbox's onWritten callback, which re-enters
  // pump() in the middle of the parse loop. A 20k-command pipeline must still be answered exactly.
  const store = new MemoryStore()
  const sink = new CollectingSink()
  let handler: TextHandler | null = null
  const outbox = new Outbox(sink, { maxPendingBytes: 1 << 20, maxPendingSlots: 1000 }, () => handler?.pump())
  handler = new TextHandler(new MemorySession(store), outbox, DEFAULT_LIMITS, {
    end: () => {},
    resume: () => setImmediate(() => handler?.pump()),
  })
  const pipeline = Buffer.from('get nothing\r\n'.repeat(20_000) + 'set q 0 0 1\r\nx\r\nget q\r\n', 'latin1')
  for (let i = 0; i < pipeline.length; i += 65536) handler.feed(pipeline.subarray(i, i + 65536))
  outbox.flush()
  t.equal(sink.text(), 'END\r\n'.repeat(20_000) + 'STORED\r\nVALUE q 0 1\r\nx\r\nEND\r\n')
})
