/**
 * Durability by crash under `sync: always` with producers and consumers at once (the load where
 * several fsyncs of one journal are in flight and REMOVEs ride along with the sets' fsyncs):
 * kill -9 mid-load, restart, and the queue holds exactly what was acknowledged and not consumed.
 * - every STORED item is either consumed (its get was answered) or comes back, but for the item of
 *   each get in flight at the kill (a plain get is at-most-once; /open is the reliable read);
 * - no answered get's item comes back (its REMOVE was written before the reply);
 * - nothing comes back twice, and each producer's items come back in its order.
 */
import t from 'tap'
import { startServer, removeDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { drain, produce } from '../helpers/crashLoad.js'

const PRODUCERS = 8
const CONSUMERS = 4

t.test('kill -9 under sync: always while 8 producers and 4 consumers run', async (t) => {
  const s = await startServer({ config: { sync: 'always' } })
  t.teardown(() => removeDir(s.spool))
  const stored: string[][] = Array.from({ length: PRODUCERS }, () => [])
  const consumed: string[] = []
  let stop = false
  const producers = stored.map((list, p) => produce(s.port, p, list, { queue: 'mixed', batch: 4, pad: 'y'.repeat(200), running: () => !stop }))
  const consumers = Array.from({ length: CONSUMERS }, async () => {
    const c = await RawClient.connect(s.port)
    try {
      while (!stop) {
        const v = await c.get('mixed')
        if (v !== null) consumed.push(v)
        else await new Promise((r) => setTimeout(r, 1))
      }
    } catch {
      /* the server died under us */
    }
  })
  // let both sides run until the queue has seen traffic both ways (bounded: the machine is shared)
  const deadline = Date.now() + 20_000
  await new Promise((r) => setTimeout(r, 700))
  while ((consumed.length < 50 || stored.flat().length < 200) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100))
  }
  await s.kill()
  stop = true
  await Promise.all([...producers, ...consumers])
  const acked = stored.flat()
  t.ok(acked.length >= 200, `${acked.length} sets acknowledged before the kill`)
  t.ok(consumed.length >= 50, `${consumed.length} items consumed before the kill`)
  t.equal(new Set(consumed).size, consumed.length, 'no item handed out twice before the kill')

  const again = await startServer({ spool: s.spool })
  t.teardown(() => void again.stop())
  const items = await drain(again.port, 'mixed')
  t.equal(new Set(items).size, items.length, 'no duplicates after the restart')
  const back = new Set(items)
  const gone = new Set(consumed)
  // A plain get is at-most-once (README): a get in flight at the kill may have had its REMOVE
  // written and its reply not yet read, so each consumer may take one item with it. Such an item
  // was at the head of the queue: older than every item of its producer that came back.
  const lost = acked.filter((v) => !back.has(v) && !gone.has(v))
  t.ok(lost.length <= CONSUMERS, `at most one item per get in flight lost (${lost.length}: ${lost.slice(0, 3).map((v) => v.slice(0, 12)).join(', ')})`)
  const index = (v: string): number => Number(v.split('-')[1])
  for (const v of lost) {
    const producer = v.split('-')[0]!
    const laterBack = items.filter((w) => w.startsWith(`${producer}-`) && index(w) < index(v))
    t.same(laterBack.map((w) => w.slice(0, 12)), [], `${v.slice(0, 12)} was at the head: no older item of ${producer} came back`)
  }
  const resurrected = consumed.filter((v) => back.has(v))
  t.equal(resurrected.length, 0, `no consumed item comes back (${resurrected.slice(0, 3).join(', ')})`)
  for (let p = 0; p < PRODUCERS; p++) {
    const mine = items.filter((v) => v.startsWith(`p${p}-`)).map((v) => Number(v.split('-')[1]))
    t.same(mine, [...mine].sort((a, b) => a - b), `producer ${p} in order`)
  }
})
