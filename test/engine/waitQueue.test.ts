/**
 * WaitQueue (blocked readers of one queue): first come first served, one timer per waiter,
 * removal without waking, and nothing left running after drain().
 */
import t from 'tap'
import { Waiter, WaitQueue } from '../../src/server/engine/waitQueue.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const owner = {}

t.test('shift hands out waiters in arrival order and stops their timers', async (t) => {
  const q = new WaitQueue<string>()
  const timedOut: string[] = []
  const waiters = ['a', 'b', 'c'].map((name) => {
    const w = new Waiter<string>(() => {}, owner)
    q.add(w, 50, () => timedOut.push(name))
    return w
  })
  t.equal(q.size, 3)
  t.equal(q.shift(), waiters[0])
  t.equal(q.shift(), waiters[1])
  t.equal(q.size, 1)
  t.equal(waiters[0]!.timer, null, 'a shifted waiter has no timer left')
  await sleep(150)
  t.same(timedOut, ['c'], 'only the waiter still queued timed out')
  t.equal(q.size, 0, 'a timed-out waiter leaves the queue')
  t.equal(q.shift(), undefined)
})

t.test('a timeout runs onTimeout once, not wake', async (t) => {
  const q = new WaitQueue()
  let woken = 0
  let timeouts = 0
  q.add(new Waiter(() => woken++, owner), 10, () => timeouts++)
  await sleep(80)
  t.equal(timeouts, 1)
  t.equal(woken, 0, 'the queue never wakes a waiter itself')
})

t.test('remove takes a waiter out without waking it or timing it out', async (t) => {
  const q = new WaitQueue()
  let timeouts = 0
  const first = new Waiter(() => {}, owner)
  const second = new Waiter(() => {}, owner)
  q.add(first, 20, () => timeouts++)
  q.add(second, 10_000, () => timeouts++)
  t.equal(q.remove(first), true)
  t.equal(q.remove(first), false, 'removing twice reports it was not waiting')
  t.equal(q.shift(), second, 'the next in line moves up')
  await sleep(80)
  t.equal(timeouts, 0)
})

t.test('drain returns every waiter in order, with no timer left running', async (t) => {
  const q = new WaitQueue()
  let timeouts = 0
  const all = Array.from({ length: 5 }, () => new Waiter(() => {}, owner))
  for (const w of all) q.add(w, 30, () => timeouts++)
  t.same(q.drain(), all)
  t.equal(q.size, 0)
  t.ok(all.every((w) => w.timer === null))
  await sleep(100)
  t.equal(timeouts, 0)
})

t.test('a waiter parked on a fresh queue is in that queue only (the idle ones share an empty set)', async (t) => {
  const a = new WaitQueue<string>()
  const b = new WaitQueue<string>()
  const w = new Waiter<string>(() => {}, owner)
  a.park(w)
  t.equal(a.size, 1)
  t.equal(b.size, 0, 'another idle queue has no waiter')
  t.equal(b.shift(), undefined, 'and cannot hand one out')
  t.equal(new WaitQueue().size, 0, 'nor has a new one')
  t.ok(a.remove(w))
  t.equal(a.size, 0)
})
