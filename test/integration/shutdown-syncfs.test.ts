/**
 * Shutdown of a server with many journals owing an fsync (sync: never): one syncfs of the spool's
 * file system (`sync --file-system`) instead of an fsync per journal (100k queues took 20 s to stop
 * with one each), every item back after the restart; without the tool, each journal syncs itself
 * as before; under `sync: always` nothing is owed and no syncfs runs.
 */
import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { removeDir, startServer, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

const QUEUES = 300

async function fill(port: number): Promise<void> {
  const c = await RawClient.connect(port)
  for (let i = 0; i < QUEUES; i++) {
    if ((await c.set(`sq${i}`, `first${i}`)) !== 'STORED') throw new Error(`set sq${i}`)
    if (i % 3 === 0 && (await c.set(`sq${i}`, `second${i}`)) !== 'STORED') throw new Error(`set sq${i} again`)
  }
  c.close()
}

async function checkAllBack(t: Tap.Test, spool: string): Promise<void> {
  const server = await startServer({ spool })
  const c = await RawClient.connect(server.port)
  let back = 0
  for (let i = 0; i < QUEUES; i++) {
    if ((await c.get(`sq${i}`)) === `first${i}`) back++
    if (i % 3 === 0 && (await c.get(`sq${i}`)) !== `second${i}`) t.fail(`sq${i}: second item missing`)
  }
  t.equal(back, QUEUES, 'every queue has its first item back after the restart, in order')
  c.close()
  t.equal(await server.stop(), 0)
}

/** A server on `spool` gets the fill and a SIGTERM; returns its exit code and its log lines. */
async function fillAndStop(spool: string, config: Record<string, unknown>, env?: Record<string, string>) {
  const server = await startServer({ spool, config, env })
  await fill(server.port)
  return { code: await server.stop(), logs: server.logs }
}

const synced = (logs: Array<Record<string, unknown>>) => logs.filter((l) => l.msg === 'spool file system synced at shutdown (one syncfs for every journal)')
const fellBack = (logs: Array<Record<string, unknown>>) =>
  logs.filter((l) => l.msg === 'could not sync the spool file system at once; each journal syncs itself')

t.test('sync: never, 300 queues: one syncfs at shutdown, clean exit, every item back', async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  const { code, logs } = await fillAndStop(spool, { sync: 'never' })
  t.equal(code, 0, 'clean exit')
  const lines = synced(logs)
  t.equal(lines.length, 1, 'one syncfs for the lot')
  t.ok((lines[0]?.journals as number) >= QUEUES, `every journal owed a sync (${lines[0]?.journals})`)
  await checkAllBack(t, spool)
})

t.test('no `sync` tool on PATH: each journal fsyncs itself, clean exit, every item back', async (t) => {
  const spool = tempDir()
  const emptyBin = mkdtempSync(join(tmpdir(), 'starling-nobin-'))
  t.teardown(() => (removeDir(spool), removeDir(emptyBin)))
  const { code, logs } = await fillAndStop(spool, { sync: 'never' }, { PATH: emptyBin })
  t.equal(code, 0, 'clean exit')
  t.equal(synced(logs).length, 0, 'no syncfs')
  t.equal(fellBack(logs).length, 1, 'one warning, then the per-journal fsyncs')
  await checkAllBack(t, spool)
})

t.test('sync: always: nothing is owed at shutdown, so no syncfs', async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  const { code, logs } = await fillAndStop(spool, { sync: 'always' })
  t.equal(code, 0, 'clean exit')
  t.equal(synced(logs).length + fellBack(logs).length, 0, 'no spool sync attempted')
  await checkAllBack(t, spool)
})
