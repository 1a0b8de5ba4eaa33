/**
 * BinaryHandler over a real socket, with the layer below it (the Session) replaced by a small
 * in-memory double: FIFO queues, blocking gets, a slow queue, a full queue, SASL PLAIN.
 */
import t from 'tap'
import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { DeliveredItem, Done, GetDone, Session } from '../../src/server/dispatcher.js'
import { StarlingError } from '../../src/server/errors.js'
import type { QueueReadOptions } from '../../src/server/engine/requests.js'
import { Outbox } from '../../src/server/protocol/outbox.js'
import { BinaryHandler, statusForError } from '../../src/server/protocol/binary/handler.js'
import { BinaryClient, frame, get, op, set, u32s } from '../helpers/binary.js'

const MAX_ITEM = 1000

class MemorySession implements Session {
  static queues = new Map<string, DeliveredItem[]>()
  static waiters = new Map<string, Array<(item: DeliveredItem) => void>>()
  static nextCas = 1
  authenticated = false
  closedCount = 0
  constructor(readonly authRequired: boolean) {}
  readonly textAllowedUnauthenticated = false

  set(queue: string, flags: number, _exptime: number, data: Buffer, done: Done): void {
    if (queue === 'full') return done(new StarlingError('QUEUE_FULL', 'queue full'))
    if (queue === 'broken') return done(new StarlingError('IO', 'disk on fire'))
    const item = { data: Buffer.from(data), flags, cas: MemorySession.nextCas++ }
    const store = (): void => {
      const waiting = MemorySession.waiters.get(queue)
      if (waiting && waiting.length > 0) waiting.shift()!(item)
      else MemorySession.queues.set(queue, [...(MemorySession.queues.get(queue) ?? []), item])
      done(null)
    }
    // The "slow" queue acknowledges later, like a journal write waiting for fsync.
    if (queue.startsWith('slow')) setTimeout(store, 50)
    else store()
  }

  get(queue: string, options: QueueReadOptions, done: GetDone): void {
    const items = MemorySession.queues.get(queue)
    if (items && items.length > 0) return done(null, items.shift()!)
    if (options.timeoutMs === 0) return done(null, null)
    const list = MemorySession.waiters.get(queue) ?? []
    MemorySession.waiters.set(queue, list)
    const waiter = (item: DeliveredItem): void => {
      clearTimeout(timer)
      done(null, item)
    }
    const timer = setTimeout(() => {
      list.splice(list.indexOf(waiter), 1)
      done(null, null)
    }, options.timeoutMs)
    list.push(waiter)
  }

  delete(queue: string, done: (err: StarlingError | null, existed: boolean) => void): void {
    done(null, MemorySession.queues.delete(queue))
  }
  flush(queue: string, done: Done): void {
    MemorySession.queues.set(queue, [])
    done(null)
  }
  flushAll(done: Done): void {
    done(null)
  }
  stats(): Array<Array<[string, string]>> {
    return [
      [
        ['pid', '1234'],
        ['version', '9.9.9'],
        ...[...MemorySession.queues].map(([q, items]): [string, string] => [`queue_${q}_items`, String(items.length)]),
      ],
    ]
  }
  resets = 0
  resetStats(): void {
    this.resets++
  }

  queueStats(queue: string): Array<[string, string]> | null {
    const items = MemorySession.queues.get(queue)
    return items ? [[`queue_${queue}_items`, String(items.length)]] : null
  }
  version(): string {
    return '9.9.9'
  }
  verbosity(): void {}
  shutdown(): boolean {
    return false
  }
  saslMechanisms(): string[] {
    return ['PLAIN']
  }
  authenticate(mechanism: string, payload: Buffer, done: (ok: boolean, close: boolean) => void): void {
    // RFC 4616: [authzid] NUL authcid NUL passwd (libsasl2 sends authzid = authcid).
    const [authzid, authcid, password] = payload.toString('latin1').split('\0')
    const ok = mechanism === 'PLAIN' && (authzid === '' || authzid === authcid) && authcid === 'alice' && password === 'secret'
    if (ok) this.authenticated = true
    done(ok, false)
  }
  countBytes(): void {}
  close(): void {
    this.closedCount++
  }
}

