/**
 * Issue 13: QueueJournal.syncing / afterInFlight, what an empty poll waits on (engine/emptyPoll.ts).
 * Under `always` the callback runs once every fsync in flight at the call has completed, after the
 * durability callbacks of their records; with nothing in flight, or under another policy, it does
 * not wait at all. Real journal files, real fsyncs.
 */
import t from 'tap'
import { item, open, tempSpool } from '../helpers/journal.js'

t.test('always: nothing in flight, nothing to wait for', async (t) => {
  const { journal } = await open(tempSpool(t), { sync: 'always' })
  t.teardown(() => journal.close())
  t.equal(journal.syncing, false)
  t.equal(
    journal.afterInFlight(() => t.fail('must not run')),
    false,
  )
})

t.test('always: runs after the fsyncs in flight, and after their records are durable', async (t) => {
  const { journal } = await open(tempSpool(t), { sync: 'always' })
  t.teardown(() => journal.close())
  const events: string[] = []
  const all: Promise<void>[] = []
  for (let s = 1; s <= 3; s++) {
    journal.add(item(s), () => events.push(`w${s}`), () => events.push(`d${s}`))
    journal.flushNow() // one write (and one fsync started) per add: several in flight
  }
  t.equal(journal.syncing, true, 'an fsync is in flight after a write')
  all.push(new Promise((resolve) => t.equal(journal.afterInFlight(() => (events.push('after'), resolve())), true)))
  // A record written after the call: the callback does not wait for its fsync.
  journal.add(item(4), () => events.push('w4'), () => events.push('d4'))
  await Promise.all(all)
  t.same(events.slice(0, 3), ['w1', 'w2', 'w3'])
  const after = events.indexOf('after')
  for (const d of ['d1', 'd2', 'd3']) t.ok(events.indexOf(d) >= 0 && events.indexOf(d) < after, `${d} before the callback`)
  await new Promise<void>((resolve) => {
    const check = (): void => (journal.syncing ? void setTimeout(check, 5) : resolve())
    check()
  })
  t.ok(events.includes('d4'), 'and the later record became durable on its own fsync')
})

t.test('never and periodic: no waiting', async (t) => {
  for (const sync of ['never', 20] as const) {
    const { journal } = await open(tempSpool(t), { sync })
    journal.add(item(1), () => {}, () => {})
    journal.flushNow()
    t.equal(journal.syncing, false, `${sync}: not syncing`)
    t.equal(
      journal.afterInFlight(() => t.fail('must not run')),
      false,
      `${sync}: afterInFlight declines`,
    )
    await journal.close()
  }
})
