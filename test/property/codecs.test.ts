/**
 * Property tests of the text, meta and binary codecs (issue 12, item 14), through the real
 * TextHandler / BinaryHandler (parser + framing: expect, discard, resync, close) over an in-memory
 * Session and a real Outbox:
 * - random bytes, in random chunks, never make the handler throw;
 * - a random command stream split at arbitrary points gives the same session calls and the same
 *   reply bytes as the stream fed whole;
 * - valid input after a refused command (too large, bad data chunk, bad format, unknown, lying
 *   lengths) is answered as if the refused command had not been there;
 * - the bytes a connection buffers never exceed the line limit + item limit + framing.
 * `npm test` runs a bounded number of cases; STARLING_FUZZ=1 (`npm run fuzz`) many more.
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { Done, GetDone } from '../../src/server/dispatcher.js'
import type { ProtocolHandler, ProtocolLimits } from '../../src/server/protocol/handler.js'
import type { QueueReadOptions as GetOptions } from '../../src/server/engine/requests.js'
import { Outbox } from '../../src/server/protocol/outbox.js'
import { TextHandler } from '../../src/server/protocol/text/handler.js'
import { BinaryHandler } from '../../src/server/protocol/binary/handler.js'
import { FRAME_SLACK_BYTES } from '../../src/server/protocol/binary/parser.js'
import { InputBudget } from '../../src/server/protocol/inputBudget.js'
import { CollectingSink, MemorySession, MemoryStore } from '../helpers/textSession.js'
import { decodeResponse, frame, op, u32s } from '../helpers/binary.js'

const FUZZ = process.env.STARLING_FUZZ === '1'
/** Cases per property: bounded under `npm test`, many under `npm run fuzz`. */
const RUNS = FUZZ ? Number(process.env.STARLING_FUZZ_RUNS ?? 20_000) : 400

const LIMITS: ProtocolLimits = { maxItemSize: 64, maxKeyLength: 24, maxLineLength: 128 }
const TEXT_BOUND = LIMITS.maxLineLength + 2 + LIMITS.maxItemSize + 2
const BINARY_BOUND = 24 + LIMITS.maxItemSize + FRAME_SLACK_BYTES

/** Records every call the codec makes into the layer below, in order. */
class RecordingSession extends MemorySession {
  readonly calls: string[] = []
  override set(queue: string, flags: number, exptime: number, data: Buffer, done: Done): void {
    this.calls.push(`set ${queue} ${flags} ${exptime} ${data.toString('hex')}`)
    super.set(queue, flags, exptime, data, done)
  }
  override get(queue: string, options: GetOptions, done: GetDone): void {
    this.calls.push(`get ${queue} ${JSON.stringify(options)}`)
    super.get(queue, options, done)
  }
  override delete(queue: string, done: Parameters<MemorySession['delete']>[1]): void {
    this.calls.push(`delete ${queue}`)
    super.delete(queue, done)
  }
  override flush(queue: string, done: Done): void {
    this.calls.push(`flush ${queue}`)
    super.flush(queue, done)
  }
}

interface Run {
  replies: string
  calls: string[]
  ended: boolean
  maxBuffered: number
}

/** Feed `chunks` to a fresh handler; collect replies, session calls and the largest buffer. */
function run(kind: 'text' | 'binary', chunks: Buffer[]): Run {
  const session = new RecordingSession(new MemoryStore())
  const sink = new CollectingSink()
  const out = new Outbox(sink, { maxPendingBytes: 1 << 30, maxPendingSlots: 1 << 20 })
  let ended = false
  // A command that holds parsing (stats: taken in arrival order) asks to resume when done; the
  // real Connection does that on a later turn, here it happens as soon as the call returns.
  let resumeWanted = false
  const control = { end: () => void (ended = true), resume: () => void (resumeWanted = true) }
  const handler: ProtocolHandler =
    kind === 'text' ? new TextHandler(session, out, LIMITS, control) : new BinaryHandler(session, out, LIMITS, control)
  const settle = (): void => {
    for (let turns = 0; resumeWanted && turns < 10_000; turns++) {
      resumeWanted = false
      handler.pump()
    }
  }
  let maxBuffered = 0
  for (const chunk of chunks) {
    handler.feed(chunk)
    settle()
    maxBuffered = Math.max(maxBuffered, handler.buffered)
  }
  out.flush()
  settle()
  out.flush()
  return { replies: sink.text(), calls: session.calls, ended, maxBuffered }
}

