import t from 'tap'
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addRecordSize, headerLength, queueFileName, REMOVE_RECORD_SIZE } from '../../src/server/journal/format.js'
import { addDurable, allItems, item, open, range, seqsOf, tempSpool } from '../helpers/journal.js'

t.test('replay returns live items in seq order with their payloads', async (t) => {
  const dir = tempSpool(t)
  {
    const { journal } = await open(dir)
    for (let s = 1; s <= 50; s++) journal.add(item(s, 'x'.repeat(s)), () => {}, () => {})
    journal.flushNow()
    // out-of-order removals (open reads confirmed late, expiry)
    for (const s of [3, 1, 2, 40, 10, 50]) journal.remove(s)
    journal.remove(999) // unknown seq: harmless
    await journal.close()
  }
  const { journal, replay } = await open(dir)
  const expected = range(1, 50).filter((s) => ![1, 2, 3, 10, 40, 50].includes(s))
  t.same(seqsOf(replay.items), expected)
  for (const it of replay.items) t.equal(it.data.length, it.seq)
  t.equal(replay.records, 57)
  t.equal(replay.nextSeq, 1000, 'above every seq seen')
  await journal.close()
})

/** Build a journal of 10 adds + 2 removes, return its file bytes and record boundaries. */
async function sampleJournal(dir: string): Promise<{ bytes: Buffer; bounds: number[] }> {
  const { journal } = await open(dir)
  const bounds: number[] = []
  t.equal(journal.sizeOnDisk, 0, 'no file before the first write')
  let pos = headerLength('q')
  bounds.push(pos)
  for (let s = 1; s <= 10; s++) {
    journal.add(item(s, `payload-${s}`), () => {}, () => {})
    pos += addRecordSize(`payload-${s}`.length)
    bounds.push(pos)
    if (s === 4 || s === 6) {
      journal.remove(s - 2)
      pos += REMOVE_RECORD_SIZE
      bounds.push(pos)
    }
  }
  await journal.close()
  const bytes = readFileSync(join(dir, queueFileName('q')))
  return { bytes, bounds }
}

t.test('torn tail at every byte offset of the last 3 records', async (t) => {
  const base = tempSpool(t)
  const { bytes, bounds } = await sampleJournal(base)
  t.equal(bounds[bounds.length - 1], bytes.length)
  const all = [1, 3, 5, 6, 7, 8, 9, 10] // 2 and 4 removed
  const firstCut = bounds[bounds.length - 4]!
  let cases = 0
  // ~150 cases of open+append+reopen, each with a few fsyncs: on tmpfs when there is one (fsync is
  // free there; this test is about parsing and cutting, not about the disk)
  const scratch = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
  for (let cut = firstCut; cut < bytes.length; cut++) {
    const dir = mkdtempSync(join(scratch, 'starling-torn-'))
    try {
      writeFileSync(join(dir, queueFileName('q')), bytes.subarray(0, cut))
      const lastGood = Math.max(...bounds.filter((b) => b <= cut))
      const intactSeqs = lastGood >= bounds[bounds.length - 2]! ? all.slice(0, -1) : lastGood >= bounds[bounds.length - 3]! ? all.slice(0, -2) : all.slice(0, -3)
      {
        const { journal, replay } = await open(dir)
        if (seqsOf(replay.items).join() !== intactSeqs.join() || replay.truncatedBytes !== cut - lastGood) {
          t.fail(`cut at ${cut}: got ${seqsOf(replay.items)} truncated ${replay.truncatedBytes}`)
        }
        t.equal(statSync(join(dir, queueFileName('q'))).size, lastGood, `cut at ${cut}: file cut back to the last good record`)
        journal.add(item(100, 'after'), () => {}, () => {})
        await journal.close()
      }
      const { journal, replay } = await open(dir)
      t.same(seqsOf(replay.items), [...intactSeqs, 100], `cut at ${cut}: appends after the cut replay too`)
      t.equal(replay.truncatedBytes, 0)
      t.equal(replay.items[replay.items.length - 1]!.data.toString(), 'after')
      await journal.close()
      cases++
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  t.ok(cases > 60, `${cases} cut positions`)
})

t.test('garbage appended after the last record is cut off', async (t) => {
  const dir = tempSpool(t)
  const { bytes } = await sampleJournal(dir)
  const file = join(dir, queueFileName('q'))
  for (const garbage of [Buffer.alloc(100), Buffer.from('GARBAGE GARBAGE GARBAGE'), Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 1])]) {
    writeFileSync(file, bytes)
    appendFileSync(file, garbage)
    const { journal, replay } = await open(dir)
    t.same(seqsOf(replay.items), [1, 3, 5, 6, 7, 8, 9, 10])
    t.equal(replay.truncatedBytes, garbage.length)
    t.equal(statSync(file).size, bytes.length)
    await journal.close()
  }
})

