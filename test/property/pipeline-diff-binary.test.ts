/**
 * Issue 16, differential property test, binary protocol: random request scripts (quiet commands and
 * NOOP included) give the same responses pipelined in one write as one request per round trip, on
 * two fresh real servers. STAT values that depend on the clock or the process are masked.
 */
import t from 'tap'
import fc from 'fast-check'
import { assertDifferential, FUZZ, firstDifference, runBoth, stopSpare, withTwoServers } from './diffHarness.js'
import { decodeResponse, frame, op, set, u32s } from '../helpers/binary.js'

const QUEUES = ['a', 'b', 'c']
/** The NOOP after every request carries this opaque; the script's own NOOPs never do. */
const MARKER_OPAQUE = 0xfeed0000
const MARKER = frame({ opcode: op.NOOP, opaque: MARKER_OPAQUE })

const queue = fc.constantFrom(...QUEUES)
const opaque = fc.integer({ min: 1, max: 1000 })
const value = fc.stringMatching(/^[a-z0-9]{0,6}$/)
const getOp = fc.constantFrom(op.GET, op.GETQ, op.GETK, op.GETKQ)
const options = fc.constantFrom('', '', '/t=20', '/t=60', '/open', '/close', '/close/open', '/abort', '/peek', '/t=20/open')

const request: fc.Arbitrary<{ label: string; bytes: Buffer }> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(queue, value, fc.boolean(), opaque, fc.integer({ min: 0, max: 70000 })).map(([q, v, quiet, o, flags]) => ({
      label: `${quiet ? 'SETQ' : 'SET'} ${q} ${v}`,
      bytes: set(q, v, { quiet, opaque: o, flags }),
    })),
  },
  {
    weight: 6,
    arbitrary: fc.tuple(getOp, queue, options, opaque).map(([code, q, opt, o]) => ({
      label: `GET(0x${code.toString(16)}) ${q}${opt}`,
      bytes: frame({ opcode: code, key: q + opt, opaque: o }),
    })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom(op.DELETE, op.DELETEQ), queue, opaque).map(([code, q, o]) => ({
      label: `DELETE(0x${code.toString(16)}) ${q}`,
      bytes: frame({ opcode: code, key: q, opaque: o }),
    })),
  },
  { weight: 2, arbitrary: opaque.map((o) => ({ label: 'STAT', bytes: frame({ opcode: op.STAT, opaque: o }) })) },
  { weight: 1, arbitrary: fc.tuple(queue, opaque).map(([q, o]) => ({ label: `STAT ${q}`, bytes: frame({ opcode: op.STAT, key: q, opaque: o }) })) },
  { weight: 1, arbitrary: opaque.map((o) => ({ label: 'VERSION', bytes: frame({ opcode: op.VERSION, opaque: o }) })) },
  { weight: 2, arbitrary: opaque.map((o) => ({ label: 'NOOP', bytes: frame({ opcode: op.NOOP, opaque: o }) })) },
  { weight: 1, arbitrary: fc.constantFrom(op.FLUSH, op.FLUSHQ).map((code) => ({ label: 'FLUSH', bytes: frame({ opcode: code, extras: Buffer.alloc(0), opaque: 5 }) })) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      { label: 'INCR', bytes: frame({ opcode: op.INCREMENT, key: 'a', extras: Buffer.alloc(20), opaque: 7 }) },
      { label: 'unknown 0x50', bytes: frame({ opcode: 0x50, key: 'a', opaque: 8 }) },
      { label: 'SET with cas', bytes: set('a', 'x', { cas: 5n, opaque: 9 }) },
      { label: 'GET bad option', bytes: frame({ opcode: op.GET, key: 'a/nonsense', opaque: 10 }) },
      { label: 'DELETE with options', bytes: frame({ opcode: op.DELETE, key: 'a/t=1', opaque: 11 }) },
      { label: 'ADD', bytes: frame({ opcode: op.ADD, key: 'a', extras: u32s(0, 0), value: 'x', opaque: 12 }) },
    ),
  },
)