/** Cut `bytes` at the given points (any order, duplicates and out-of-range points ignored). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let at = 0
  for (const p of points) {
    if (p > at) chunks.push(bytes.subarray(at, p))
    at = Math.max(at, p)
  }
  if (at < bytes.length) chunks.push(bytes.subarray(at))
  return chunks
}

// ---- generators: text and meta --------------------------------------------------------------

const key = fc.constantFrom('a', 'b', 'q1', 'full', 'broken', 'a/open', 'a/close', 'a/abort', 'a/peek', 'b/close/open', 'bad key', 'x'.repeat(30), 'é')
const plainKey = fc.constantFrom('a', 'b', 'q1')
const data = (max = LIMITS.maxItemSize): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max })
const word = fc.stringMatching(/^[a-z0-9_\-]{0,12}$/)
const lineOf = (parts: string[]): Buffer => Buffer.from(parts.join(' ') + '\r\n', 'latin1')

/** One text/meta command that frames correctly (the server may still refuse it). */
const validText: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(key, fc.nat(0xffffffff), fc.integer({ min: -5, max: 100 }), data(), fc.boolean()).map(([k, f, e, d, nr]) =>
    Buffer.concat([lineOf(['set', k, String(f), String(e), String(d.length), ...(nr ? ['noreply'] : [])]), Buffer.from(d), Buffer.from('\r\n')]),
  ),
  fc.tuple(fc.constantFrom('get', 'gets'), fc.array(key, { minLength: 1, maxLength: 3 })).map(([c, ks]) => lineOf([c, ...ks])),
  fc.tuple(fc.constantFrom('delete', 'flush'), key, fc.boolean()).map(([c, k, nr]) => lineOf([c, k, ...(nr ? ['noreply'] : [])])),
  fc.constantFrom('version', 'stats', 'stats a', 'flush_all', 'flush_all 0 noreply', 'verbosity 1', 'mn', 'me a', 'incr a 1', 'touch a 0').map((l) => lineOf([l])),
  fc.tuple(fc.constantFrom('add', 'replace', 'append', 'prepend'), plainKey, data()).map(([c, k, d]) =>
    Buffer.concat([lineOf([c, k, '0', '0', String(d.length)]), Buffer.from(d), Buffer.from('\r\n')]),
  ),
  fc.tuple(key, data(), fc.subarray(['T0', 'F5', 'q', 'O12', 'k', 'b', 'MS', 'ME', 'I'])).map(([k, d, flags]) =>
    Buffer.concat([lineOf(['ms', k, String(d.length), ...flags]), Buffer.from(d), Buffer.from('\r\n')]),
  ),
  fc.tuple(key, fc.subarray(['v', 'f', 'k', 't', 's', 'q', 'O7', 'c', 'N30'])).map(([k, flags]) => lineOf(['mg', k, ...flags])),
  fc.tuple(key, fc.subarray(['q', 'O1', 'k', 'C1'])).map(([k, flags]) => lineOf(['md', k, ...flags])),
  // Random words; not ones that would take the next bytes as a data block or end the connection.
  fc
    .array(word, { maxLength: 5 })
    .filter((ws) => !['set', 'add', 'replace', 'append', 'prepend', 'cas', 'ms', 'quit'].includes(ws[0] ?? ''))
    .map((ws) => lineOf(ws)),
)

const TOO_LARGE = 'SERVER_ERROR object too large for cache\r\n'
const BAD_FORMAT = 'CLIENT_ERROR bad command line format\r\n'

