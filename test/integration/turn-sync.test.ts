/**
 * Issue 13: `sync: always` with the fsync at the end of the event-loop turn (journal/turnSync.ts)
 * and gets that wait for the turn's write instead of writing it each (engine/emptyPoll.ts). Real
 * server process, real sockets, real fsyncs.
 */
import t from 'tap'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

async function linesUntil(c: RawClient, n: number): Promise<string[]> {
  const lines: string[] = []
  while (lines.length < n) lines.push(await c.line(10_000))
  return lines
}

function statOf(lines: string[], name: string): number {
  const l = lines.find((x) => x.startsWith(`STAT ${name} `))
  if (!l) throw new Error(`no stat ${name}`)
  return Number(l.slice(`STAT ${name} `.length))
}

t.test('a pipeline of sets and gets in one write gets the replies of the commands sent one at a time', async (t) => {
  const server = await serverFor(t, { config: { sync: 'always' } })
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  // Each get comes while the set before it is still in this turn's batch (not yet written).
  c.send('set a 0 0 1\r\nx\r\nget a\r\nget a\r\nset a 0 0 1\r\ny\r\nset a 0 0 1\r\nz\r\nget a\r\nget b\r\nget a\r\nget a\r\n')
  t.same(await linesUntil(c, 15), [
    'STORED',
    'VALUE a 0 1', 'x', 'END',
    'END',
    'STORED',
    'STORED',
    'VALUE a 0 1', 'y', 'END',
    'END',
    'VALUE a 0 1', 'z', 'END',
    'END',
  ])
})

t.test('a get waiting for the turn\'s write on a connection that closes: the item is taken once at most', async (t) => {
  const server = await serverFor(t, { config: { sync: 'always' } })
  const c = await RawClient.connect(server.port)
  c.send('set a 0 0 1\r\nx\r\nget a\r\n')
  c.close()
  const d = await RawClient.connect(server.port)
  t.teardown(() => d.close())
  // the close may come before or after the get was served: either way the item is taken once
  const got = await d.get('a')
  const again = await d.get('a')
  t.ok((got === 'x' && again === null) || (got === null && again === null), `got ${got}, then ${again}`)
  const stats = await d.request('stats\r\n', /^END$/)
  t.equal(statOf(stats, 'queue_a_items'), 0)
  t.equal(statOf(stats, 'queue_a_total_items'), 1)
})

t.test('producers and polling consumers: every item once, each consumer sees each producer in order, sets sharing fsyncs', async (t) => {
  const server = await serverFor(t, { config: { sync: 'always' } })
  const PRODUCERS = 8
  const PER = 150
  const CONSUMERS = 8
  const producers = await Promise.all(Array.from({ length: PRODUCERS }, () => RawClient.connect(server.port)))
  const consumers = await Promise.all(Array.from({ length: CONSUMERS }, () => RawClient.connect(server.port)))
  t.teardown(() => [...producers, ...consumers].forEach((c) => c.close()))
  const seen: string[] = []
  const byConsumer: string[][] = consumers.map(() => [])
  let produced = 0
  const produce = async (c: RawClient, p: number): Promise<void> => {
    for (let i = 0; i < PER; i++) {
      t.equal(await c.set('q', `${p}:${i}`), 'STORED') || t.fail('set failed')
      produced++
    }
  }
  let misses = 0
  const consume = async (c: RawClient, k: number): Promise<void> => {
    while (seen.length < PRODUCERS * PER) {
      const v = await c.get('q')
      if (v === null) {
        misses++
        if (produced === PRODUCERS * PER && seen.length < PRODUCERS * PER) await new Promise((r) => setTimeout(r, 1))
      } else {
        seen.push(v)
        byConsumer[k]!.push(v)
      }
    }
  }
  await Promise.all([...producers.map((c, p) => produce(c, p)), ...consumers.map((c, k) => consume(c, k))])
  t.equal(seen.length, PRODUCERS * PER, 'every item consumed')
  t.equal(new Set(seen).size, seen.length, 'none twice')
  // Replies on different sockets may arrive in any order; one consumer's come in dequeue order.
  for (let k = 0; k < CONSUMERS; k++) {
    for (let p = 0; p < PRODUCERS; p++) {
      const mine = byConsumer[k]!.filter((v) => v.startsWith(`${p}:`)).map((v) => Number(v.split(':')[1]))
      if (mine.some((n, i) => i > 0 && n <= mine[i - 1]!)) t.fail(`consumer ${k} saw producer ${p} out of order: ${mine.join(',')}`)
    }
  }
  const stats = await producers[0]!.request('stats\r\n', /^END$/)
  const fsyncs = statOf(stats, 'journal_fsyncs')
  t.ok(fsyncs > 0 && fsyncs < PRODUCERS * PER, `${fsyncs} fsyncs for ${PRODUCERS * PER} sets`)
  t.equal(statOf(stats, 'queue_q_items'), 0)
  t.comment(`${misses} empty polls`)
})
