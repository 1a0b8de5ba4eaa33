/**
 * Several servers, Starling's way, with one killed mid-run.
 */
import t from 'tap'
import { startServer, removeDir, type RunningServer } from '../helpers/server.js'
import { StarlingClient, ConnectionError, queueStats } from '../../src/index.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('sets spread round-robin, reads cycle through all servers', async (t) => {
  const a = await startServer()
  const b = await startServer()
  const servers = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]
  const client = new StarlingClient(servers)
  t.teardown(async () => {
    await client.close()
    await a.stop()
    await b.stop()
    removeDir(a.spool)
    removeDir(b.spool)
  })
  for (let i = 0; i < 10; i++) await client.set('spread', i)
  const stats = await client.stats()
  t.same(Object.keys(stats).sort(), [...servers].sort())
  t.same(servers.map((s) => queueStats(stats[s]!).spread!.items), [5, 5])
  t.equal(await client.sizeof('spread'), 10)
  const got: number[] = []
  for (let v; (v = await client.fetch<number>('spread')) !== undefined; ) got.push(v)
  t.same(got.sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  // a queue only one server has is still found, whichever server a read starts with
  const single = new StarlingClient(servers[1]!)
  await single.set('only_b', 'x')
  await single.set('only_b', 'y')
  await single.close()
  t.equal(await client.fetch('only_b'), 'x')
  t.equal(await client.fetch('only_b'), 'y')
  // a waiting get is woken by an item on either server
  for (const s of servers) {
    const one = new StarlingClient(s)
    const waiting = client.get('either', { timeoutMs: 3000 })
    await sleep(50)
    await one.set('either', s)
    t.equal(await waiting, s)
    await one.close()
  }
  // random distribution still lands on both
  const random = new StarlingClient(servers, { distribution: 'random' })
  for (let i = 0; i < 40; i++) await random.set('rnd', i)
  const rs = await random.stats()
  t.ok(servers.every((s) => queueStats(rs[s]!).rnd!.items > 0))
  t.equal(await random.flush('rnd'), 40)
  await random.close()
})

t.test('one of two servers killed mid-run: no acknowledged item lost, client keeps working', async (t) => {
  const a = await startServer()
  const b = await startServer()
  const servers = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]
  const producer = new StarlingClient(servers, { retryDelayMs: 50, maxRetryDelayMs: 200 })
  const consumer = new StarlingClient(servers, { retryDelayMs: 50, maxRetryDelayMs: 200, waitSliceMs: 200 })
  let restarted: RunningServer | undefined
  t.teardown(async () => {
    await producer.close()
    await consumer.close()
    await a.stop()
    await restarted?.stop()
    removeDir(a.spool)
    removeDir(b.spool)
  })

  const acked = new Set<number>()
  const uncertain = new Set<number>() // the connection dropped after the set was sent
  const consumed: number[] = []
  let ackedAfterKill = 0
  let killed = false
  const errors: unknown[] = []
  const poller = consumer.process<number>('work', (v) => void consumed.push(v), { concurrency: 2, idleTimeoutMs: 200, onError: (e) => errors.push(e) })

  const produce = (async () => {
    for (let i = 0; i < 600; i++) {
      try {
        await producer.set('work', i)
        acked.add(i)
        if (killed) ackedAfterKill++
      } catch (err) {
        if (!(err instanceof ConnectionError)) throw err
        uncertain.add(i)
      }
      if (i % 20 === 0) await sleep(5)
    }
  })()
  await sleep(150)
  await b.kill()
  killed = true
  await produce
  // let the consumer catch up with server a
  for (let i = 0; i < 100 && (await producer.sizeof('work')) > 0; i++) await sleep(20)
  await poller.stop()

  t.ok(ackedAfterKill > 100, `sets kept succeeding after the kill (${ackedAfterKill})`)
  t.ok(uncertain.size <= 2, `at most the sets in flight at the kill failed (${uncertain.size})`)
  t.ok(poller.processed > 0)

  // what the killed server acknowledged is in its spool: restart it and drain
  restarted = await startServer({ spool: b.spool })
  const drainer = new StarlingClient(`127.0.0.1:${restarted.port}`)
  const leftover: number[] = []
  await drainer.flush<number>('work', (v) => void leftover.push(v))
  await drainer.close()

  // An item that a blocked get received as the poller stopped goes back to server a's queue: the
  // client aborts that open read, and closing its connections aborts any still open. It is there.
  await consumer.close()
  const survivor = new StarlingClient(`127.0.0.1:${a.port}`)
  let seen = new Set<number>()
  let lost: number[] = []
  for (let round = 0; round < 20; round++) {
    await survivor.flush<number>('work', (v) => void leftover.push(v))
    seen = new Set([...consumed, ...leftover])
    lost = [...acked].filter((i) => !seen.has(i))
    if (lost.length === 0) break
    await sleep(50) // the server may not have seen the consumer's connections close yet
  }
  await survivor.close()

  t.same(lost, [], 'every acknowledged item was consumed or is still queued on a server')
  const dupes = consumed.length + leftover.length - seen.size
  t.ok(dupes <= 2, `duplicates only from open reads the kill interrupted (${dupes})`)
  t.same([...seen].filter((v) => !acked.has(v) && !uncertain.has(v)), [], 'nothing consumed that was not produced')
})