t.test('CRC corruption in the middle: serve the records before it, cut the rest of that segment', async (t) => {
  const dir = tempSpool(t)
  const { bytes, bounds } = await sampleJournal(dir)
  const file = join(dir, queueFileName('q'))
  const bad = Buffer.from(bytes)
  // flip a payload byte of the 4th add (seq 4), record index 4 (after the 3 adds + nothing removed yet)
  const at = bounds[3]! + 40
  bad[at]! ^= 0x55
  writeFileSync(file, bad)
  const { journal, replay } = await open(dir)
  t.same(seqsOf(replay.items), [1, 2, 3], 'everything before the bad record')
  t.equal(replay.truncatedBytes, bytes.length - bounds[3]!)
  await journal.close()
})

t.test('corruption in a non-last segment: later segments are still replayed, cut bytes saved', async (t) => {
  const dir = tempSpool(t)
  {
    const { journal } = await open(dir, { maxJournalSize: 400 })
    for (let s = 1; s <= 30; s++) {
      journal.add(item(s, 'data-data-data-data'), () => {}, () => {})
      journal.flushNow()
    }
    await journal.close()
  }
  const segs = readdirSync(dir).filter((f) => f.endsWith('.sqj')).sort((a, b) => parseInt(a.split('.')[1]!) - parseInt(b.split('.')[1]!))
  t.ok(segs.length >= 3, `${segs.length} segments`)
  const second = join(dir, segs[1]!)
  const size = statSync(second).size
  const buf = readFileSync(second)
  buf[size - 5]! ^= 0xff // damage the last record of segment 2
  writeFileSync(second, buf)
  const { journal, replay } = await open(dir, { maxJournalSize: 400 })
  t.equal(replay.items.length, 29, 'only the damaged record is lost')
  t.ok(replay.truncatedBytes > 0)
  t.ok(readdirSync(dir).some((f) => f.startsWith(segs[1]!) && f.includes('.corrupt-')), 'cut bytes saved')
  await journal.close()
  const again = await open(dir, { maxJournalSize: 400 })
  t.equal(again.replay.items.length, 29)
  t.equal(again.replay.truncatedBytes, 0, 'reported once')
  await again.journal.close()
})

t.test('a segment with a broken header is set aside, the rest is served', async (t) => {
  const dir = tempSpool(t)
  {
    const { journal } = await open(dir, { maxJournalSize: 300 })
    for (let s = 1; s <= 20; s++) {
      journal.add(item(s, 'data-data-data-data'), () => {}, () => {})
      journal.flushNow()
    }
    await journal.close()
  }
  const segs = readdirSync(dir).filter((f) => f.endsWith('.sqj')).sort((a, b) => parseInt(a.split('.')[1]!) - parseInt(b.split('.')[1]!))
  const first = join(dir, segs[0]!)
  const buf = readFileSync(first)
  buf[0] = 0
  writeFileSync(first, buf)
  const { journal, replay } = await open(dir, { maxJournalSize: 300 })
  t.ok(replay.items.length > 0 && replay.items.length < 20)
  t.same(seqsOf(replay.items), range(20 - replay.items.length + 1, 20))
  await journal.close()
})