interface Frame {
  opcode: number
  status: number
  opaque: number
  cas: bigint
  key: string
  value: string
}

function frames(buf: Buffer): Frame[] {
  const out: Frame[] = []
  let offset = 0
  for (;;) {
    const r = decodeResponse(buf, offset)
    if (!r) return out
    out.push({ opcode: r.opcode, status: r.status, opaque: r.opaque, cas: r.cas, key: r.key, value: r.value.toString('latin1') })
    offset += 24 + r.bodyLength
  }
}

const MASKED = /^(pid|uptime|time|rusage_user|rusage_system|queue_\S+_age)$/

/** Masked values, and bytes_written after an earlier STAT reply (whose length they change). */
function show(buf: Buffer): string {
  let replies = 0
  let inStats = false
  return frames(buf)
    .map((f) => {
      if (f.opcode === op.STAT && f.status === 0) {
        if (!inStats) replies++
        inStats = f.key !== '' // the empty key ends a STAT reply
      }
      const hidden = f.opcode === op.STAT && (MASKED.test(f.key) || (replies > 1 && f.key === 'bytes_written'))
      const v = hidden ? '*' : JSON.stringify(f.value)
      return `${f.opcode.toString(16)} s${f.status} o${f.opaque} c${f.cas} ${f.key} ${v}`
    })
    .join('\n')
}

function countMarkers(buf: Buffer): number {
  return frames(buf).filter((f) => f.opcode === op.NOOP && f.opaque === MARKER_OPAQUE).length
}

/** Scripts kept as fixed examples (cases the text test found, in binary form). */
const EXAMPLES = [
  [
    { label: 'SET jobs hello', bytes: set('jobs', 'hello', { opaque: 1 }) },
    { label: 'SET jobs world', bytes: set('jobs', 'world', { opaque: 2 }) },
    { label: 'GET jobs', bytes: frame({ opcode: op.GET, key: 'jobs', opaque: 3 }) },
    { label: 'STAT', bytes: frame({ opcode: op.STAT, opaque: 4 }) },
    { label: 'GET jobs/t=50', bytes: frame({ opcode: op.GET, key: 'jobs/t=50', opaque: 5 }) },
  ],
  [
    { label: 'SETQ a', bytes: set('a', 'A', { quiet: true, opaque: 1 }) },
    { label: 'DELETEQ a', bytes: frame({ opcode: op.DELETEQ, key: 'a', opaque: 2 }) },
    { label: 'DELETE a', bytes: frame({ opcode: op.DELETE, key: 'a', opaque: 3 }) },
    { label: 'SET a', bytes: set('a', 'B', { opaque: 4 }) },
    { label: 'GETQ b/t=20', bytes: frame({ opcode: op.GETQ, key: 'b/t=20', opaque: 5 }) },
    { label: 'SET b', bytes: set('b', 'C', { opaque: 6 }) },
    { label: 'GETK a', bytes: frame({ opcode: op.GETK, key: 'a', opaque: 7 }) },
  ],
]

const runs = FUZZ ? 150 : 10
let longest = 0
let scripts = 0

t.test(`binary: pipelined == one at a time (${runs} random scripts + ${EXAMPLES.length} fixed)`, async (t) => {
  const property = fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: FUZZ ? 60 : 30, size: 'medium' }), async (script) => {
    scripts++
    longest = Math.max(longest, script.length)
    const commands = script.map((r) => Buffer.concat([r.bytes, MARKER]))
    const { pipelined, oneByOne } = await withTwoServers((a, b) => runBoth(a, b, commands, countMarkers))
    const p = show(pipelined)
    const o = show(oneByOne)
    if (p !== o) throw new Error(`script ${JSON.stringify(script.map((r) => r.label))}\n${firstDifference(p, o)}`)
  })
  t.teardown(stopSpare)
  await assertDifferential(property, EXAMPLES, runs)
  t.comment(`scripts run: ${scripts}; longest: ${longest} requests`)
  t.ok(scripts >= EXAMPLES.length, 'scripts ran')
})
