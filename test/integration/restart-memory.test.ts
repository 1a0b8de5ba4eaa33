/**
 * A restart holds what its items hold (issue 13, 1M x 16 B: 113 MiB full, 125 restarted before).
 * Replay and the first read-back allocate big read buffers (4 MiB chunks) that are dead once the
 * queue is loaded, but only a full GC frees them; the server runs one when every queue is loaded
 * (engine/reclaim.ts), and items of one size need no per-item size entry in the journal's index.
 * The 'replay complete' line reports the typed-array memory after that GC: it must be the packed
 * items (payload + 16-byte header each) and little else. Deterministic: what is live, not RSS.
 */
import t from 'tap'
import { COMPACT_HEADER_BYTES } from '../../src/server/engine/itemStore.js'
import { BulkClient, isEnd, isReply } from '../helpers/bulk.js'
import { removeDir, startServer, tempDir, type RunningServer } from '../helpers/server.js'

const COUNT = 200_000
const SIZE = 16
const MiB = 1024 * 1024
/** Typed-array memory besides the items: read and batch buffers, pools (measured ~0.5 MiB). */
const OTHER_BYTES = 2 * MiB
// as bin/starling runs it
const env = { NODE_OPTIONS: '--max-semi-space-size=4', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '1048576' }

t.test(`${COUNT} x ${SIZE} B restarted: the loaded queue holds its packed items, not replay's buffers`, async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  let server: RunningServer | undefined = await startServer({ env, spool })
  t.teardown(async () => {
    if (server && server.proc.exitCode === null) await server.stop()
  })
  let c = await BulkClient.connect(server.port)
  const value = (i: number): string => String(i).padStart(SIZE, '0')
  const stored = await c.each(0, COUNT, (i) => `set m 0 0 ${SIZE}\r\n${value(i)}\r\n`, isReply)
  t.equal(stored.filter((l) => l === 'STORED').length, COUNT, 'every set stored')
  c.close()
  await server.stop()

  server = await startServer({ env, spool })
  const replayed = server.logs.find((l) => l.msg === 'replay complete')
  t.ok(replayed, 'replay complete logged')
  t.equal(replayed?.items, COUNT, 'every item replayed')
  t.type(replayed?.gcMs, 'number', 'a GC ran once the queues were loaded')
  const items = COUNT * (SIZE + COMPACT_HEADER_BYTES)
  const arrayBuffers = Number(replayed?.arrayBuffersBytes)
  t.ok(
    arrayBuffers <= items + OTHER_BYTES,
    `typed arrays after load ${(arrayBuffers / MiB).toFixed(1)} MiB: items ${(items / MiB).toFixed(1)} MiB + at most ${OTHER_BYTES / MiB} MiB ` +
      '(a dead 4 MiB read chunk, or a size entry per item, would not fit)',
  )

  // the items are all there, in order: the first and the last of a drain of a few
  c = await BulkClient.connect(server.port)
  const head = await c.run('get m\r\nget m\r\n', 2, isEnd)
  t.same(
    head.filter((l) => /^\d+$/.test(l)),
    [value(0), value(1)],
    'the head items first, intact',
  )
  const stats = await c.run('stats\r\n', 1, isEnd)
  t.ok(stats.includes(`STAT queue_m_items ${COUNT - 2}`), 'the rest still queued')
  c.close()
  await server.stop()
  server = undefined
})