t.test('a newer format version refuses to open', async (t) => {
  const dir = tempSpool(t)
  const { journal } = await open(dir)
  await addDurable(journal, item(1))
  await journal.close()
  const file = join(dir, queueFileName('q'))
  const buf = readFileSync(file)
  buf.writeUInt16LE(99, 4)
  writeFileSync(file, buf)
  await t.rejects(open(dir), /version/)
})

t.test('memory budget: the rest stays on disk and comes back through readBehind in order', async (t) => {
  const dir = tempSpool(t)
  {
    const { journal } = await open(dir)
    for (let s = 1; s <= 1000; s++) journal.add(item(s, Buffer.alloc(100, s & 0xff)), () => {}, () => {})
    journal.flushNow()
    for (let s = 1; s <= 1000; s += 7) journal.remove(s)
    await journal.close()
  }
  const live = range(1, 1000).filter((s) => (s - 1) % 7 !== 0)
  const { journal, replay } = await open(dir, { memoryBudgetBytes: 10_000 })
  t.equal(replay.items.length, 100, 'exactly the budget')
  t.equal(replay.diskItems, live.length - 100)
  t.equal(replay.diskBytes, (live.length - 100) * 100)
  // the engine removes some on-disk items out of order before reading them (e.g. discard)
  const removedEarly = [live[150]!, live[151]!, live[400]!]
  for (const s of removedEarly) journal.remove(s)
  const got = [...replay.items]
  let calls = 0
  for (;;) {
    const batch = journal.readBehind(5_000, Number.MAX_SAFE_INTEGER)
    if (batch.length === 0) break
    calls++
    t.ok(batch.reduce((n, i) => n + i.data.length, 0) <= 5_000, 'about maxBytes per call')
    got.push(...batch)
  }
  t.ok(calls > 10)
  t.same(seqsOf(got), live.filter((s) => !removedEarly.includes(s)), 'in order, once each, removed ones skipped')
  t.ok(got.every((i) => i.data.length === 100 && i.data[0] === (i.seq & 0xff)))
  t.same(journal.readBehind(5000, Number.MAX_SAFE_INTEGER), [], 'caught up')
  await journal.close()
})

t.test('readBehind while writing: never past maxSeq, new items read back, nothing twice', async (t) => {
  const dir = tempSpool(t)
  const { journal } = await open(dir, { memoryBudgetBytes: 0 })
  for (let s = 1; s <= 10; s++) journal.add(item(s), () => {}, () => {})
  journal.flushNow()
  journal.startReadBehind(5)
  t.same(seqsOf(journal.readBehind(1e9, 7)), [5, 6, 7])
  t.same(seqsOf(journal.readBehind(1e9, 7)), [], 'caught up at maxSeq')
  journal.startReadBehind(8)
  for (let s = 11; s <= 12; s++) journal.add(item(s), () => {}, () => {})
  // 11 and 12 are not written yet: they come from the pending batch
  t.same(seqsOf(journal.readBehind(1e9, 12)), [8, 9, 10, 11, 12])
  t.same(journal.readBehind(1e9, 12), [])
  await journal.close()
})

t.test('replay is idempotent and survives a copy of the spool', async (t) => {
  const dir = tempSpool(t)
  await sampleJournal(dir)
  const copy = tempSpool(t)
  copyFileSync(join(dir, queueFileName('q')), join(copy, queueFileName('q')))
  for (const d of [dir, copy, dir]) {
    const { journal, replay } = await open(d)
    t.same(seqsOf(replay.items), [1, 3, 5, 6, 7, 8, 9, 10])
    await journal.close()
  }
  truncateSync(join(copy, queueFileName('q')), 10) // inside the header
  const { journal, replay } = await open(copy)
  t.same(replay.items, [], 'a header-torn segment is set aside')
  await journal.close()
})
