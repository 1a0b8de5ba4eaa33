/**
 * Reply encoding, byte for byte: constant replies, VALUE headers, stats, errors mapped from codes
 * (and kept on one line whatever the message), meta status lines with flags in request order.
 */
import t from 'tap'
import { StarlingError, type ErrorCode } from '../../src/server/errors.js'
import * as S from '../../src/server/protocol/text/serializer.js'
import type { MetaReturnFlags } from '../../src/server/protocol/text/commands.js'

const text = (b: Buffer): string => b.toString('latin1')

t.test('constant replies', async (t) => {
  const expected: Array<[Buffer, string]> = [
    [S.STORED, 'STORED\r\n'],
    [S.END, 'END\r\n'],
    [S.DELETED, 'DELETED\r\n'],
    [S.NOT_FOUND, 'NOT_FOUND\r\n'],
    [S.OK, 'OK\r\n'],
    [S.ERROR, 'ERROR\r\n'],
    [S.MN, 'MN\r\n'],
    [S.EN, 'EN\r\n'],
    [S.HD, 'HD\r\n'],
    [S.NS, 'NS\r\n'],
    [S.NF, 'NF\r\n'],
    [S.CRLF, '\r\n'],
    [S.BAD_COMMAND_LINE, 'CLIENT_ERROR bad command line format\r\n'],
    [S.BAD_DATA_CHUNK, 'CLIENT_ERROR bad data chunk\r\n'],
    [S.LINE_TOO_LONG, 'CLIENT_ERROR line too long\r\n'],
    [S.TOO_LARGE, 'SERVER_ERROR object too large for cache\r\n'],
    [S.QUEUE_FULL, 'SERVER_ERROR queue full\r\n'],
    [S.SHUTTING_DOWN, 'SERVER_ERROR shutting down\r\n'],
    [S.UNAUTHENTICATED, 'CLIENT_ERROR unauthenticated\r\n'],
    [S.AUTH_FAILED, 'CLIENT_ERROR authentication failure\r\n'],
  ]
  for (const [buf, wire] of expected) t.equal(text(buf), wire)
})

t.test('error codes map to memcached error lines', async (t) => {
  const cases: Array<[ErrorCode, string, string]> = [
    ['BAD_KEY', 'key too long', 'CLIENT_ERROR key too long\r\n'],
    ['BAD_OPTIONS', 'unknown option x', 'CLIENT_ERROR unknown option x\r\n'],
    ['BAD_COMMAND', 'bad command line format', 'CLIENT_ERROR bad command line format\r\n'],
    ['OPEN_READ_PENDING', 'open read pending', 'CLIENT_ERROR open read pending\r\n'],
    ['NOT_SUPPORTED', 'add not supported', 'CLIENT_ERROR add not supported\r\n'],
    ['AUTH_REQUIRED', 'unauthenticated', 'CLIENT_ERROR unauthenticated\r\n'],
    ['AUTH_FAILED', 'authentication failure', 'CLIENT_ERROR authentication failure\r\n'],
    ['BAD_DATA_CHUNK', 'whatever', 'CLIENT_ERROR bad data chunk\r\n'],
    ['TOO_LARGE', 'whatever', 'SERVER_ERROR object too large for cache\r\n'],
    ['QUEUE_FULL', 'whatever', 'SERVER_ERROR queue full\r\n'],
    ['IO', 'ENOSPC: no space left on device', 'SERVER_ERROR ENOSPC: no space left on device\r\n'],
    ['SHUTTING_DOWN', 'whatever', 'SERVER_ERROR shutting down\r\n'],
  ]
  for (const [code, message, wire] of cases) t.equal(text(S.errorReply(new StarlingError(code, message))), wire, code)
})

t.test('an error message can never break the framing', async (t) => {
  const reply = text(S.errorReply(new StarlingError('IO', 'line one\r\nSTORED\r\n\x00x')))
  t.equal(reply, 'SERVER_ERROR line one  STORED   x\r\n')
  t.equal(reply.indexOf('\r\n'), reply.length - 2, 'exactly one line')
  t.ok(text(S.errorReply(new StarlingError('BAD_KEY', 'k'.repeat(5000)))).length < 600, 'bounded length')
  t.equal(text(S.internalErrorReply(new TypeError('boom\nx'))), 'SERVER_ERROR boom x\r\n')
  t.equal(text(S.internalErrorReply('weird')), 'SERVER_ERROR weird\r\n')
  t.equal(text(S.clientError('add is not supported by a queue server')), 'CLIENT_ERROR add is not supported by a queue server\r\n')
})

t.test('VALUE headers, with and without cas; keys go back byte for byte', async (t) => {
  t.equal(text(S.valueHeader('jobs', 0, 5)), 'VALUE jobs 0 5\r\n')
  t.equal(text(S.valueHeader('jobs/t=10/open', 4294967295, 0, 17)), 'VALUE jobs/t=10/open 4294967295 0 17\r\n')
  const latin = S.valueHeader('\xe9\xff', 1, 2)
  t.same([...latin.subarray(6, 8)], [0xe9, 0xff], 'latin1 key bytes unchanged')
})

