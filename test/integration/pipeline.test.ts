/**
 * Issue 16 / issue 12 item 3: a pipeline gives the replies of the same commands sent one at a time.
 * Real server process, real sockets; every pipeline goes out in one socket write.
 */
import t from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { serverFor, ROOT } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { BinaryClient, frame, get, op, set } from '../helpers/binary.js'

/** Read replies until `done` says the buffer holds them all (or fail with what came). */
async function linesUntil(c: RawClient, last: RegExp, timeoutMs = 10_000): Promise<string[]> {
  const lines: string[] = []
  for (;;) {
    const l = await c.line(timeoutMs)
    lines.push(l)
    if (last.test(l)) return lines
  }
}

/** Stats fields that depend on the clock or the process, not on the commands. */
const TIME_DEPENDENT = /^STAT (pid|uptime|time|rusage_user|rusage_system|queue_\S+_age) /

t.test("README's session pasted in one write gives exactly README's replies", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## A session'))
  const block = /```console\n([\s\S]*?)```/.exec(section)![1]!.split('\n').filter((l) => l !== '')
  t.match(block[0], /^\$ nc /, 'the session starts with nc')
  // Commands (and the data line after a set) are what the user typed; the rest are replies.
  let input = ''
  const expected: string[] = []
  for (let i = 1; i < block.length; i++) {
    const l = block[i]!
    if (/^(set|get|stats|quit|delete|version)\b/.test(l)) {
      input += l + '\r\n'
      if (l.startsWith('set ')) input += block[++i]! + '\r\n'
    } else {
      expected.push(l)
    }
  }
  t.ok(expected.includes('STAT queue_jobs_items 1'), 'README shows the item left when stats ran')

  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  c.send(input) // one write: every command arrives before the first reply is sent
  await c.waitClosed(15_000) // the session ends with quit
  const got = (c as unknown as { buf: Buffer }).buf.toString('latin1').split('\r\n').filter((l) => l !== '')

  // README elides lines with "..."; every line it shows must come, in order, exactly (values that
  // depend on the clock only in shape).
  let at = 0
  for (let j = 0; j < expected.length; j++) {
    const want = expected[j]!
    if (want === '...') continue
    const wantShape = TIME_DEPENDENT.test(want) ? new RegExp(`^${want.replace(/ \S+$/, '')} [0-9.]+$`) : null
    const found = got.findIndex((l, i) => i >= at && (wantShape ? wantShape.test(l) : l === want))
    t.ok(found >= 0, `reply line "${want}" present in order`, { got: got.slice(at) })
    if (found >= 0) {
      // Without "..." in between, lines must follow each other directly.
      const prev = expected[j - 1]
      if (prev !== undefined && prev !== '...' && at > 0) t.equal(found, at, `"${want}" follows the previous line`)
      at = found + 1
    }
  }
  t.equal(at, got.length, 'nothing after the last reply README shows')
})

t.test('delete then delete, and delete then set, in one write (issue 12 item 3)', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  c.send('set q 0 0 1\r\nA\r\ndelete q\r\ndelete q\r\nversion\r\n')
  t.same(await linesUntil(c, /^VERSION/), ['STORED', 'DELETED', 'NOT_FOUND', 'VERSION 1.0.0'])

  c.send('set q 0 0 1\r\nA\r\ndelete q\r\nset q 0 0 1\r\nB\r\nget q\r\n')
  t.same(await linesUntil(c, /^END/), ['STORED', 'DELETED', 'STORED', 'VALUE q 0 1', 'B', 'END'], 'B is stored, not lost')

  // A longer lifecycle on a queue that is new (still opening when the commands arrive).
  c.send(
    'set r 0 0 1\r\n1\r\ndelete r\r\nflush r\r\ndelete r\r\nset r 0 0 1\r\n2\r\nset r 0 0 1\r\n3\r\n' +
      'delete r\r\nset r 0 0 1\r\n4\r\nget r\r\nget r\r\nmd r\r\nmd r\r\nmn\r\n',
  )
  t.same(await linesUntil(c, /^MN/), [
    'STORED',
    'DELETED',
    'OK',
    'NOT_FOUND',
    'STORED',
    'STORED',
    'DELETED',
    'STORED',
    'VALUE r 0 1',
    '4',
    'END',
    'END',
    'HD',
    'NF',
    'MN',
  ])
  // The same steps one at a time agree.
  const one: string[] = []
  for (const cmd of ['set s 0 0 1\r\nA\r\n', 'delete s\r\n', 'delete s\r\n', 'set s 0 0 1\r\nB\r\n', 'get s\r\n']) {
    one.push(...(await c.request(cmd)))
  }
  t.same(one, ['STORED', 'DELETED', 'NOT_FOUND', 'STORED', 'VALUE s 0 1', 'B', 'END'])
})

