import t from 'tap'
import { parseRequest, FRAME_SLACK_BYTES, MAX_SKIPPED_BODY_BYTES, type BinaryParserLimits } from '../../src/server/protocol/binary/parser.js'
import type { BinaryRequest } from '../../src/server/protocol/binary/commands.js'
import {
  encodeError,
  encodeItem,
  encodeKeyMiss,
  encodeResponse,
  encodeStats,
  GET_FRAME,
  ItemFrame,
} from '../../src/server/protocol/binary/serializer.js'
import { frame, op, set, get, u32s } from '../helpers/binary.js'

const limits: BinaryParserLimits = { maxItemSize: 1024 }

/** Requests as plain data: payload views copied to hex so they can be compared after the buffer moves on. */
type Plain = Record<string, unknown>
function plain(r: BinaryRequest): Plain {
  const o: Plain = {}
  for (const [k, v] of Object.entries(r)) o[k] = Buffer.isBuffer(v) ? v.toString('hex') : v
  return o
}

/**
 * Feed chunks the way ProtocolHandler does: keep unparsed bytes, parse from an offset, skip the
 * bodies of header-only requests without buffering them, stop at a violation.
 */
function parseChunks(chunks: Buffer[], lim = limits): Plain[] {
  const out: Plain[] = []
  let pending = Buffer.alloc(0)
  let skip = 0
  for (let chunk of chunks) {
    if (skip > 0) {
      const n = Math.min(skip, chunk.length)
      skip -= n
      chunk = chunk.subarray(n)
    }
    pending = Buffer.concat([pending, chunk])
    let offset = 0
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, pending.length - offset)
        skip -= n
        offset += n
        if (skip > 0) break
      }
      if (offset === pending.length) break
      const r = parseRequest(pending, offset, pending.length, lim)
      if (r.request === null) {
        if (r.needed <= pending.length - offset) throw new Error(`needed ${r.needed} but ${pending.length - offset} available`)
        break
      }
      out.push(plain(r.request))
      offset += r.consumed
      if (r.request.kind === 'violation') return out
      if ('skip' in r.request) skip = r.request.skip
    }
    pending = pending.subarray(offset)
  }
  return out
}