/** The minimum a connection does: feed input, pause when the outbox is full, end on request. */
function serve(socket: Socket, session: Session, maxPendingSlots: number): void {
  let paused = false
  let handler: BinaryHandler
  const resume = (): void => {
    if (!paused) return
    handler.pump()
    if (handler.accepting) {
      paused = false
      socket.resume()
    }
  }
  const outbox = new Outbox(socket, { maxPendingBytes: 1 << 20, maxPendingSlots }, () => setImmediate(resume))
  handler = new BinaryHandler(session, outbox, { maxItemSize: MAX_ITEM, maxKeyLength: 250, maxLineLength: 2048 }, {
    end: () => socket.end(),
    resume: () => setImmediate(resume),
  })
  socket.on('data', (chunk: Buffer) => {
    handler.feed(chunk)
    if (!handler.accepting) {
      paused = true
      socket.pause()
    }
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    outbox.close()
    session.close()
  })
}

async function listen(options: { auth?: boolean; maxPendingSlots?: number } = {}): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => serve(socket, new MemorySession(options.auth ?? false), options.maxPendingSlots ?? 64))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as AddressInfo).port }
}

let port = 0
t.before(async () => {
  const s = await listen()
  port = s.port
  t.teardown(() => s.server.close())
})
t.beforeEach(() => {
  MemorySession.queues.clear()
  MemorySession.waiters.clear()
})

async function client(p = port): Promise<BinaryClient> {
  const c = await BinaryClient.connect(p)
  t.teardown(() => c.close())
  return c
}

t.test('set then get: FIFO, flags, cas and opaque', async (t) => {
  const c = await client()
  const r1 = await c.request(set('jobs', 'first', { flags: 0xcafe, opaque: 0x11223344 }))
  t.match(r1, { magic: 0x81, opcode: op.SET, status: 0, opaque: 0x11223344, bodyLength: 0 })
  await c.request(set('jobs', Buffer.from([0, 1, 2, 255]), { flags: 7 }))
  const g1 = await c.request(get('jobs', op.GET, 99))
  t.match(g1, { opcode: op.GET, status: 0, opaque: 99, extrasLength: 4, keyLength: 0 })
  t.equal(g1.extras.readUInt32BE(0), 0xcafe)
  t.equal(g1.value.toString(), 'first')
  t.ok(g1.cas > 0n, 'cas is the item id')
  const g2 = await c.request(get('jobs', op.GETK, 100))
  t.match(g2, { opcode: op.GETK, status: 0, opaque: 100, key: 'jobs', keyLength: 4 })
  t.equal(g2.extras.readUInt32BE(0), 7)
  t.same([...g2.value], [0, 1, 2, 255])
  t.ok(g2.cas > g1.cas, 'later items have larger cas ids')
})

t.test('misses: GET says Not found, GETK returns the key, quiet gets say nothing', async (t) => {
  const c = await client()
  t.match(await c.request(get('none', op.GET, 1)), { status: 1, opaque: 1, value: Buffer.from('Not found') })
  t.match(await c.request(get('n\xf6ne', op.GETK, 2)), { status: 1, opaque: 2, keyLength: 4, bodyLength: 4, key: 'n\xf6ne', value: Buffer.alloc(0) })
  c.send(Buffer.concat([get('none', op.GETQ, 3), get('none', op.GETKQ, 4), frame({ opcode: op.NOOP, opaque: 5 })]))
  const rs = await c.responsesUntil(op.NOOP)
  t.same(rs.map((r) => [r.opcode, r.opaque]), [[op.NOOP, 5]], 'only the NOOP answers')
})

