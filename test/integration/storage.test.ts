/**
 * Storage through the real server: a full disk (a small tmpfs as the spool) refuses sets with
 * SERVER_ERROR, keeps serving gets, logs once, and recovers when space returns; read-behind keeps a
 * deep queue within its memory budget with exact FIFO order, flags and expiry, across a restart.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync, rmSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, removeDir, tempDir, serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

function mountTmpfs(dir: string, size: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' })
    return null
  } catch (err) {
    return (err as Error).message.split('\n')[0]!
  }
}

t.test('disk full: SERVER_ERROR, gets keep working, one log line, recovery when space returns', async (t) => {
  const mnt = tempDir('starling-full-')
  const why = mountTmpfs(mnt, '2m')
  if (why) {
    // The journal's own tests inject ENOSPC at the file layer; this one needs a real small disk.
    t.comment(`cannot mount a tmpfs here (${why}); disk-full is covered by test/journal fault injection`)
    removeDir(mnt)
    return
  }
  t.teardown(() => {
    try {
      execFileSync('umount', [mnt])
    } catch {
      /* already unmounted */
    }
    removeDir(mnt)
  })
  const spool = join(mnt, 'spool')
  mkdirSync(spool, { mode: 0o700 }) // private, as the server would create it (else a warning is logged)
  const ballast = join(mnt, 'ballast')
  writeFileSync(ballast, Buffer.alloc(1024 * 1024))
  const s = await startServer({ spool })
  t.teardown(() => (s.proc.exitCode === null && s.proc.signalCode === null ? s.kill() : undefined))
  const c = await RawClient.connect(s.port)
  const item = 'z'.repeat(32 * 1024)
  const stored: number[] = []
  let refusal = ''
  for (let i = 0; i < 200 && !refusal; i++) {
    const reply = await c.set('full', `${i}:${item}`)
    if (reply === 'STORED') stored.push(i)
    else refusal = reply
  }
  t.match(refusal, /^SERVER_ERROR /, `a set that cannot be journaled is refused: ${refusal}`)
  t.ok(stored.length > 3, `${stored.length} items stored before the disk filled`)
  for (let k = 0; k < 5; k++) t.match(await c.set('full', `x:${item}`), /^SERVER_ERROR /, 'still refused while full')
  t.equal((await c.get('full'))!.split(':')[0], String(stored[0]), 'gets keep working on a full disk')
  const ioErrors = s.logs.filter((l) => (l.level as number) >= 40)
  t.equal(ioErrors.length, 1, `logged once, not per command: ${JSON.stringify(ioErrors.map((l) => l.msg))}`)

  rmSync(ballast)
  await new Promise((r) => setTimeout(r, 50))
  t.equal(await c.set('full', `after:${item}`), 'STORED', 'recovers when space returns')
  t.ok(s.logs.some((l) => l.msg === 'journal writes work again'), 'the recovery is logged')
  c.close()
  await s.stop()

  const again = await startServer({ spool })
  const d = await RawClient.connect(again.port)
  const back: string[] = []
  for (;;) {
    const v = await d.get('full')
    if (v === null) break
    back.push(v.split(':')[0]!)
  }
  t.same(back, [...stored.slice(1).map(String), 'after'], 'every acknowledged item, and no refused one, after restart')
  d.close()
  await again.stop()
})

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024
}

t.test('read-behind: a deep queue stays within its memory budget, FIFO, flags and expiry exact', async (t) => {
  const count = Number(process.env.STARLING_DEEP_ITEMS ?? 150_000)
  const s = await serverFor(t, { config: { max_memory_size: '1MB' } })
  const c = await RawClient.connect(s.port)
  const pad = 'p'.repeat(240)
  const now = Math.floor(Date.now() / 1000)
  // Every 1000th item expires at once (absolute time in the past); flags carry the index.
  const value = (i: number): string => `${String(i).padStart(8, '0')}${pad}`
  let batch = ''
  for (let i = 0; i < count; i++) {
    const exp = i % 1000 === 999 ? now - 100 : 0
    batch += `set deep ${i} ${exp} ${value(i).length} noreply\r\n${value(i)}\r\n`
    if (batch.length > 256 * 1024) {
      c.send(batch)
      batch = ''
    }
  }
  c.send(batch)
  t.same(await c.request('version\r\n'), ['VERSION 1.0.0'])
  const stats = (await c.request('stats\r\n')).join('\n')
  const memBytes = Number(/STAT queue_deep_mem_bytes (\d+)/.exec(stats)![1])
  t.ok(memBytes <= 2 * 1024 * 1024, `payload in memory ${memBytes} B within ~the 1 MB budget`)
  t.equal(/STAT queue_deep_items (\d+)/.exec(stats)![1], String(count))
  const rss = rssMiB(s.proc.pid!)
  t.ok(rss < 200, `server RSS ${rss.toFixed(0)} MiB with ${count} items queued`)

  // Drain half, restart, drain the rest: order, flags, expiry exact across the boundary.
  const expectNext = (() => {
    let i = 0
    return () => {
      while (i % 1000 === 999) i++
      return i++
    }
  })()
  const readOne = async (d: RawClient): Promise<number | null> => {
    d.send('get deep\r\n')
    const head = await d.line()
    if (head === 'END') return null
    const m = /^VALUE deep (\d+) (\d+)$/.exec(head)!
    const data = (await d.bytes(Number(m[2]) + 2)).subarray(0, -2).toString()
    await d.line()
    const index = Number(data.slice(0, 8))
    if (index !== Number(m[1])) throw new Error(`flags ${m[1]} do not match item ${index}`)
    return index
  }
  let bad = 0
  for (let k = 0; k < count / 2; k++) if ((await readOne(c)) !== expectNext()) bad++
  t.equal(bad, 0, 'first half in order')
  c.close()
  await s.kill()

  const again = await serverFor(t, { spool: s.spool, config: { max_memory_size: '1MB' } })
  const d = await RawClient.connect(again.port)
  let seen = 0
  for (;;) {
    const got = await readOne(d)
    if (got === null) break
    // Replies to gets are sent after their REMOVE was written: nothing comes back twice.
    if (got !== expectNext()) bad++
    seen++
  }
  t.equal(bad, 0, 'second half in order after restart')
  const expiredInSecondHalf = Math.floor(count / 1000) - Math.floor(count / 2 / 1000) 
  t.ok(seen >= count / 2 - expiredInSecondHalf - 1000 && seen <= count / 2, `${seen} items after restart`)
  d.close()
})
