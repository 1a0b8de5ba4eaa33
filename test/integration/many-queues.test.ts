/**
 * Many queues (issue 17), through the real server with 20,000 queues of one item each:
 * - creating a queue costs O(1): the last 5k queues are created at no less than half the rate of
 *   the first 5k (median rates over batches of 500, so a load spike on this shared machine moves
 *   one batch, not the verdict; re-measured once before failing);
 * - memory per queue is bounded (RSS growth / queues under 6 KiB: main once paid ~52 KB);
 * - `stats` answers in full, and other connections are served while its reply is written;
 * - a restart gives every item back;
 * - delete frees files and memory: a second round of creating and deleting queues does not grow RSS.
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { BulkClient, isEnd, isReply, rssBytes } from '../helpers/bulk.js'
import { startServer, tempDir, removeDir, type RunningServer } from '../helpers/server.js'
import { connectSocket } from '../helpers/socketReader.js'

t.setTimeout(300_000) // ~70 s on a loaded 2-core machine

const N = 20_000
const BATCH = 500
const WINDOW = 5_000
const journalFiles = (spool: string): number => readdirSync(spool).filter((f) => f.endsWith('.sqj')).length

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]!
}

/** The delete rounds run under this heap cap (see below). */
const HEAP_CAP_MIB = 144
const ROUNDS = 4

/**
 * `stats` on one connection while another peeks at `key` in a loop, one request at a time: the
 * stats lines, how many peeks were answered between the first and the last byte of the stats
 * reply, and every peek's latency.
 */
async function statsWithProbe(port: number, key: string): Promise<{ lines: string[]; during: number; latencies: number[] }> {
  const sock = await connectSocket(port)
  const probe = await BulkClient.connect(port)
  sock.setEncoding('latin1')
  let firstByte = 0
  let rest = ''
  const lines: string[] = []
  const done = new Promise<void>((resolve, reject) => {
    sock.on('error', reject)
    sock.on('data', (d: string) => {
      if (firstByte === 0) firstByte = performance.now()
      const parts = (rest + d).split('\r\n')
      rest = parts.pop()!
      for (const l of parts) lines.push(l)
      if (lines.length > 0 && isEnd(lines[lines.length - 1]!)) resolve()
    })
  })
  const answeredAt: number[] = []
  const latencies: number[] = []
  let finished = false
  const peeking = (async () => {
    while (!finished) {
      const t0 = performance.now()
      await probe.run(`get ${key}/peek\r\n`, 1, isEnd)
      answeredAt.push(performance.now())
      latencies.push(performance.now() - t0)
    }
  })()
  await new Promise((r) => setTimeout(r, 100))
  sock.write('stats\r\n')
  await done
  const lastByte = performance.now()
  finished = true
  await peeking
  probe.close()
  sock.destroy()
  return { lines, during: answeredAt.filter((at) => at > firstByte && at < lastByte).length, latencies }
}

/** Create queues [from, to) with one item each; queues/s of each batch of BATCH. */
async function create(c: BulkClient, from: number, to: number, prefix = 'mq'): Promise<{ rates: number[]; stored: number }> {
  const rates: number[] = []
  let stored = 0
  for (let b = from; b < to; b += BATCH) {
    const end = Math.min(to, b + BATCH)
    const t0 = performance.now()
    const lines = await c.each(b, end, (i) => `set ${prefix}${i} 0 0 ${String(i).length}\r\n${i}\r\n`, isReply)
    rates.push((end - b) / ((performance.now() - t0) / 1000))
    stored += lines.filter((l) => l === 'STORED').length
  }
  return { rates, stored }
}