t.test('quiet hits are sent, quiet successes are not, errors always are', async (t) => {
  const c = await client()
  c.send(
    Buffer.concat([
      set('q', 'a', { quiet: true, opaque: 1 }),
      set('full', 'x', { quiet: true, opaque: 2 }),
      set('q', 'b', { quiet: true, opaque: 3 }),
      get('q', op.GETKQ, 4),
      get('q', op.GETQ, 5),
      get('q', op.GETQ, 6),
      frame({ opcode: op.DELETEQ, key: 'absent', opaque: 7 }),
      frame({ opcode: op.FLUSHQ, opaque: 8 }),
      frame({ opcode: op.NOOP, opaque: 9 }),
    ]),
  )
  const rs = await c.responsesUntil(op.NOOP)
  t.same(
    rs.map((r) => [r.opcode, r.opaque, r.status, r.key, r.value.toString()]),
    [
      [0x11, 2, 0x05, '', 'queue full'],
      [op.GETKQ, 4, 0, 'q', 'a'],
      [op.GETQ, 5, 0, '', 'b'],
      [op.DELETEQ, 7, 0x01, '', 'Not found'],
      [op.NOOP, 9, 0, '', ''],
    ],
  )
})

t.test('replies keep request order behind slow sets and blocking gets', async (t) => {
  const c = await client()
  const other = await client()
  await other.request(set('fast', 'y'))
  c.send(
    Buffer.concat([
      get('later/t=2000', op.GET, 1),
      set('slow', 'x', { opaque: 2 }),
      frame({ opcode: op.VERSION, opaque: 3 }),
      get('fast', op.GET, 4),
      frame({ opcode: op.NOOP, opaque: 5 }),
    ]),
  )
  await new Promise((r) => setTimeout(r, 100))
  t.equal(c.pending.length, 0, 'nothing is sent while the blocking get at the head waits')
  await other.request(set('later', 'woken'))
  const rs = await c.responsesUntil(op.NOOP)
  t.same(
    rs.map((r) => [r.opaque, r.status, r.value.toString()]),
    [
      [1, 0, 'woken'],
      [2, 0, ''],
      [3, 0, '9.9.9'],
      [4, 0, 'y'],
      [5, 0, ''],
    ],
  )
})

t.test('a blocking get that times out is a miss; GETQ times out silently', async (t) => {
  const c = await client()
  const started = Date.now()
  t.match(await c.request(get('empty/t=150', op.GET, 1)), { status: 1, opaque: 1 })
  t.ok(Date.now() - started >= 140, 'waited for the timeout')
  c.send(Buffer.concat([get('empty/t=50', op.GETQ, 2), frame({ opcode: op.NOOP, opaque: 3 })]))
  t.same((await c.responsesUntil(op.NOOP)).map((r) => r.opaque), [3])
})

t.test('delete, flush, version, stat', async (t) => {
  const c = await client()
  await c.request(set('a', '1'))
  await c.request(set('a', '2'))
  await c.request(set('b', '3'))
  const stat = await c.request(frame({ opcode: op.STAT, key: 'a', opaque: 7 }))
  t.match(stat, { opcode: op.STAT, status: 0, opaque: 7, key: 'queue_a_items', value: Buffer.from('2') })
  t.match(await c.response(), { opcode: op.STAT, status: 0, opaque: 7, keyLength: 0, bodyLength: 0 }, 'terminator')
  t.match(await c.request(frame({ opcode: op.STAT, key: 'nope', opaque: 8 })), { status: 1, opaque: 8 })
  c.send(frame({ opcode: op.STAT, opaque: 9 }))
  const all = await c.responsesUntil(op.STAT).then(async (first) => {
    const rs = [...first]
    while (rs[rs.length - 1]!.keyLength !== 0) rs.push(await c.response())
    return rs
  })
  t.same(
    all.map((r) => [r.key, r.value.toString(), r.opaque]),
    [
      ['pid', '1234', 9],
      ['version', '9.9.9', 9],
      ['queue_a_items', '2', 9],
      ['queue_b_items', '1', 9],
      ['', '', 9],
    ],
  )
  t.match(await c.request(frame({ opcode: op.DELETE, key: 'a', opaque: 10 })), { status: 0, opaque: 10, bodyLength: 0 })
  t.match(await c.request(frame({ opcode: op.DELETE, key: 'a', opaque: 11 })), { status: 1, opaque: 11 })
  t.match(await c.request(frame({ opcode: op.FLUSH, opaque: 12 })), { opcode: op.FLUSH, status: 0, opaque: 12 })
  t.match(await c.request(frame({ opcode: op.FLUSH, extras: u32s(10), opaque: 13 })), { status: 0, opaque: 13 })
  t.match(await c.request(frame({ opcode: op.VERSION, opaque: 14 })), { status: 0, opaque: 14, value: Buffer.from('9.9.9') })
  t.match(await c.request(frame({ opcode: op.NOOP, opaque: 15 })), { opcode: op.NOOP, status: 0, opaque: 15, bodyLength: 0 })
})