const stream: Array<{ bytes: Buffer; expect: Plain }> = [
  {
    bytes: get('work', op.GET, 1),
    expect: { kind: 'get', opcode: 0, opaque: 1, key: 'work', quiet: false, withKey: false },
  },
  {
    bytes: get('work/t=500/open', op.GETQ, 2),
    expect: { kind: 'get', opcode: 0x09, opaque: 2, key: 'work/t=500/open', quiet: true, withKey: false },
  },
  {
    bytes: get('k\xe9y', op.GETK, 3),
    expect: { kind: 'get', opcode: 0x0c, opaque: 3, key: 'k\xe9y', quiet: false, withKey: true },
  },
  {
    bytes: get('q', op.GETKQ, 4),
    expect: { kind: 'get', opcode: 0x0d, opaque: 4, key: 'q', quiet: true, withKey: true },
  },
  {
    bytes: set('jobs', 'hello\r\nworld', { flags: 0xdeadbeef, exptime: 60, opaque: 5 }),
    expect: {
      kind: 'set',
      opcode: 1,
      opaque: 5,
      key: 'jobs',
      quiet: false,
      flags: 0xdeadbeef,
      exptime: 60,
      cas: 0n,
      value: Buffer.from('hello\r\nworld').toString('hex'),
    },
  },
  {
    bytes: set('jobs', Buffer.alloc(0), { quiet: true, opaque: 0xffffffff, cas: 7n }),
    expect: { kind: 'set', opcode: 0x11, opaque: 0xffffffff, key: 'jobs', quiet: true, flags: 0, exptime: 0, cas: 7n, value: '' },
  },
  {
    bytes: frame({ opcode: op.DELETE, key: 'jobs', opaque: 6 }),
    expect: { kind: 'delete', opcode: 4, opaque: 6, key: 'jobs', quiet: false, cas: 0n },
  },
  {
    bytes: frame({ opcode: op.DELETEQ, key: 'jobs', opaque: 7 }),
    expect: { kind: 'delete', opcode: 0x14, opaque: 7, key: 'jobs', quiet: true, cas: 0n },
  },
  { bytes: frame({ opcode: op.FLUSH, opaque: 8 }), expect: { kind: 'flush', opcode: 8, opaque: 8, quiet: false, delay: 0 } },
  {
    bytes: frame({ opcode: op.FLUSHQ, extras: u32s(30), opaque: 9 }),
    expect: { kind: 'flush', opcode: 0x18, opaque: 9, quiet: true, delay: 30 },
  },
  { bytes: frame({ opcode: op.NOOP, opaque: 10 }), expect: { kind: 'noop', opcode: 0x0a, opaque: 10 } },
  { bytes: frame({ opcode: op.VERSION, opaque: 11 }), expect: { kind: 'version', opcode: 0x0b, opaque: 11 } },
  { bytes: frame({ opcode: op.STAT, opaque: 12 }), expect: { kind: 'stat', opcode: 0x10, opaque: 12, key: null } },
  { bytes: frame({ opcode: op.STAT, key: 'jobs', opaque: 13 }), expect: { kind: 'stat', opcode: 0x10, opaque: 13, key: 'jobs' } },
  { bytes: frame({ opcode: op.SASL_LIST_MECHS, opaque: 14 }), expect: { kind: 'saslListMechs', opcode: 0x20, opaque: 14 } },
  {
    bytes: frame({ opcode: op.SASL_AUTH, key: 'PLAIN', value: '\0alice\0secret', opaque: 15 }),
    expect: {
      kind: 'saslAuth',
      opcode: 0x21,
      opaque: 15,
      mechanism: 'PLAIN',
      payload: Buffer.from('\0alice\0secret').toString('hex'),
    },
  },
  {
    bytes: frame({ opcode: op.SASL_STEP, key: 'PLAIN', value: 'x', opaque: 16 }),
    expect: { kind: 'saslStep', opcode: 0x22, opaque: 16, mechanism: 'PLAIN', payload: '78' },
  },
  {
    bytes: frame({ opcode: op.ADD, key: 'jobs', extras: u32s(0, 0), value: 'nope', opaque: 17 }),
    expect: { kind: 'notSupported', opcode: 2, opaque: 17, skip: 16 },
  },
  {
    bytes: frame({ opcode: op.APPEND, key: 'jobs', value: 'more', opaque: 18 }),
    expect: { kind: 'notSupported', opcode: 0x0e, opaque: 18, skip: 8 },
  },
  {
    bytes: frame({ opcode: op.INCREMENT, key: 'n', extras: Buffer.alloc(20), opaque: 19 }),
    expect: { kind: 'notSupported', opcode: 5, opaque: 19, skip: 21 },
  },
  {
    bytes: frame({ opcode: op.GAT, key: 'n', extras: u32s(10), opaque: 20 }),
    expect: { kind: 'notSupported', opcode: 0x1d, opaque: 20, skip: 5 },
  },
  {
    bytes: frame({ opcode: 0x1b, extras: u32s(1), opaque: 21 }),
    expect: { kind: 'unknown', opcode: 0x1b, opaque: 21, skip: 4 },
  },
  {
    bytes: frame({ opcode: 0xfe, key: 'whatever', value: 'x'.repeat(40), opaque: 22 }),
    expect: { kind: 'unknown', opcode: 0xfe, opaque: 22, skip: 48 },
  },
  {
    bytes: set('big', Buffer.alloc(limits.maxItemSize + 1, 0x61), { opaque: 23 }),
    expect: { kind: 'tooLarge', opcode: 1, opaque: 23, skip: 8 + 3 + limits.maxItemSize + 1 },
  },
  {
    bytes: set('fits', Buffer.alloc(limits.maxItemSize, 0x62), { opaque: 24 }),
    expect: {
      kind: 'set',
      opcode: 1,
      opaque: 24,
      key: 'fits',
      quiet: false,
      flags: 0,
      exptime: 0,
      cas: 0n,
      value: Buffer.alloc(limits.maxItemSize, 0x62).toString('hex'),
    },
  },
  { bytes: frame({ opcode: op.QUITQ, opaque: 25 }), expect: { kind: 'quit', opcode: 0x17, opaque: 25, quiet: true } },
  { bytes: frame({ opcode: op.QUIT, opaque: 26 }), expect: { kind: 'quit', opcode: 0x07, opaque: 26, quiet: false } },
]

