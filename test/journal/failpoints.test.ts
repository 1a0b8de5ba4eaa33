import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { transpileForChild } from '../helpers/transpile.js'
import { FAILPOINTS, importStarlingSpool, journalFactory } from '../../src/server/journal/index.js'
import { allItems, seqsOf, tempSpool } from '../helpers/journal.js'
import { starlingPush, starlingPop } from '../helpers/starlingJournal.js'
import { flowOps, liveAfter } from './fixtures/flow.js'

const CHILD = transpileForChild(t, 'failpoint-child.ts')

interface ChildResult {
  acked: string[]
  signal: NodeJS.Signals | null
}

function runChild(mode: string, dir: string, failpoint: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const ackFile = `${dir}-acks.log`
    const child = spawn(process.execPath, [CHILD, mode, dir, ackFile], {
      env: { ...process.env, STARLING_FAILPOINT: failpoint },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (signal === null && code !== 0) reject(new Error(`child failed: ${err}`))
      else {
        const acked = existsSync(ackFile) ? readFileSync(ackFile, 'utf8').split('\n').filter(Boolean) : []
        rmSync(ackFile, { force: true })
        resolve({ acked, signal })
      }
    })
  })
}

function child(fp: string, mode: string, dir: string): Promise<ChildResult> {
  return runChild(mode, dir, fp)
}

// the children are independent processes in their own directories: run a few at once
t.jobs = 4

async function replay(dir: string): Promise<number[]> {
  const { journal, replay } = await journalFactory.open({ dir, queue: 'fp', sync: 'never', maxJournalSize: 8 * 1024, memoryBudgetBytes: 1 << 20 })
  const items = allItems(journal, replay)
  t.ok(items.every((i) => i.flags === i.seq && i.data.length === 100), 'payloads intact')
  await journal.close()
  return seqsOf(items)
}

const flowPoints = FAILPOINTS.filter((f) => /^(rotate|carry|drop):/.test(f))
for (const fp of flowPoints) {
  t.test(`failpoint ${fp}: every item there exactly once`, async (t) => {
    const dir = tempSpool(t)
    const { acked, signal } = await child(fp, 'flow', dir)
    t.equal(signal, 'SIGKILL', 'the child reached the failpoint')
    const done = acked.length
    t.ok(done > 0 && done < flowOps().length, `${done} operations acknowledged before the kill`)
    const got = await replay(dir)
    // the operation in flight when the child died was written (the failpoints come after the
    // batch write) or not: either state is correct, anything else is a lost or resurrected item
    const before = liveAfter(done)
    const after = liveAfter(done + 1)
    t.ok(
      got.join() === before.join() || got.join() === after.join(),
      `replayed ${got.length} items: exactly the acknowledged ones, once each, in order`,
    )
  })
}

for (const fp of FAILPOINTS.filter((f) => f.startsWith('reset:'))) {
  t.test(`failpoint ${fp}: the flush completes on replay`, async (t) => {
    const dir = tempSpool(t)
    const { acked, signal } = await child(fp, 'reset', dir)
    t.equal(signal, 'SIGKILL')
    t.ok(acked.includes('BEGIN') && !acked.includes('DONE'))
    t.ok(readdirSync(dir).filter((f) => f.endsWith('.sqj')).length > 1, 'crashed with old segments still there')
    t.same(await replay(dir), [], 'empty, nothing resurrected')
    t.equal(readdirSync(dir).filter((f) => f.endsWith('.sqj')).length, 1, 'old segments cleaned up')
    const { journal, replay: r } = await journalFactory.open({ dir, queue: 'fp', sync: 'never', maxJournalSize: 8192, memoryBudgetBytes: 1 << 20 })
    t.ok(r.nextSeq > 300, 'seqs not reused')
    await journal.close()
  })
}

for (const fp of FAILPOINTS.filter((f) => f.startsWith('destroy:'))) {
  t.test(`failpoint ${fp}: the delete completes on restart`, async (t) => {
    const dir = tempSpool(t)
    const { acked, signal } = await child(fp, 'destroy', dir)
    t.equal(signal, 'SIGKILL')
    t.ok(acked.includes('BEGIN') && !acked.includes('DONE'))
    t.ok(readdirSync(dir).length > 1)
    t.same(await journalFactory.listQueues(dir), [], 'the queue is gone')
    t.same(readdirSync(dir), [], 'and so are its files')
  })
}

for (const fp of FAILPOINTS.filter((f) => f.startsWith('import:'))) {
  t.test(`failpoint ${fp}: a Starling import is done exactly once`, async (t) => {
    const dir = tempSpool(t)
    // fp: 5 pushes, 2 pops -> items 3,4,5 ; plus a rotated leftover file
    writeFileSync(join(dir, 'fp.1700000000'), Buffer.concat([starlingPush('old', 0), starlingPop()]))
    writeFileSync(join(dir, 'fp'), Buffer.concat([1, 2, 3, 4, 5].map((n) => starlingPush(`s${n}`, 0)).concat([starlingPop(), starlingPop()])))
    const { acked, signal } = await child(fp, 'import', dir)
    t.equal(signal, 'SIGKILL')
    t.notOk(acked.includes('DONE'))
    const again = await importStarlingSpool(dir)
    t.equal(again.queues, 1, 'finished on the next start')
    t.notOk(readdirSync(dir).some((f) => f === 'fp' || f === 'fp.1700000000'), 'originals renamed')
    t.ok(readdirSync(dir).includes('fp.starling-bak'))
    t.same(await journalFactory.listQueues(dir), ['fp'])
    const { journal, replay: r } = await journalFactory.open({ dir, queue: 'fp', sync: 'never', maxJournalSize: 8192, memoryBudgetBytes: 1 << 20 })
    t.same(r.items.map((i) => i.data.toString()), ['s3', 's4', 's5'], 'each item exactly once')
    await journal.close()
    t.equal((await importStarlingSpool(dir)).queues, 0, 'nothing left to import')
  })
}

t.test('every failpoint has a test', async (t) => {
  t.equal(flowPoints.length + 2 + 2 + 3, FAILPOINTS.length)
})
