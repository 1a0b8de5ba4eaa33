/**
 * The text/meta parser as a pure unit: every command fed at every byte boundary (incomplete until
 * its last byte, then exactly one command using every byte), pipelined mixes, offsets into a larger
 * buffer, and the failure results that drive the handler's framing.
 */
import t, { type Test } from 'tap'
import { parseCommand, skipThroughNewline } from '../../src/server/protocol/text/parser.js'
import type { ParseResult, TextCommand } from '../../src/server/protocol/text/commands.js'
import type { ProtocolLimits } from '../../src/server/protocol/handler.js'

const LIMITS: ProtocolLimits = { maxItemSize: 1024 * 1024, maxKeyLength: 250, maxLineLength: 2048 }

const b = (s: string): Buffer => Buffer.from(s, 'latin1')

/** Strip Buffers to strings so commands compare with t.same. */
function plain(cmd: TextCommand): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(cmd)) out[k] = Buffer.isBuffer(v) ? v.toString('latin1') : v
  return out
}

function parse(input: Buffer, start = 0, end = input.length, limits = LIMITS): ParseResult {
  return parseCommand(input, start, end, limits)
}

/** Every strict prefix is incomplete; the whole input is one command consuming every byte. */
function everySplit(t: Test, wire: string | Buffer, expected: Record<string, unknown>): void {
  const input = typeof wire === 'string' ? b(wire) : wire
  for (let k = 0; k < input.length; k++) {
    const r = parse(input, 0, k)
    if (r.kind !== 'incomplete') {
      t.fail(`prefix of ${k}/${input.length} bytes gave ${r.kind}`)
      return
    }
  }
  const r = parse(input)
  t.equal(r.kind, 'command', 'whole input parses')
  if (r.kind !== 'command') return
  t.equal(r.consumed, input.length, 'consumes every byte')
  t.same(plain(r.command), expected)
  // Same bytes in the middle of a larger buffer with junk around them: offsets, not positions.
  const framed = Buffer.concat([b('JUNK'), input, b('get x\r\n')])
  const r2 = parse(framed, 4, 4 + input.length)
  t.equal(r2.kind, 'command')
  if (r2.kind === 'command') {
    t.equal(r2.consumed, input.length)
    t.same(plain(r2.command), expected)
  }
}

const META_RET = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  order: '',
  opaque: '',
  keyToken: 'q',
  base64: false,
  quiet: false,
  ...over,
})