/** A command the server refuses but must stay in step after, with the one reply it must get. */
const refusedText: fc.Arbitrary<{ bytes: Buffer; reply: string }> = fc.oneof(
  // Too large: the data block is discarded unread.
  fc.tuple(plainKey, fc.integer({ min: LIMITS.maxItemSize + 1, max: 4 * LIMITS.maxItemSize }), fc.boolean()).map(([k, n, nr]) => ({
    bytes: Buffer.concat([lineOf(['set', k, '0', '0', String(n), ...(nr ? ['noreply'] : [])]), Buffer.alloc(n, 0x0a), Buffer.from('\r\n')]),
    reply: nr ? '' : TOO_LARGE,
  })),
  fc.tuple(plainKey, fc.integer({ min: LIMITS.maxItemSize + 1, max: 4 * LIMITS.maxItemSize })).map(([k, n]) => ({
    bytes: Buffer.concat([lineOf(['ms', k, String(n), 'T0']), Buffer.alloc(n, 0x0d), Buffer.from('\r\n')]),
    reply: TOO_LARGE,
  })),
  // Bad data chunk: the block is longer than declared, then a newline resyncs.
  fc.tuple(plainKey, data(8), fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => Buffer.from(b).toString('hex'))).map(([k, d, extra]) => ({
    bytes: Buffer.concat([lineOf(['set', k, '0', '0', String(d.length)]), Buffer.from(d), Buffer.from(extra + '\r\n')]),
    reply: 'CLIENT_ERROR bad data chunk\r\n',
  })),
  // Bad format with a sound length: the data block is skipped.
  fc.tuple(plainKey, data(8)).map(([k, d]) => ({
    bytes: Buffer.concat([lineOf(['set', k, 'notaflag', '0', String(d.length)]), Buffer.from(d), Buffer.from('\r\n')]),
    reply: BAD_FORMAT,
  })),
  fc.constantFrom('set a 0 0', 'set a 0 0 -1', 'get', 'delete', 'delete a 5', 'flush_all x', 'verbosity').map((l) => ({ bytes: lineOf([l]), reply: BAD_FORMAT })),
  fc.constantFrom('bogus command', 'GET a', '').map((l) => ({ bytes: lineOf([l]), reply: 'ERROR\r\n' })),
)

// ---- generators: binary ----------------------------------------------------------------------

const opaque = fc.nat(0xffffffff)
const validBinary: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(key, data(), opaque, fc.boolean(), fc.nat(0xffffffff)).map(([k, v, o, q, f]) =>
    frame({ opcode: q ? op.SETQ : op.SET, key: k, extras: u32s(f, 0), value: Buffer.from(v), opaque: o }),
  ),
  fc.tuple(key, fc.constantFrom(op.GET, op.GETQ, op.GETK, op.GETKQ), opaque).map(([k, c, o]) => frame({ opcode: c, key: k, opaque: o })),
  fc.tuple(key, fc.constantFrom(op.DELETE, op.DELETEQ), opaque).map(([k, c, o]) => frame({ opcode: c, key: k, opaque: o })),
  fc.tuple(fc.constantFrom(op.NOOP, op.VERSION, op.STAT, op.FLUSH), opaque).map(([c, o]) => frame({ opcode: c, opaque: o })),
  fc.tuple(plainKey, opaque).map(([k, o]) => frame({ opcode: op.STAT, key: k, opaque: o })),
  // Answered from the header, body skipped: unsupported and unknown opcodes.
  fc.tuple(plainKey, data(), opaque).map(([k, v, o]) => frame({ opcode: op.APPEND, key: k, value: Buffer.from(v), opaque: o })),
  fc.tuple(fc.integer({ min: 0x25, max: 0xff }), data(), opaque).map(([c, v, o]) => frame({ opcode: c, value: Buffer.from(v), opaque: o })),
  // Over the item limit: E2BIG, body swallowed.
  fc.tuple(plainKey, fc.integer({ min: LIMITS.maxItemSize + 1, max: 4 * LIMITS.maxItemSize }), opaque).map(([k, n, o]) =>
    frame({ opcode: op.SET, key: k, extras: u32s(0, 0), value: Buffer.alloc(n, 0x80), opaque: o }),
  ),
)