/** A TCP proxy to a server that can be taken down and brought back on the same port. */
async function proxyTo(port: number) {
  const { createServer, connect } = await import('node:net')
  const sockets = new Set<import('node:net').Socket>()
  let server: import('node:net').Server | undefined
  let listenPort = 0
  const up = async () => {
    server = createServer((client) => {
      const upstream = connect(port, '127.0.0.1')
      sockets.add(client).add(upstream)
      client.pipe(upstream).pipe(client)
      const drop = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on('error', drop).on('close', drop)
      upstream.on('error', drop).on('close', drop)
    })
    await new Promise<void>((r) => server!.listen(listenPort, '127.0.0.1', r))
    listenPort = (server.address() as { port: number }).port
  }
  const down = async () => {
    for (const s of sockets) s.destroy()
    sockets.clear()
    await new Promise((r) => server!.close(r))
  }
  await up()
  return { port: () => listenPort, up, down }
}

t.test('a dead server is skipped, retried with backoff, and used again when it is back', async (t) => {
  const a = await startServer()
  const b = await startServer()
  const proxy = await proxyTo(a.port)
  const client = new StarlingClient([`127.0.0.1:${proxy.port()}`, `127.0.0.1:${b.port}`], { retryDelayMs: 100, maxRetryDelayMs: 400 })
  const direct = new StarlingClient(`127.0.0.1:${a.port}`)
  t.teardown(async () => {
    await client.close()
    await direct.close()
    await proxy.down()
    await a.stop()
    await b.stop()
    removeDir(a.spool)
    removeDir(b.spool)
  })
  const onA = async () => (await direct.sizeof('flaky')) as number
  for (let i = 0; i < 4; i++) await client.set('flaky', i)
  t.equal(await onA(), 2, 'round-robin while both are up')

  await proxy.down()
  await sleep(50) // the client sees its connection close (a set in flight at that moment may fail)
  const started = Date.now()
  for (let i = 0; i < 20; i++) await client.set('flaky', i) // each lands on b, none fails
  t.ok(Date.now() - started < 2000, 'a dead server costs little')
  t.equal(await onA(), 2, 'nothing went to the dead server')
  const stats = await client.stats()
  t.same(Object.keys(stats), [`127.0.0.1:${b.port}`], 'stats skips the dead server')

  await proxy.up()
  await sleep(500) // past the backoff
  for (let i = 0; i < 10; i++) await client.set('flaky', i)
  t.ok((await onA()) >= 6, 'sets reach the revived server again')
  t.equal(Object.keys(await client.stats()).length, 2)
  t.equal(await client.flush('flaky'), 34)
})