const all = Buffer.concat(stream.map((s) => s.bytes))
const expected = stream.map((s) => s.expect)

t.test('a stream of every request kind parses in one piece', async (t) => {
  t.same(parseChunks([all]), expected)
})

t.test('the stream parses when split at every byte boundary', async (t) => {
  for (let i = 1; i < all.length; i++) {
    const got = parseChunks([all.subarray(0, i), all.subarray(i)])
    if (JSON.stringify(got, bigints) !== JSON.stringify(expected, bigints)) {
      t.same(got, expected, `split at ${i}`)
      return
    }
  }
  t.pass(`all ${all.length - 1} two-piece splits parse identically`)
})

t.test('the stream parses one byte at a time, and in three pieces', async (t) => {
  const bytes = [...all].map((b) => Buffer.from([b]))
  t.same(parseChunks(bytes), expected)
  for (let i = 1; i < all.length; i += 97) {
    for (let j = i + 1; j < all.length; j += 89) {
      t.same(parseChunks([all.subarray(0, i), all.subarray(i, j), all.subarray(j)]), expected, `split at ${i},${j}`)
    }
  }
})

t.test('an incomplete frame reports the bytes it needs', async (t) => {
  const f = set('q', 'value')
  t.same(parseRequest(f, 0, 0, limits), { request: null, needed: 24, header: null })
  t.same(parseRequest(f, 0, 10, limits), { request: null, needed: 24, header: null })
  const header = { opcode: op.SET, opaque: 0 }
  t.same(parseRequest(f, 0, 24, limits), { request: null, needed: f.length, header }, 'the header is known')
  t.same(parseRequest(f, 0, f.length - 1, limits), { request: null, needed: f.length, header })
  const padded = Buffer.concat([Buffer.from('junk'), f])
  const r = parseRequest(padded, 4, padded.length, limits)
  t.equal(r.request?.kind, 'set', 'parses from an offset')
  t.equal(r.request !== null && r.consumed, f.length)
})

t.test('a skipped request consumes only its header', async (t) => {
  const f = frame({ opcode: op.PREPEND, key: 'k', value: 'v'.repeat(100) })
  const r = parseRequest(f, 0, 24, limits)
  t.same(r, { request: { kind: 'notSupported', opcode: 0x0f, opaque: 0, skip: 101 }, consumed: 24 })
})