/** Frames that close the connection: a lying length, a bad magic, a wrong shape. */
const fatalBinary: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(plainKey, opaque).map(([k, o]) => frame({ opcode: op.GET, key: k, opaque: o, bodyLength: 0 })),
  fc.tuple(plainKey, opaque).map(([k, o]) => frame({ opcode: op.SET, key: k, extras: u32s(0), value: 'v', opaque: o })),
  fc.tuple(fc.integer({ min: 0, max: 0x7f }), opaque).map(([m, o]) => frame({ opcode: op.NOOP, opaque: o, magic: m })),
  fc.constant(frame({ opcode: 0x77, bodyLength: 0xffffffff })),
)

const cuts = fc.array(fc.nat(), { maxLength: 12 })

/** Binary replies as `opcode:opaque:status[:value]` strings, in order. */
function responses(replies: string): string[] {
  const buf = Buffer.from(replies, 'latin1')
  const out: string[] = []
  for (let at = 0; at < buf.length; ) {
    const r = decodeResponse(buf, at)
    if (!r) throw new Error('truncated response')
    const name = r.opcode === op.GET ? 'get' : r.opcode.toString(16)
    out.push(`${name}:${r.opaque.toString(16)}:${r.status}${r.value.length > 0 && r.status === 0 ? ':' + r.value.toString('latin1') : ''}`)
    at += 24 + r.bodyLength
  }
  return out
}
const params = { numRuns: RUNS }

/** Run a property and report its rate (cases per minute). */
function timed<Ts extends unknown[]>(t: Test, name: string, property: fc.IProperty<Ts>): void {
  const startedAt = process.hrtime.bigint()
  fc.assert(property, params)
  const ms = Number(process.hrtime.bigint() - startedAt) / 1e6
  t.comment(`${name}: ${RUNS} cases in ${(ms / 1000).toFixed(1)} s = ${Math.round((RUNS * 60_000) / ms)} cases/min`)
  t.pass(name)
}

// ---- properties ------------------------------------------------------------------------------

t.test('text: random bytes in random chunks never throw; the buffer stays bounded', async (t) => {
  timed(
    t,
    'text random bytes',
    fc.property(fc.array(validText, { maxLength: 4 }), fc.uint8Array({ maxLength: 600 }), cuts, (prefix, noise, at) => {
      const r = run('text', split(Buffer.concat([...prefix, Buffer.from(noise)]), at))
      if (r.maxBuffered > TEXT_BOUND) throw new Error(`buffered ${r.maxBuffered} > ${TEXT_BOUND}`)
    }),
  )
})

t.test('text/meta: a stream split anywhere gives the same calls and replies as whole', async (t) => {
  timed(
    t,
    'text split',
    fc.property(
      fc.array(fc.oneof(validText, refusedText.map((r) => r.bytes)), { maxLength: 12 }),
      // A line over the limit closes the connection, however the bytes arrive.
      fc.option(fc.integer({ min: LIMITS.maxLineLength + 1, max: 3 * LIMITS.maxLineLength })),
      fc.array(validText, { maxLength: 2 }),
      cuts,
      (commands, longLine, after, at) => {
        const stream = Buffer.concat([...commands, ...(longLine === null ? [] : [Buffer.alloc(longLine, 0x78), Buffer.from('\r\n')]), ...after])
        const whole = run('text', [stream])
        if (whole.ended !== (longLine !== null)) throw new Error(`closed: ${whole.ended}, long line: ${longLine}`)
        const pieces = run('text', split(stream, at))
        const bytewise = run('text', split(stream, [...Array(stream.length).keys()]))
        for (const other of [pieces, bytewise]) {
          if (other.replies !== whole.replies) throw new Error(`replies differ:\n${JSON.stringify(whole.replies)}\n${JSON.stringify(other.replies)}`)
          if (JSON.stringify(other.calls) !== JSON.stringify(whole.calls)) throw new Error('session calls differ')
          if (other.ended !== whole.ended) throw new Error('one run closed the connection, the other not')
          if (other.maxBuffered > TEXT_BOUND) throw new Error(`buffered ${other.maxBuffered} > ${TEXT_BOUND}`)
        }
      },
    ),
  )
})

