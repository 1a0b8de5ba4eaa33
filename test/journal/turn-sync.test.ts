/**
 * Issue 13: where an end-of-turn fsync under `sync: always` runs (journal/turnSync.ts): on the
 * event loop while fsyncs are fast and the turn's inline budget lasts, otherwise on the pool.
 */
import t from 'tap'
import { averageFsyncMs, fsyncTook, mayFsyncInline, resetTurnSync, SLOW_FSYNC_MS, TURN_BUDGET_MS } from '../../src/server/journal/turnSync.js'

const nextTurn = () => new Promise((r) => setImmediate(r))

t.afterEach(() => resetTurnSync())

t.test('a turn may spend TURN_BUDGET_MS on inline fsyncs; the next turn starts afresh', async (t) => {
  resetTurnSync()
  t.equal(mayFsyncInline(), true, 'nothing spent yet')
  fsyncTook(TURN_BUDGET_MS * 0.75, true)
  t.equal(mayFsyncInline(), true, 'budget left')
  fsyncTook(TURN_BUDGET_MS * 0.5, true)
  t.equal(mayFsyncInline(), false, 'budget spent: the other journals of this turn go to the pool')
  await nextTurn()
  t.equal(mayFsyncInline(), true, 'a new turn')
})

t.test('pool fsyncs count toward the average, not toward the turn', async (t) => {
  resetTurnSync()
  fsyncTook(TURN_BUDGET_MS * 5, false)
  t.ok(averageFsyncMs() > 0)
  t.equal(mayFsyncInline(), true, 'one slow pool fsync does not make the average slow')
})

t.test('a slow disk sends fsyncs to the pool until they are fast again', async (t) => {
  resetTurnSync()
  for (let i = 0; i < 5; i++) fsyncTook(SLOW_FSYNC_MS * 10, false)
  t.ok(averageFsyncMs() > SLOW_FSYNC_MS, `average ${averageFsyncMs().toFixed(2)} ms`)
  await nextTurn()
  t.equal(mayFsyncInline(), false, 'slow: not on the loop, whatever the turn')
  let n = 0
  while (!mayFsyncInline() && n < 1000) {
    fsyncTook(0.2, false)
    n++
  }
  t.ok(n > 1 && n < 1000, `fast again after ${n} fast fsyncs`)
  t.ok(averageFsyncMs() < SLOW_FSYNC_MS)
})

t.test('resetTurnSync(ms) starts from a given average (what the slow-disk tests use)', async (t) => {
  resetTurnSync(SLOW_FSYNC_MS * 5)
  t.equal(mayFsyncInline(), false)
  resetTurnSync()
  t.equal(mayFsyncInline(), true)
})