t.test('every command at every byte boundary', async (t) => {
  const cases: Array<[string | Buffer, Record<string, unknown>]> = [
    ['set q 0 0 5\r\nhello\r\n', { type: 'set', key: 'q', flags: 0, exptime: 0, data: 'hello', noreply: false }],
    ['set q 4294967295 -1 0 noreply\r\n\r\n', { type: 'set', key: 'q', flags: 4294967295, exptime: -1, data: '', noreply: true }],
    ['set q 7 2592000 4\n\r\n\r\n\r\n', { type: 'set', key: 'q', flags: 7, exptime: 2592000, data: '\r\n\r\n', noreply: false }],
    [Buffer.concat([b('set bin 1 0 4\r\n'), Buffer.from([0, 0xff, 0x0d, 0x0a]), b('\r\n')]), { type: 'set', key: 'bin', flags: 1, exptime: 0, data: '\x00\xff\r\n', noreply: false }],
    ['set  spaced   0  0  1 \r\nx\r\n', { type: 'set', key: 'spaced', flags: 0, exptime: 0, data: 'x', noreply: false }],
    ['get q\r\n', { type: 'get', keys: ['q'], withCas: false }],
    ['get q\n', { type: 'get', keys: ['q'], withCas: false }],
    ['gets a b/t=500/open c\r\n', { type: 'get', keys: ['a', 'b/t=500/open', 'c'], withCas: true }],
    ['get \xe9t\xe9\r\n', { type: 'get', keys: ['\xe9t\xe9'], withCas: false }],
    ['delete q\r\n', { type: 'delete', key: 'q', noreply: false }],
    ['delete q 0\r\n', { type: 'delete', key: 'q', noreply: false }],
    ['delete q noreply\r\n', { type: 'delete', key: 'q', noreply: true }],
    ['delete q 0 noreply\r\n', { type: 'delete', key: 'q', noreply: true }],
    ['flush q\r\n', { type: 'flush', key: 'q', noreply: false }],
    ['flush q noreply\r\n', { type: 'flush', key: 'q', noreply: true }],
    ['flush_all\r\n', { type: 'flush_all', delaySeconds: 0, noreply: false }],
    ['flush_all 10\r\n', { type: 'flush_all', delaySeconds: 10, noreply: false }],
    ['flush_all noreply\r\n', { type: 'flush_all', delaySeconds: 0, noreply: true }],
    ['flush_all 5 noreply\r\n', { type: 'flush_all', delaySeconds: 5, noreply: true }],
    ['stats\r\n', { type: 'stats', queue: null }],
    ['stats jobs\r\n', { type: 'stats', queue: 'jobs' }],
    ['version\r\n', { type: 'version' }],
    ['verbosity 1\r\n', { type: 'verbosity', level: 1, noreply: false }],
    ['verbosity 0 noreply\r\n', { type: 'verbosity', level: 0, noreply: true }],
    ['quit\r\n', { type: 'quit' }],
    ['shutdown\r\n', { type: 'shutdown' }],
    ['shutdown graceful\r\n', { type: 'shutdown' }],
    ['add q 0 0 2\r\nhi\r\n', { type: 'refused_storage', name: 'add', key: 'q', noreply: false }],
    ['replace q 0 0 2 noreply\r\nhi\r\n', { type: 'refused_storage', name: 'replace', key: 'q', noreply: true }],
    ['append q 0 0 2\r\nhi\r\n', { type: 'refused_storage', name: 'append', key: 'q', noreply: false }],
    ['prepend q 0 0 2\r\nhi\r\n', { type: 'refused_storage', name: 'prepend', key: 'q', noreply: false }],
    ['cas q 0 0 2 18446744073709551615\r\nhi\r\n', { type: 'refused_storage', name: 'cas', key: 'q', noreply: false }],
    ['cas q 0 0 2 99 noreply\r\nhi\r\n', { type: 'refused_storage', name: 'cas', key: 'q', noreply: true }],
    ['incr q 1\r\n', { type: 'refused', name: 'incr', noreply: false }],
    ['decr q 1 noreply\r\n', { type: 'refused', name: 'decr', noreply: true }],
    ['touch q 10\r\n', { type: 'refused', name: 'touch', noreply: false }],
    ['gat 10 q\r\n', { type: 'refused', name: 'gat', noreply: false }],
    ['bogus\r\n', { type: 'unknown' }],
    ['\r\n', { type: 'unknown' }],
    ['\n', { type: 'unknown' }],
    ['GET q\r\n', { type: 'unknown' }],
    ['version extra\r\n', { type: 'unknown' }],
    // meta
    ['mn\r\n', { type: 'mn' }],
    ['me q\r\n', { type: 'me' }],
    ['ma q\r\n', { type: 'refused', name: 'ma', noreply: false }],
    ['mg q\r\n', { type: 'mg', key: 'q', value: false, returns: META_RET() }],
    ['mg q v\r\n', { type: 'mg', key: 'q', value: true, returns: META_RET() }],
    ['mg q/t=500/open s v f k O123 t c q u\r\n', { type: 'mg', key: 'q/t=500/open', value: true, returns: META_RET({ order: 'sfkOtc', opaque: '123', keyToken: 'q/t=500/open', quiet: true }) }],
    ['mg cQ== b k v\r\n', { type: 'mg', key: 'q', value: true, returns: META_RET({ order: 'k', keyToken: 'cQ==', base64: true }) }],
    ['md q\r\n', { type: 'md', key: 'q', returns: META_RET() }],
    ['md q q Oab k\r\n', { type: 'md', key: 'q', returns: META_RET({ order: 'Ok', opaque: 'ab', quiet: true }) }],
    ['ms q 2\r\nhi\r\n', { type: 'ms', key: 'q', flags: 0, exptime: 0, refusedMode: false, data: 'hi', returns: META_RET() }],
    ['ms q 3 F42 T-1 q O9 k MS\r\na\r\n\r\n', { type: 'ms', key: 'q', flags: 42, exptime: -1, refusedMode: false, data: 'a\r\n', returns: META_RET({ order: 'Ok', opaque: '9', quiet: true }) }],
    ['ms q 1 ME\r\nx\r\n', { type: 'ms', key: 'q', flags: 0, exptime: 0, refusedMode: true, data: 'x', returns: META_RET() }],
    ['ms q 1 Ma\r\nx\r\n', { type: 'ms', key: 'q', flags: 0, exptime: 0, refusedMode: true, data: 'x', returns: META_RET() }],
  ]
  for (const [wire, expected] of cases) {
    await t.test(JSON.stringify(typeof wire === 'string' ? wire : wire.toString('latin1')), async (t) => everySplit(t, wire, expected))
  }
})

