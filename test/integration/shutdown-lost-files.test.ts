/**
 * A clean shutdown whose journal files were removed from under the server (an operator's `rm`, a
 * spool on a failing disk): every queue still gets its chance to sync and close, the failure is
 * one logged line, the exit status is 1, and the process does not die on an unhandled rejection
 * (before: `Error: ENOENT ... at FdCache.pin` and a stack trace, the other queues left unsynced).
 * While running, a set to such a queue is refused with SERVER_ERROR and the server keeps serving.
 */
import t from 'tap'
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { removeDir, startServer, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

t.test('journal files removed under a running server: SERVER_ERROR, then a logged, non-zero shutdown', async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  // a small fd cache: most queues' files are closed, so their next write and the final sync reopen them
  const server = await startServer({ spool, config: { max_open_journals: 16 } })
  let stderr = ''
  server.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const c = await RawClient.connect(server.port)
  for (let i = 0; i < 60; i++) t.equal(await c.set(`gone${i}`, `v${i}`), 'STORED')
  const journals = readdirSync(spool).filter((f) => f.startsWith('gone'))
  t.ok(journals.length >= 60, `one journal file a queue (${journals.length})`)
  for (const f of journals) rmSync(join(spool, f))

  // gone0 was written first: its fd was evicted long ago, so this write must reopen a missing file
  const reply = await c.set('gone0', 'again')
  t.match(reply, /^SERVER_ERROR /, `a set to a queue whose file is gone is refused: ${reply}`)
  t.equal(await c.set('fresh', 'ok'), 'STORED', 'other queues keep working')
  t.equal(await c.get('fresh'), 'ok')
  c.close()

  const code = await server.stop()
  t.equal(code, 1, 'a shutdown that could not sync every queue exits 1')
  t.notMatch(stderr, /\n\s+at /, 'no stack trace: nothing escaped as an uncaught error')
  const failed = server.logs.filter((l) => l.msg === 'queues could not be synced and closed at shutdown')
  t.equal(failed.length, 1, 'one log line for every queue that failed')
  t.ok((failed[0]?.failed as number) >= 1, `it counts them (${failed[0]?.failed})`)
  t.ok(server.logs.some((l) => l.msg === 'stopped' && l.exitCode === 1), 'the server still got to "stopped"')
})