t.test('text/meta: valid input after a refused command stays in step', async (t) => {
  timed(
    t,
    'text in step',
    fc.property(fc.array(validText, { maxLength: 4 }), refusedText, fc.array(validText, { maxLength: 4 }), cuts, (before, refused, after, at) => {
      // Reference: the same stream without the refused command; its one reply goes in between.
      const marker = Buffer.from('set zz_marker 0 0 3\r\nabc\r\nget zz_marker\r\n')
      const withRefused = run('text', split(Buffer.concat([...before, refused.bytes, ...after, marker]), at))
      if (withRefused.ended) throw new Error('a refused command closed the connection')
      const without = run('text', [Buffer.concat([...before, ...after, marker])])
      const cut = run('text', [Buffer.concat(before)]).replies.length
      const expected = without.replies.slice(0, cut) + refused.reply + without.replies.slice(cut)
      if (withRefused.replies !== expected) {
        throw new Error(`out of step:\n${JSON.stringify(expected)}\n${JSON.stringify(withRefused.replies)}`)
      }
      if (!expected.endsWith('STORED\r\nVALUE zz_marker 0 3\r\nabc\r\nEND\r\n')) throw new Error('marker not answered')
      if (JSON.stringify(withRefused.calls) !== JSON.stringify(without.calls)) throw new Error('the refused command reached the session')
    }),
  )
})

t.test('binary: random bytes in random chunks never throw; the buffer stays bounded', async (t) => {
  timed(
    t,
    'binary random bytes',
    fc.property(fc.array(validBinary, { maxLength: 4 }), fc.uint8Array({ maxLength: 600 }), fc.boolean(), cuts, (prefix, noise, magic, at) => {
      // Noise that starts with the request magic gets past the first-byte check into the header.
      const tail = Buffer.from(noise)
      if (magic && tail.length > 0) tail[0] = 0x80
      const r = run('binary', split(Buffer.concat([...prefix, tail]), at))
      if (r.maxBuffered > BINARY_BOUND) throw new Error(`buffered ${r.maxBuffered} > ${BINARY_BOUND}`)
    }),
  )
})

t.test('binary: a stream split anywhere gives the same calls and replies as whole', async (t) => {
  timed(
    t,
    'binary split',
    fc.property(fc.array(validBinary, { maxLength: 10 }), fc.option(fatalBinary), fc.array(validBinary, { maxLength: 3 }), cuts, (head, fatal, tail, at) => {
      const stream = Buffer.concat([...head, ...(fatal ? [fatal] : []), ...tail])
      const whole = run('binary', [stream])
      const pieces = run('binary', split(stream, at))
      if (pieces.replies !== whole.replies) throw new Error('replies differ')
      if (JSON.stringify(pieces.calls) !== JSON.stringify(whole.calls)) throw new Error('session calls differ')
      if (pieces.ended !== whole.ended || whole.ended !== (fatal !== null)) throw new Error('closing differs')
      if (pieces.maxBuffered > BINARY_BOUND) throw new Error(`buffered ${pieces.maxBuffered} > ${BINARY_BOUND}`)
    }),
  )
})

