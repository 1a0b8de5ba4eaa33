/**
 * `stats` with many queues (issue 17 target 4, issue 16): the reply is a snapshot taken when the
 * command's turn comes, written in batches that yield to the event loop and wait while the client
 * does not read — so other connections are served meanwhile, and the output is never buffered whole.
 */
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { Outbox, type ReplySink } from '../../src/server/protocol/outbox.js'

/**
 * Queues to create. Creating a queue still lists the spool directory (quadratic in the number of
 * queues) until the queue-creation work of issue 17 lands: 1000 keeps this file under a minute;
 * STATS_MANY_QUEUES=20000 runs the full size.
 */
const QUEUES = Number(process.env['STATS_MANY_QUEUES'] ?? 1000)
// Long names: a big reply (about 2 MB for 1000 queues) from few queues.
const name = (i: number): string => `stats-many-${'q'.repeat(120)}-${String(i).padStart(6, '0')}`

t.test(`stats with ${QUEUES} queues: snapshot, streamed, other connections served meanwhile`, async (t) => {
  const server = await serverFor(t)
  const loader = await RawClient.connect(server.port)
  t.teardown(() => loader.close())
  // Fill in pipelined batches; every set must be STORED.
  const BATCH = 2000
  for (let first = 0; first < QUEUES; first += BATCH) {
    let input = ''
    const last = Math.min(QUEUES, first + BATCH)
    for (let i = first; i < last; i++) input += `set ${name(i)} 0 0 1\r\nx\r\n`
    loader.send(input)
    for (let i = first; i < last; i++) {
      const l = await loader.line(120_000)
      if (l !== 'STORED') t.fail(`set ${name(i)}: ${l}`)
    }
  }

  // A client that asks for stats, reads the first bytes, then stops reading.
  const slow: Socket = await new Promise((resolve, reject) => {
    const s = connect(server.port, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
  t.teardown(() => slow.destroy())
  const received: Buffer[] = []
  let receivedBytes = 0
  const firstBytes = new Promise<void>((resolve) => {
    slow.on('data', (d: Buffer) => {
      received.push(d)
      receivedBytes += d.length
      resolve()
    })
  })
  slow.write('stats\r\n')
  await firstBytes
  slow.pause()

  // Meanwhile another connection takes items and gets its replies.
  const other = await RawClient.connect(server.port)
  t.teardown(() => other.close())
  const latencies: number[] = []
  for (let i = 0; i < 20; i++) {
    const started = process.hrtime.bigint()
    t.equal(await other.get(name(i)), 'x', `get ${i} answered while the stats reply is held`)
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  latencies.sort((a, b) => a - b)
  t.comment(`other connection's get while stats is written: median ${latencies[10]!.toFixed(1)} ms, max ${latencies[19]!.toFixed(1)} ms`)
  // How much arrived depends on the kernel's socket buffers; the Outbox test below checks the wait.
  t.comment(`bytes of the stats reply read before pausing: ${receivedBytes}`)

  // Now read the rest: complete, and the numbers are the snapshot's (before those gets).
  const done = new Promise<void>((resolve) => {
    slow.on('data', () => {
      if (Buffer.concat(received.slice(-2)).toString('latin1').endsWith('END\r\n')) resolve()
    })
  })
  slow.resume()
  await done
  const lines = Buffer.concat(received).toString('latin1').split('\r\n')
  t.equal(lines.filter((l) => l.startsWith('STAT queue_')).length, QUEUES * 12, 'every field of every queue')
  t.equal(lines.filter((l) => /^STAT queue_\S+_items 1$/.test(l) && !l.includes('_total_') && !l.includes('_mem_')).length, QUEUES, 'each queue had its item at the snapshot')
  t.ok(lines.includes(`STAT curr_items ${QUEUES}`), 'curr_items as at the snapshot')
  const names = lines.filter((l) => l.endsWith('_journal_rotations 0')).map((l) => l.slice('STAT queue_'.length, l.length - '_journal_rotations 0'.length))
  t.same(names, [...names].sort(), 'queues in name order')
  t.equal(lines.at(-2), 'END')

  // A second stats on the same connection sees the gets.
  slow.write('stats\r\n')
  const again = await new Promise<string>((resolve) => {
    const parts: Buffer[] = []
    slow.removeAllListeners('data')
    slow.on('data', (d: Buffer) => {
      parts.push(d)
      const text = Buffer.concat(parts.slice(-2)).toString('latin1')
      if (text.endsWith('END\r\n')) resolve(Buffer.concat(parts).toString('latin1'))
    })
  })
  t.match(again, new RegExp(`STAT curr_items ${QUEUES - 20}\\r\\n`))
  t.match(again, new RegExp(`STAT queue_${name(0)}_items 0\\r\\n`))
})

/** A sink that keeps what it is given and lets the test say how much is still unread. */
class SlowSink implements ReplySink {
  chunks: Buffer[] = []
  writableLength = 0
  write(chunk: Buffer): boolean {
    this.chunks.push(chunk)
    this.writableLength += chunk.length
    return this.writableLength < 16384
  }
  cork(): void {}
  uncork(): void {}
}

t.test('Outbox streams a large reply a turn at a time and waits for drain', async (t) => {
  const sink = new SlowSink()
  const out = new Outbox(sink, { maxPendingBytes: 1 << 20, maxPendingSlots: 100 })
  const CHUNK = Buffer.alloc(10_000, 0x41)
  let pulled = 0
  out.pushWhenReady(() => ({ next: () => (pulled < 300 ? (pulled++, CHUNK) : null) }))
  out.push(Buffer.from('after'))
  t.ok(pulled > 0 && pulled < 300, `one turn pulls part of the reply (${pulled} chunks)`)
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setImmediate(r))
  const stalled = pulled
  t.ok(sink.writableLength > 256 * 1024, 'it wrote until the reader fell behind')
  await new Promise((r) => setTimeout(r, 50))
  t.equal(pulled, stalled, 'and then waits: nothing more is pulled while the client does not read')
  // The client reads everything: 'drain'.
  sink.writableLength = 0
  out.drained()
  for (let i = 0; i < 100 && pulled < 300; i++) {
    await new Promise((r) => setImmediate(r))
    if (sink.writableLength > 256 * 1024) {
      sink.writableLength = 0
      out.drained()
    }
  }
  await new Promise((r) => setImmediate(r))
  t.equal(pulled, 300, 'the whole reply')
  const all = Buffer.concat(sink.chunks)
  t.equal(all.length, 300 * 10_000 + 5)
  t.equal(all.subarray(-5).toString(), 'after', 'the next reply comes after the stream')
})
