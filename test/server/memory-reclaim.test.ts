/**
 * memoryReclaim.ts: when the server asks V8 for full GCs after queue deletes. A counting `gc` and a
 * queue count stand in for V8 and the collection (the real thing is in
 * test/integration/delete-reclaim.test.ts); the timers are real, with short settings.
 * - nothing below `afterDeletes` deletes, nor while fewer than a third of the queues went;
 * - nothing while deletes keep coming; two GCs once they have been quiet for `idleMs`;
 * - at most one reclaim every `minIntervalMs`; `afterDeletes: 0` never reclaims;
 * - V8's gc can be had without --expose-gc on the command line.
 */
import t from 'tap'
import { exposedGc, MemoryReclaimer, type ReclaimSettings } from '../../src/server/memoryReclaim.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
/** Wait until `cond` holds (timers fire late on a loaded machine, never early). */
async function eventually(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = performance.now() + ms
  while (!cond() && performance.now() < end) await sleep(20)
  return cond()
}
const quiet = { debug() {}, info() {}, warn() {}, error() {} }

function reclaimer(settings: Partial<ReclaimSettings>, live: { n: number }) {
  const gcs: number[] = []
  const logged: object[] = []
  const log = { ...quiet, debug: (o: object) => logged.push(o) }
  const r = new MemoryReclaimer({ afterDeletes: 10, idleMs: 50, minIntervalMs: 0, ...settings }, () => live.n, log, () => gcs.push(performance.now()))
  return { r, gcs, logged }
}

function deleteQueues(r: MemoryReclaimer, live: { n: number }, k: number): void {
  for (let i = 0; i < k; i++) {
    live.n--
    r.queueDeleted()
  }
}

t.test('V8 gives its gc without a command-line flag', async (t) => {
  const gc = exposedGc()
  t.type(gc, 'function')
  t.equal(exposedGc(), gc, 'looked up once')
  t.equal((globalThis as { gc?: unknown }).gc, undefined, 'and not put in the global scope')
})

t.test('a burst of deletes, once quiet: two GCs and one log line', async (t) => {
  const live = { n: 30 }
  const { r, gcs, logged } = reclaimer({ idleMs: 500 }, live)
  t.teardown(() => r.stop())
  deleteQueues(r, live, 9)
  await sleep(700)
  t.equal(gcs.length, 0, 'fewer than afterDeletes: nothing')
  deleteQueues(r, live, 1)
  // deletes go on, 25 ms apart (idleMs 500): no GC yet
  for (let i = 0; i < 5; i++) {
    await sleep(25)
    deleteQueues(r, live, 1)
  }
  t.equal(gcs.length, 0, 'not while deletes keep coming')
  t.ok(await eventually(() => gcs.length === 2), 'two GCs once quiet')
  t.ok(gcs[1]! - gcs[0]! >= 450, `the second after the first one's sweep (${Math.round(gcs[1]! - gcs[0]!)} ms apart)`)
  t.equal(r.runs, 1)
  t.equal(logged.length, 1, 'one log line per reclaim')
  t.match(logged[0], { deletedQueues: 15, queues: 15 })
})

t.test('a few deletes among many queues are left to V8', async (t) => {
  const live = { n: 100 }
  const { r, gcs } = reclaimer({}, live)
  t.teardown(() => r.stop())
  deleteQueues(r, live, 30) // 30 of 100: under a third
  await sleep(200)
  t.equal(gcs.length, 0, '30 of 100 deleted: no GC')
  deleteQueues(r, live, 5) // 35 deleted, 65 left: 35 * 2 >= 65
  t.ok(await eventually(() => r.runs === 1), 'once the count has fallen by a third: reclaimed')
})

t.test('at most one reclaim every minIntervalMs', async (t) => {
  const live = { n: 100 }
  const { r } = reclaimer({ minIntervalMs: 1500 }, live)
  t.teardown(() => r.stop())
  deleteQueues(r, live, 60)
  t.ok(await eventually(() => r.runs === 1), 'the first burst')
  const first = performance.now()
  deleteQueues(r, live, 30)
  await sleep(400)
  t.equal(r.runs, 1, 'a second burst soon after waits')
  t.ok(await eventually(() => r.runs === 2), 'and is reclaimed once the interval has passed')
  t.ok(performance.now() - first >= 1400, 'not before')
})

t.test('afterDeletes 0: never; a reload applies new settings', async (t) => {
  const live = { n: 100 }
  const { r, gcs } = reclaimer({ afterDeletes: 0 }, live)
  t.teardown(() => r.stop())
  deleteQueues(r, live, 100)
  await sleep(300)
  t.equal(gcs.length, 0, 'all 100 deleted: no GC')
  r.reconfigure({ afterDeletes: 10, idleMs: 50, minIntervalMs: 0 })
  live.n = 20
  deleteQueues(r, live, 10)
  t.ok(await eventually(() => r.runs === 1), 'reclaims after the reload')
})

t.test('stop cancels a pending reclaim', async (t) => {
  const live = { n: 20 }
  const { r, gcs } = reclaimer({}, live)
  deleteQueues(r, live, 20)
  r.stop()
  await sleep(300)
  t.equal(gcs.length, 0)
})