t.test('malformed frames are violations', async (t) => {
  const cases: Array<[string, Buffer, number, number]> = [
    ['wrong magic', Buffer.concat([Buffer.from([0x81]), Buffer.alloc(23)]), 0x04, 0],
    ['text on a binary connection', Buffer.from('get foo\r\n'), 0x04, 0],
    ['key + extras > body', frame({ opcode: op.GET, key: 'abc', bodyLength: 2 }), 0x04, 0],
    ['extras > body', frame({ opcode: op.SET, key: 'k', extras: u32s(0, 0), bodyLength: 4 }), 0x04, 1],
    ['get with extras', frame({ opcode: op.GET, key: 'k', extras: u32s(1) }), 0x04, 0],
    ['get without key', frame({ opcode: op.GET }), 0x04, 0],
    ['get with a value', frame({ opcode: op.GETK, key: 'k', value: 'v' }), 0x04, 0x0c],
    ['set with 4 bytes of extras', frame({ opcode: op.SET, key: 'k', extras: u32s(0), value: 'v' }), 0x04, 1],
    ['set without key', frame({ opcode: op.SETQ, extras: u32s(0, 0), value: 'v' }), 0x04, 0x11],
    ['delete with extras', frame({ opcode: op.DELETE, key: 'k', extras: u32s(0) }), 0x04, 4],
    ['delete with a value', frame({ opcode: op.DELETEQ, key: 'k', value: 'v' }), 0x04, 0x14],
    ['flush with a key', frame({ opcode: op.FLUSH, key: 'k' }), 0x04, 8],
    ['flush with 8 bytes of extras', frame({ opcode: op.FLUSH, extras: u32s(0, 0) }), 0x04, 8],
    ['noop with a body', frame({ opcode: op.NOOP, value: 'x' }), 0x04, 0x0a],
    ['version with a key', frame({ opcode: op.VERSION, key: 'x' }), 0x04, 0x0b],
    ['quit with a body', frame({ opcode: op.QUIT, value: 'x' }), 0x04, 7],
    ['stat with extras', frame({ opcode: op.STAT, extras: u32s(0) }), 0x04, 0x10],
    ['stat with a value', frame({ opcode: op.STAT, key: 'a', value: 'b' }), 0x04, 0x10],
    ['list mechs with a body', frame({ opcode: op.SASL_LIST_MECHS, value: 'x' }), 0x04, 0x20],
    ['sasl auth without mechanism', frame({ opcode: op.SASL_AUTH, value: 'x' }), 0x04, 0x21],
    ['incr with 8 bytes of extras', frame({ opcode: op.INCREMENT, key: 'k', extras: u32s(0, 0) }), 0x04, 5],
    ['touch without extras', frame({ opcode: op.TOUCH, key: 'k' }), 0x04, 0x1c],
    [
      'body over the skip bound',
      frame({ opcode: op.SET, key: 'k', extras: u32s(0, 0), bodyLength: MAX_SKIPPED_BODY_BYTES + 1 }),
      0x03,
      1,
    ],
    ['4 GiB body', frame({ opcode: 0xee, bodyLength: 0xffffffff }), 0x03, 0xee],
  ]
  for (const [name, bytes, status, opcode] of cases) {
    const got = parseChunks([bytes])
    t.equal(got.length, 1, `${name}: one request`)
    t.match(got[0], { kind: 'violation', status, opcode }, name)
  }
  // Wrong magic is detected from the first byte, without waiting for a header.
  t.match(parseRequest(Buffer.from([0x00]), 0, 1, limits), { request: { kind: 'violation', status: 4 } })
})

t.test('buffered frames stop at maxItemSize + 64 KiB; skipped bodies at 64 MiB', async (t) => {
  const atLimit = frame({ opcode: op.SET, key: 'k', extras: u32s(0, 0), bodyLength: limits.maxItemSize + FRAME_SLACK_BYTES })
  t.match(parseRequest(atLimit, 0, 24, limits), { request: { kind: 'tooLarge' }, consumed: 24 })
  t.equal(FRAME_SLACK_BYTES, 65536)
  t.equal(MAX_SKIPPED_BODY_BYTES, 64 * 1024 * 1024)
  // An oversized SET is skipped (body streamed away) up to the skip bound, whatever the item limit.
  for (const bodyLength of [limits.maxItemSize + FRAME_SLACK_BYTES + 1, MAX_SKIPPED_BODY_BYTES]) {
    const big = frame({ opcode: op.SET, key: 'k', extras: u32s(0, 0), bodyLength })
    t.match(parseRequest(big, 0, 24, limits), { request: { kind: 'tooLarge', skip: bodyLength }, consumed: 24 })
    const unknown = frame({ opcode: 0x77, bodyLength })
    t.match(parseRequest(unknown, 0, 24, limits), { request: { kind: 'unknown', skip: bodyLength }, consumed: 24 })
  }
  // A frame that would be buffered (SASL payload) keeps the buffered-frame limit.
  const sasl = frame({ opcode: op.SASL_AUTH, key: 'PLAIN', bodyLength: limits.maxItemSize + FRAME_SLACK_BYTES + 1 })
  t.match(parseRequest(sasl, 0, 24, limits), { request: { kind: 'violation', status: 0x03 } })
  // With an item limit above the bound, the bound follows it.
  const huge = { maxItemSize: 100 * 1024 * 1024 }
  const hugeSet = frame({ opcode: op.SET, key: 'k', extras: u32s(0, 0), bodyLength: 100 * 1024 * 1024 })
  t.match(parseRequest(hugeSet, 0, 24, huge), { request: null, needed: 24 + 100 * 1024 * 1024 })
})

function bigints(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v
}