t.test('refused commands keep the stream in step', async (t) => {
  const c = await client()
  const refused: Array<[Buffer, number]> = [
    [frame({ opcode: op.ADD, key: 'a', extras: u32s(0, 0), value: 'v'.repeat(50), opaque: 1 }), 0x83],
    [frame({ opcode: 0x13 /* REPLACEQ */, key: 'a', extras: u32s(0, 0), value: 'v', opaque: 2 }), 0x83],
    [frame({ opcode: op.APPEND, key: 'a', value: 'tail', opaque: 3 }), 0x83],
    [frame({ opcode: op.PREPEND, key: 'a', value: 'head', opaque: 4 }), 0x83],
    [frame({ opcode: op.INCREMENT, key: 'n', extras: Buffer.alloc(20), opaque: 5 }), 0x83],
    [frame({ opcode: 0x16 /* DECREMENTQ */, key: 'n', extras: Buffer.alloc(20), opaque: 6 }), 0x83],
    [frame({ opcode: op.TOUCH, key: 'a', extras: u32s(10), opaque: 7 }), 0x83],
    [frame({ opcode: op.GAT, key: 'a', extras: u32s(10), opaque: 8 }), 0x83],
    [frame({ opcode: 0x1e /* GATQ */, key: 'a', extras: u32s(10), opaque: 9 }), 0x83],
    [frame({ opcode: 0x1b /* VERBOSITY */, extras: u32s(1), opaque: 10 }), 0x81],
    [frame({ opcode: 0x42, key: 'k', value: 'junk', opaque: 11 }), 0x81],
    [set('big', Buffer.alloc(MAX_ITEM + 1, 1), { opaque: 12 }), 0x03],
    [set('a', 'v', { opaque: 13, cas: 5n }), 0x83],
    [frame({ opcode: op.DELETE, key: 'a', opaque: 14, cas: 5n }), 0x83],
    [set('a/open', 'v', { opaque: 15 }), 0x04],
    [get('a/bogus', op.GET, 16), 0x04],
    [get('a/peek/open', op.GETQ, 17), 0x04],
    [get('has space', op.GET, 18), 0x04],
    [get('x'.repeat(251), op.GET, 19), 0x04],
    [set('full', 'x', { opaque: 20 }), 0x05],
    [set('broken', 'x', { opaque: 21 }), 0x84],
    [frame({ opcode: op.SASL_LIST_MECHS, opaque: 22 }), 0x81],
    [frame({ opcode: op.SASL_AUTH, key: 'PLAIN', value: '\0alice\0secret', opaque: 23 }), 0x81],
  ]
  // All pipelined in one write, then a set and a get that must still parse correctly.
  c.send(Buffer.concat([...refused.map(([b]) => b), set('ok', 'fine', { opaque: 90 }), get('ok', op.GET, 91)]))
  for (const [, status] of refused) {
    const r = await c.response()
    t.equal(r.status, status, `opaque ${r.opaque}: status 0x${status.toString(16)} (${r.value.toString()})`)
  }
  t.match(await c.response(), { opaque: 90, status: 0 })
  t.match(await c.response(), { opaque: 91, status: 0, value: Buffer.from('fine') })
  t.notOk(c.closed, 'connection still open')
  t.notOk(MemorySession.queues.has('big'), 'the oversized item was not stored')
})

