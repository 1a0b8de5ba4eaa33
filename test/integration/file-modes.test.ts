/**
 * Payloads are private (issue 12 item 8): under umask 000 the server still creates the spool 0700
 * and every file in it 0600 — journals (including rotated segments), the spool lock and a pid file
 * placed there. An existing spool keeps its mode, with a warning when others can read it.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { SERVER_MAIN, removeDir, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

/** Start the server through `sh -c 'umask 000; exec node ...'`; resolves with port, logs, stop(). */
async function startWithUmask000(args: string[]) {
  const quoted = [process.execPath, SERVER_MAIN, '-h', '127.0.0.1', '-p', '0', ...args].map((a) => `'${a}'`).join(' ')
  const proc = spawn('sh', ['-c', `umask 000; exec ${quoted}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((r) => proc.on('exit', r))
  const logs: Array<Record<string, unknown>> = []
  let text = ''
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stderr }).on('line', (line) => {
      text += line + '\n'
      try {
        const e = JSON.parse(line) as Record<string, unknown>
        logs.push(e)
        if (e.msg === 'listening') resolve(e.port as number)
      } catch {
        /* not JSON */
      }
    })
    void exited.then((code) => reject(new Error(`exited ${code}: ${text}`)))
  })
  return { port, logs, stop: async () => (proc.kill('SIGTERM'), exited) }
}

const mode = (p: string): number => statSync(p).mode & 0o777

t.test('umask 000: spool 0700, every file the server writes in it 0600', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  chmodSync(dir, 0o755)
  const spool = join(dir, 'a', 'spool')
  const conf = join(dir, 'small-segments.yml')
  writeFileSync(conf, 'starling:\n  max_journal_size: 4096\n')
  const first = await startWithUmask000(['-q', spool, '-f', conf])
  t.equal(mode(spool), 0o700, 'spool created 0700')
  t.equal(await first.stop(), 0)
  // Again with the pid file in the (now existing) spool, and enough to rotate each journal.
  const s = await startWithUmask000(['-q', spool, '-P', join(spool, 'starling.pid'), '-f', conf])
  const c = await RawClient.connect(s.port)
  const big = 'x'.repeat(2000)
  // 4 KiB segments: 20 items of 2 KB rotate each queue's journal several times.
  for (const q of ['jobs', 'mail', 'a+b']) for (let i = 0; i < 20; i++) t.equal(await c.set(q, big), 'STORED')
  for (let i = 0; i < 10; i++) await c.get('jobs')
  c.close()
  t.equal(mode(spool), 0o700, 'spool created 0700')
  t.equal(mode(join(dir, 'a')), 0o700, 'missing parents created 0700 too')
  const files = readdirSync(spool)
  t.ok(files.includes('.starling.lock'), 'lock file present')
  t.ok(files.includes('starling.pid'), 'pid file present')
  t.ok(files.filter((f) => f.endsWith('.sqj')).length >= 6, `journal segments present: ${files.join(' ')}`)
  for (const f of files) t.equal(mode(join(spool, f)), 0o600, `${f} is 0600`)
  t.equal(await s.stop(), 0)
})

t.test('an existing spool keeps its mode; a warning when others can read it', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const open = join(dir, 'open')
  mkdirSync(open)
  chmodSync(open, 0o755)
  const s = await startWithUmask000(['-q', open])
  t.match(s.logs.find((l) => l.msg?.toString().startsWith('spool directory is accessible')), { level: 40, spool: open, mode: '755' })
  t.equal(mode(open), 0o755, 'mode left alone')
  t.equal(await s.stop(), 0)

  const closed = join(dir, 'closed')
  mkdirSync(closed)
  chmodSync(closed, 0o700)
  const s2 = await startWithUmask000(['-q', closed])
  t.notOk(s2.logs.find((l) => String(l.msg).startsWith('spool directory is accessible')), 'no warning for a 0700 spool')
  t.equal(await s2.stop(), 0)
})
