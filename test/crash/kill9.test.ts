/**
 * Durability by crash: kill -9 while 8 connections set concurrently; every acknowledged item must
 * come back exactly once, in each producer's order. Then torn tails: cut the journal inside its
 * last record at many offsets, and append garbage; the server starts and serves the intact prefix.
 */
import t from 'tap'
import { readdirSync, readFileSync, writeFileSync, appendFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, removeDir, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { drain, produce } from '../helpers/crashLoad.js'

for (const sync of ['never', 'always'] as const) {
  t.test(`kill -9 during concurrent sets from 8 connections (sync: ${sync})`, async (t) => {
    const s = await startServer({ config: { sync } })
    t.teardown(() => removeDir(s.spool))
    const acked: string[][] = Array.from({ length: 8 }, () => [])
    let stop = false
    const producers = acked.map((list, p) => produce(s.port, p, list, { queue: 'crash', batch: 8, pad: 'x'.repeat(100), running: () => !stop }))
    await new Promise((r) => setTimeout(r, 700))
    await s.kill()
    stop = true
    await Promise.all(producers)
    const total = acked.reduce((n, l) => n + l.length, 0)
    t.ok(total > 100, `${total} sets acknowledged before the kill`)

    const again = await startServer({ spool: s.spool })
    t.teardown(() => void again.stop())
    const items = await drain(again.port, 'crash')
    t.equal(new Set(items).size, items.length, 'no duplicates')
    const present = new Set(items)
    const lost = acked.flat().filter((v) => !present.has(v))
    t.equal(lost.length, 0, `no acknowledged item lost (${lost.slice(0, 3).join(', ')})`)
    // Each producer's items come back in its own order.
    for (let p = 0; p < 8; p++) {
      const mine = items.filter((v) => v.startsWith(`p${p}-`)).map((v) => Number(v.split('-')[1]))
      t.same(mine, [...mine].sort((a, b) => a - b), `producer ${p} in order`)
    }
  })
}

async function filledSpool(values: string[]): Promise<{ spool: string; file: string }> {
  const s = await startServer()
  const c = await RawClient.connect(s.port)
  for (const v of values) await c.set('torn', v)
  c.close()
  await s.stop()
  const files = readdirSync(s.spool).filter((f) => f.startsWith('torn'))
  t.equal(files.length, 1, 'one journal file')
  return { spool: s.spool, file: join(s.spool, files[0]!) }
}

t.test('a journal cut inside its last record starts and serves the intact prefix', async (t) => {
  const values = ['alpha', 'bravo', 'charlie', 'delta-' + 'd'.repeat(40)]
  const { spool, file } = await filledSpool(values)
  const full = readFileSync(file)
  const lastRecord = 4 + 4 + 1 + 8 + 4 + 8 + 8 + values[3]!.length // upper bound is fine: we step inside it
  const cuts = new Set<number>()
  for (let k = 1; k < lastRecord; k += 7) cuts.add(full.length - k)
  cuts.add(full.length - 1)
  for (const cut of cuts) {
    const dir = tempDir()
    writeFileSync(join(dir, file.slice(spool.length + 1)), full.subarray(0, cut))
    const s = await startServer({ spool: dir })
    const got = await drain(s.port, 'torn')
    t.same(got, values.slice(0, 3), `cut at ${cut} of ${full.length}`)
    // It still takes new items after the cut, and they survive a restart.
    const c = await RawClient.connect(s.port)
    t.equal(await c.set('torn', 'after'), 'STORED')
    c.close()
    await s.stop()
    const s2 = await startServer({ spool: dir })
    t.same(await drain(s2.port, 'torn'), ['after'], 'appends after the cut are readable')
    await s2.stop()
    removeDir(dir)
  }
  removeDir(spool)
})

t.test('garbage appended to a journal is cut; the items before it are served', async (t) => {
  const values = ['one', 'two', 'three']
  const { spool, file } = await filledSpool(values)
  const size = statSync(file).size
  appendFileSync(file, Buffer.from('\x00\xffgarbage\x13\x37 not a record at all'.repeat(5)))
  const s = await startServer({ spool })
  t.teardown(async () => {
    await s.stop()
    removeDir(spool)
  })
  t.same(await drain(s.port, 'torn'), values)
  t.ok(s.logs.some((l) => /torn|corrupt/.test(String(l.msg))), 'the cut is logged')
  t.ok(statSync(file).size <= size + 64, 'the garbage was truncated away')
})