t.test('a set waiting for its data block says how many bytes it needs', async (t) => {
  const wire = b('set q 0 0 10\r\n0123456789\r\n')
  const r = parse(wire, 0, 20)
  t.same(r, { kind: 'incomplete', expectBytes: wire.length, headerBytes: 14, noreply: false })
  const line = parse(wire, 0, 5)
  t.same(line, { kind: 'incomplete', expectBytes: 0 }, 'no size known before the line ends')
})

t.test('the data view points into the input buffer, never a copy or a string', async (t) => {
  const wire = b('set q 0 0 3\r\nabc\r\n')
  const r = parse(wire)
  if (r.kind !== 'command' || r.command.type !== 'set') throw new Error('expected set')
  t.equal(r.command.data.buffer, wire.buffer)
  t.equal(r.command.data.byteOffset, wire.byteOffset + 13)
})

t.test('pipelined mix: commands come out in order, each consuming exactly its bytes', async (t) => {
  const parts: Array<[string, string]> = [
    ['set a 1 0 3\r\nxyz\r\n', 'set'],
    ['get a b\r\n', 'get'],
    ['ms m 2 T0\r\nhi\r\n', 'ms'],
    ['add a 0 0 1\r\nz\r\n', 'refused_storage'],
    ['mg m v\r\n', 'mg'],
    ['stats\n', 'stats'],
    ['mn\r\n', 'mn'],
    ['delete a noreply\r\n', 'delete'],
    ['quit\r\n', 'quit'],
  ]
  const wire = b(parts.map(([w]) => w).join(''))
  let offset = 0
  const seen: string[] = []
  while (offset < wire.length) {
    const r = parse(wire, offset, wire.length)
    if (r.kind !== 'command') throw new Error(`unexpected ${r.kind} at ${offset}`)
    seen.push(r.command.type)
    t.equal(r.consumed, parts[seen.length - 1]![0].length, `${r.command.type} consumed its own bytes`)
    offset += r.consumed
  }
  t.same(seen, parts.map(([, type]) => type))
})

// ---- failures ---------------------------------------------------------------------------------

interface FailureExpectation {
  message: string
  code?: string
  consumed?: number
  discard?: number
  resync?: boolean
  close?: boolean
  noreply?: boolean
}

function expectFailure(t: Test, wire: string | Buffer, want: FailureExpectation, limits = LIMITS): void {
  const input = typeof wire === 'string' ? b(wire) : wire
  const r = parse(input, 0, input.length, limits)
  t.equal(r.kind, 'error', `${JSON.stringify(input.toString('latin1').slice(0, 60))} fails`)
  if (r.kind !== 'error') return
  t.equal(r.error.message, want.message)
  if (want.code) t.equal(r.error.code, want.code)
  if (want.consumed !== undefined) t.equal(r.consumed, want.consumed, 'consumed')
  t.equal(r.discard, want.discard ?? 0, 'discard')
  t.equal(r.resync, want.resync ?? false, 'resync')
  t.equal(r.close, want.close ?? false, 'close')
  t.equal(r.noreply, want.noreply ?? false, 'noreply')
}