t.test('20,000 queues: O(1) creation, bounded memory, full stats, restart, delete', async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  let server: RunningServer = await startServer({ spool })
  t.teardown(async () => {
    if (server.proc.exitCode === null && server.proc.signalCode === null) await server.stop()
  })
  let c = await BulkClient.connect(server.port)
  // warm up the connection and the code paths on other names first (JIT, buffers)
  await create(c, 0, 500, 'warm')
  await c.each(0, 500, (i) => `delete warm${i}\r\n`, isReply)
  const rss0 = await rssBytes(server.proc.pid!)

  const { rates, stored } = await create(c, 0, N)
  t.equal(stored, N, 'every queue created')
  const perWindow = WINDOW / BATCH
  const first = median(rates.slice(0, perWindow))
  let last = median(rates.slice(-perWindow))
  if (last < first / 2) {
    // a load spike, or O(N) creation? Measure 5k more: O(N) would be slower still.
    const again = await create(c, N, N + WINDOW)
    t.equal(again.stored, WINDOW)
    last = Math.max(last, median(again.rates))
  }
  t.ok(last >= first / 2, `creation rate: first 5k ${Math.round(first)}/s, last 5k ${Math.round(last)}/s`)
  const created = journalFiles(spool)
  t.ok(created >= N, `one journal file per queue (${created})`)

  const rssFull = await rssBytes(server.proc.pid!)
  const perQueue = (rssFull - rss0) / created
  // ~2.5 KB measured (issue 17: 100k queues of one 64 B item under 300 MB); bound with room for a loaded machine
  t.ok(perQueue < 6 * 1024, `RSS per queue ${Math.round(perQueue)} bytes (bound 6 KiB)`)

  const { lines: stats, during, latencies } = await statsWithProbe(server.port, `mq${N - 1}`)
  const queueLines = stats.filter((l) => /^STAT queue_mq\d+_items /.test(l))
  t.equal(queueLines.length, created, 'stats lists every queue')
  t.ok(stats.includes(`STAT curr_items ${created}`), 'and counts every item')
  // Behaviour, not speed: the reply is written a batch per turn, so another connection's gets are
  // answered while it is still arriving (the latency is reported, not asserted: the machine is shared).
  const sorted = [...latencies].sort((a, b) => a - b)
  const p99 = sorted[Math.floor((sorted.length - 1) * 0.99)] ?? NaN
  t.ok(during >= 1, `${during} concurrent gets answered while the stats reply (${stats.length} lines) was arriving; their p99 ${Math.round(p99)} ms`)
  c.close()
  t.equal(await server.stop(), 0, 'clean stop')

  // A capped heap: garbage is collected within it, but memory a deleted queue kept would exhaust it
  // (RSS alone cannot tell the two apart: V8 returns freed memory at its own pace).
  server = await startServer({ spool, env: { NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MIB}` } })
  c = await BulkClient.connect(server.port)
  // Replayed queues hold no read buffer: each one's last read chunk (~4 KB) once stayed referenced,
  // and a restart cost ~80 MiB more than the 20k queues did when created.
  const rssRestarted = await rssBytes(server.proc.pid!)
  t.ok(rssRestarted < rssFull + 32 * 1024 * 1024, `RSS after the restart ${Math.round(rssRestarted / 1048576)} MiB (bound: ${Math.round(rssFull / 1048576)} MiB as created + 32)`)
  const lines = await c.each(0, N, (i) => `get mq${i}\r\n`, isEnd)
  const values = lines.filter((_l, k) => k > 0 && lines[k - 1]!.startsWith('VALUE '))
  t.equal(values.length, N, 'every item back after the restart')
  t.ok(values.every((v, i) => v === String(i)), 'each in its own queue, intact')

  // delete: files go, and memory goes (a second round of as many queues does not add to RSS)
  const deleted = await c.each(0, created, (i) => `delete mq${i}\r\n`, isReply)
  t.equal(deleted.filter((l) => l === 'DELETED').length, created, 'every queue deleted')
  t.equal(journalFiles(spool), 0, 'no journal file left')
  // Rounds of creating and deleting queues: a leak of even 4 KB per deleted queue would pass the
  // heap cap within them (the server would die); freed queues are collected and RSS stays bounded.
  const ROUND = 10_000
  let rssMax = 0
  for (let r = 0; r < ROUNDS; r++) {
    const round = await create(c, 0, ROUND, `again${r}_`)
    const gone = await c.each(0, ROUND, (i) => `delete again${r}_${i}\r\n`, isReply)
    if (round.stored !== ROUND || gone.filter((l) => l === 'DELETED').length !== ROUND) {
      t.fail(`round ${r}: ${round.stored} stored, ${gone.filter((l) => l === 'DELETED').length} deleted of ${ROUND}`)
      break
    }
    rssMax = Math.max(rssMax, await rssBytes(server.proc.pid!))
  }
  t.equal(server.proc.exitCode, null, `${ROUNDS} rounds of ${ROUND} queues created and deleted under a ${HEAP_CAP_MIB} MiB heap cap: still serving`)
  t.ok(rssMax < (HEAP_CAP_MIB + 200) * 1024 * 1024, `RSS at most ${Math.round(rssMax / 1024 / 1024)} MiB over the rounds`)
  t.equal(journalFiles(spool), 0, 'no journal file left after the rounds')
  const after = await c.run('stats\r\n', 1, isEnd)
  t.notOk(after.some((l) => /^STAT queue_/.test(l)), 'no queue left in stats')
  c.close()
})
