import t from 'tap'
import { readdirSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { importStarlingSpool, journalFactory, parseStarlingJournal } from '../../src/server/journal/index.js'
import { open, tempSpool } from '../helpers/journal.js'
import { starlingPop, starlingPush } from '../helpers/starlingJournal.js'

t.test('parse: pushes, pops, a pop on empty, a torn push at the end', async (t) => {
  const buf = Buffer.concat([
    starlingPop(), // on an empty queue: ignored
    starlingPush('a', 0),
    starlingPush('b', 1_900_000_000),
    starlingPop(),
    starlingPush(Buffer.from([0, 1, 2, 0x0d, 0x0a]), 7),
    starlingPush('torn', 0).subarray(0, 8),
  ])
  const r = parseStarlingJournal(buf)!
  t.same(r.items.map((i) => [i.data.toString('latin1'), i.expiry]), [['b', 1_900_000_000], ['\x00\x01\x02\r\n', 7]])
  t.equal(r.tornBytes, 8)
  t.equal(parseStarlingJournal(Buffer.from('hello world')), undefined, 'not a Starling journal')
})

t.test('a Starling spool is converted: every live item back, in order, originals kept as .starling-bak', async (t) => {
  const dir = tempSpool(t)
  const jobs: Buffer[] = []
  const live: string[] = []
  // 1000 pushes with 400 pops interleaved, binary payloads
  const queue: string[] = []
  for (let i = 0; i < 1000; i++) {
    const data = `job-${i}-` + String.fromCharCode(i % 256)
    jobs.push(starlingPush(Buffer.from(data, 'latin1'), i % 3 === 0 ? 0 : 2_000_000_000))
    queue.push(data)
    if (i % 5 === 1 || i % 5 === 3) {
      jobs.push(starlingPop())
      queue.shift()
    }
  }
  live.push(...queue)
  writeFileSync(join(dir, 'jobs'), Buffer.concat(jobs))
  // a queue name that is not file-name safe for us, and one with a rotated leftover
  writeFileSync(join(dir, 'Mixed.Case+fan'), Buffer.concat([starlingPush('x', 0), starlingPush('y', 0), starlingPop()]))
  // Starling rotates only when the queue is empty, and deletes the old file right after: a leftover
  // (a crash in between) nets to no items, and is read before the current file
  writeFileSync(join(dir, 'rot.1700000000'), Buffer.concat([starlingPush('gone', 0), starlingPush('gone too', 0), starlingPop(), starlingPop()]))
  writeFileSync(join(dir, 'rot'), Buffer.concat([starlingPush('new', 0), starlingPop(), starlingPush('newer', 0), starlingPush('newest', 0)]))
  writeFileSync(join(dir, 'empty'), Buffer.alloc(0))
  writeFileSync(join(dir, 'notes.txt'), 'this is not a journal')
  writeFileSync(join(dir, '.gitkeep'), '')
  mkdirSync(join(dir, 'subdir'))

  const result = await importStarlingSpool(dir)
  t.same(result, { queues: 4, items: live.length + 1 + 2 + 0 })
  t.same(await journalFactory.listQueues(dir), ['Mixed.Case+fan', 'empty', 'jobs', 'rot'])
  const files = readdirSync(dir)
  for (const f of ['jobs', 'Mixed.Case+fan', 'rot', 'rot.1700000000', 'empty']) {
    t.ok(files.includes(`${f}.starling-bak`), `${f} backed up`)
    t.notOk(files.includes(f), `${f} moved away`)
  }
  t.ok(files.includes('notes.txt'), 'a file that is not a Starling journal is left alone')

  const { journal, replay } = await open(dir, { queue: 'jobs' })
  t.same(replay.items.map((i) => i.data.toString('latin1')), live, `all ${live.length} live items, in order`)
  const firstWithExpiry = replay.items.find((i) => i.expiresAt !== 0)!
  t.equal(firstWithExpiry.expiresAt, 2_000_000_000_000, 'expiry seconds -> ms')
  t.ok(replay.items.some((i) => i.expiresAt === 0))
  t.same(
    replay.items.map((i) => i.seq),
    replay.items.map((_, k) => k + 1),
  )
  await journal.close()
  const m = await open(dir, { queue: 'Mixed.Case+fan' })
  t.same(m.replay.items.map((i) => i.data.toString()), ['y'])
  await m.journal.close()
  const r = await open(dir, { queue: 'rot' })
  t.same(r.replay.items.map((i) => i.data.toString()), ['newer', 'newest'], 'the rotated leftover is read first')
  await r.journal.close()

  t.same(await importStarlingSpool(dir), { queues: 0, items: 0 }, 'idempotent')
  t.same(readFileSync(join(dir, 'jobs.starling-bak')), Buffer.concat(jobs), 'original bytes untouched')
})

t.test('importing into a queue that already has a journal appends after it', async (t) => {
  const dir = tempSpool(t)
  {
    const { journal } = await open(dir, { queue: 'q' })
    journal.add({ seq: 1, flags: 0, expiresAt: 0, addedAt: 0, data: Buffer.from('ours') }, () => {}, () => {})
    await journal.close()
  }
  writeFileSync(join(dir, 'q'), starlingPush('theirs', 0))
  await importStarlingSpool(dir)
  const { journal, replay } = await open(dir, { queue: 'q' })
  t.same(replay.items.map((i) => [i.seq, i.data.toString()]), [[1, 'ours'], [2, 'theirs']])
  await journal.close()
})