t.test('stats and version', async (t) => {
  t.equal(
    text(S.statsReply([['pid', '42'], ['queue_a_items', '3']])),
    'STAT pid 42\r\nSTAT queue_a_items 3\r\nEND\r\n',
  )
  t.equal(text(S.statsReply([])), 'END\r\n')
  t.equal(text(S.versionReply('1.2.3')), 'VERSION 1.2.3\r\n')
})

t.test('meta status lines: flags in request order, O and k echoed without an item', async (t) => {
  const returns = (over: Partial<MetaReturnFlags> = {}): MetaReturnFlags => ({
    order: '',
    opaque: '',
    keyToken: 'q',
    base64: false,
    quiet: false,
    ...over,
  })
  const item = { flags: 7, size: 5, cas: 99, ttlSeconds: -1 }
  t.equal(text(S.metaLine('HD', returns(), null)), 'HD\r\n')
  t.equal(S.metaLine('HD', returns(), null), S.HD, 'constant reused')
  t.equal(text(S.metaLine('VA 5', returns({ order: 'fstck' }), item)), 'VA 5 f7 s5 t-1 c99 kq\r\n')
  t.equal(text(S.metaLine('VA 5', returns({ order: 'kcOf', opaque: 'abc' }), item)), 'VA 5 kq c99 Oabc f7\r\n')
  t.equal(text(S.metaLine('EN', returns({ order: 'fOks', opaque: '1' }), null)), 'EN O1 kq\r\n')
  t.equal(text(S.metaLine('NF', returns({ order: 'k', keyToken: 'cQ==', base64: true }), null)), 'NF kcQ== b\r\n')
  t.equal(text(S.metaLine('NS', returns({ order: 'O', opaque: 'x' }), null)), 'NS Ox\r\n')
  t.equal(text(S.metaLine('HD', returns({ order: 't' }), { ...item, ttlSeconds: 30 })), 'HD t30\r\n')
})

t.test('valueReply: a whole single-key hit in one buffer, as header + data + CRLF + END', async (t) => {
  const data = Buffer.from([0, 1, 0xff, 0x0d, 0x0a, 0x41])
  const key = 'k\u00e9y' // latin1: one byte per char
  t.same(S.valueReply(key, 7, data), Buffer.concat([S.valueHeader(key, 7, data.length), data, S.CRLF, S.END]))
  t.same(S.valueReply(key, 0, data, 42), Buffer.concat([S.valueHeader(key, 0, data.length, 42), data, S.CRLF, S.END]), 'gets: with cas')
  t.equal(text(S.valueReply('q', 1, Buffer.alloc(0))), 'VALUE q 1 0\r\n\r\nEND\r\n', 'empty value')
})

t.test('ValueFrame: the reply laid out around the payload is byte for byte valueReply', async (t) => {
  const key = 'q\u00e9/open'
  const frame = new S.ValueFrame(key)
  for (const flags of [0, 9, 10, 99, 100, 12345, 4294967295]) {
    for (const len of [0, 1, 9, 10, 1024, 100000]) {
      const data = Buffer.alloc(len, (flags + len) & 0xff)
      const head = frame.headBytes(flags, len)
      // as the item store does it: one buffer, the payload copied at `head`
      const framed = Buffer.alloc(head + len + frame.tailBytes, 0x2a)
      data.copy(framed, head)
      const reply = S.framedValueReply(key, flags, framed.subarray(head, head + len), framed)
      t.same(reply, S.valueReply(key, flags, data), `flags ${flags}, ${len} bytes`)
      if (reply !== framed) t.fail(`flags ${flags}, ${len} bytes: not completed in place`)
    }
  }
  const data = Buffer.from('abc')
  t.same(S.framedValueReply(key, 1, data, null), S.valueReply(key, 1, data), 'no frame: a new buffer')
  const other = new S.ValueFrame('q') // laid out for another key (an open read aborted, got again as q/open)
  const framed = Buffer.alloc(other.headBytes(1, 3) + 3 + other.tailBytes)
  data.copy(framed, other.headBytes(1, 3))
  const view = framed.subarray(other.headBytes(1, 3), other.headBytes(1, 3) + 3)
  const reply = S.framedValueReply(key, 1, view, framed)
  t.same(reply, S.valueReply(key, 1, data), 'a frame of another size: a new buffer, still right')
  t.not(reply, framed)
})

t.test('metaValueReply: an mg hit in one buffer, as the VA line + data + CRLF', async (t) => {
  const returns = { order: ['f', 's', 'O'], opaque: 'x1', quiet: false, base64: false, keyToken: 'q' } as unknown as MetaReturnFlags
  const info = { flags: 3, size: 2, cas: 9, ttlSeconds: -1 }
  const data = Buffer.from('hi')
  t.equal(text(S.metaValueReply(returns, info, data)), 'VA 2 f3 s2 Ox1\r\nhi\r\n')
  t.same(S.metaValueReply(returns, info, data), Buffer.concat([S.metaLine('VA 2', returns, info), data, S.CRLF]))
})