t.test('malformed storage headers', async (t) => {
  const bad = 'bad command line format'
  const lines = [
    'set q 0 0\r\n', // missing bytes
    'set q 0\r\n',
    'set q\r\n',
    'set\r\n',
    'set q 0 0 -5\r\n', // negative length
    'set q 0 0 five\r\n', // non-numeric length
    'set q 0 0 5x\r\n',
    'set q 0 0 +5\r\n',
    'set q 0 0 99999999999999999999\r\n', // absurd length
    'set q 0 0 5 noreply extra\r\n', // too many tokens
    'set q 0 0 5 sometimes\r\n', // not noreply
    'set my key 0 0 5\r\n', // space in key shifts the fields
    'cas q 0 0 5\r\n', // cas without its unique: "5" would be read as the unique
    'cas q 0 0 5 1 2\r\n', // cas with an extra field
  ]
  for (const line of lines) {
    expectFailure(t, line, { message: bad, code: 'BAD_COMMAND', consumed: line.length })
  }
})

t.test('bad flags or exptime with a sound length: the data block is skipped', async (t) => {
  for (const line of ['set q -1 0 5\r\n', 'set q 4294967296 0 5\r\n', 'set q x 0 5\r\n', 'set q 0 1.5 5\r\n', 'set q 0 - 5\r\n', 'cas q 0 0 5 -3\r\n', 'cas q 0 0 5 18446744073709551616\r\n']) {
    expectFailure(t, line, { message: 'bad command line format', consumed: line.length, discard: 7 })
  }
})

t.test('too large: refused at once, the data is discarded unread, noreply honoured', async (t) => {
  const limits = { ...LIMITS, maxItemSize: 100 }
  expectFailure(t, 'set q 0 0 101\r\n', { message: 'object too large for cache', code: 'TOO_LARGE', consumed: 15, discard: 103 }, limits)
  expectFailure(t, 'set q 0 0 101 noreply\r\n', { message: 'object too large for cache', code: 'TOO_LARGE', consumed: 23, discard: 103, noreply: true }, limits)
  expectFailure(t, 'add q 0 0 2000000\r\n', { message: 'object too large for cache', code: 'TOO_LARGE', discard: 2000002 }, limits)
  expectFailure(t, 'ms q 101 T0\r\n', { message: 'object too large for cache', code: 'TOO_LARGE', discard: 103 }, limits)
  const ok = parse(b(`set q 0 0 100\r\n${'x'.repeat(100)}\r\n`), 0, 117, limits)
  t.equal(ok.kind, 'command', 'exactly the limit is fine')
})

t.test('data block not followed by CRLF: bad data chunk, then resync', async (t) => {
  // longer than declared
  expectFailure(t, 'set q 0 0 3\r\nabcdef\r\n', { message: 'bad data chunk', code: 'BAD_DATA_CHUNK', consumed: 13 + 3, resync: true })
  // shorter than declared: the next command is read as data
  expectFailure(t, 'set q 0 0 6\r\nabc\r\nget q\r\n', { message: 'bad data chunk', consumed: 13 + 6, resync: true })
  // bare LF after data
  expectFailure(t, 'set q 0 0 3\r\nabc\nX', { message: 'bad data chunk', consumed: 16, resync: true })
  expectFailure(t, 'ms q 3\r\nabcXY', { message: 'bad data chunk', consumed: 11, resync: true })
  t.same(skipThroughNewline(b('def\r\nget q\r\n'), 0, 12), { consumed: 5, found: true })
  t.same(skipThroughNewline(b('defgh'), 0, 5), { consumed: 5, found: false })
  t.same(skipThroughNewline(b('xx\nyy'), 1, 5), { consumed: 2, found: true })
})

