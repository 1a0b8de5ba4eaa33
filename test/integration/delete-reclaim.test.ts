/**
 * Deleting queues gives their memory back to the OS promptly (issue 17, target 5), through the real
 * server run as bin/starling runs it (MALLOC_ARENA_MAX=2, --max-semi-space-size=4):
 * - 20,000 queues of one item created, then deleted: once the deletes have been quiet for 1.5 s
 *   the server runs its reclaim (`memory_reclaims` in stats), and RSS falls back to within half of
 *   what the queues had added, within seconds. Without the reclaim V8 left RSS at its peak for 40 s
 *   and more (README, "Many queues"); the bound is loose, for a loaded machine, and the stat says
 *   it was the server's reclaim, not V8's own memory reducer, that ran;
 * - `reclaim_after_deletes: 0` never runs it; a few hundred deletes among thousands of queues do
 *   not either (a full GC would mark every live queue for little memory).
 */
import t, { type Test } from 'tap'
import { BulkClient, isEnd, isReply, rssBytes } from '../helpers/bulk.js'
import { removeDir, startServer, type RunningServer } from '../helpers/server.js'

t.setTimeout(180_000)

const MiB = 1024 * 1024
/** bin/starling's allocator and node settings. */
const ENV = { MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--max-semi-space-size=4' }
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function stat(c: BulkClient, name: string): Promise<number> {
  const lines = await c.run('stats\r\n', 1, isEnd)
  const line = lines.find((l) => l.startsWith(`STAT ${name} `))
  return line === undefined ? NaN : Number(line.split(' ')[2])
}

async function serve(t: Test, config: Record<string, unknown> = {}): Promise<{ server: RunningServer; c: BulkClient }> {
  const server = await startServer({ config, env: ENV })
  const c = await BulkClient.connect(server.port)
  t.teardown(async () => {
    c.close()
    await server.stop()
    removeDir(server.spool)
  })
  return { server, c }
}

async function create(c: BulkClient, prefix: string, from: number, to: number): Promise<number> {
  const lines = await c.each(from, to, (i) => `set ${prefix}${i} 0 0 64\r\n${'x'.repeat(64)}\r\n`, isReply)
  return lines.filter((l) => l === 'STORED').length
}

async function remove(c: BulkClient, prefix: string, from: number, to: number): Promise<number> {
  const lines = await c.each(from, to, (i) => `delete ${prefix}${i}\r\n`, isReply)
  return lines.filter((l) => l === 'DELETED').length
}

t.test('20,000 queues deleted: the server reclaims, RSS falls back within seconds', async (t) => {
  const N = 20_000
  const { server, c } = await serve(t)
  const pid = server.proc.pid!
  // warm the code paths up on other names (JIT, buffers); 500 deletes are no burst
  t.equal(await create(c, 'warm', 0, 500), 500)
  t.equal(await remove(c, 'warm', 0, 500), 500)
  await sleep(1000)
  const rss0 = await rssBytes(pid)
  t.equal(await create(c, 'q', 0, N), N, 'every queue created')
  const rssFull = await rssBytes(pid)
  const added = rssFull - rss0
  t.ok(added > 20 * MiB, `the queues added ${Math.round(added / MiB)} MiB of RSS (${Math.round(rss0 / MiB)} -> ${Math.round(rssFull / MiB)})`)
  t.equal(await stat(c, 'memory_reclaims'), 0, 'no reclaim before the deletes')
  t.equal(await remove(c, 'q', 0, N), N, 'every queue deleted')
  const deletedAt = performance.now()
  let reclaims = 0
  while (reclaims === 0 && performance.now() - deletedAt < 30_000) {
    await sleep(250)
    reclaims = await stat(c, 'memory_reclaims')
  }
  t.equal(reclaims, 1, `one reclaim, ${Math.round(performance.now() - deletedAt)} ms after the last delete`)
  // RSS goes down once the reclaim's second GC is done (500 ms after its first): the lowest seen
  let rss = await rssBytes(pid)
  const bound = rss0 + added / 2
  while (rss > bound && performance.now() - deletedAt < 40_000) {
    await sleep(250)
    rss = Math.min(rss, await rssBytes(pid))
  }
  t.ok(
    rss <= bound,
    `RSS ${Math.round(rssFull / MiB)} -> ${Math.round(rss / MiB)} MiB, ${Math.round((rss - rss0) / MiB)} above the start ` +
      `(bound: half of the ${Math.round(added / MiB)} MiB the queues added), ${Math.round(performance.now() - deletedAt)} ms after the last delete`,
  )
  t.equal(await stat(c, 'memory_reclaims'), 1, 'and no more reclaims while idle')
})

t.test('no reclaim with reclaim_after_deletes: 0, nor for a small share of the queues', async (t) => {
  const off = await serve(t, { reclaim_after_deletes: 0 })
  t.equal(await create(off.c, 'q', 0, 3000), 3000)
  t.equal(await remove(off.c, 'q', 0, 3000), 3000)
  const few = await serve(t, { reclaim_after_deletes: 500 })
  t.equal(await create(few.c, 'q', 0, 3000), 3000)
  t.equal(await remove(few.c, 'q', 0, 900), 900, '900 of 3000 deleted: under a third')
  await sleep(4000) // well past the 1.5 s of quiet a burst needs
  t.equal(await stat(off.c, 'memory_reclaims'), 0, 'reclaim_after_deletes 0: all 3000 deleted, no reclaim')
  t.equal(await stat(few.c, 'memory_reclaims'), 0, '900 of 3000: no reclaim')
  t.equal(await remove(few.c, 'q', 900, 1100), 200, '200 more: 1100 deleted, 1900 left')
  let reclaims = 0
  const t0 = performance.now()
  while (reclaims === 0 && performance.now() - t0 < 30_000) {
    await sleep(250)
    reclaims = await stat(few.c, 'memory_reclaims')
  }
  t.equal(reclaims, 1, 'the count fell by a third: reclaimed')
})
