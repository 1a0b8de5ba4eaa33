/**
 * One server per spool (issue 12 item 1, DESIGN §10), with real processes: a second server on a
 * live spool exits 1 naming the holder and changes nothing in the spool (a planted Starling journal
 * it would import, the journals it would replay); a lock left by a kill -9 is taken over and logged;
 * a lock whose pid is alive but belongs to a process with another start time is stale.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { SERVER_MAIN, removeDir, startServer, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

const LOCK = '.starling.lock'

/** Run a server to completion (it is expected to fail): exit code and stderr. */
function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [SERVER_MAIN, '-h', '127.0.0.1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    p.stdout.on('data', (b: Buffer) => (stderr += b.toString()))
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000)
    p.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stderr })
    })
  })
}

/** Every file in the spool with its size, mtime and content hash. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of readdirSync(dir).sort()) {
    const st = statSync(join(dir, f))
    out[f] = `${st.size} ${st.mtimeMs} ${st.ino} ${createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')}`
  }
  return out
}

/** A Starling journal (opcode 0, u32 size, u32 expiry + data): a second server would import it. */
function starlingJournal(items: string[]): Buffer {
  return Buffer.concat(
    items.map((s) => {
      const head = Buffer.alloc(9)
      head[0] = 0
      head.writeUInt32LE(4 + s.length, 1)
      head.writeUInt32LE(0, 5)
      return Buffer.concat([head, Buffer.from(s)])
    }),
  )
}

async function setMany(port: number, q: string, values: string[]): Promise<void> {
  const c = await RawClient.connect(port)
  for (const v of values) if ((await c.set(q, v)) !== 'STORED') throw new Error('not stored')
  c.close()
}

async function drain(port: number, q: string): Promise<string[]> {
  const c = await RawClient.connect(port)
  const out: string[] = []
  for (;;) {
    const v = await c.get(q)
    if (v === null) break
    out.push(v)
  }
  c.close()
  return out
}

const values = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

t.test('a second server on a live spool exits 1 and changes nothing, whichever way it fails', async (t) => {
  const spool = tempDir()
  const first = await startServer({ spool })
  t.teardown(async () => {
    if (first.proc.exitCode === null) await first.stop()
    removeDir(spool)
  })
  await setMany(first.port, 'jobs', values('a', 50))
  await setMany(first.port, 'other', values('o', 5))
  // A Starling journal appears: only a server that reads the spool would convert and rename it.
  writeFileSync(join(spool, 'legacy'), starlingJournal(['old-1', 'old-2']))
  const before = snapshot(spool)
  t.ok(before[LOCK], 'the lock file is in the spool')

  const otherPort = await runToExit(['-p', '0', '-q', spool])
  t.equal(otherPort.code, 1, 'second server (another port): exit 1')
  t.equal(otherPort.stderr.trim(), `starling: spool ${spool} is in use by pid ${first.proc.pid}`)
  t.same(snapshot(spool), before, 'second server (another port): spool unchanged')

  const samePort = await runToExit(['-p', String(first.port), '-q', spool])
  t.equal(samePort.code, 1, 'second server (same port, would hit EADDRINUSE): exit 1')
  t.match(samePort.stderr, `is in use by pid ${first.proc.pid}`)
  t.same(snapshot(spool), before, 'second server (same port): spool unchanged')

  // A server on another spool that fails to bind leaves the first spool alone and its own unlocked.
  const spool2 = tempDir()
  t.teardown(() => removeDir(spool2))
  const busyPort = await runToExit(['-p', String(first.port), '-q', spool2])
  t.equal(busyPort.code, 1, 'EADDRINUSE: exit 1')
  t.match(busyPort.stderr, /EADDRINUSE/)
  t.notOk(existsSync(join(spool2, LOCK)), 'a failed start releases its own lock')
  t.same(snapshot(spool), before, 'EADDRINUSE elsewhere: first spool unchanged')

  // The first server still serves everything, before and after a restart.
  await setMany(first.port, 'jobs', values('b', 10))
  t.same(await drain(first.port, 'other'), values('o', 5))
  t.equal(await first.stop(), 0)
  t.notOk(existsSync(join(spool, LOCK)), 'the lock is released on clean shutdown')
  const again = await startServer({ spool })
  t.same(await drain(again.port, 'jobs'), [...values('a', 50), ...values('b', 10)], 'every acknowledged item, in order')
  t.same(await drain(again.port, 'legacy'), ['old-1', 'old-2'], 'the Starling journal is imported by the owner only')
  t.equal(await again.stop(), 0)
})

t.test('a lock left by a killed server is taken over and logged', async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  const first = await startServer({ spool })
  await setMany(first.port, 'jobs', values('k', 20))
  const deadPid = first.proc.pid!
  await first.kill()
  t.ok(existsSync(join(spool, LOCK)), 'kill -9 leaves the lock behind')
  // A crash in the middle of taking the lock leaves its temp file: cleaned once the lock is held.
  writeFileSync(join(spool, `${LOCK}.${deadPid}.tmp`), '{}')
  writeFileSync(join(spool, `${LOCK}.stale-${deadPid}`), '{}')
  const second = await startServer({ spool })
  const took = second.logs.find((l) => l.msg === 'took over a stale spool lock')
  t.ok(took, 'the takeover is logged')
  t.match(took, { stalePid: deadPid, reason: 'process gone', level: 40 })
  t.match(JSON.parse(readFileSync(join(spool, LOCK), 'utf8')), { pid: second.proc.pid, host: hostname() })
  t.same(readdirSync(spool).filter((f) => f.startsWith(LOCK)), [LOCK], "a dead process's lock temp files are removed")
  t.same(await drain(second.port, 'jobs'), values('k', 20))
  t.equal(await second.stop(), 0)
})

t.test('a live pid with another start time is a stale lock; another host is not', async (t) => {
  const spool = tempDir()
  t.teardown(() => removeDir(spool))
  // This test process is alive, but it did not start at tick 1 since boot: pid reuse.
  writeFileSync(join(spool, LOCK), JSON.stringify({ pid: process.pid, start: '1', host: hostname() }) + '\n')
  const s = await startServer({ spool })
  t.match(s.logs.find((l) => l.msg === 'took over a stale spool lock'), { stalePid: process.pid, reason: 'pid reused by another process' })
  t.equal(await s.stop(), 0)

  // Same pid and host but no start time recorded (a lock written where /proc was missing): live.
  writeFileSync(join(spool, LOCK), JSON.stringify({ pid: process.pid, start: null, host: hostname() }) + '\n')
  const live = await runToExit(['-p', '0', '-q', spool])
  t.equal(live.code, 1)
  t.equal(live.stderr.trim(), `starling: spool ${spool} is in use by pid ${process.pid}`)

  writeFileSync(join(spool, LOCK), JSON.stringify({ pid: 1, start: '1', host: 'elsewhere.example' }) + '\n')
  const remote = await runToExit(['-p', '0', '-q', spool])
  t.equal(remote.code, 1, 'a lock from another host cannot be judged: refused')
  t.match(remote.stderr, `spool ${spool} is in use by pid 1 on host elsewhere.example`)
  t.equal(remote.stderr.trim().split('\n').length, 1, 'one line')
})
