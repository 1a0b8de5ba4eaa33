/**
 * kill -9 during a fill where every set goes to a new queue (issue 17's `-mckeys unique`), under
 * `sync: always`: each new queue's file is created by its first write, its directory
 * entries made durable with their first fsync. Every acknowledged item must come back after the
 * restart, in its queue, once.
 */
import t from 'tap'
import { startServer, removeDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

t.test('kill -9 during a unique-queue fill from 8 connections (sync: always)', async (t) => {
  const s = await startServer({ config: { sync: 'always' } })
  t.teardown(() => removeDir(s.spool))
  const acked: string[] = []
  let stop = false
  const producer = async (p: number): Promise<void> => {
    const c = await RawClient.connect(s.port)
    let i = 0
    try {
      while (!stop) {
        // 8 new queues pipelined a packet; the value names its queue
        const batch: string[] = []
        for (let k = 0; k < 8; k++) batch.push(`u${p}-${i++}`)
        c.send(batch.map((q) => `set ${q} 0 0 ${q.length + 4}\r\n${q}-val\r\n`).join(''))
        for (const q of batch) {
          const reply = await c.line(10000)
          if (reply !== 'STORED') throw new Error(reply)
          acked.push(q)
        }
      }
    } catch {
      /* the server died under us: what was acknowledged is in `acked` */
    }
  }
  const producers = Array.from({ length: 8 }, (_, p) => producer(p))
  // until a few hundred queues exist (a loaded machine is slow), then kill mid-stream
  const deadline = Date.now() + 20000
  while (acked.length < 400 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  await s.kill()
  stop = true
  await Promise.all(producers)
  t.ok(acked.length >= 100, `${acked.length} new queues acknowledged before the kill`)

  const again = await startServer({ spool: s.spool })
  t.teardown(() => void again.stop())
  const c = await RawClient.connect(again.port)
  const lost: string[] = []
  for (const q of acked) {
    const v = await c.get(q)
    const extra = await c.get(q)
    if (v !== `${q}-val` || extra !== null) lost.push(`${q}: ${v} ${extra}`)
  }
  t.same(lost.slice(0, 5), [], `every acknowledged item back, once (${lost.length} not)`)
  c.close()
})