t.test('binary: delete twice and delete then set, pipelined', async (t) => {
  const server = await serverFor(t)
  const c = await BinaryClient.connect(server.port)
  t.teardown(() => c.close())
  c.send(
    Buffer.concat([
      set('q', 'A', { opaque: 1 }),
      frame({ opcode: op.DELETE, key: 'q', opaque: 2 }),
      frame({ opcode: op.DELETE, key: 'q', opaque: 3 }),
      set('q', 'B', { opaque: 4 }),
      get('q', op.GET, 5),
      frame({ opcode: op.NOOP, opaque: 6 }),
    ]),
  )
  const rs = await c.responsesUntil(op.NOOP)
  t.same(
    rs.map((r) => [r.opaque, r.status]),
    [
      [1, 0],
      [2, 0],
      [3, 1],
      [4, 0],
      [5, 0],
      [6, 0],
    ],
  )
  t.equal(rs[4]!.value.toString(), 'B')
})

t.test('a blocking get makes later commands wait behind it', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  // One at a time, the get times out before the set arrives: so must it be in a pipeline.
  c.send('get w/t=300\r\nset w 0 0 1\r\nZ\r\nget w\r\n')
  t.same(await linesUntil(c, /^END/), ['END'], 'the get waited and timed out: the set had not run')
  t.same(await linesUntil(c, /^END/), ['STORED', 'VALUE w 0 1', 'Z', 'END'])

  // meta and a multi-get with a wait too.
  c.send('mg m/t=200 v\r\nms m 1\r\nY\r\nget m/t=200 m\r\nmn\r\n')
  t.same(await linesUntil(c, /^MN/), ['EN', 'HD', 'VALUE m/t=200 0 1', 'Y', 'END', 'MN'])

  const b = await BinaryClient.connect(server.port)
  t.teardown(() => b.close())
  b.send(Buffer.concat([get('bq/t=200', op.GET, 1), set('bq', 'X', { opaque: 2 }), get('bq', op.GET, 3)]))
  const rs = [await b.response(), await b.response(), await b.response()]
  t.same(
    rs.map((r) => [r.opaque, r.status]),
    [
      [1, 1],
      [2, 0],
      [3, 0],
    ],
    'binary: the blocking GET misses, then SET, then GET hits',
  )
})

t.test('stats shows the commands before it and none after it', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  c.send('set a 0 0 1 noreply\r\n1\r\nset a 0 0 1 noreply\r\n2\r\nstats\r\nget a\r\nget a\r\nstats\r\ndelete a\r\nstats\r\n')
  const first = await linesUntil(c, /^END$/)
  t.ok(first.includes('STAT queue_a_items 2'), 'both noreply sets counted')
  t.ok(first.includes('STAT cmd_get 0'))
  t.same(await linesUntil(c, /^END$/), ['VALUE a 0 1', '1', 'END'])
  t.same(await linesUntil(c, /^END$/), ['VALUE a 0 1', '2', 'END'])
  const second = await linesUntil(c, /^END$/)
  t.ok(second.includes('STAT queue_a_items 0') && second.includes('STAT cmd_get 2') && second.includes('STAT get_hits 2'))
  t.same(await c.line(), 'DELETED')
  const third = await linesUntil(c, /^END$/)
  t.notOk(third.some((l) => l.startsWith('STAT queue_a_')), 'the deleted queue is gone from stats')
  const read = Number(third.find((l) => l.startsWith('STAT bytes_read '))!.split(' ')[2])
  const sent = ['set a 0 0 1 noreply\r\n1\r\n', 'set a 0 0 1 noreply\r\n2\r\n', 'stats\r\n', 'get a\r\n', 'get a\r\n', 'stats\r\n', 'delete a\r\n', 'stats\r\n']
  t.equal(read, sent.join('').length, 'bytes_read counts up to this stats')
})

t.test('a queue that cannot be opened reports why, not "shutting down"', async (t) => {
  const server = await serverFor(t)
  const { queueFileName } = (await import(join(ROOT, 'dist', 'src', 'server', 'journal', 'format.js'))) as {
    queueFileName(q: string): string
  }
  // A directory where the journal file should be: the open fails (EISDIR), whoever runs the test.
  mkdirSync(join(server.spool, queueFileName('bad')))
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  c.send('set bad 0 0 1\r\nA\r\nset bad 0 0 1\r\nB\r\nversion\r\n')
  const lines = await linesUntil(c, /^VERSION/)
  t.equal(lines.length, 3)
  for (const l of lines.slice(0, 2)) {
    t.match(l, /^SERVER_ERROR .*E[A-Z]+/, 'the cause is in the reply')
    t.notMatch(l, /shutting down/)
  }
  // A queue's file is made by its first write (issue 17), so the failure is the journal's write.
  const logged = (e: Record<string, unknown>): boolean =>
    e.queue === 'bad' && (e.msg === 'cannot open queue journal' || String(e.msg).startsWith('journal write failed'))
  t.ok(server.logs.some(logged), 'and in the log')
})
