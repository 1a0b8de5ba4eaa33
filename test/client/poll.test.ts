/**
 * Priority polling against a real server process.
 */
import t from 'tap'
import { startClientServer } from '../helpers/clientServer.js'
import { StarlingClient } from '../../src/index.js'

let client: StarlingClient, addr: string
t.before(async () => ({ client, addr } = await startClientServer(t)))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('with everything queued, all high, then medium, then low', async (t) => {
  for (const q of ['p_low', 'p_medium', 'p_high']) for (let i = 0; i < 5; i++) await client.set(q, `${q}:${i}`)
  const order: string[] = []
  const poller = client.poll<string>(['p_high', 'p_medium', 'p_low'], (v) => void order.push(v), { idleTimeoutMs: 100, stopWhenIdle: true })
  await poller.done
  t.same(order, [
    ...Array.from({ length: 5 }, (_, i) => `p_high:${i}`),
    ...Array.from({ length: 5 }, (_, i) => `p_medium:${i}`),
    ...Array.from({ length: 5 }, (_, i) => `p_low:${i}`),
  ])
})

t.test('an idle poller wakes for an item on any of its queues, promptly', async (t) => {
  const got: Array<{ v: string; at: number }> = []
  const poller = client.poll<string>(['w_high', 'w_low'], (v) => void got.push({ v, at: Date.now() }), { idleTimeoutMs: 5000 })
  await sleep(100)
  await client.set('w_low', 'low one')
  const setAt = Date.now() // acknowledged
  await sleep(100)
  await poller.stop()
  t.equal(got.length, 1)
  t.equal(got[0]!.v, 'low one')
  t.ok(got[0]!.at - setAt < 50, `took ${got[0]!.at - setAt} ms`)
})

t.test('priority order holds under concurrent producers', async (t) => {
  const queues = ['c_high', 'c_medium', 'c_low']
  const acked = new Map<string, number>() // item -> when its set was acknowledged
  const taken: Array<{ item: string; rank: number; start: number; prevEnd: number }> = []
  let lastEnd = Date.now()
  const poller = client.poll<string>(
    queues,
    async (item, reliable) => {
      taken.push({ item, rank: queues.indexOf(reliable.queue), start: Date.now(), prevEnd: lastEnd })
      await sleep(3)
      lastEnd = Date.now()
    },
    { concurrency: 1, idleTimeoutMs: 200 },
  )
  const producers = queues.map(async (q, rank) => {
    const c = new StarlingClient(addr)
    for (let i = 0; i < 40; i++) {
      const item = `${q}:${i}`
      await c.set(q, item)
      acked.set(item, Date.now())
      await sleep(Math.random() * (4 + rank * 2))
    }
    await c.close()
  })
  await Promise.all(producers)
  while (taken.length < 120) await sleep(20)
  await poller.stop()
  t.equal(taken.length, 120, 'every item once')
  t.equal(new Set(taken.map((x) => x.item)).size, 120)
  // If a higher-priority item was acknowledged before the worker began looking for X, the worker
  // must have taken that one before X.
  const startOf = new Map(taken.map((x) => [x.item, x.start]))
  const violations: string[] = []
  for (const x of taken) {
    for (const y of taken) {
      if (y.rank < x.rank && acked.get(y.item)! < x.prevEnd && startOf.get(y.item)! > x.start) {
        violations.push(`${x.item} taken before ${y.item}`)
      }
    }
  }
  t.same(violations, [], 'no lower-priority item taken while a higher one was waiting')
  // within each queue, FIFO
  for (const q of queues) {
    const seq = taken.filter((x) => x.item.startsWith(q + ':')).map((x) => Number(x.item.split(':')[1]))
    t.same(seq, [...seq].sort((a, b) => a - b), `${q} in order`)
  }
})

t.test('concurrency: several workers, every item exactly once, failures redelivered', async (t) => {
  for (let i = 0; i < 60; i++) await client.set(['m_high', 'm_low'][i % 2]!, i)
  const counts = new Map<number, number>()
  const poller = client.poll<number>(
    ['m_high', 'm_low'],
    async (v) => {
      counts.set(v, (counts.get(v) ?? 0) + 1)
      await sleep(2)
      if (v % 10 === 0 && counts.get(v) === 1) throw new Error('transient')
    },
    { concurrency: 6, idleTimeoutMs: 150, stopWhenIdle: true, onError: () => {} },
  )
  await poller.done
  t.equal(counts.size, 60)
  t.equal(poller.processed, 60)
  t.equal(poller.failed, 6)
  for (const [v, n] of counts) t.equal(n, v % 10 === 0 ? 2 : 1, `item ${v}`)
})

t.test('stop() lets in-flight items finish and confirms them', async (t) => {
  await client.set('s_q', 'slow')
  let finished = false
  const poller = client.poll<string>(['s_q'], async () => {
    await sleep(300)
    finished = true
  })
  await sleep(50)
  await poller.stop()
  t.ok(finished)
  t.equal(poller.processed, 1)
  t.equal(await client.fetch('s_q'), undefined)
})

t.test('an AbortSignal stops the poller', async (t) => {
  const ac = new AbortController()
  const poller = client.poll(['sig_q'], () => {}, { signal: ac.signal, idleTimeoutMs: 5000 })
  await sleep(50)
  const at = Date.now()
  ac.abort()
  await poller.done
  t.ok(Date.now() - at < 500)
  t.ok(poller.stopped)
})
