/**
 * The idle timeout (-t, issue 12 item 9): a client waiting on a blocking get is not idle — the
 * timeout does not fire during the wait — and once the wait ends the timeout applies again (it used
 * to stop applying for good once a blocking get had outlived it).
 */
import t from 'tap'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('an idle connection is closed; activity keeps it open', async (t) => {
  const s = await serverFor(t, { args: ['-t', '1'] })
  const idle = await RawClient.connect(s.port)
  await idle.waitClosed(10_000)
  t.ok(idle.closed, 'closed after the idle timeout')

  const busy = await RawClient.connect(s.port)
  for (let i = 0; i < 6; i++) {
    t.match(await busy.request('version\r\n'), [/^VERSION /])
    await sleep(400)
  }
  t.notOk(busy.closed, 'a connection sending commands stays open past the timeout')
  await busy.waitClosed(10_000)
  t.ok(busy.closed, 'and is closed once it goes quiet')
})

t.test('a blocking get outlives the timeout; the timeout applies again after it', async (t) => {
  const s = await serverFor(t, { args: ['-t', '1'] })
  const waiter = await RawClient.connect(s.port)
  waiter.send('get jobs/t=4000\r\n')
  await sleep(2500) // well past the 1 s idle timeout
  t.notOk(waiter.closed, 'not closed during the wait')
  const producer = await RawClient.connect(s.port)
  t.equal(await producer.set('jobs', 'late'), 'STORED')
  producer.close()
  t.equal(await waiter.line(), 'VALUE jobs/t=4000 0 4', 'the waiter gets the item')
  t.equal(await waiter.line(), 'late')
  t.equal(await waiter.line(), 'END')
  await waiter.waitClosed(10_000)
  t.ok(waiter.closed, 'closed once idle after the wait ended')

  // The same when the wait times out empty.
  const empty = await RawClient.connect(s.port)
  empty.send('get none/t=2500\r\n')
  t.equal(await empty.line(5000), 'END', 'the wait ends empty, connection still open')
  await empty.waitClosed(10_000)
  t.ok(empty.closed, 'then closed by the idle timeout')
})