t.test('error bodies carry the reason', async (t) => {
  const c = await client()
  t.match((await c.request(get('a/bogus'))).value.toString(), /unknown option bogus/)
  t.equal((await c.request(set('full', 'x'))).value.toString(), 'queue full')
  t.equal((await c.request(frame({ opcode: 0x42 }))).value.toString(), 'Unknown command')
  t.equal((await c.request(set('big', Buffer.alloc(MAX_ITEM + 1)))).value.toString(), 'Too large.')
})

t.test('input split into single bytes parses the same', async (t) => {
  const c = await client()
  const bytes = Buffer.concat([
    set('split', 'one', { opaque: 1, flags: 3 }),
    frame({ opcode: op.APPEND, key: 'split', value: 'zz', opaque: 2 }),
    get('split', op.GETK, 3),
    frame({ opcode: op.NOOP, opaque: 4 }),
  ])
  for (const b of bytes) {
    c.send(Buffer.from([b]))
    await new Promise((r) => setImmediate(r))
  }
  const rs = await c.responsesUntil(op.NOOP)
  t.same(
    rs.map((r) => [r.opaque, r.status, r.key, r.value.toString()]),
    [
      [1, 0, '', ''],
      [2, 0x83, '', 'Not supported'],
      [3, 0, 'split', 'one'],
      [4, 0, '', ''],
    ],
  )
})

t.test('QUIT answers then closes; QUITQ closes silently', async (t) => {
  const c = await client()
  c.send(Buffer.concat([frame({ opcode: op.QUIT, opaque: 5 }), frame({ opcode: op.NOOP, opaque: 6 })]))
  t.match(await c.response(), { opcode: op.QUIT, status: 0, opaque: 5 })
  await c.waitClosed()
  t.equal(c.pending.length, 0, 'nothing after QUIT is answered')
  const q = await client()
  q.send(frame({ opcode: op.QUITQ }))
  await q.waitClosed()
  t.equal(q.pending.length, 0)
})

t.test('malformed frames: one error, then the connection closes', async (t) => {
  const cases: Array<[string, Buffer, number]> = [
    ['wrong magic', Buffer.concat([frame({ opcode: op.NOOP, magic: 0x81 })]), 0x04],
    ['text mid-stream', Buffer.from('get foo\r\n'), 0x04],
    ['key longer than body', frame({ opcode: op.GET, key: 'abcdef', bodyLength: 3 }), 0x04],
    ['wrong extras length', frame({ opcode: op.SET, key: 'k', extras: u32s(1), value: 'v' }), 0x04],
    ['body over the skip bound', frame({ opcode: op.SET, key: 'k', extras: u32s(0, 0), bodyLength: 64 * 1024 * 1024 + 1 }), 0x03],
    ['buffered body over the frame limit', frame({ opcode: op.SASL_AUTH, key: 'PLAIN', bodyLength: MAX_ITEM + 65536 + 1 }), 0x03],
  ]
  for (const [name, bytes, status] of cases) {
    const c = await client()
    // A good request first, to show the error comes after its reply.
    c.send(Buffer.concat([frame({ opcode: op.NOOP, opaque: 1 }), bytes]))
    t.match(await c.response(), { opcode: op.NOOP, opaque: 1, status: 0 }, `${name}: earlier reply`)
    t.match(await c.response(), { status }, `${name}: error status`)
    await c.waitClosed()
    t.ok(c.closed, `${name}: closed`)
  }
  t.equal(MemorySession.queues.size, 0, 'no queue touched')
})

