/**
 * Replay on threads (scanPool.ts + scanWorker.ts) must build exactly the state the main-thread
 * replay builds, damage included: both run on copies of the same damaged, multi-segment spool.
 * The threads run the built script (dist/), as the server does.
 */
import t from 'tap'
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync, closeSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { encodeQueueName } from '../../src/server/journal/format.js'
import { replaySegments, replaySegmentsParallel, type ReplayState } from '../../src/server/journal/replay.js'
import { ScanPool } from '../../src/server/journal/scanPool.js'
import { ROOT } from '../helpers/server.js'
import { item, open, tempSpool } from './helpers.js'

const SCRIPT = pathToFileURL(join(ROOT, 'dist', 'src', 'server', 'journal', 'scanWorker.js'))
const ENCODED = encodeQueueName('q')

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sqj'))
    .sort((a, b) => parseInt(a.split('.')[1]!) - parseInt(b.split('.')[1]!))
}

/** Many small segments: items of mixed sizes, the head and every third item consumed. */
async function buildSpool(dir: string): Promise<void> {
  const { journal } = await open(dir, { maxJournalSize: 4096 })
  for (let s = 1; s <= 3000; s++) {
    journal.add(item(s, Buffer.alloc((s % 37) + 1, s & 0xff)), () => {}, () => {})
    if (s % 10 === 0) journal.flushNow()
    if (s > 50 && (s <= 400 || s % 3 === 0)) journal.remove(s - 50)
  }
  await journal.close()
}

function summary(state: ReplayState): object {
  return {
    nextSeq: state.nextSeq,
    records: state.records,
    truncatedBytes: state.truncatedBytes,
    carried: state.carried.size,
    segments: state.segments.map((s) => [s.segno, s.size, s.liveCount, s.liveBytes, s.live.live, s.live.count]),
  }
}

function closeAll(state: ReplayState): void {
  for (const s of state.segments) closeSync(s.fd)
}

function collectingLogger(): { warnings: string[]; logger: { info(): void; warn(o: object, msg?: string): void } } {
  const warnings: string[] = []
  return { warnings, logger: { info() {}, warn: (_o, msg) => warnings.push(msg ?? '') } }
}

t.test('threads and main thread replay a damaged multi-segment spool to the same state', async (t) => {
  const original = tempSpool(t)
  await buildSpool(original)
  const segs = segmentFiles(original)
  t.ok(segs.length >= 10, `${segs.length} segments`)
  // damage: a flipped byte in a middle segment, a torn tail in the last one
  const middle = join(original, segs[Math.floor(segs.length / 2)]!)
  const bytes = readFileSync(middle)
  bytes[bytes.length - 3]! ^= 0xff
  writeFileSync(middle, bytes)
  const last = join(original, segs[segs.length - 1]!)
  truncateSync(last, statSync(last).size - 5)

  const here = tempSpool(t)
  const threaded = tempSpool(t)
  cpSync(original, here, { recursive: true })
  cpSync(original, threaded, { recursive: true })

  const a = collectingLogger()
  const expected = replaySegments(here, ENCODED, 'q', a.logger)
  const pool = new ScanPool(SCRIPT, 2)
  t.teardown(() => pool.close())
  const b = collectingLogger()
  const got = await replaySegmentsParallel(threaded, ENCODED, 'q', b.logger, pool, 0)
  t.same(summary(got), summary(expected), 'same live index, counts and cuts')
  t.ok(expected.truncatedBytes > 5, 'the damage was found')
  t.same(b.warnings, a.warnings, 'same warnings')
  closeAll(expected)
  closeAll(got)
  t.same(segmentFiles(threaded).map((f) => statSync(join(threaded, f)).size), segmentFiles(here).map((f) => statSync(join(here, f)).size), 'segments cut to the same sizes')
  t.equal(readdirSync(threaded).filter((f) => f.includes('.corrupt-')).length, 1, 'cut bytes of the middle segment saved')

  // and the journal opened over the threaded result serves the same items
  const fromHere = await open(here, { maxJournalSize: 4096 })
  const fromThreads = await open(threaded, { maxJournalSize: 4096 })
  t.same(
    fromThreads.replay.items.map((i) => [i.seq, i.data.length]),
    fromHere.replay.items.map((i) => [i.seq, i.data.length]),
  )
  t.ok(fromHere.replay.items.length > 1000)
  await fromHere.journal.close()
  await fromThreads.journal.close()
})

t.test('a replay thread that cannot run: the main thread scans instead, and says so once', async (t) => {
  const dir = tempSpool(t)
  await buildSpool(dir)
  const copy = tempSpool(t)
  cpSync(dir, copy, { recursive: true })
  const expected = replaySegments(dir, ENCODED, 'q', collectingLogger().logger)
  const pool = new ScanPool(pathToFileURL(join(ROOT, 'dist', 'no-such-replay-thread.js')), 2)
  t.teardown(() => pool.close())
  const log = collectingLogger()
  const got = await replaySegmentsParallel(copy, ENCODED, 'q', log.logger, pool, 0)
  t.same(summary(got), summary(expected))
  t.same(log.warnings, ['replay thread failed; scanning on the main thread'])
  closeAll(expected)
  closeAll(got)
})

t.test('small journals stay on the main thread', async (t) => {
  const dir = tempSpool(t)
  await buildSpool(dir)
  // a pool whose threads cannot start would warn if it were used
  const pool = new ScanPool(pathToFileURL(join(ROOT, 'dist', 'no-such-replay-thread.js')), 2)
  t.teardown(() => pool.close())
  const log = collectingLogger()
  const got = await replaySegmentsParallel(dir, ENCODED, 'q', log.logger, pool, 64 * 1024 * 1024)
  t.same(log.warnings, [])
  t.ok(got.records > 3000)
  closeAll(got)
})