t.test('binary: valid frames after a refused one stay in step', async (t) => {
  const refused = fc.oneof(
    fc.tuple(plainKey, fc.integer({ min: LIMITS.maxItemSize + 1, max: 4 * LIMITS.maxItemSize })).map(([k, n]) =>
      frame({ opcode: op.SETQ, key: k, extras: u32s(0, 0), value: Buffer.alloc(n, 0x80) }),
    ),
    fc.tuple(fc.constantFrom(op.ADD, op.INCREMENT, op.TOUCH, 0x42, 0xfe), data()).map(([c, v]) =>
      frame({ opcode: c, key: 'k', extras: c === op.INCREMENT ? Buffer.alloc(20) : c === op.TOUCH ? u32s(0) : c === op.ADD ? u32s(0, 0) : undefined, value: c === op.INCREMENT ? undefined : Buffer.from(v) }),
    ),
    fc.tuple(plainKey, data()).map(([k, v]) => frame({ opcode: op.SET, key: k, extras: u32s(0, 0), value: Buffer.from(v), cas: 5n })),
  )
  timed(
    t,
    'binary in step',
    fc.property(fc.array(validBinary, { maxLength: 4 }), refused, cuts, (before, bad, at) => {
      const marker = Buffer.concat([
        frame({ opcode: op.SET, key: 'zz_marker', extras: u32s(0, 0), value: 'abc', opaque: 0xfeed }),
        frame({ opcode: op.GET, key: 'zz_marker', opaque: 0xbeef }),
      ])
      const r = run('binary', split(Buffer.concat([...before, bad, marker]), at))
      if (r.ended) throw new Error('a refused frame closed the connection')
      // Exactly one error response for the refused frame, between the others' responses.
      const got = responses(r.replies)
      const head = responses(run('binary', [Buffer.concat(before)]).replies)
      const tail = responses(run('binary', [Buffer.concat([...before, marker])]).replies).slice(head.length)
      const refusedReply = got[head.length]
      const expected = [...head, `${bad[1]!.toString(16)}:error`, ...tail]
      const actual = got.map((g, i) => (i === head.length && refusedReply !== undefined && !refusedReply.endsWith(':0') ? `${bad[1]!.toString(16)}:error` : g))
      if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`out of step:\n${expected.join(' ')}\n${got.join(' ')}`)
      if (tail.at(-1) !== 'get:beef:0:abc') throw new Error(`marker not answered: ${tail.join(' ')}`)
    }),
  )
})

t.test('input budget: shared by interleaved connections, never passed, all given back on close', async (t) => {
  timed(
    t,
    'input budget',
    fc.property(
      fc.array(fc.oneof(validText, refusedText.map((r) => r.bytes)), { maxLength: 8 }),
      fc.array(validBinary, { maxLength: 8 }),
      cuts,
      cuts,
      fc.integer({ min: 1, max: 400 }),
      (textCommands, binaryFrames, textCuts, binaryCuts, maxBytes) => {
        const budget = new InputBudget(maxBytes)
        const make = (kind: 'text' | 'binary'): { handler: ProtocolHandler; sink: CollectingSink; out: Outbox; settle: () => void } => {
          const sink = new CollectingSink()
          const out = new Outbox(sink, { maxPendingBytes: 1 << 30, maxPendingSlots: 1 << 20 })
          const session = new MemorySession(new MemoryStore())
          let resumeWanted = false
          const control = { end: () => {}, resume: () => void (resumeWanted = true) }
          const handler = kind === 'text' ? new TextHandler(session, out, LIMITS, control, budget) : new BinaryHandler(session, out, LIMITS, control, budget)
          const settle = (): void => {
            for (let turns = 0; resumeWanted && turns < 10_000; turns++) {
              resumeWanted = false
              handler.pump()
            }
          }
          return { handler, sink, out, settle }
        }
        const text = make('text')
        const binary = make('binary')
        const a = split(Buffer.concat(textCommands), textCuts)
        const b = split(Buffer.concat(binaryFrames), binaryCuts)
        for (let i = 0; i < Math.max(a.length, b.length); i++) {
          if (a[i]) text.handler.feed(a[i]!)
          if (b[i]) binary.handler.feed(b[i]!)
          text.settle()
          binary.settle()
          if (budget.used > maxBytes || budget.used < 0) throw new Error(`budget used ${budget.used} of ${maxBytes}`)
        }
        // Everything fed was whole commands: nothing may still hold budget.
        if (budget.used !== 0 && text.handler.buffered === 0 && binary.handler.buffered === 0) throw new Error(`leak: ${budget.used}`)
        text.handler.close()
        binary.handler.close()
        if (budget.used !== 0) throw new Error(`${budget.used} bytes not given back on close`)
      },
    ),
  )
})