t.test('SASL PLAIN', async (t) => {
  const s = await listen({ auth: true })
  t.teardown(() => s.server.close())
  const c = await client(s.port)
  t.match(await c.request(get('q', op.GET, 1)), { status: 0x20, opaque: 1, value: Buffer.from('Auth failure.') })
  t.match(await c.request(set('q', 'v', { quiet: true, opaque: 2 })), { status: 0x20, opaque: 2 }, 'quiet commands too')
  t.match(await c.request(frame({ opcode: op.STAT, opaque: 3 })), { status: 0x20, opaque: 3 })
  t.match(await c.request(frame({ opcode: op.NOOP, opaque: 4 })), { status: 0x20, opaque: 4 })
  t.match(await c.request(frame({ opcode: op.VERSION, opaque: 5 })), { status: 0, value: Buffer.from('9.9.9') }, 'VERSION is allowed')
  t.match(await c.request(frame({ opcode: op.SASL_LIST_MECHS, opaque: 6 })), { status: 0, opaque: 6, value: Buffer.from('PLAIN') })
  t.match(
    await c.request(frame({ opcode: op.SASL_AUTH, key: 'PLAIN', value: '\0alice\0wrong', opaque: 7 })),
    { opcode: op.SASL_AUTH, status: 0x20, opaque: 7 },
  )
  t.match(await c.request(frame({ opcode: op.SASL_STEP, key: 'PLAIN', value: 'x', opaque: 8 })), { status: 0x20 })
  t.match(
    await c.request(frame({ opcode: op.SASL_AUTH, key: 'PLAIN', value: '\0alice\0secret', opaque: 9 })),
    { opcode: op.SASL_AUTH, status: 0, opaque: 9, value: Buffer.from('Authenticated') },
  )
  t.match(await c.request(set('authed', 'yes', { opaque: 10 })), { status: 0, opaque: 10 })
  const other = await client(s.port)
  t.match(
    await other.request(frame({ opcode: op.SASL_AUTH, key: 'PLAIN', value: 'alice\0alice\0secret', opaque: 12 })),
    { status: 0, opaque: 12 },
    'the authzid form libsasl2 sends',
  )
  t.match(await other.request(frame({ opcode: op.NOOP, opaque: 13 })), { status: 0, opaque: 13 })
  t.match(await c.request(get('authed', op.GET, 11)), { status: 0, value: Buffer.from('yes') })
  t.notOk(MemorySession.queues.has('q'), 'nothing stored before authentication')
})

t.test('many pipelined blocking gets: parsing pauses at the slot limit and resumes', async (t) => {
  const s = await listen({ maxPendingSlots: 4 })
  t.teardown(() => s.server.close())
  const c = await client(s.port)
  const producer = await client(s.port)
  const n = 20
  c.send(Buffer.concat(Array.from({ length: n }, (_, i) => get('bp/t=5000', op.GET, i))))
  await new Promise((r) => setTimeout(r, 50))
  for (let i = 0; i < n; i++) await producer.request(set('bp', `item${i}`))
  const rs: string[] = []
  for (let i = 0; i < n; i++) {
    const r = await c.response()
    t.equal(r.opaque, i)
    rs.push(r.value.toString())
  }
  t.same(rs, Array.from({ length: n }, (_, i) => `item${i}`))
})

t.test('every error code maps to a binary status', async (t) => {
  const expected: Array<[ConstructorParameters<typeof StarlingError>[0], number]> = [
    ['BAD_KEY', 0x04],
    ['BAD_OPTIONS', 0x04],
    ['BAD_COMMAND', 0x04],
    ['BAD_DATA_CHUNK', 0x04],
    ['OPEN_READ_PENDING', 0x04],
    ['TOO_LARGE', 0x03],
    ['QUEUE_FULL', 0x05],
    ['NOT_SUPPORTED', 0x83],
    ['AUTH_REQUIRED', 0x20],
    ['AUTH_FAILED', 0x20],
    ['IO', 0x84],
    ['SHUTTING_DOWN', 0x86],
  ]
  for (const [code, status] of expected) {
    t.equal(statusForError(new StarlingError(code, `reason for ${code}`)).status, status, code)
  }
  t.same(statusForError(new StarlingError('QUEUE_FULL', 'over max_items')), { status: 0x05, message: 'queue full' })
  t.same(statusForError(new StarlingError('OPEN_READ_PENDING', 'open read pending')), { status: 0x04, message: 'open read pending' })
})
