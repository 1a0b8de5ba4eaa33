/**
 * The pid file (-P) with real daemons (-d): a second daemon naming a live server's pid file exits 1
 * with a clear message and leaves the file alone; a stale pid file (dead process, or a pid reused
 * by a process started after the file was written) is replaced; a server never deletes a pid file
 * that names another process.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SERVER_MAIN, removeDir, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

function runDaemon(dir: string, pidFile: string, name: string) {
  const log = join(dir, `${name}.log`)
  const r = spawnSync(process.execPath, [SERVER_MAIN, '-d', '-P', pidFile, '-h', '127.0.0.1', '-p', '0', '-q', join(dir, `spool-${name}`), '-L', log], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: r.status, stderr: r.stderr, log }
}

function listeningPort(log: string): number {
  const line = readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'listening')
  return line!.port as number
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function waitGone(pid: number): Promise<void> {
  const deadline = Date.now() + 20_000
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
}

const pidIn = (file: string): number => Number(readFileSync(file, 'utf8').trim())

/** A pid that no process has: a child that has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0'])
  await new Promise((r) => p.on('exit', r))
  return p.pid!
}

t.test('a second daemon with the same -P is refused; the first keeps its pid file', async (t) => {
  const dir = tempDir()
  const pidFile = join(dir, 'starling.pid')
  const first = runDaemon(dir, pidFile, 'a')
  t.equal(first.status, 0, `first daemon started: ${first.stderr}`)
  const pid = pidIn(pidFile)
  t.teardown(async () => {
    if (alive(pid)) process.kill(pid, 'SIGKILL')
    await waitGone(pid)
    removeDir(dir)
  })
  t.ok(alive(pid), 'the pid file names the running daemon')
  const c = await RawClient.connect(listeningPort(first.log))
  t.equal(await c.set('q', 'x'), 'STORED', 'and it is listening when -d returns')
  c.close()

  const second = runDaemon(dir, pidFile, 'b')
  t.equal(second.status, 1, 'second daemon: exit 1')
  t.match(second.stderr, `pid file ${pidFile} names running process ${pid}`)
  t.equal(second.stderr.trim().split('\n').length, 1, 'one line')
  t.equal(pidIn(pidFile), pid, 'pid file untouched')
  t.notOk(existsSync(join(dir, 'spool-b')), 'the refused daemon did not even create its spool')

  // Without -d the same: the claim itself refuses (the race-free check).
  const fg = spawnSync(process.execPath, [SERVER_MAIN, '-P', pidFile, '-p', '0', '-q', join(dir, 'spool-c')], { encoding: 'utf8', timeout: 30_000 })
  t.equal(fg.status, 1, 'foreground server with the same -P: exit 1')
  t.match(fg.stderr, `names running process ${pid}`)
  t.equal(pidIn(pidFile), pid, 'pid file still names the first daemon')

  // Another pid file but the first daemon's spool: the daemon's start-up error reaches the terminal
  // (there is no -L here), and the pid file it had claimed is removed again.
  const otherPid = join(dir, 'other.pid')
  const sameSpool = spawnSync(process.execPath, [SERVER_MAIN, '-d', '-P', otherPid, '-p', '0', '-q', join(dir, 'spool-a')], { encoding: 'utf8', timeout: 60_000 })
  t.equal(sameSpool.status, 1, 'daemon on a locked spool: exit 1')
  t.match(sameSpool.stderr, `spool ${join(dir, 'spool-a')} is in use by pid ${pid}`)
  t.notOk(existsSync(otherPid), 'its pid file is gone with it')

  process.kill(pid, 'SIGTERM')
  await waitGone(pid)
  t.notOk(alive(pid), 'first daemon stopped')
  t.notOk(existsSync(pidFile), 'its own pid file removed on exit')
})

t.test('stale pid files are replaced: dead process, reused pid', async (t) => {
  const dir = tempDir()
  const pidFile = join(dir, 'starling.pid')
  const pids: number[] = []
  t.teardown(async () => {
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL')
    removeDir(dir)
  })
  writeFileSync(pidFile, `${await deadPid()}\n`)
  const a = runDaemon(dir, pidFile, 'a')
  t.equal(a.status, 0, `starts over a dead pid's file: ${a.stderr}`)
  const pidA = pidIn(pidFile)
  pids.push(pidA)
  t.ok(alive(pidA))
  t.match(readFileSync(a.log, 'utf8'), /replaced a stale pid file/)
  process.kill(pidA, 'SIGTERM')
  await waitGone(pidA)

  // The pid is alive (this test) but started long after the file was written: reused, stale.
  writeFileSync(pidFile, `${process.pid}\n`)
  const old = new Date('2001-01-01T00:00:00Z')
  utimesSync(pidFile, old, old)
  const b = runDaemon(dir, pidFile, 'b')
  t.equal(b.status, 0, `starts over a reused pid's file: ${b.stderr}`)
  const pidB = pidIn(pidFile)
  pids.push(pidB)
  t.not(pidB, process.pid)
  t.match(readFileSync(b.log, 'utf8'), /pid reused/)

  // Someone else's pid file at our path: a server never deletes it.
  writeFileSync(pidFile, `${process.pid}\n`)
  process.kill(pidB, 'SIGTERM')
  await waitGone(pidB)
  t.notOk(alive(pidB), 'daemon stopped')
  t.equal(readFileSync(pidFile, 'utf8'), `${process.pid}\n`, "another process's pid file is left in place")
})