// Responses, byte for byte (hand-assembled from the memcached binary protocol spec).
const hex = (s: string): string => s.replace(/\s+/g, '')
const join = (chunks: Buffer | Buffer[]): string => Buffer.concat(Array.isArray(chunks) ? chunks : [chunks]).toString('hex')

t.test('responses are byte-exact', async (t) => {
  t.equal(
    join(encodeResponse(0x01, 0x01020304, 0)),
    hex('81 01 0000 00 00 0000 00000000 01020304 0000000000000000'),
    'SET success',
  )
  t.equal(
    join(encodeResponse(0x0b, 7, 0, '1.2.3')),
    hex('81 0b 0000 00 00 0000 00000005 00000007 0000000000000000 312e322e33'),
    'VERSION',
  )
  t.equal(
    join(encodeError(0x00, 9, 0x0001)),
    hex('81 00 0000 00 00 0001 00000009 00000009 0000000000000000') + Buffer.from('Not found').toString('hex'),
    'GET miss',
  )
  t.equal(
    join(encodeError(0x01, 0, 0x0005, 'queue full')),
    hex('81 01 0000 00 00 0005 0000000a 00000000 0000000000000000') + Buffer.from('queue full').toString('hex'),
    'NOT_STORED with message',
  )
  t.equal(
    join(encodeError(0x02, 0xffffffff, 0x0083)),
    hex('81 02 0000 00 00 0083 0000000d ffffffff 0000000000000000') + Buffer.from('Not supported').toString('hex'),
    'NOT_SUPPORTED',
  )
  t.equal(
    join(encodeItem(0x00, 3, null, 0xdeadbeef, 0x1_0000_0002, Buffer.from('hi'))),
    hex('81 00 0000 04 00 0000 00000006 00000003 0000000100000002 deadbeef 6869'),
    'GET hit: flags extras, cas high and low words',
  )
  t.equal(
    join(encodeItem(0x0c, 3, 'q/t=5', 1, 42, Buffer.alloc(0))),
    hex('81 0c 0005 04 00 0000 00000009 00000003 000000000000002a 00000001') + Buffer.from('q/t=5').toString('hex'),
    'GETK hit with an empty value',
  )
  t.equal(encodeItem(0x0d, 0, 'q', 0, 1, Buffer.alloc(0)).length, 24 + 4 + 1, 'one buffer: header, flags, key, empty value')
  // laid out by an ItemFrame (the engine copied the value in place): the same bytes, that buffer
  for (const [key, frame] of [[null, GET_FRAME], ['k\xe9y', new ItemFrame(3)]] as const) {
    const value = Buffer.from('value\r\n')
    const head = frame.headBytes()
    const framed = Buffer.alloc(head + value.length + frame.tailBytes, 0x2a)
    value.copy(framed, head)
    const reply = encodeItem(0x0c, 9, key, 7, 2 ** 40 + 3, framed.subarray(head, head + value.length), framed)
    t.same(reply, encodeItem(0x0c, 9, key, 7, 2 ** 40 + 3, value), `framed, key ${key}: byte for byte`)
    t.equal(reply, framed, 'completed in place')
  }
  const other = Buffer.alloc(40)
  t.not(encodeItem(0x00, 1, 'q', 0, 1, other.subarray(28, 30), other), other, 'a frame of another layout: a new buffer')
  t.equal(
    join(encodeKeyMiss(0x0c, 4, 'k\xe9')),
    hex('81 0c 0002 00 00 0001 00000002 00000004 0000000000000000 6be9'),
    'GETK miss carries the key (latin1)',
  )
  t.equal(
    join(encodeStats(0x10, 5, [['pid', '42'], ['queue_a_items', '0']])),
    hex('81 10 0003 00 00 0000 00000005 00000005 0000000000000000') +
      Buffer.from('pid42').toString('hex') +
      hex('81 10 000d 00 00 0000 0000000e 00000005 0000000000000000') +
      Buffer.from('queue_a_items0').toString('hex') +
      hex('81 10 0000 00 00 0000 00000000 00000005 0000000000000000'),
    'STAT series with terminator',
  )
  t.equal(
    join(encodeStats(0x10, 1, [])),
    hex('81 10 0000 00 00 0000 00000000 00000001 0000000000000000'),
    'empty STAT is the terminator alone',
  )
})