t.test('line too long: decided on maxLineLength + 2 bytes whatever the split, then close', async (t) => {
  const limits = { ...LIMITS, maxLineLength: 20 }
  const ok = b(`get ${'k'.repeat(16)}\r\n`) // 20 bytes + CRLF
  t.equal(parse(ok, 0, ok.length, limits).kind, 'command')
  const long = b(`get ${'k'.repeat(17)}\r\n`)
  expectFailure(t, long, { message: 'line too long', close: true, consumed: long.length }, limits)
  const noNewline = b('x'.repeat(21))
  t.equal(parse(noNewline, 0, 21, limits).kind, 'incomplete', '21 bytes without newline may still end in CRLF')
  expectFailure(t, b('x'.repeat(22)), { message: 'line too long', close: true, consumed: 22 }, limits)
  const huge = Buffer.alloc(2 * 1024 * 1024, 0x61)
  expectFailure(t, huge, { message: 'line too long', close: true, consumed: huge.length })
  // A newline far beyond the window does not rescue the line.
  const late = Buffer.concat([Buffer.alloc(100, 0x61), b('\r\n')])
  expectFailure(t, late, { message: 'line too long', close: true }, limits)
})

t.test('malformed other commands', async (t) => {
  const bad = 'bad command line format'
  for (const line of [
    'get\r\n',
    'gets \r\n',
    'delete\r\n',
    'delete q 5\r\n',
    'delete q 0 noreply extra\r\n',
    'delete q x\r\n',
    'flush\r\n',
    'flush a b\r\n',
    'flush_all x\r\n',
    'flush_all 1 2\r\n',
    'verbosity\r\n',
    'verbosity x\r\n',
    'verbosity -1\r\n',
    'stats a b\r\n',
    'mg\r\n',
    'md\r\n',
    'me\r\n',
    'ms q\r\n',
    'ms q -1\r\n',
    'ms q x\r\n',
  ]) {
    expectFailure(t, line, { message: bad, consumed: line.length })
  }
})

t.test('meta flag errors', async (t) => {
  expectFailure(t, 'mg q zz\r\n', { message: 'bad flag' })
  expectFailure(t, 'mg q F1\r\n', { message: 'bad flag' }, LIMITS) // F is ms-only
  expectFailure(t, 'mg q vv\r\n', { message: 'bad flag' })
  expectFailure(t, 'mg q N30\r\n', { message: 'bad flag' })
  expectFailure(t, 'md q v\r\n', { message: 'bad flag' })
  expectFailure(t, 'mg q v v\r\n', { message: 'duplicate flag' })
  expectFailure(t, `mg q O${'x'.repeat(33)}\r\n`, { message: 'opaque token too long' })
  expectFailure(t, `mg q ${'k '.repeat(18)}\r\n`, { message: 'options flags too long' })
  expectFailure(t, 'mg !!!! b\r\n', { message: 'error decoding key' })
  expectFailure(t, 'mg abc b\r\n', { message: 'error decoding key' })
  // ms flag errors skip the data block
  expectFailure(t, 'ms q 5 c\r\n', { message: 'bad flag', discard: 7 })
  expectFailure(t, 'ms q 5 Fx\r\n', { message: 'bad token in command line format', discard: 7 })
  expectFailure(t, 'ms q 5 F4294967296\r\n', { message: 'bad token in command line format', discard: 7 })
  expectFailure(t, 'ms q 5 Tsoon\r\n', { message: 'bad token in command line format', discard: 7 })
  expectFailure(t, 'ms q 5 MSS\r\n', { message: 'incorrect length for M token', discard: 7 })
  expectFailure(t, 'ms q 5 MX\r\n', { message: 'invalid mode for ms M token', discard: 7 })
  expectFailure(t, 'ms q 5 q q\r\n', { message: 'duplicate flag', discard: 7 })
})
