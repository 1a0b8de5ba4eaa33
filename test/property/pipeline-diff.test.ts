/**
 * Issue 16, differential property test, text and meta protocol: a random script of commands over a
 * few queues gives the same replies pipelined in one write as sent one command per round trip, on
 * two fresh real servers. Stats values that depend on the clock or the process (pid, uptime, time,
 * rusage, a queue's age) are masked; everything else must be identical, byte for byte.
 */
import t from 'tap'
import fc from 'fast-check'
import { assertDifferential, FUZZ, firstDifference, runBoth, stopSpare, withTwoServers } from './diffHarness.js'

const QUEUES = ['a', 'b', 'c']
const MARKER = Buffer.from('mn\r\n')

const queue = fc.constantFrom(...QUEUES)
const value = fc.stringMatching(/^[a-z0-9]{0,6}$/).map((s) => 'v' + s) // never a line "MN"
const noreply = fc.boolean().map((b) => (b ? ' noreply' : ''))
const wait = fc.constantFrom('/t=20', '/t=60')

/** One command, as the bytes a client sends. */
const command: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(queue, fc.integer({ min: 0, max: 70000 }), value, noreply).map(([q, f, v, n]) => `set ${q} ${f} 0 ${v.length}${n}\r\n${v}\r\n`) },
  { weight: 4, arbitrary: queue.map((q) => `get ${q}\r\n`) },
  { weight: 1, arbitrary: queue.map((q) => `gets ${q}\r\n`) },
  { weight: 2, arbitrary: fc.tuple(queue, wait).map(([q, w]) => `get ${q}${w}\r\n`) },
  { weight: 2, arbitrary: queue.map((q) => `get ${q}/open\r\n`) },
  { weight: 2, arbitrary: queue.map((q) => `get ${q}/close\r\n`) },
  { weight: 1, arbitrary: queue.map((q) => `get ${q}/close/open\r\n`) },
  { weight: 1, arbitrary: fc.tuple(queue, wait).map(([q, w]) => `get ${q}${w}/open\r\n`) },
  { weight: 1, arbitrary: queue.map((q) => `get ${q}/abort\r\n`) },
  { weight: 2, arbitrary: queue.map((q) => `get ${q}/peek\r\n`) },
  { weight: 1, arbitrary: fc.tuple(queue, queue).map(([q, r]) => `get ${q} ${r}/peek ${q}\r\n`) },
  { weight: 2, arbitrary: fc.tuple(queue, noreply).map(([q, n]) => `delete ${q}${n}\r\n`) },
  { weight: 1, arbitrary: fc.tuple(queue, noreply).map(([q, n]) => `flush ${q}${n}\r\n`) },
  { weight: 2, arbitrary: fc.constant('stats\r\n') },
  { weight: 1, arbitrary: queue.map((q) => `stats ${q}\r\n`) },
  { weight: 1, arbitrary: fc.constant('version\r\n') },
  { weight: 2, arbitrary: fc.tuple(queue, value, fc.constantFrom('', ' q', ' O9 k', ' F7')).map(([q, v, f]) => `ms ${q} ${v.length}${f}\r\n${v}\r\n`) },
  { weight: 2, arbitrary: fc.tuple(queue, fc.constantFrom('', '/peek', '/t=20', '/open'), fc.constantFrom(' v', ' v f', ' q', ' k O5', ' v c')).map(([q, o, f]) => `mg ${q}${o}${f}\r\n`) },
  { weight: 1, arbitrary: fc.tuple(queue, fc.constantFrom('', ' q', ' O1')).map(([q, f]) => `md ${q}${f}\r\n`) },
  { weight: 1, arbitrary: fc.constant('mn\r\n') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'bogus\r\n',
      'incr a 1\r\n',
      'get a/nonsense\r\n',
      'delete a/t=5\r\n',
      'set a 0 0 x\r\n',
      'set b 0 0 2\r\nabc\r\n',
      'mg\r\n',
      'ms a 2 Z\r\nxx\r\n',
      'get a/open/abort\r\n',
    ),
  },
)

/**
 * Mask the stats values that depend on the clock or the process, not on the commands. So does
 * bytes_written after an earlier stats reply: that reply's length depends on the masked values
 * (uptime 9 or 10, an age of 5 or 12 ms), found by this test (seed 608891880: 887 vs 888).
 */
function mask(transcript: Buffer): string {
  let replies = 0
  let inStats = false
  return transcript
    .toString('latin1')
    .split('\n')
    .map((line) => {
      if (line.startsWith('STAT ')) {
        if (!inStats) replies++
        inStats = true
      } else if (inStats) {
        inStats = false
      }
      if (replies > 1 && line.startsWith('STAT bytes_written ')) return 'STAT bytes_written *\r'
      return line.replace(/^STAT (pid|uptime|time|rusage_user|rusage_system|queue_\S+_age) \S+\r$/, 'STAT $1 *\r')
    })
    .join('\n')
}

function countMarkers(buf: Buffer): number {
  let n = 0
  let i = -1
  for (;;) {
    i = buf.indexOf('MN\r\n', i + 1, 'latin1')
    if (i < 0) return n
    if (i === 0 || buf[i - 1] === 0x0a) n++
  }
}

/** Scripts that found differences before (kept as fixed examples). */
const EXAMPLES: string[][] = [
  ['set jobs 0 0 5\r\nhello\r\n', 'set jobs 0 0 5\r\nworld\r\n', 'get jobs\r\n', 'stats\r\n', 'get jobs/t=50\r\n'],
  ['set a 0 0 1\r\nA\r\n', 'delete a\r\n', 'delete a\r\n', 'version\r\n'],
  ['set a 0 0 1\r\nA\r\n', 'delete a\r\n', 'set a 0 0 1\r\nB\r\n', 'get a\r\n'],
  ['get a/t=60\r\n', 'set a 0 0 1\r\nZ\r\n', 'stats\r\n'],
  // A multi-get on queues still opening: the set must not reach its last key first.
  ['get a b/peek a\r\n', 'set a 0 0 1\r\nv\r\n', 'mg c v\r\n'],
  // A confirmed open read's REMOVE record still in the journal's batch: logsize must count it.
  ['ms b 1\r\nv\r\n', 'get b/open\r\n', 'get b/close\r\n', 'stats\r\n'],
  // A read that waited behind a delete of its queue: as if sent after it, it creates no queue.
  ['set a 0 0 1 noreply\r\nv\r\n', 'delete a noreply\r\n', 'mg a v c\r\n', 'stats\r\n'],
]

const runs = FUZZ ? 150 : 10
let longest: string[] = []
let scripts = 0

t.test(`text+meta: pipelined == one at a time (${runs} random scripts + ${EXAMPLES.length} fixed)`, async (t) => {
  const property = fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: FUZZ ? 60 : 30, size: 'medium' }), async (script) => {
    scripts++
    if (script.length > longest.length) longest = script
    const commands = script.map((c) => Buffer.concat([Buffer.from(c, 'latin1'), MARKER]))
    const { pipelined, oneByOne } = await withTwoServers((a, b) => runBoth(a, b, commands, countMarkers, script.map((c) => (c === 'mn\r\n' ? 2 : 1))))
    const p = mask(pipelined)
    const o = mask(oneByOne)
    if (p !== o) throw new Error(`script ${JSON.stringify(script)}\n${firstDifference(p, o)}`)
  })
  t.teardown(stopSpare)
  await assertDifferential(property, EXAMPLES, runs)
  t.comment(`scripts run: ${scripts}; longest: ${longest.length} commands`)
  t.ok(scripts >= EXAMPLES.length, 'scripts ran')
})
